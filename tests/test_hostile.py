"""Hostile config input and hostile delegate answers, through ``bakeplan plan``.

Every case ends in a documented exit code (docs/RELIABILITY.md) and a message naming
the place, never a traceback.  Hypothesis then throws arbitrary configs and arbitrary
answers (replayed by a real delegate from a file) at the command and checks only that.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from helpers_cli import SPEC, run_main
from helpers_protocol import write_delegate, write_identity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.core.config import MAX_CONFIG_BYTES

pytestmark = pytest.mark.usefixtures("no_leftovers")

HYBRID = REPO / "examples" / "hybrid"
DOCUMENTED = {0, 1, 2, 3}
DEEP = 100_000


def identity_registry(tmp_path: Path, *claims: str) -> Path:
    """A registry giving each claim to a delegate of its own: /net to one that consumes
    its fragment (what rumprun would refuse never reaches it), the rest to identity."""
    write_identity(tmp_path)
    write_delegate(tmp_path, "consume", 'cat >/dev/null\necho \'{"protocol":"bakeplan/1"}\'\n')
    path = tmp_path / "registry.json"
    entries = [
        {
            "name": f"id{i}",
            "command": ["./consume" if claim.startswith("/net") else "./identity"],
            "claims": [claim],
        }
        for i, claim in enumerate(claims)
    ]
    path.write_text(json.dumps({"delegates": entries}), encoding="utf-8")
    path.chmod(0o644)
    return path


def _mount(name: str) -> bytes:
    return json.dumps({"mount": {name: {"source": "blk", "path": "/dev/ld0a"}}}).encode()


# (config bytes, claims given to the identity delegate, exit code, what stderr says)
CASES: dict[str, tuple[bytes, tuple[str, ...], int, str]] = {
    # nesting
    "deep-array": (b"[" * DEEP + b"]" * DEEP, (), 2, "1:513: nesting deeper than 512 levels"),
    "deep-object": (
        b'{"env":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",
        (),
        2,
        "nesting deeper than 512 levels",
    ),
    "deep-in-claimed-part": (
        b'{"net":' + b"[" * DEEP + b"]" * DEEP + b"}",
        ("/net",),
        2,
        "nesting deeper than 512 levels",
    ),
    "deep-unclosed": (b'{"net":' + b"[" * DEEP, (), 2, "nesting deeper than 512 levels"),
    # numbers
    "integer-5000-digits": (
        b'{"env":{"A":' + b"9" * 5000 + b"}}",
        (),
        2,
        "1:13: integer with more than 4300 digits",
    ),
    "integer-1000-digits": (
        b'{"env":{"A":' + b"9" * 1000 + b"}}",
        (),
        2,
        "at /env/A: must be a string, not an integer",
    ),
    "integer-in-claimed-part": (b'{"net":{"n":' + b"9" * 4000 + b"}}", ("/net",), 0, ""),
    "float-overflow": (b'{"env":{"A":1e400}}', (), 2, "1:13: number too large"),
    "nan": (b'{"env":{"A":NaN}}', (), 2, "1:13: NaN is not JSON"),
    "infinity": (b'{"env":{"A":Infinity}}', (), 2, "Infinity is not JSON"),
    "minus-infinity": (b'{"env":{"A":-Infinity}}', (), 2, "1:13:"),
    # strings
    "string-3-MB": (b'{"env":{"A":"' + b"x" * 3_000_000 + b'"}}', (), 0, "rumprun on hw halts"),
    "string-1e5-escapes": (b'{"env":{"A":"' + b"\\u00e9" * 100_000 + b'"}}', (), 0, ""),
    "key-100-kB": (b'{"env":{"' + b"K" * 100_000 + b'":"v"}}', (), 0, ""),
    "lone-surrogate": (b'{"env":{"A":"\\ud800"}}', (), 2, "1:14: unpaired surrogate escape"),
    "control-char": (b'{"env":{"A":"a\tb"}}', (), 2, "1:15: control character U+0009"),
    # encodings
    "invalid-utf8": (b'{"env":{"A":"\xff"}}', (), 2, "1:14: invalid UTF-8 byte 0xff"),
    "overlong-utf8": (b'{"env":{"A":"\xc0\xaf"}}', (), 2, "invalid UTF-8 byte 0xc0"),
    "utf8-surrogate": (b'{"env":{"A":"\xed\xa0\x80"}}', (), 2, "invalid UTF-8 byte 0xed"),
    "truncated-utf8": (b'{"env":{"A":"\xe2\x82', (), 2, "invalid UTF-8 byte 0xe2"),
    "invalid-utf8-in-claimed-part": (b'{"net":{"A":"\xfe"}}', ("/net",), 2, "invalid UTF-8"),
    "utf8-bom": (b"\xef\xbb\xbf{}", (), 2, "1:1: byte-order mark"),
    "utf16-bom": ("{}".encode("utf-16"), (), 2, "UTF-16 byte-order mark"),
    "utf16-no-bom": (
        "{}".encode("utf-16-le"),
        (),
        2,
        "1:2: expected a key in double quotes, found U+0000",
    ),
    # NUL bytes
    "nul-in-string": (b'{"env":{"A":"\x00"}}', (), 2, "1:14: control character U+0000"),
    "nul-outside-string": (b'{"env":{}}\x00', (), 2, "1:11:"),
    "escaped-nul": (b'{"env":{"A":"\\u0000"}}', (), 0, ""),
    # duplicate keys
    "duplicate-top": (b'{"env":{},"env":{}}', (), 2, "1:11: duplicate key 'env' (first at 1:2)"),
    "duplicate-deep": (
        b'{"mount":{"/data":{"source":"blk","path":"/dev/ld0a","path":"x"}}}',
        (),
        2,
        "1:54: duplicate key 'path' (first at 1:35)",
    ),
    "duplicate-in-claimed-part": (
        b'{"net":{"a":{"b":[{"c":1,"c":2}]}}}',
        ("/net",),
        2,
        "duplicate key 'c'",
    ),
    "duplicate-by-escape": (b'{"env":{"a":"1","\\u0061":"2"}}', (), 2, "duplicate key 'a'"),
    # pointers: / and ~ escaped (RFC 6901) in messages, plans and delegations
    "slash-key": (b'{"a/b":1}', (), 2, "at /a~1b: unknown key 'a/b'"),
    "tilde-key": (b'{"a~b":1}', (), 2, "at /a~0b: unknown key 'a~b'"),
    "tilde-one-key": (b'{"~1":1}', (), 2, "at /~01: unknown key '~1'"),
    "mount-error-escaped": (
        b'{"mount":{"/a/b~c":{"source":"nope"}}}',
        (),
        2,
        "at /mount/~1a~1b~0c/source: must be one of",
    ),
    "mount-claimed-escaped": (_mount("/da~ta"), ("/mount/~1da~0ta",), 0, ""),
    # empty keys
    "empty-key-top": (b'{"":1}', (), 2, "at /: unknown key ''"),
    "empty-env-name": (b'{"env":{"":"x"}}', (), 2, "at /env/: an environment variable name"),
    "empty-key-claimed": (b'{"net":{"":{"":[]}}}', ("/net",), 0, ""),
    # roots that are not objects
    "root-array": (b"[]", (), 2, "1:1: the config must be a JSON object, not an array"),
    "root-null": (b"null", (), 2, "not null"),
    "root-number": (b"42", (), 2, "not an integer"),
    "root-string": (b'"{}"', (), 2, "not a string"),
    "root-true": (b"true", (), 2, "not a boolean"),
    "empty-file": (b"", (), 2, "1:1: empty input"),
    "whitespace-only": (b" \n\t ", (), 2, "empty input"),
    # not JSON
    "trailing-data": (b"{} {}", (), 2, "1:4: extra data after the JSON value"),
    "trailing-comma": (b'{"env":{"A":"b",}}', (), 2, "1:"),
    "comment": (b'// rumprun\n{"env":{}}', (), 2, "1:1:"),
    "single-quotes": (b"{'env':{}}", (), 2, "1:2:"),
    "legacy-launcher": (b'{,"cmdline":"x",}', (), 2, "bakeplan upgrade"),
    "crlf-and-tabs": (b'{\r\n\t"env": {\r\n\t\t"A": "b"\r\n\t}\r\n}\r\n', (), 0, ""),
    "many-keys": (
        json.dumps({"env": {f"K{i}": "v" for i in range(20_000)}}).encode(),
        (),
        0,
        "",
    ),
}


@pytest.mark.parametrize(("name"), sorted(CASES))
def test_hostile_config(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    data, claims, code, says = CASES[name]
    config = tmp_path / "config.json"
    config.write_bytes(data)
    registry = ("-r", str(identity_registry(tmp_path, *claims))) if claims else ()
    got, out, err = run_main(capsys, "plan", *SPEC, str(config), *registry)
    assert got == code, err
    assert says in err
    if code:
        assert out == ""
        assert str(config) in err or " at /" in err
    else:
        json.loads(out)


def test_pointers_are_escaped_in_plan_and_delegations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_bytes(_mount("/da~ta"))
    reg = identity_registry(tmp_path, "/mount/~1da~0ta")
    code, out, err = run_main(capsys, "plan", *SPEC, str(config), "-r", str(reg))
    assert code == 0, err
    plan = json.loads(out)
    assert [(d["delegate"], d["pointer"]) for d in plan["delegations"]] == [
        ("id0", "/mount/~1da~0ta"),
        ("rumprun", ""),
    ]
    assert [(d["name"], d["pointer"]) for d in plan["devices"]] == [("ld0", "/mount/~1da~0ta")]
    assert plan["runtime"]["config"]["mount"] == {"/da~ta": {"source": "blk", "path": "/dev/ld0a"}}


def test_delegate_override_takes_an_escaped_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = identity_registry(tmp_path, "/mount/~1data", "/mount/~1data")
    code, out, err = run_main(
        capsys,
        "plan",
        *SPEC,
        str(HYBRID / "config.json"),
        "-r",
        str(reg),
        "--delegate",
        "/mount/~1data=id1",
    )
    assert code == 0, err
    assert ("id1", "/mount/~1data") in [
        (d["delegate"], d["pointer"]) for d in json.loads(out)["delegations"]
    ]


# -- size --------------------------------------------------------------------------------------


def test_a_100_MB_file_is_refused_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    with config.open("wb") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: nothing to read, only its size
    code, out, err = run_main(capsys, "plan", *SPEC, str(config))
    assert (code, out) == (2, "")
    assert f"{config}: the config is 104857600 bytes, more than the 4 MiB bakeplan reads" in err


@pytest.mark.parametrize("source", ["/dev/zero", "stdin"])
def test_an_endless_config_is_refused_at_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "stdin":
        endless = io.TextIOWrapper(io.BufferedReader(io.FileIO("/dev/zero")))
        monkeypatch.setattr(sys, "stdin", endless)
    code, out, err = run_main(capsys, "plan", *SPEC, "/dev/zero" if source != "stdin" else "-")
    assert (code, out) == (2, "")
    assert "the config is more than the 4 MiB bakeplan reads" in err


@pytest.mark.parametrize(("extra", "code"), [(0, 0), (1, 2)])
def test_the_size_limit_is_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: int, code: int
) -> None:
    body = b'{"env":{"A":"b"}}'
    config = tmp_path / "config.json"
    config.write_bytes(body + b" " * (MAX_CONFIG_BYTES - len(body) + extra))
    assert run_main(capsys, "plan", *SPEC, str(config))[0] == code


def test_a_directory_or_missing_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, says in ((tmp_path, "Is a directory"), (tmp_path / "nope", "No such file")):
        code, _, err = run_main(capsys, "plan", *SPEC, str(path))
        assert code == 2
        assert f"{path}: cannot read the config: {says}" in err


# -- fuzzing -----------------------------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = st.sampled_from(["rc", "env", "blk", "mount", "net", "netbsd", "", "a/b", "~"])
_CONFIGS = st.dictionaries(_KEYS, _VALUES, max_size=6)


def _mutated(draw: st.DrawFn) -> bytes:
    text = json.dumps(draw(_CONFIGS)).encode()
    if not text or not draw(st.booleans()):
        return text
    at = draw(st.integers(min_value=0, max_value=len(text) - 1))
    return text[:at] + draw(st.binary(min_size=1, max_size=3)) + text[at + 1 :]


_CONFIG_BYTES = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda v: json.dumps(v).encode(), _VALUES),
    st.composite(_mutated)(),
)

_FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_FUZZ
@given(data=_CONFIG_BYTES)
def test_fuzzed_configs_end_in_a_documented_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    config = tmp_path / "fuzz.json"
    config.write_bytes(data)
    code, out, err = run_main(capsys, "plan", *SPEC, str(config))
    assert code in DOCUMENTED, err
    if code:
        assert out == "" and err.startswith("bakeplan: ")
    else:
        json.loads(out)


_ANSWER_KEYS = st.sampled_from(
    ["protocol", "replace", "devices", "components", "toolchain", "warnings", "error", "extra"]
)
_ANSWER = st.dictionaries(_ANSWER_KEYS, _VALUES, max_size=5).map(
    lambda a: {"protocol": "bakeplan/1", **a}
)
_DEVICE = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["vioif0", "ld0", "x", "../e", ""]),
        "kind": st.sampled_from(["net", "block", "X"]),
    },
    optional={"pointer": st.sampled_from(["/net", "/env", "", "/net/interfaces", "bad"])},
)
_WELL_FORMED = st.fixed_dictionaries(
    {"protocol": st.just("bakeplan/1")},
    optional={
        "replace": _VALUES,
        "devices": st.lists(_DEVICE, max_size=3),
        "components": st.fixed_dictionaries(
            {},
            optional={
                "add": st.lists(
                    st.sampled_from(["rumpdev_bpf", "rumpnet_netinet", "x-y"]), max_size=2
                ),
                "remove": st.lists(
                    st.sampled_from(["rumpnet_netinet", "rumpfs_ffs", "rumpdev_disk"]), max_size=2
                ),
            },
        ),
        "warnings": st.lists(
            st.fixed_dictionaries(
                {"message": st.text(max_size=10)},
                optional={"pointer": st.sampled_from(["/net", "/env", "", "/net/x"])},
            ),
            max_size=2,
        ),
        "error": st.fixed_dictionaries(
            {"message": st.text(max_size=10)},
            optional={"pointer": st.sampled_from(["/net/x", "/env", "", "nope"])},
        ),
    },
)
_ANSWER_BYTES = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda v: json.dumps(v).encode(), _ANSWER),
    st.builds(lambda v: json.dumps(v).encode(), _WELL_FORMED),
    st.builds(lambda v: json.dumps(v).encode() * 2, _WELL_FORMED),
)


@settings(_FUZZ, max_examples=60)
@given(answer=_ANSWER_BYTES, status=st.sampled_from([0, 0, 1, 2]))
def test_fuzzed_answers_end_in_a_documented_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: bytes, status: int
) -> None:
    # A real delegate replays the answer hypothesis chose, from a file, with its status.
    (tmp_path / "answer.bin").write_bytes(answer)
    write_delegate(
        tmp_path, "replay", f'cat >/dev/null\ncat "{tmp_path}/answer.bin"\nexit {status}\n'
    )
    reg = tmp_path / "registry.json"
    reg.write_text(
        json.dumps({"delegates": [{"name": "replay", "command": ["./replay"], "claims": ["/net"]}]})
    )
    reg.chmod(0o644)
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert code in DOCUMENTED, err
    if status:
        assert code == 1
    if code:
        assert out == "" and err.startswith("bakeplan: ")
    else:
        json.loads(out)


def test_fuzzing_as_a_real_process_never_prints_a_traceback(tmp_path: Path) -> None:
    # What main(argv) cannot show: the interpreter's own last words.  A handful of the
    # nastiest inputs through ``python -m orchestrator`` itself.
    for data in (b"[" * DEEP, b"\xff", b'{"env":{"A":' + b"9" * 5000 + b"}}", b"{\x00}"):
        config = tmp_path / "c.json"
        config.write_bytes(data)
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "plan", *SPEC, str(config)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert b"Traceback" not in done.stderr
        assert done.stdout == b""
