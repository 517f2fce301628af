"""Helpers for tests that run real executables: write scripts, watch processes.

Delegates in tests are real programs written into ``tmp_path`` (STYLE.md), so these
helpers write them with the execute bit and look at ``/proc`` to prove that nothing they
started is left running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path


def write_exec(directory: Path, name: str, body: str, *, mode: int = 0o755) -> Path:
    """Write ``body`` (dedented) as the file ``directory/name`` with ``mode``; return it."""
    path = directory / name
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    path.chmod(mode)
    return path


def write_sh(directory: Path, name: str, body: str) -> Path:
    """An executable ``#!/bin/sh`` script."""
    return write_exec(directory, name, "#!/bin/sh\n" + textwrap.dedent(body).lstrip("\n"))


def write_python(directory: Path, name: str, body: str) -> Path:
    """An executable Python script run by this interpreter.

    The ``#!`` line names ``sys.executable`` rather than ``/usr/bin/env python3`` so the
    script runs under the scrubbed environments the tests give it (no HOME, a bare PATH)
    whatever shims the machine has on PATH.
    """
    return write_exec(directory, name, f"#!{sys.executable}\n" + textwrap.dedent(body).lstrip("\n"))


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return predicate()
        time.sleep(0.01)
    return True


def process_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (``R``, ``S``, ``Z``...), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return stat.rsplit(")", 1)[1].split()[0]


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs: absent, or a zombie waiting for its reaper."""
    return process_state(pid) in (None, "Z", "X")


def read_pid(path: Path, *, timeout: float = 10.0) -> int:
    """The pid a script wrote to ``path``, waiting for the file to be complete."""

    def ready() -> bool:
        return path.exists() and path.read_text(encoding="ascii").strip().isdigit()

    if not wait_until(ready, timeout=timeout):
        raise AssertionError(f"no pid written to {path}")
    return int(path.read_text(encoding="ascii"))


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid``, zombies included (an unreaped child is a leak too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def this_process_children() -> list[int]:
    """The children of the test process itself."""
    return children_of(os.getpid())


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter (this one, in the repository) holds after ``code``."""
    script = f"import sys\n{code}\nsys.stdout.write(' '.join(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=True,
    )
    return set(done.stdout.split())


def read_terminal(leader: int) -> str:
    """All a pseudo-terminal showed, read from its ``leader`` until the processes on it
    exit (the follower end must be closed here first), with ``\\n`` line ends."""
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the last process on it exits
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return seen.decode("utf-8", "replace").replace("\r\n", "\n")
