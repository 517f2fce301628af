"""The runtime config in each rumprun's dialect (``rumprun.runtime``): what ``convert``
gives or refuses, the exact text each rumprun reads, its size in bytes, and where each
top-level part of it came from."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import ConflictError, exit_code_of
from orchestrator.rumprun import DEFAULT_DIALECT, DIALECTS
from orchestrator.rumprun.runtime import Runtime, convert, text

RESIDUAL: dict[str, Any] = {
    "rc": [{"bin": "www"}],
    "env": {"A": "é", "B": "2"},
    "mount": {"/kern": {"source": "kernfs"}},
}


def converted(residual: dict[str, Any], dialect: str, binaries: tuple[str, ...] = ()) -> Runtime:
    runtime = convert(residual, dialect, binaries)
    assert isinstance(runtime, Runtime), runtime
    return runtime


def test_released_rumprun_is_the_default_of_the_two_dialects() -> None:
    assert DIALECTS == ("master", "spec")
    assert DEFAULT_DIALECT == "master"


def test_master_keeps_repeating_keys_as_pairs_each_from_its_part() -> None:
    runtime = converted(RESIDUAL, "master")
    assert runtime.dialect == "master"
    assert [key for key, _ in runtime.config] == ["rc_TESTING", "env", "env", "blk"]
    assert runtime.sources == ("/rc", "/env/A", "/env/B", "/mount/~1kern")
    assert runtime.origins() == [
        ("/0", "/rc"),
        ("/1", "/env/A"),
        ("/2", "/env/B"),
        ("/3", "/mount/~1kern"),
    ]
    assert runtime.as_json() == {"dialect": "master", "config": runtime.config}
    # One object whose key repeats, compact, its UTF-8 as it is, no final newline.
    said = runtime.text()
    assert said.startswith('{"rc_TESTING":[{"bin":"www","argv":[]}],"env":"A=é","env":"B=2",')
    assert not said.endswith("\n")
    # Size counts bytes: the é is two of them.
    assert runtime.size() == len(said) + 1 == len(said.encode("utf-8"))


def test_spec_keeps_the_object_escaped_to_ascii_each_key_from_itself() -> None:
    runtime = converted(RESIDUAL, "spec")
    assert runtime.config == RESIDUAL
    assert runtime.sources == ()
    assert runtime.origins() == [("/rc", "/rc"), ("/env", "/env"), ("/mount", "/mount")]
    said = runtime.text()
    assert said == (
        '{"rc":[{"bin":"www"}],"env":{"A":"\\u00e9","B":"2"},"mount":{"/kern":{"source":"kernfs"}}}'
    )
    assert runtime.size() == len(said)  # ASCII: one byte a character


def test_the_text_of_a_plans_runtime_member_is_the_runtimes_own() -> None:
    for dialect in DIALECTS:
        runtime = converted(RESIDUAL, dialect)
        # Through JSON, as a plan file gives it back.
        member = json.loads(json.dumps(runtime.as_json()))
        assert text(member) == runtime.text()


def test_the_baked_binaries_reach_master() -> None:
    # Without rc, master runs the baked binaries by their baked names, from no part.
    runtime = converted({"env": {"A": "1"}}, "master", ("out/www", "tools/x"))
    assert runtime.config[0] == [
        "rc_TESTING",
        [{"bin": "www", "argv": []}, {"bin": "x", "argv": []}],
    ]
    assert runtime.origins()[0] == ("/0", "")
    # Without them master cannot say the same config.
    refused = convert({"env": {"A": "1"}}, "master")
    assert isinstance(refused, list)
    assert [p.pointer for p in refused] == [""]


def test_what_master_cannot_say_is_every_conflict_found() -> None:
    one = convert({"rc": [{"bin": "a"}], "x": 1}, "master")
    assert isinstance(one, list)
    assert [(type(p), p.pointer) for p in one] == [(ConflictError, "/x")]
    several = convert({"rc": [{"bin": "a", "workdir": "/w"}], "x": 1}, "master")
    assert isinstance(several, list)
    assert sorted(p.pointer for p in several) == ["/rc/0/workdir", "/x"]
    assert {exit_code_of(p) for p in several} == {3}


def test_what_spec_cannot_read_is_every_conflict_found() -> None:
    refused = convert({"env": {"A": "\U0001f600", "B": "ok", "C": "\U0001f600"}}, "spec")
    assert isinstance(refused, list)
    assert [(p.pointer, exit_code_of(p)) for p in refused] == [("/env/A", 3), ("/env/C", 3)]


values = st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)))


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True), values, max_size=4))
def test_every_dialect_says_the_config_or_refuses_it_at_its_parts(env: dict[str, str]) -> None:
    residual = {"rc": [{"bin": "www"}], "env": env}
    for dialect in DIALECTS:
        runtime = convert(residual, dialect)
        if isinstance(runtime, list):
            # Only master refuses here: a string it would take byte for byte.
            assert dialect == "master"
            assert runtime and {p.pointer for p in runtime} <= {f"/env/{n}" for n in env}
            continue
        said = runtime.text()
        assert runtime.size() == len(said.encode("utf-8"))
        assert text(runtime.as_json()) == said
        if dialect == "spec":
            assert said.isascii() and json.loads(said) == residual
        else:
            assert [v for k, v in runtime.config if k == "env"] == [
                f"{n}={v}" for n, v in env.items()
            ]
