"""Isolation, trust, answers kept in their subtree, and concurrent runs, through the CLI.

What a delegate sees (environment, working directory, session, stdin, argv) is recorded
by the delegate itself into a file and checked here; the rest is what ``bakeplan plan``
prints.  Every test asks for ``no_leftovers``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import BAKEPLAN, SPEC, run_main
from helpers_protocol import write_delegate, write_identity, write_py_delegate

pytestmark = pytest.mark.usefixtures("no_leftovers")

HYBRID = REPO / "examples" / "hybrid"


def registry_file(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"delegates": list(entries)}), encoding="utf-8")
    path.chmod(0o644)
    return path


def config_file(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# A delegate that writes down everything it can see of its situation, then answers with
# its fragment unchanged.
_SPY = """
import errno, json, os, sys
raw = sys.stdin.buffer.read()
try:
    os.open("/dev/tty", os.O_RDWR)
    tty = "opened"
except OSError as exc:
    tty = errno.errorcode[exc.errno]
seen = {
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "cwd_mode": oct(os.stat(".").st_mode & 0o777),
    "argv": sys.argv[1:],
    "stdin": raw.decode("utf-8"),
    "sid_is_pid": os.getsid(0) == os.getpid(),
    "pgid_is_pid": os.getpgid(0) == os.getpid(),
    "tty": tty,
}
name = os.environ["BAKEPLAN_DELEGATE"]
with open(os.path.join(SPIES, name + ".json"), "w") as f:
    json.dump(seen, f)
request = json.loads(raw)
print(json.dumps({"protocol": "bakeplan/1", "replace": request["fragment"]}))
"""


def spy(tmp_path: Path) -> Path:
    spies = tmp_path / "spies"
    spies.mkdir()
    write_py_delegate(tmp_path, "spy", f"SPIES = {str(spies)!r}\n" + _SPY)
    return spies


def test_delegate_sees_a_scrubbed_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spies = spy(tmp_path)
    monkeypatch.setenv("SECRET", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter3")
    monkeypatch.setenv("HOME", "/home/someone")
    monkeypatch.setenv("BAKEPLAN_OWN", "not for delegates")
    monkeypatch.setenv("OPAMROOT", "/opt/opam")
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")
    reg = registry_file(
        tmp_path,
        {"name": "net", "command": ["./spy"], "claims": ["/net"], "env": ["OPAMROOT", "ABSENT"]},
    )
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert code == 0, err
    env = json.loads((spies / "net.json").read_text())["env"]
    allowed = {"PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "OPAMROOT"}
    extra = {k for k in env if k not in allowed and not k.startswith("LC_")}
    assert extra == {"BAKEPLAN_PROTOCOL", "BAKEPLAN_DELEGATE", "BAKEPLAN_POINTER"}
    assert "hunter2" not in json.dumps(env)
    assert (env["OPAMROOT"], env["LC_ALL"], env["TZ"]) == ("/opt/opam", "C.UTF-8", "UTC")
    assert env["PATH"] == os.environ["PATH"]
    assert (env["BAKEPLAN_PROTOCOL"], env["BAKEPLAN_DELEGATE"]) == ("bakeplan/1", "net")
    assert env["BAKEPLAN_POINTER"] == "/net"


def test_private_directory_session_stdin_and_escaped_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_leftovers: Path
) -> None:
    spies = spy(tmp_path)
    reg = registry_file(
        tmp_path,
        {"name": "data", "command": ["./spy"], "claims": ["/mount/~1data"]},
        {"name": "tmp", "command": ["./spy"], "claims": ["/mount/~1tmp"]},
    )
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert code == 0, err
    config = json.loads((HYBRID / "config.json").read_text())
    data, tmp = (json.loads((spies / f"{n}.json").read_text()) for n in ("data", "tmp"))
    for seen in (data, tmp):
        # Its own folder, private, under TMPDIR, and TMPDIR itself; removed afterwards
        # (no_leftovers checks the TMPDIR is empty again).
        assert seen["cwd"] == seen["env"]["TMPDIR"]
        assert Path(seen["cwd"]).parent == no_leftovers
        assert seen["cwd_mode"] == "0o700"
        assert not Path(seen["cwd"]).exists()
        # Its own session: no controlling terminal to prompt on, its own process group.
        assert seen["sid_is_pid"] and seen["pgid_is_pid"]
        assert seen["tty"] == "ENXIO"
        assert seen["argv"] == []
    assert data["cwd"] != tmp["cwd"]
    # stdin held exactly one JSON object and a newline: the request, nothing else.
    assert data["stdin"].endswith("}\n") and data["stdin"].count("\n") == 1
    request = json.loads(data["stdin"])
    assert request["pointer"] == "/mount/~1data"
    assert data["env"]["BAKEPLAN_POINTER"] == "/mount/~1data"
    assert request["fragment"] == config["mount"]["/data"]
    assert (request["protocol"], request["op"], request["delegate"]) == (
        "bakeplan/1",
        "configure",
        "data",
    )
    plan = json.loads(out)
    assert [(d["delegate"], d["pointer"]) for d in plan["delegations"]][:2] == [
        ("data", "/mount/~1data"),
        ("tmp", "/mount/~1tmp"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "$(touch {pwned})",
        "`touch {pwned}`",
        "; touch {pwned}; rm -rf /",
        "' && touch {pwned} '",
        "| touch {pwned}\n",
        "${{IFS}}touch${{IFS}}{pwned}",
    ],
)
def test_strings_reach_the_delegate_verbatim_and_no_shell_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    spies = spy(tmp_path)
    pwned = tmp_path / "pwned"
    value = text.format(pwned=pwned)
    reg = registry_file(
        tmp_path, {"name": "env", "command": ["./spy", value, "*"], "claims": ["/env"]}
    )
    # Through the delegate and on into rumprun's env: verbatim at every step.
    config = config_file(tmp_path, {"env": {"NOTE": value}, "rc": [{"bin": "x", "argv": [value]}]})
    code, out, err = run_main(capsys, "plan", *SPEC, str(config), "-r", str(reg))
    assert code == 0, err
    seen = json.loads((spies / "env.json").read_text())
    assert seen["argv"] == [value, "*"]
    assert json.loads(seen["stdin"])["fragment"] == {"NOTE": value}
    runtime = json.loads(out)["runtime"]["config"]
    assert runtime == {"env": {"NOTE": value}, "rc": [{"bin": "x", "argv": [value]}]}
    assert not pwned.exists()


# -- trust -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "mode", "who"),
    [
        ("registry", 0o664, "group"),
        ("registry", 0o646, "others"),
        ("registry", 0o666, "group and others"),
        ("executable", 0o775, "group"),
        ("executable", 0o757, "others"),
        ("executable", 0o777, "group and others"),
    ],
)
def test_writable_registry_or_executable_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, mode: int, who: str
) -> None:
    marker = tmp_path / "ran"
    exe = write_delegate(tmp_path, "delegate", f'touch "{marker}"\ncat\n')
    reg = registry_file(tmp_path, {"name": "id", "command": ["./delegate"], "claims": ["/net"]})
    (reg if target == "registry" else exe).chmod(mode)
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert (code, out) == (2, "")
    assert f"is writable by {who} (mode {mode:04o}); refusing to trust it" in err
    assert "chmod go-w" in err
    assert not marker.exists()


@pytest.mark.parametrize(
    "name", ["Mirage", "with space", "-dash-first", "a/b", "../evil", "x" * 65, "", "rumprun"]
)
def test_registry_names_follow_the_pattern(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    write_identity(tmp_path)
    reg = registry_file(tmp_path, {"name": name, "command": ["./identity"], "claims": ["/net"]})
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert (code, out) == (2, "")
    assert "/delegates/0/name" in err


@pytest.mark.parametrize(
    ("document", "options"),
    [
        ({"net": {"command": ["{evil}"]}}, ()),
        ({"delegates": [{"name": "x", "command": ["{evil}"], "claims": ["/net"]}]}, ()),
        ({"env": {"PATH": "{dir}", "BAKEPLAN_REGISTRY": "{dir}/r.json"}}, ()),
        ({"net": {}}, ("--delegate", "/net={evil}")),
        ({"net": {}}, ("--delegate", "/net=evil")),
    ],
)
def test_a_config_never_chooses_an_executable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: Any, options: tuple[str, ...]
) -> None:
    marker = tmp_path / "ran"
    evil = write_delegate(tmp_path, "evil", f'touch "{marker}"\n')
    text = json.dumps(document).replace("{evil}", str(evil)).replace("{dir}", str(tmp_path))
    config = tmp_path / "config.json"
    config.write_text(text, encoding="utf-8")
    opts = [o.replace("{evil}", str(evil)) for o in options]
    code, _, err = run_main(capsys, "plan", *SPEC, str(config), *opts)
    assert code in (0, 2), err
    assert not marker.exists()


# -- answers stay in their subtree -------------------------------------------------------------


def test_replace_lands_only_at_the_delegates_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An answer shaped like parts of a whole config becomes the value at /env (variables
    # named net and rc), never the config's own /net or /rc.
    whole = {"net": "x", "rc": "y"}
    answer = json.dumps({"protocol": "bakeplan/1", "replace": whole})
    write_delegate(tmp_path, "grab", f"cat >/dev/null\necho '{answer}'\n")
    reg = registry_file(tmp_path, {"name": "grab", "command": ["./grab"], "claims": ["/env"]})
    config = {"env": {"TZ": "UTC"}, "rc": [{"bin": "www"}]}
    code, out, err = run_main(
        capsys, "plan", *SPEC, str(config_file(tmp_path, config)), "-r", str(reg)
    )
    assert code == 0, err
    assert json.loads(out)["runtime"]["config"] == {"env": whole, "rc": [{"bin": "www"}]}


def _answering(tmp_path: Path, answer: dict[str, Any], *, exit_code: int = 0) -> Path:
    text = json.dumps({"protocol": "bakeplan/1", **answer})
    write_delegate(tmp_path, "answer", f"cat >/dev/null\necho '{text}'\nexit {exit_code}\n")
    return registry_file(tmp_path, {"name": "net", "command": ["./answer"], "claims": ["/net"]})


def test_warning_outside_the_claim_is_reported_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = _answering(
        tmp_path,
        {
            "warnings": [
                {"pointer": "/env/TZ", "message": "not my business"},
                {"pointer": "/net/gateways/0", "message": "inside"},
                {"pointer": "", "message": "the whole thing"},
            ]
        },
    )
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert code == 0, err
    warnings = [w for w in json.loads(out)["warnings"] if w["by"] == "net"]
    assert warnings == [
        {
            "by": "net",
            "pointer": "/net",
            "message": "not my business [the delegate pointed at /env/TZ, outside its claim /net]",
        },
        {"by": "net", "pointer": "/net/gateways/0", "message": "inside"},
        {
            "by": "net",
            "pointer": "/net",
            "message": "the whole thing [the delegate pointed at (the whole config), outside "
            "its claim /net]",
        },
    ]
    assert "outside its claim /net" in err


def test_error_pointer_outside_the_claim_is_reported_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = _answering(
        tmp_path, {"error": {"message": "blame rumprun", "pointer": "/env/TZ"}}, exit_code=1
    )
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert code == 1
    assert "delegate 'net' at /net: blame rumprun" in err
    assert "the delegate pointed at /env/TZ, outside its claim /net" in err


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ({"name": "eth0", "kind": "net", "pointer": "/env"}, "outside its claim"),
        ({"name": "../etc/passwd", "kind": "net"}, "breaks the configure answer schema"),
        ({"name": "vioif0", "kind": "Net Card"}, "breaks the configure answer schema"),
        ({"name": "x" * 65, "kind": "net"}, "breaks the configure answer schema"),
    ],
)
def test_device_names_and_pointers_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], device: dict[str, str], expected: str
) -> None:
    reg = _answering(tmp_path, {"devices": [device]})
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert code == 1
    assert expected in err


# -- concurrency -------------------------------------------------------------------------------


def test_twenty_concurrent_plans_share_registry_and_xdg_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xdg_config, xdg_cache = Path(os.environ["XDG_CONFIG_HOME"]), Path(os.environ["XDG_CACHE_HOME"])
    (xdg_config / "bakeplan").mkdir(parents=True)
    xdg_cache.mkdir(parents=True)
    user_registry = xdg_config / "bakeplan" / "registry.json"
    shutil.copyfile(HYBRID / "registry.json", user_registry)
    user_registry.chmod(0o644)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    # One bakeplan in this process gives the expected plan; it must match the example's.
    code, expected, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"))
    assert code == 0, err
    assert [d["delegate"] for d in json.loads(expected)["delegations"]] == [
        "mirage-net-config",
        "rumprun",
    ]
    processes = [
        subprocess.Popen(
            [
                *BAKEPLAN,
                "plan",
                *SPEC,
                str(HYBRID / "config.json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(20)
    ]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 20, results[0][1].decode()
    # mirage-net-config is pure: later plans may take its answer from the shared response
    # cache, which changes not one byte of the plan.
    assert {out.decode() for out, _ in results} == {expected}
    assert all(err == b"" for _, err in results)
