"""The legacy launcher's text: ``bakeplan upgrade``'s reader and its report (an explicit
stack, not recursion, with the same input bounds as a config: 4 MiB, 512 levels; every
problem of a file in one run, by line; a config already in the specification dialect
given back as it is), and the habits the loader recognises the dialect by."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import run_main
from hypothesis import given
from hypothesis import strategies as st
from test_hostile import _VALUES as JSON_VALUES  # the same JSON values the fuzzers use

from orchestrator.core import config
from orchestrator.core.jsontext import line_col
from orchestrator.errors import InputError
from orchestrator.rumprun import legacytext
from orchestrator.rumprun.legacytext import read_legacy, signs


def bakeplan(*argv: str, stdin: Any = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_deeply_nested_input_is_refused_at_the_bound_never_a_recursion_error(
    tmp_path: Path,
) -> None:
    legacy = tmp_path / "deep.txt"
    legacy.write_text('{"cmdline": "www",\n"env": ' + "[" * 100_000 + "]" * 100_000 + "}")
    done = bakeplan("upgrade", str(legacy))
    assert done.returncode == 2, done.stderr
    assert f"{legacy}:2: nesting deeper than 512 levels" in done.stderr
    assert "RecursionError" not in done.stderr and "internal error" not in done.stderr
    assert done.stdout == ""


def test_nesting_up_to_the_bound_is_read() -> None:
    inner: Any = "x"
    for _ in range(511):
        inner = [inner]
    top, _ = read_legacy(json.dumps({"a": inner}), "t")
    assert top.plain() == {"a": inner}


@pytest.mark.parametrize("where", ["file", "stdin"])
def test_input_beyond_a_configs_size_is_refused_before_it_is_read(
    tmp_path: Path, where: str
) -> None:
    big = tmp_path / "big.txt"
    big.write_text('{"cmdline": "' + "x" * (5 << 20) + '"}')
    if where == "file":
        done = bakeplan("upgrade", str(big))
    else:
        with Path("/dev/zero").open("rb") as endless:
            done = bakeplan("upgrade", "-", stdin=endless)
    assert done.returncode == 2, done.stderr
    assert "more than the 4 MiB bakeplan reads" in done.stderr


LEGACY = """{,
"cmdline": 5,
"env": "NOEQUALS",
"rc_TESTING": [{"bin": "a", "argv": [], "runmode": "?"}],
"hostname": 7,
"zz": 1,
}
"""


def test_every_problem_of_a_file_is_reported_in_one_run_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = tmp_path / "legacy.txt"
    legacy.write_text(LEGACY)
    out = tmp_path / "config.json"
    code, stdout, err = run_main(capsys, "upgrade", str(legacy), "-o", str(out))
    assert (code, stdout) == (2, "")
    lines = [line for line in err.splitlines() if line.startswith("bakeplan: invalid input:")]
    assert [line.split(":")[3] for line in lines] == ["2", "3", "4", "5", "6"]
    assert "cmdline must be a string" in lines[0]
    assert 'is not "NAME=VALUE"' in lines[1]
    assert "invalid runmode '?'" in lines[2]
    assert "hostname must be a string" in lines[3]
    assert "unknown key 'zz'" in lines[4]
    assert not out.exists()


@pytest.mark.parametrize(
    "config",
    [REPO / "examples" / "hybrid" / "config.json", REPO / "examples" / "cni" / "config.json"],
    ids=["hybrid", "cni"],
)
def test_a_config_in_the_specification_dialect_has_nothing_to_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    code, stdout, err = run_main(capsys, "upgrade", str(config))
    assert code == 0, err
    assert err == "upgrade: already in the specification dialect: nothing to upgrade\n"
    assert stdout == config.read_text()  # copied as it is, not re-indented
    assert "legacy" not in err
    out = tmp_path / "out.json"
    assert run_main(capsys, "upgrade", str(config), "-o", str(out))[0] == 0
    assert out.read_bytes() == config.read_bytes()


@given(document=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5))
def test_the_reader_reads_strict_json_as_json_does(document: dict[str, Any]) -> None:
    for text in (json.dumps(document), json.dumps(document, indent=1)):
        top, _ = read_legacy(text, "t")
        assert top.plain() == json.loads(text)


def test_an_integer_python_will_not_convert_is_a_problem_at_its_line() -> None:
    text = '{,\n"cmdline": "app",\n"env": ' + "9" * 5000 + ",\n}"
    with pytest.raises(InputError) as caught:
        read_legacy(text, "t")
    assert (caught.value.line, caught.value.message) == (3, "integer with more than 4300 digits")


def test_the_launchers_habits_are_found_where_they_are() -> None:
    text = '{, "cmdline": "a",, "env": "A=1",\n"x": [1,,2],}'
    found = signs(text)
    assert found is not None
    # The opener's run and the doubled ones; the single commas (after "A=1", and the
    # trailing one) are only said to be there.
    assert found.commas == ((0, (1,)), (None, (17, 18)), (None, (41, 42)))
    assert found.single
    assert found.top_keys == (("cmdline", 3, 14), ("env", 20, 27), ("x", 34, 39))
    assert found.line_col(36) == line_col(text, 36) == (2, 3)
    # The reader tolerates exactly those habits.
    assert read_legacy(text, "t")[0].plain() == {"cmdline": "a", "env": "A=1", "x": [1, 2]}


def test_habits_are_read_up_to_where_the_structure_ends() -> None:
    # The comma run right after the top-level value is its last; nothing after it counts.
    found = signs('{"a": 1},, {"hostname": "x",,}')
    assert found is not None
    assert (found.commas, found.single) == (((None, (8, 9)),), False)
    assert found.top_keys == (("a", 1, 6),)
    # A quote that starts no string ends the structure (strings hold no raw newline).
    found = signs('{"rc_TESTING": [],\n"bad\n": 1, "hostname": "x"}')
    assert found is not None
    assert [key for key, _, _ in found.top_keys] == ["rc_TESTING"]
    assert signs("no object here") is None


def test_keys_are_undoubled_with_the_text_and_nested_keys_are_not_top_keys() -> None:
    found = signs('{,, "a,,b": {"hostname": 1},, "c": "d",,}')
    assert found is not None
    assert [key for key, _, _ in found.top_keys] == ["a,b", "c"]
    assert found.commas[0][0] == 0  # the opener


@given(document=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5))
def test_strict_json_shows_its_own_top_keys_and_no_opener(document: dict[str, Any]) -> None:
    text = json.dumps(document, indent=1)
    found = signs(text)
    assert found is not None
    assert [key for key, _, _ in found.top_keys] == list(document)
    for key, pos, value in found.top_keys:
        assert json.loads(text[pos : text.index(":", pos + len(json.dumps(key)))]) == key
        assert text[value:].startswith(json.dumps(document[key])[:1])
    assert found.commas == ()
    assert found.single == separated(document)


def separated(value: Any) -> bool:
    """Whether JSON text of ``value`` has a comma between two values anywhere."""
    if isinstance(value, dict):
        return len(value) > 1 or any(separated(v) for v in value.values())
    if isinstance(value, list):
        return len(value) > 1 or any(separated(v) for v in value)
    return False


def test_the_loader_finds_the_signs_without_reading_any_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large text that is not JSON is refused at the speed of one search over its
    structure: the loader never builds the legacy values (which took seconds for a
    megabyte of array elements)."""

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the loader read the legacy values")

    monkeypatch.setattr(legacytext.LegacyReader, "document", never)
    monkeypatch.setattr(legacytext.LegacyReader, "value", never)
    broken = tmp_path / "broken.json"
    broken.write_text('{"env": {"A": [' + "0," * 100_000 + "]}}")
    with pytest.raises(InputError) as caught:
        config.load(str(broken))
    assert "trailing comma" in caught.value.message
    legacy = tmp_path / "legacy.json"
    legacy.write_text('{,"hostname": "x", "env": [' + "0," * 100_000 + "0]}")
    with pytest.raises(InputError) as caught:
        config.load(str(legacy))
    assert "legacy" in caught.value.message


@st.composite
def launcher_texts(draw: st.DrawFn) -> str:
    """A config as the launcher wrote it: JSON text with its habits put in (an opener,
    doubled or trailing commas, a repeated key)."""
    keys = st.sampled_from(["env", "blk", "cmdline", "x,y", 'a\\"b'])
    document = draw(st.dictionaries(keys, JSON_VALUES, max_size=4))
    members = [json.dumps(k) + ": " + json.dumps(v) for k, v in document.items()]
    if members and draw(st.booleans()):
        members.append(members[0])  # a repeated key
    separator = draw(st.sampled_from([", ", ",, ", ",\n"]))
    opener = draw(st.sampled_from(["{", "{,", "{ ,, "]))
    trailing = draw(st.sampled_from(["", ",", ",,"]))
    return opener + separator.join(members) + trailing + "}"


@given(text=launcher_texts())
def test_the_habits_name_the_top_keys_the_reader_reads(text: str) -> None:
    top, _ = read_legacy(text, "t")
    found = signs(text)
    assert found is not None
    assert top.members is not None
    assert [(key, found.line_col(pos)[0]) for key, pos, _ in found.top_keys] == [
        (key, line) for key, line, _ in top.members
    ]
    opened = text[1:].lstrip(" \n").startswith(",")
    assert any(opener == 0 for opener, _ in found.commas) == opened
