"""RFC 6901 pointers: made and read back, resolved (no leading zeros), ordered, shown."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator import pointers
from orchestrator.errors import UsageError
from orchestrator.pointers import (
    MISSING,
    ancestors,
    is_array_index,
    is_index,
    is_present,
    nearest,
    order,
    pointer_of,
    pointer_order,
    pointer_text,
    resolve,
    strings,
    tokens_of,
    value_at,
    within,
)

DOCUMENT: dict[str, Any] = {
    "rc": ["a", "b", "c"],
    "mount": {"/data": {"path": "/dev/ld0a"}},
    "a~b": {"": 0},
}


@given(st.lists(st.text(max_size=8), max_size=6))
def test_tokens_of_reads_back_what_pointer_of_writes(tokens: list[str]) -> None:
    assert tokens_of(pointer_of(tokens)) == tuple(tokens)


def test_pointer_of_escapes_tilde_before_slash() -> None:
    assert pointer_of([]) == ""
    assert pointer_of(["mount", "/data"]) == "/mount/~1data"
    assert pointer_of(["~1"]) == "/~01"
    assert pointer_of([""]) == "/"


def test_tokens_of_refuses_what_is_not_a_pointer() -> None:
    with pytest.raises(UsageError) as caught:
        tokens_of("net")
    assert caught.value.message.startswith("'net' is not a JSON pointer: ")
    assert tokens_of("/~01") == ("~1",)


@pytest.mark.parametrize(
    ("token", "index", "array_index"),
    [
        ("0", True, True),
        ("7", True, True),
        ("10", True, True),
        ("01", True, False),
        ("00", True, False),
        ("", False, False),
        ("-1", False, False),
        ("²", False, False),
        ("1a", False, False),
    ],
)
def test_which_tokens_index_an_array(token: str, index: bool, array_index: bool) -> None:
    assert is_index(token) is index
    assert is_array_index(token) is array_index


def test_a_leading_zero_never_resolves_to_an_element() -> None:
    assert resolve(DOCUMENT, ("rc", "1")) == "b"
    assert resolve(DOCUMENT, ("rc", "01")) is MISSING
    assert resolve(DOCUMENT, ("rc", "00")) is MISSING
    assert resolve(DOCUMENT, ("rc", "0")) == "a"
    assert not is_present(DOCUMENT, "/rc/01")
    with pytest.raises(KeyError):
        value_at(DOCUMENT, ("rc", "01"))


def test_resolve_answers_missing_for_every_place_the_document_lacks() -> None:
    assert resolve(DOCUMENT, ()) is DOCUMENT
    assert resolve(DOCUMENT, ("mount", "/data", "path")) == "/dev/ld0a"
    assert resolve(DOCUMENT, ("a~b", "")) == 0
    for tokens in (("nope",), ("rc", "3"), ("rc", "-"), ("rc", "0", "x"), ("a~b", "", "x")):
        assert resolve(DOCUMENT, tokens) is MISSING
    assert repr(MISSING) == "MISSING"


def test_is_present_and_value_at_read_pointers_and_tokens() -> None:
    assert is_present(DOCUMENT, "/mount/~1data")
    assert is_present(DOCUMENT, "/a~0b/")
    assert not is_present(DOCUMENT, "/mount/data")
    assert value_at(DOCUMENT, ("rc", "2")) == "c"
    with pytest.raises(KeyError, match="/mount/~1data/size"):
        value_at(DOCUMENT, ("mount", "/data", "size"))


def test_ancestors_go_up_to_the_whole_document() -> None:
    assert list(ancestors("/mount/~1data/path")) == [
        "/mount/~1data/path",
        "/mount/~1data",
        "/mount",
        "",
    ]
    assert list(ancestors("")) == [""]
    assert list(ancestors("/")) == ["/", ""]


def test_nearest_answers_for_the_deepest_known_ancestor() -> None:
    known = {"/mount": 3, "": 1}
    assert nearest("/mount/~1data/path", known.get) == 3
    assert nearest("/net", known.get) == 1
    assert nearest("/net", {}.get) is None
    # An answer of 0 is an answer: only None means unknown.
    assert nearest("/a/b", {"/a": 0, "": 1}.get) == 0


def test_within_is_at_or_below() -> None:
    assert within(("net", "interfaces"), ("net",))
    assert within(("net",), ("net",))
    assert within(("net",), ())
    assert not within(("net",), ("net", "interfaces"))
    assert not within(("netbsd",), ("net",))
    assert within(["a", "b"], ("a",))


def test_order_sorts_indexes_as_numbers_and_keys_as_text() -> None:
    paths = [("rc", "10"), ("rc", "2"), ("env", "B"), ("env", "A"), ("rc",)]
    assert sorted(paths, key=order) == [
        ("env", "A"),
        ("env", "B"),
        ("rc",),
        ("rc", "2"),
        ("rc", "10"),
    ]
    # An index sorts before a key at the same depth.
    assert order(("0",)) < order(("a",))


def test_pointer_order_reads_escaped_pointers() -> None:
    assert sorted(["/rc/10", "/rc/2", "/mount/~1b", "/mount/~1a"], key=pointer_order) == [
        "/mount/~1a",
        "/mount/~1b",
        "/rc/2",
        "/rc/10",
    ]
    assert pointer_order("") == ()
    assert pointer_order("/a~1b/~0") == order(("a/b", "~"))


def test_strings_lists_every_string_and_key_with_its_place() -> None:
    found = list(strings({"env": {"A": "x"}, "rc": [{"bin": "b"}, 3], "n": None}))
    assert found == [
        ("/env", "env"),
        ("/env/A", "A"),
        ("/env/A", "x"),
        ("/rc", "rc"),
        ("/rc/0/bin", "bin"),
        ("/rc/0/bin", "b"),
        ("/n", "n"),
    ]
    assert list(strings("top")) == [("", "top")]
    assert list(strings(5)) == []


def test_pointer_text_names_the_whole_config_and_shortens_long_pointers() -> None:
    assert pointer_text("") == "(the whole config)"
    assert pointer_text("/") == "/"
    assert pointer_text("/net") == "/net"
    long = "/" + "x" * 500
    shown = pointer_text(long)
    assert shown == f"{long[: pointers.SHOWN - 20]}… (501 characters)"
    assert pointer_text("/" + "x" * (pointers.SHOWN - 1)) == "/" + "x" * (pointers.SHOWN - 1)
