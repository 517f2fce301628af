"""What a person sees: the dry-run preview, live progress and errors."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import SPEC
from helpers_protocol import write_delegate, write_py_delegate
from helpers_snapshot import assert_snapshot

from orchestrator import cli
from orchestrator.cli import main
from orchestrator.core import pipeline
from orchestrator.errors import BakeplanError, DelegateError
from orchestrator.show import preview

BIN = str(Path(sys.executable).parent)
HYBRID = "examples/hybrid/config.json"
HYBRID_REGISTRY = "examples/hybrid/registry.json"
ESCAPE = re.compile(r"\x1b\[")
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|38;|9[0-7])")


def record(render: Callable[[Any], None], width: int = 100) -> str:
    console = preview.console_for(io.StringIO(), width=width, record=True)
    render(console)
    return console.export_text()


def hybrid_preview(monkeypatch: pytest.MonkeyPatch, **options: Any) -> dict[str, Any]:
    monkeypatch.chdir(REPO)
    # The replay line names the variables a delegate would get: the same on every machine.
    for name in [n for n in os.environ if n.startswith("LC_")] + ["LANGUAGE", "TZ", "TMPDIR"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    data = pipeline.dry_run(
        pipeline.Options(config=HYBRID, registries=(HYBRID_REGISTRY,), **options)
    )
    for run in data["runs"]:  # the install folder differs from machine to machine
        run["command"] = [c.replace(BIN, "<bin>") for c in run["command"]]
        run["shell"] = run["shell"].replace(BIN, "<bin>")
        run["replay"] = run["replay"].replace(BIN, "<bin>")
    return data


# -- the preview ------------------------------------------------------------------------------


def test_dry_run_preview_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    data = hybrid_preview(monkeypatch)
    assert_snapshot("dry-run-hybrid.txt", record(lambda c: preview.render_dry_run(data, c)))


def test_dry_run_verbose_shows_whole_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    data = hybrid_preview(monkeypatch)
    short = record(lambda c: preview.render_dry_run(data, c))
    whole = record(lambda c: preview.render_dry_run(data, c, verbose=True))
    assert "--verbose shows the whole request" in short
    assert "--verbose shows the whole request" not in whole
    assert '"rumpdev_pci"' in whole


def test_narrow_terminal_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    data = hybrid_preview(monkeypatch)
    text = record(lambda c: preview.render_dry_run(data, c), width=50)
    # Every line but the replay, which is never broken so that it can be pasted whole.
    lines = [line for line in text.splitlines() if not line.startswith("replay: ")]
    assert max(len(line) for line in lines) <= 50
    assert [line for line in text.splitlines() if line.startswith("replay: printf ")]


def test_nested_claims_mark_inner_parts_and_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_delegate(tmp_path, "d", "cat")
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}}},
                "env": {"A": "1"},
            }
        )
    )
    (tmp_path / "registry.json").write_text(
        json.dumps(
            {
                "delegates": [
                    {
                        "name": "addr",
                        "command": ["./d"],
                        "claims": ["/net/interfaces/vioif0/addrs/0"],
                    },
                    {"name": "net", "command": ["./d"], "claims": ["/net"]},
                    {"name": "env", "command": ["./d"], "claims": ["/env"]},
                ]
            }
        )
    )
    data = pipeline.dry_run(pipeline.Options(config="config.json", registries=("registry.json",)))
    assert [(r["delegate"], r["wave"]) for r in data["runs"]] == [
        ("env", 0),
        ("addr", 0),
        ("net", 1),
        ("rumprun", 2),
    ]
    net = next(r for r in data["runs"] if r["delegate"] == "net")
    assert net["request"]["fragment"]["interfaces"]["vioif0"]["addrs"] == [
        {"$inner": {"delegate": "addr", "pointer": "/net/interfaces/vioif0/addrs/0"}}
    ]
    assert net["request_sha256"] is None
    text = record(lambda c: preview.render_dry_run(data, c))
    # One step, two runs side by side.
    assert re.search(r"1\s+env at /env\s*\n\s+addr at /net/interfaces/vioif0/addrs/0", text)
    assert "net at /net (gets the answers of /net/interfaces/vioif0/addrs/0)" in text


def test_dry_run_runs_no_delegate_and_matches_the_real_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = tmp_path / "calls"
    write_py_delegate(
        tmp_path,
        "recorder",
        f"""
        import json, sys
        raw = sys.stdin.read()
        open({str(calls)!r}, "a").write(raw)
        print(json.dumps({{"protocol": "bakeplan/1", "replace": json.loads(raw)["fragment"]}}))
    """,
    )
    (tmp_path / "registry.json").write_text(
        json.dumps({"delegates": [{"name": "rec", "command": ["./recorder"], "claims": ["/env"]}]})
    )
    argv = ["plan", str(REPO / HYBRID), "-r", str(tmp_path / "registry.json")]
    assert main([*argv, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "rec at /env" in text
    assert main([*argv, "--dry-run", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert not calls.exists()
    assert main(argv) == 0
    plan = json.loads(capsys.readouterr().out)
    assert calls.exists()
    digest = {d["delegate"]: d["request_sha256"] for d in plan["delegations"]}
    assert data["runs"][0]["request_sha256"] == digest["rec"]


def test_json_without_dry_run_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", *SPEC, str(REPO / HYBRID), "--json"]) == 2
    assert "--json goes with --dry-run" in capsys.readouterr().err


def test_piped_preview_and_errors_have_no_escape_codes(tmp_path: Path) -> None:
    done = subprocess.run(
        [f"{BIN}/bakeplan", "plan", "--dry-run", HYBRID, "-r", HYBRID_REGISTRY],
        capture_output=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "FORCE_COLOR": ""},
    )
    assert done.returncode == 0, done.stderr
    assert b"Who configures what" in done.stdout
    assert not ESCAPE.search(done.stdout.decode())
    broken = tmp_path / "broken.json"
    broken.write_text('{"rc": [}')
    done = subprocess.run(
        [f"{BIN}/bakeplan", "validate", str(broken)], capture_output=True, check=False, cwd=tmp_path
    )
    assert done.returncode == 2
    assert not ESCAPE.search(done.stderr.decode())


# -- a real terminal ----------------------------------------------------------------------------


def run_in_pty(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60
) -> tuple[int, bytes, bytes]:
    """Run with stderr (and stdout when asked) on a pseudo-terminal; return both streams."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, cwd=cwd, env=env
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            process.kill()
            raise AssertionError(f"no terminal output for {timeout}s: {seen[-500:]!r}")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closes when bakeplan exits
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert process.stdout is not None
    out = process.stdout.read()
    return process.wait(timeout=timeout), out, seen


def test_live_progress_in_a_terminal(tmp_path: Path) -> None:
    write_delegate(
        tmp_path,
        "slow",
        """
        cat >/dev/null
        sleep 2
        echo '{"protocol":"bakeplan/1","replace":{"A":"1"}}'
    """,
    )
    (tmp_path / "registry.json").write_text(
        json.dumps({"delegates": [{"name": "slow-env", "command": ["./slow"], "claims": ["/env"]}]})
    )
    (tmp_path / "config.json").write_text('{"env": {"A": "1"}}')
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    code, out, terminal = run_in_pty(
        [f"{BIN}/bakeplan", "plan", *SPEC, "config.json", "-r", "registry.json"],
        tmp_path,
        env,
    )
    assert code == 0, terminal
    assert json.loads(out)["runtime"]["config"] == {"env": {"A": "1"}}
    screen = terminal.decode("utf-8", "replace")
    assert "slow-env at /env" in screen
    assert "running" in screen
    assert "waiting" in screen or "running" in screen
    # After the live lines, the summary table with each run's duration.
    assert re.search(
        r"slow-env\s+/env\s+done\s+[0-9.]+s", ESCAPE.sub("", screen).replace("[0m", "")
    )
    assert ESCAPE.search(screen)  # a terminal gets rich output


def test_no_color_is_respected_in_a_terminal(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"rc": [}')
    env = {**os.environ, "NO_COLOR": "1", "TERM": "xterm-256color"}
    code, _, terminal = run_in_pty([f"{BIN}/bakeplan", "validate", str(broken)], tmp_path, env)
    assert code == 2
    text = terminal.decode("utf-8", "replace")
    assert "broken.json:1:9" in text
    assert not COLOUR.search(text)


# -- errors a person can act on -------------------------------------------------------------------


def error_of(argv: list[str]) -> BakeplanError:
    parser = cli.build_parser()
    args = parser.parse_args(argv)
    with pytest.raises(BakeplanError) as caught:
        args.func(args)
    return caught.value


def render_error(error: BakeplanError, *replace: tuple[str, str]) -> str:
    if isinstance(error, DelegateError):
        # Paths differ from machine to machine: replace them before the panel is laid out.
        for old, new in replace:
            error.command = tuple(part.replace(old, new) for part in error.command)
    return record(lambda c: preview.render_error(error, c), width=120)


def test_json_syntax_error_snapshot(conformance: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(conformance / "rumprun" / "invalid")
    error = error_of(["validate", "spec-doc-hw-mathopd.json"])
    assert_snapshot("errors/json-syntax.txt", render_error(error))


def test_schema_error_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.json").write_text(
        '{\n  "rc": [{"bin": "x", "runmode": "?"}],\n  "mount": {"/t": {"source": "tmpfs",'
        ' "options": {"size": "lots"}}}\n}\n'
    )
    Path("registry.json").write_text('{"delegates": []}')
    error = error_of(["validate", "config.json", "-r", "registry.json"])
    assert_snapshot("errors/schema.txt", render_error(error))


def test_delegate_failure_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_delegate(
        tmp_path,
        "broken",
        """
        cat >/dev/null
        echo "opam: cannot find package mirage-net-xen" >&2
        echo "giving up" >&2
        exit 3
    """,
    )
    Path("registry.json").write_text(
        json.dumps(
            {"delegates": [{"name": "broken-net", "command": ["./broken"], "claims": ["/net"]}]}
        )
    )
    error = error_of(["plan", str(REPO / HYBRID), "-r", "registry.json"])
    assert_snapshot(
        "errors/delegate.txt", render_error(error, (str(tmp_path), "<tmp>"), (str(REPO), "<repo>"))
    )


def test_unknown_key_and_delegate_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.json").write_text('{"mounts": {}, "net": {}}')
    Path("registry.json").write_text(
        json.dumps(
            {
                "delegates": [
                    {
                        "name": "mirage-net-config",
                        "command": ["mirage-net-config"],
                        "claims": ["/net"],
                    }
                ]
            }
        )
    )
    error = error_of(
        ["validate", "config.json", "-r", "registry.json", "--delegate", "/net=mirage-net"]
    )
    assert_snapshot("errors/unknown.txt", render_error(error))


def test_component_conflict_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.json").write_text('{"mount": {"/kern": {"source": "kernfs"}}}')
    Path("registry.json").write_text('{"delegates": []}')
    error = error_of(["plan", *SPEC, "config.json", "-r", "registry.json"])
    assert_snapshot("errors/component.txt", render_error(error))
