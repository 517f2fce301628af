"""What ``plan --dry-run`` says of each run without starting it: a replay line that
gives the delegate the very request bytes and environment a plan would (pasted into a
shell, it does not wait on stdin), and whether its answer would come from the cache."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import SPEC, run_main
from helpers_exec import write_python
from helpers_protocol import description, write_registry

CONFIG = {
    "rc": [{"bin": "www", "argv": ["www"]}],
    "env": {"TZ": "UTC", "SAID": "$(touch pwned) 'quoted' é"},
    "net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}}},
}


def recorder(folder: Path, name: str, *, pure: bool) -> Path:
    """A delegate that records its stdin and environment for each configure, then
    answers with its fragment."""
    described = description(name, pure=pure)
    return write_python(
        folder,
        name,
        f"""
        import json, os, sys
        raw = sys.stdin.buffer.read()
        request = json.loads(raw)
        if request["op"] == "describe":
            print(json.dumps({described!r}))
            sys.exit(0)
        log = {str(folder)!r} + "/" + {name!r}
        with open(log + ".runs", "a") as runs:
            runs.write("x")
        with open(log + ".stdin", "wb") as out:
            out.write(raw)
        env = {{k: v for k, v in os.environ.items() if k not in ("TMPDIR", "PWD", "SHLVL", "_")}}
        with open(log + ".env", "w") as out:
            json.dump(env, out, sort_keys=True)
        print(json.dumps({{"protocol": "bakeplan/1", "replace": request["fragment"]}}))
        """,
    )


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("OPAMROOT", "/opt/opam root")
    recorder(tmp_path, "pure", pure=True)
    recorder(tmp_path, "impure", pure=False)
    recorder(tmp_path, "inner", pure=True)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    registry = write_registry(
        tmp_path,
        {
            "name": "pure",
            "command": ["./pure"],
            "claims": ["/env"],
            "env": ["OPAMROOT", "SECRET_TOKEN"],
        },
        {"name": "impure", "command": ["./impure"], "claims": ["/net"]},
        {"name": "inner", "command": ["./inner"], "claims": ["/net/interfaces/vioif0/addrs/0"]},
    )
    return config, registry


def dry_run(capsys: pytest.CaptureFixture[str], config: Path, registry: Path, *extra: str) -> Any:
    argv = ("plan", *SPEC, str(config), "-r", str(registry), "--dry-run", "--json")
    code, out, err = run_main(capsys, *argv, *extra)
    assert code == 0, err
    return {run["delegate"]: run for run in json.loads(out)["runs"]}


def test_the_replay_line_sends_the_very_request_and_environment_of_a_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path]
) -> None:
    config, registry = setup
    runs = dry_run(capsys, config, registry)
    replay = runs["pure"]["replay"]
    assert "hunter2" not in replay  # the variables are named, never their values
    assert 'SECRET_TOKEN="$SECRET_TOKEN"' in replay
    assert runs["inner"]["replay"]
    assert runs["impure"]["replay"] == ""  # its request waits on the inner answer
    # What a plan really sends.
    code, _, err = run_main(capsys, "plan", *SPEC, str(config), "-r", str(registry), "--no-cache")
    assert code == 0, err
    planned_stdin = (tmp_path / "pure.stdin").read_bytes()
    planned_env = json.loads((tmp_path / "pure.env").read_text())
    # The replay, pasted into a shell whose stdin is a terminal-like nothing: it must
    # not wait for input, and the delegate gets the same bytes and variables.
    done = subprocess.run(
        ["/bin/sh", "-c", replay],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pure.stdin").read_bytes() == planned_stdin
    assert json.loads((tmp_path / "pure.env").read_text()) == planned_env
    assert planned_env["SECRET_TOKEN"] == "hunter2"  # noqa: S105  (a test value)
    assert not (tmp_path / "pwned").exists()
    assert hashlib.sha256(planned_stdin).hexdigest() == runs["pure"]["request_sha256"]


def test_the_cache_state_of_each_run(
    capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path]
) -> None:
    config, registry = setup
    before = dry_run(capsys, config, registry)
    # Never described: whether a delegate is pure is not known without asking it.
    assert {n: r["cache"] for n, r in before.items()} == {
        "inner": "unknown",
        "pure": "unknown",
        "impure": "unknown",
        "rumprun": "",
    }
    code, _, err = run_main(capsys, "plan", *SPEC, str(config), "-r", str(registry))
    assert code == 0, err
    after = dry_run(capsys, config, registry)
    assert {n: r["cache"] for n, r in after.items()} == {
        "inner": "hit",
        "pure": "hit",
        "impure": "never",
        "rumprun": "",
    }
    off = dry_run(capsys, config, registry, "--no-cache")
    assert {off[n]["cache"] for n in ("inner", "pure", "impure")} == {"off"}


def test_a_changed_fragment_is_a_miss_and_an_inner_run_makes_the_outer_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path]
) -> None:
    config, registry = setup
    (tmp_path / "impure").write_text(
        (tmp_path / "impure").read_text().replace("'pure': False", "'pure': True")
    )
    code, _, err = run_main(capsys, "plan", *SPEC, str(config), "-r", str(registry))
    assert code == 0, err
    changed = json.loads(config.read_text())
    changed["env"]["TZ"] = "CET"
    config.write_text(json.dumps(changed))
    runs = dry_run(capsys, config, registry)
    assert runs["pure"]["cache"] == "miss"
    assert runs["inner"]["cache"] == "hit"
    assert runs["impure"]["cache"] == "pending"


def test_the_plain_preview_prints_the_replay_on_one_unbroken_line(
    tmp_path: Path, setup: tuple[Path, Path]
) -> None:
    config, registry = setup
    argv = ("plan", *SPEC, str(config), "-r", str(registry), "--dry-run")
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "60"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("replay: ")]
    assert len(lines) == 2
    replay = lines[0].removeprefix("replay: ")
    assert replay.startswith("printf '%s\\n' '{")
    commands = {line.rsplit(" ", 1)[1] for line in lines}
    assert commands == {str(tmp_path / "pure"), str(tmp_path / "inner")}
