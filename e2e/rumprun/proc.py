"""The one place the rumprun e2e suite starts programs: tools that run to completion
(``run``), and long-lived ones it must end itself (``Started``: QEMU, dnsmasq), always
as an argv list, never through a shell, and ended by their own process id.
"""

from __future__ import annotations

import os
import re
import select
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TAIL_LINES = 40


class ToolFailed(AssertionError):
    """A real program failed: the message has its command line, status and output."""


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion and capture its output; with ``check``, a non-zero
    exit or a time-out raises ToolFailed naming the command."""
    args = [str(a) for a in argv]
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"`{shlex.join(args)}` did not finish in {timeout:.0f} s") from exc
    except OSError as exc:
        raise ToolFailed(f"`{shlex.join(args)}` could not start: {exc}") from exc
    if check and done.returncode != 0:
        raise ToolFailed(
            f"`{shlex.join(args)}` exited {done.returncode}\n"
            f"--- stderr ---\n{tail(done.stderr)}\n--- stdout ---\n{tail(done.stdout)}"
        )
    return done


class Started:
    """A program left running while the suite works beside it, in its own session so
    that nothing it does reaches the test's terminal; ``stop`` ends it by its pid."""

    def __init__(self, argv: Sequence[str | Path], *, log: Path) -> None:
        self.argv = [str(a) for a in argv]
        self.log = log
        self._out = log.open("wb")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._out.close()
            raise ToolFailed(f"`{shlex.join(self.argv)}` could not start: {exc}") from exc

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, grace: float = 5) -> None:
        """SIGTERM to our own pid, then SIGKILL if it has not gone after ``grace``."""
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait()
        self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


# rumprun prints "halted" last, whether the programs returned or the config stopped the
# boot; after it the guest idles without powering off, so the harness ends QEMU.
_HALTED = re.compile(rb"^halted\r?$", re.MULTILINE)
# A panic may not reach "halted" (and the emitted line has no -no-reboot): stop soon.
# rumprun's own layer writes "PANIC: ", the NetBSD kernel "panic: ".
_PANIC = re.compile(rb"^panic: ", re.MULTILINE | re.IGNORECASE)
PANIC_GRACE = 2.0


@dataclass(frozen=True)
class Console:
    """What a guest wrote on its serial console, and how the boot ended."""

    text: str
    ended_by: str  # "halted", "panic", "time limit", or "qemu exited N"
    seconds: float
    log: Path

    @property
    def halted(self) -> bool:
        return self.ended_by == "halted"


def boot(argv: Sequence[str], *, log: Path, timeout: float) -> Console:
    """Boot with exactly ``argv`` and read the serial console until rumprun halts, the
    kernel panics, QEMU exits or ``timeout`` passes; then end QEMU by its pid."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolFailed(f"`{shlex.join(argv)}` could not start: {exc}") from exc
    assert popen.stdout is not None
    fd = popen.stdout.fileno()
    out = bytearray()
    ended_by = "time limit"
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            ready, _, _ = select.select([fd], [], [], deadline - now)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                ended_by = f"qemu exited {popen.wait()}"
                break
            out += chunk
            panicked = _PANIC.search(out) is not None
            if _HALTED.search(out):
                # rumprun halts after its own panic too: the panic is what ended it.
                ended_by = "panic" if panicked else "halted"
                break
            if panicked and ended_by != "panic":
                ended_by = "panic"
                deadline = min(deadline, time.monotonic() + PANIC_GRACE)
    finally:
        if popen.poll() is None:
            os.kill(popen.pid, signal.SIGTERM)
            try:
                popen.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(popen.pid, signal.SIGKILL)
                popen.wait()
        popen.stdout.close()
        log.write_bytes(bytes(out))
    text = out.decode("utf-8", "replace").replace("\r\n", "\n")
    return Console(text, ended_by, time.monotonic() - started, log)
