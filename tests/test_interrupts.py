"""Ctrl-C and SIGTERM on a real bakeplan process: delegates killed, nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from helpers_cli import BAKEPLAN, SPEC
from helpers_exec import process_gone, read_pid, wait_until
from helpers_protocol import write_delegate

HYBRID = REPO / "examples" / "hybrid" / "config.json"
# Every wait is on an event (a pid file a delegate writes once it runs, a process gone),
# polled up to a deadline no loaded machine reaches: on a quiet one each takes
# milliseconds, and a wait that reaches it means the behaviour broke.
DEADLINE = 60.0


@pytest.fixture(autouse=True)
def sigint_caught() -> Iterator[None]:
    """SIGINT caught here while a test starts bakeplan, so that bakeplan starts with it
    at its default, as a terminal's foreground job has it: a suite started in the
    background (``&`` in a script) ignores SIGINT, children inherit an ignored signal
    (a caught one is reset by exec), and a program that inherits an ignored SIGINT
    rightly keeps ignoring it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("jobs", ["1", "4"])
def test_signal_stops_every_delegate_and_writes_nothing(
    tmp_path: Path, signum: int, code: int, jobs: str
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    # Each delegate records its pid and that of a grandchild, then waits "forever" (after
    # answering the describe handshake, so that the signal comes during configure).
    write_delegate(
        tmp_path,
        "slow",
        f'sleep 60 & echo $! > "{pids}/$BAKEPLAN_DELEGATE.child"\n'
        f'echo $$ > "{pids}/$BAKEPLAN_DELEGATE"\nwait\n',
    )
    registry = tmp_path / "registry.json"
    registry.write_text(
        json.dumps(
            {
                "delegates": [
                    {"name": "net-slow", "command": ["./slow"], "claims": ["/net"]},
                    {"name": "env-slow", "command": ["./slow"], "claims": ["/env"]},
                ]
            }
        )
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = tmp_path / "plan.json"
    process = subprocess.Popen(
        [
            *BAKEPLAN,
            "plan",
            *SPEC,
            str(HYBRID),
            "-r",
            str(registry),
            "-o",
            str(out),
            "-j",
            jobs,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    try:
        # Runs go in routing order, /env before /net; with one job only /env has started.
        running = ["env-slow"] if jobs == "1" else ["env-slow", "net-slow"]
        started = [
            read_pid(pids / f"{name}{suffix}", timeout=DEADLINE)
            for name in running
            for suffix in ("", ".child")
        ]
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=DEADLINE)
    finally:
        process.kill()
    assert process.returncode == code, stderr.decode()
    assert stdout == b""
    assert b"Traceback" not in stderr
    assert b"nothing written" in stderr
    assert not out.exists()
    assert all(wait_until(lambda pid=pid: process_gone(pid), timeout=DEADLINE) for pid in started)
    assert list(scratch.iterdir()) == []
    # Nothing else written; xdg-cache holds the describe answers (cached by design).
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "xdg-cache") == [
        "pids",
        "registry.json",
        "scratch",
        "slow",
    ]
