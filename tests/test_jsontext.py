"""Strict JSON text: what parse refuses, where it says the problem is, and locate."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import errors
from orchestrator.core import jsontext
from orchestrator.core.jsontext import JsonTextError, locate, parse
from orchestrator.show import messages

# The autouse isolated_env fixture is function-scoped; it holds nothing these
# properties depend on, so running it once per test rather than per example is fine.
PROPERTY = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def refused(data: bytes | str, **kwargs: Any) -> JsonTextError:
    with pytest.raises(JsonTextError) as caught:
        parse(data, source="t.json", **kwargs)
    return caught.value


# --- accepted ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ("[]", []),
        ("  \t\r\n{}\n", {}),
        ('"x"', "x"),
        ("-0.5e-3", -0.0005),
        ("0", 0),
        ("true", True),
        ("null", None),
        ('{"": 1}', {"": 1}),
        ('{"a/b~c": [1, {"d": null}]}', {"a/b~c": [1, {"d": None}]}),
        ('"\\ud83d\\ude00"', "\U0001f600"),
        ('"\\u00e9\\n\\t\\/"', "\u00e9\n\t/"),
        ('"é€𝄞"', "é€𝄞"),
    ],
)
def test_parse_accepts_strict_json(text: str, value: Any) -> None:
    assert parse(text, source="t.json") == value
    assert parse(text.encode(), source="t.json") == value


def test_integer_at_the_digit_limit_is_accepted() -> None:
    assert parse("9" * 4300, source="t.json") == int("9" * 4300)


def test_nesting_at_the_limit_is_accepted() -> None:
    assert parse("[" * 512 + "]" * 512, source="t.json") == parse(
        "[" * 512 + "]" * 512, source="t.json"
    )
    deep: Any = parse('{"a":' * 512 + "1" + "}" * 512, source="t.json")
    for _ in range(512):
        deep = deep["a"]
    assert deep == 1


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps(["[" * 100_000, "{" * 100_000])
    assert parse(text, source="t.json") == ["[" * 100_000, "{" * 100_000]


def test_a_huge_string_parses_quickly() -> None:
    text = json.dumps({"blob": "x" * 20_000_000})
    started = time.perf_counter()
    assert len(parse(text.encode(), source="t.json")["blob"]) == 20_000_000
    assert time.perf_counter() - started < 2


# --- refused, with the exact place ---------------------------------------------------------


REFUSALS = [
    ("", 1, 1, "empty input: expected a JSON value"),
    ("  \n  ", 2, 3, "empty input: expected a JSON value"),
    ('{"a": 1} x', 1, 10, "extra data after the JSON value"),
    ("{}\n{}", 2, 1, "extra data after the JSON value"),
    ('{"a": 1, "a": 2}', 1, 10, "duplicate key 'a' (first at 1:2)"),
    ('{"a": 1, "\\u0061": 2}', 1, 10, "duplicate key 'a' (first at 1:2)"),
    ('{\n "x": {\n  "y": {"b": 1,\n   "b": 2}}}', 4, 4, "duplicate key 'b' (first at 3:9)"),
    ('[{"k": 1}, {"k": 2, "z": {"k": 3, "k": 4}}]', 1, 35, "duplicate key 'k' (first at 1:27)"),
    ('{"a": NaN}', 1, 7, "NaN is not JSON"),
    ("[1, Infinity]", 1, 5, "Infinity is not JSON"),
    ("[-Infinity]", 1, 2, "-Infinity is not JSON"),
    ('{"a": "x\ty"}', 1, 9, "control character U+0009 in a string"),
    ('["\x00"]', 1, 3, "control character U+0000 in a string"),
    ("[1]\x00", 1, 4, "extra data after the JSON value"),
    ("\x00", 1, 1, "expected a value, found U+0000"),
    ('["a\\x"]', 1, 4, "invalid escape '\\x' in a string"),
    ('["\\u12"]', 1, 3, "invalid \\u escape: expected 4 hex digits"),
    ('["\\ud800"]', 1, 3, "unpaired surrogate escape \\ud800"),
    ('["\\ud800\\u0041"]', 1, 3, "unpaired surrogate escape \\ud800"),
    ('["x", "\\udc00"]', 1, 8, "unpaired surrogate escape \\udc00"),
    ('{"a": "abc', 1, 7, "unterminated string"),
    ("[1, 2,]", 1, 6, "trailing comma before ']'"),
    ('{"a": 1,\n}', 1, 8, "trailing comma before '}'"),
    ("[1 2]", 1, 4, "missing ',' between elements: found '2'"),
    ('{"a": 1\n "b": 2}', 2, 2, "missing ',' between members: found '\"'"),
    ('{"a" 1}', 1, 6, "expected ':' after the key 'a', found '1'"),
    ("{a: 1}", 1, 2, "expected a key in double quotes, found 'a'"),
    ("{'a': 1}", 1, 2, "keys must be strings in double quotes, not single quotes"),
    ("['a']", 1, 2, "strings must be in double quotes, not single quotes"),
    ("[1] // note", 1, 5, "extra data after the JSON value"),
    ("[// note\n1]", 1, 2, "comments are not allowed in JSON"),
    ("[True]", 1, 2, "expected a value, found 'True' (JSON spells it true)"),
    ("[None]", 1, 2, "expected a value, found 'None' (JSON spells it null)"),
    ("[1,,2]", 1, 4, "expected a value, found ','"),
    ('{"a": [1, 2}', 1, 12, "expected ',' or ']', found '}'"),
    ('{\n  "a": [\n    1,', 3, 7, "unexpected end of input: '[' opened at 2:8 is not closed"),
    ('{"a": 1', 1, 8, "unexpected end of input: '{' opened at 1:1 is not closed"),
    ("[01]", 1, 2, "leading zeros are not allowed in JSON numbers"),
    ("[1.]", 1, 2, "malformed number '1.': expected digits after '.'"),
    ("[1e]", 1, 2, "malformed number '1e': expected digits after 'e'"),
    ("[-]", 1, 2, "malformed number: expected a digit after '-', found ']'"),
    ("[+1]", 1, 2, "expected a value, found '+'"),
    ("[.5]", 1, 2, "expected a value, found '.'"),
    ("[1e400]", 1, 2, "number too large: it overflows to infinity"),
    ('{\n "n": ' + "7" * 4301 + "}", 2, 7, "integer with more than 4300 digits"),
    ("[-" + "1" * 5000 + "]", 1, 2, "integer with more than 4300 digits"),
    ("\u00e9", 1, 1, "expected a value, found 'é'"),
    ("{} \u00a0", 1, 4, "extra data after the JSON value"),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), REFUSALS)
def test_refusals_say_what_and_where(text: str, line: int, col: int, message: str) -> None:
    error = refused(text)
    assert (error.message, error.line, error.col) == (message, line, col)
    assert error.file == "t.json"
    assert errors.exit_code_of(error) == errors.INVALID_INPUT
    # Bytes are refused the same way: columns count characters, not bytes.
    again = refused(text.encode())
    assert (again.message, again.line, again.col) == (message, line, col)


# Every kind of item the scanner takes a run of at once (its fast path in large arrays).
PLAIN_ITEMS = '1, -20.5e3, 0, true, false, null, "a\\n\\"", "", '


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [r for r in REFUSALS if r[0].startswith("[") and not re.search(r"at \d", r[3])],
)
def test_refusals_after_a_run_of_plain_items_say_the_same(
    text: str, line: int, col: int, message: str
) -> None:
    error = refused("[" + PLAIN_ITEMS * 30 + text[1:])
    shift = len(PLAIN_ITEMS) * 30 if line == 1 else 0
    assert (error.message, error.line, error.col) == (message, line, col + shift)


@pytest.mark.parametrize(
    ("item", "col", "message"),
    [
        ('"\\ud800"', 1, "unpaired surrogate escape \\ud800"),  # \u is never taken in a run
        ("1" * 4301, 0, "integer with more than 4300 digits"),
        ("9" * 15 + "e99" + "9", 0, "number too large: it overflows to infinity"),
        ("-", 0, "malformed number: expected a digit after '-', found ','"),
        ("truex", 4, "expected ',' or ']', found 'x'"),
    ],
)
def test_a_run_of_plain_items_stops_before_an_item_it_cannot_vouch_for(
    item: str, col: int, message: str
) -> None:
    head = "[" + PLAIN_ITEMS * 3
    error = refused(head + item + ", 1]")
    assert (error.message, error.col) == (message, len(head) + 1 + col)


def test_the_error_shows_the_line_and_a_caret() -> None:
    error = refused('{\n  "a": tru\n}')
    assert messages.plain(error).splitlines() == [
        "bakeplan: invalid input: t.json:2:8: expected a value, found 'tru'",
        '  |   "a": tru',
        "  |        ^",
    ]


def test_byte_order_mark_is_refused() -> None:
    for data in (b'\xef\xbb\xbf{"a": 1}', '\ufeff{"a": 1}'):
        error = refused(data)
        assert (error.message, error.line, error.col) == ("byte-order mark at start of file", 1, 1)
        assert error.hint is not None
        assert "without a byte-order mark" in error.hint


def test_utf16_is_refused_as_not_utf8() -> None:
    error = refused('{"a": 1}'.encode("utf-16"))
    assert error.message == "UTF-16 byte-order mark at start of file: JSON here must be UTF-8"


@pytest.mark.parametrize(
    ("data", "line", "col", "byte"),
    [
        (b'{"a": "\xff"}', 1, 8, 0xFF),
        (b'{\n  "\xc3\xa9t\xc3\xa9": "\xe2\x82"}', 2, 11, 0xE2),  # col counts characters
        (b'["\xed\xa0\x80"]', 1, 3, 0xED),  # an encoded surrogate is not UTF-8
        (b'["\xc0\xaf"]', 1, 3, 0xC0),  # an overlong encoding is not UTF-8
    ],
)
def test_invalid_utf8_is_refused_at_the_bad_byte(
    data: bytes, line: int, col: int, byte: int
) -> None:
    error = refused(data)
    assert (error.message, error.line, error.col) == (f"invalid UTF-8 byte 0x{byte:02x}", line, col)


def test_a_lone_surrogate_in_text_is_refused() -> None:
    error = refused('{"a": "\ud800"}')
    assert (error.message, error.line, error.col) == (
        "unpaired surrogate U+D800 is not Unicode text",
        1,
        8,
    )


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deep_nesting_is_a_clear_error_never_a_recursion_error(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * 100_000 + "1" + closer * 100_000
    started = time.perf_counter()
    error = refused(text)
    assert time.perf_counter() - started < 1
    assert error.message == "nesting deeper than 512 levels"
    assert (error.line, error.col) == (1, 512 * len(opener) + 1)


def test_deep_nesting_that_is_also_broken_is_still_a_clear_error() -> None:
    error = refused("[" * 100_000)
    assert error.message == "nesting deeper than 512 levels"
    error = refused('"' + "\\\\" * 1000 + "[" * 100_000)  # an unterminated string
    assert error.message == "unterminated string"


def test_max_depth_is_the_callers_choice() -> None:
    assert parse("[[[]]]", source="t.json", max_depth=3) == [[[]]]
    error = refused("[[[[]]]]", max_depth=3)
    assert (error.message, error.col) == ("nesting deeper than 3 levels", 4)


# --- properties -------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@PROPERTY
@given(
    value=st.dictionaries(st.text(max_size=8), json_values, max_size=6),
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
)
def test_any_json_object_round_trips(
    value: dict[str, Any], indent: int | None, ascii_only: bool
) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    assert parse(text, source="t.json") == value
    assert parse(text.encode(), source="t.json") == value


@PROPERTY
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_value_or_a_json_text_error(data: bytes) -> None:
    try:
        parse(data, source="t.json")
    except JsonTextError as error:
        assert error.line is not None
        assert error.col is not None
        assert error.line >= 1
        assert error.col >= 1


JSONISH = st.text(alphabet='{}[]",:0123456789-+.eE truefalsnNIiy\\u\n\t\x00\ud800é', max_size=60)


@PROPERTY
@given(JSONISH)
def test_parse_and_the_scanner_agree(text: str) -> None:
    # The scanner only runs when json.loads fails: each must refuse exactly what the
    # other refuses, or an error would come out without a position (or not at all).
    try:
        value = parse(text, source="t.json")
    except JsonTextError as error:
        assert error.line is not None
        assert error.col is not None
        assert 1 <= error.line <= text.count("\n") + 1
    else:
        assert jsontext._scan(text, jsontext.DEFAULT_MAX_DEPTH) is None
        assert value == json.loads(text)


# --- locate ------------------------------------------------------------------------------

DOC = """{
  "rc": [
    {"bin": "a", "argv": ["a", "[not]", "{a}"]},
    {"bin": "b"}
  ],
  "mount": {
    "/data": {"source": "blk", "path": "/dev/ld0a"}
  },
  "a~b": {"c/d": [10, 20, [30, {"": "empty"}]]},
  "esc\\"aped": 1,
  "\\u0078": true
}"""


@pytest.mark.parametrize(
    ("pointer", "where"),
    [
        ("", (1, 1)),
        ("/rc", (2, 9)),
        ("/rc/0", (3, 5)),
        ("/rc/0/argv/2", (3, 41)),
        ("/rc/1/bin", (4, 13)),
        ("/mount/~1data", (7, 14)),
        ("/mount/~1data/path", (7, 40)),
        ("/a~0b/c~1d/2/1/", (9, 37)),
        ("/a~0b/c~1d/1", (9, 23)),
        ('/esc"aped', (10, 16)),
        ("/x", (11, 13)),
        ("/rc/2", None),
        ("/rc/-", None),
        ("/rc/01", None),
        ("/rc/bin", None),
        ("/rc/0/bin/x", None),
        ("/mount/data", None),
        ("/nope", None),
        ("rc", None),
        ("/a~2b", None),
    ],
)
def test_locate(pointer: str, where: tuple[int, int] | None) -> None:
    assert locate(DOC, pointer) == where


def test_locate_on_text_that_is_not_json_returns_none() -> None:
    assert locate('{"a": [1, {"b"', "/a/1/b") is None
    assert locate("", "") is None
    assert locate('{"a": 1', "/b") is None


def test_locate_is_not_recursive() -> None:
    text = "[" * 100_000 + "]" * 100_000
    assert locate(text, "/0/0/0") == (1, 4)
    assert locate("[[" + "[" * 100_000 + "]" * 100_000 + "], 7]", "/1") is not None


def _pointers(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    found = [(prefix, value)]
    if isinstance(value, dict):
        for key, child in value.items():
            token = key.replace("~", "~0").replace("/", "~1")
            found.extend(_pointers(child, f"{prefix}/{token}"))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_pointers(child, f"{prefix}/{index}"))
    return found


@PROPERTY
@given(
    value=st.dictionaries(st.text(alphabet='ab/~"\\ é', max_size=4), json_values, max_size=5),
    indent=st.sampled_from([None, 1, 4]),
)
def test_locate_finds_every_value(value: dict[str, Any], indent: int | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    starts = [0, *(i + 1 for i, c in enumerate(text) if c == "\n")]
    decoder = json.JSONDecoder()
    for pointer, expected in _pointers(value):
        where = locate(text, pointer)
        assert where is not None, pointer
        line, col = where
        found, _ = decoder.raw_decode(text, starts[line - 1] + col - 1)
        assert found == expected, pointer
