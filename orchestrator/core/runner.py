"""The one place bakeplan starts a process: run a delegate on one request, bounded.

``run`` starts an argv list (never a shell) in its own session, with an explicit
environment, in a private working directory that is also its ``TMPDIR``.  It writes the
request to the delegate's stdin and closes it, reads stdout and stderr concurrently
(stdout up to a cap, only the tail of stderr), and stops the whole process group on a
time limit, on a cancel event, or when the direct child has exited but a grandchild
still holds the pipes.  It returns an ``Outcome`` describing what happened; judging the
answer (JSON, protocol) belongs to the caller.  Nothing else in the package may import
``subprocess``.

Everything happens in the caller's thread: one ``selectors`` loop per run, woken by the
pipes, by a pidfd when the child exits (Linux), and at most every ``_CANCEL_POLL``
seconds when a cancel event can arrive.

Stopping, in one place:

* time limit: SIGTERM to the group, SIGKILL ``grace`` seconds later;
* cancel event: the same SIGTERM then SIGKILL, so a delegate sees one shutdown protocol
  whatever the reason (a delegate such as ``cni-ipam`` may have a lease to give back);
* ``terminate_all`` (the CLI's SIGINT/SIGTERM handler): SIGKILL at once, because the
  program is about to exit and a signal handler cannot wait out a grace period;
* stdout past its cap: SIGKILL at once, the answer is already lost;
* the end of every run: SIGKILL to the group, so no grandchild outlives its run.

A process that calls ``setsid`` itself leaves our process group and escapes these
kills; only a cgroup could contain it, which is outside what bakeplan asks of its host.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Limits",
    "Outcome",
    "SpawnError",
    "run",
    "terminate_all",
]

_CHUNK = 64 * 1024
# Lines of a failed delegate's stderr shown to a person (RELIABILITY.md).
STDERR_LINES = 20
# A set cancel event is noticed within this many seconds: the loop's select never
# sleeps longer while an event could arrive.
_CANCEL_POLL = 0.04
# Without a pidfd nothing wakes the loop when the child exits, so it looks this often.
_EXIT_POLL = 0.02
# After the final SIGKILL, what is still buffered in a pipe is read, up to this much per
# stream, so an answer written just before exit is not lost to a zero exit_grace.
_FINAL_DRAIN = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds on one delegate run."""

    timeout: float = 30.0
    """Seconds from start until the process group gets SIGTERM."""
    grace: float = 2.0
    """Seconds from SIGTERM until SIGKILL for the whole group."""
    exit_grace: float = 0.25
    """After the direct child exits, how long to wait for pipes a grandchild holds."""
    stdout_cap: int = 16 * 1024 * 1024
    """Bytes of stdout kept; more marks the outcome truncated and kills the group."""
    stderr_tail: int = 64 * 1024
    """Only the last this-many bytes of stderr are kept, however much is written."""

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.grace < 0 or self.exit_grace < 0:
            raise ValueError(f"time limits must be positive: {self}")
        if self.stdout_cap < 0 or self.stderr_tail < 0:
            raise ValueError(f"byte limits must not be negative: {self}")


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one run did: how it ended and what it wrote.

    ``returncode`` is set when the delegate exited, ``signal`` when a signal ended it
    (ours on a time limit or cancel, or its own crash).  Killing leftover grandchildren
    after a normal exit does not count: the exit status stands.
    """

    argv: tuple[str, ...]
    returncode: int | None
    signal: int | None
    timed_out: bool
    stdout: bytes = field(repr=False)
    stdout_truncated: bool
    stderr_tail: bytes = field(repr=False)
    stderr_bytes: int
    cancelled: bool
    limits: Limits
    elapsed: float
    """Wall-clock seconds the run took; for --timings, never for the plan."""

    def ok(self) -> bool:
        """Exited 0 on its own: not timed out, not truncated, not cancelled."""
        return (
            self.returncode == 0
            and not self.timed_out
            and not self.stdout_truncated
            and not self.cancelled
        )

    def status(self) -> str:
        """How the run ended, for a person: ``exit status 3``, ``killed by SIGSEGV``."""
        if self.cancelled:
            return f"cancelled ({self._ending()})"
        if self.timed_out:
            return f"time limit of {self.limits.timeout:g}s exceeded ({self._ending()})"
        if self.stdout_truncated:
            return f"stdout exceeded the {_size(self.limits.stdout_cap)} cap"
        if self.signal is not None:
            return f"killed by {_signal_name(self.signal)}"
        return f"exit status {self.returncode}"

    def stderr_lines(self, limit: int = STDERR_LINES) -> str:
        """The last ``limit`` lines of stderr, saying how much came before them.

        What a person is shown when a delegate fails.  How much came before is said in
        bytes as well as lines: after a 50 MB flood, "[... 19 earlier lines]" of the
        kept 64 KiB would hide how much the delegate wrote.
        """
        kept = self.stderr_tail.decode("utf-8", errors="replace").splitlines()
        omitted = self.stderr_bytes - len(self.stderr_tail)
        if len(kept) <= limit and omitted <= 0:
            return "\n".join(kept)
        shown = kept[-limit:]
        parts = [f"{len(kept) - len(shown)} earlier lines"] if len(kept) > len(shown) else []
        if omitted > 0:
            parts.append(f"{omitted} earlier bytes of stderr not kept")
        return "\n".join([f"[... {', and '.join(parts)}]", *shown])

    def stderr_text(self) -> str:
        """The kept stderr as text, saying how much before it was left out."""
        text = self.stderr_tail.decode("utf-8", errors="replace")
        omitted = self.stderr_bytes - len(self.stderr_tail)
        if omitted > 0:
            text = f"[... {omitted} earlier bytes of stderr not kept]\n{text}"
        return text

    def _ending(self) -> str:
        if self.signal is not None:
            return f"killed {_signal_name(self.signal)}"
        return f"exit status {self.returncode}"


class SpawnError(Exception):
    """The command could not be started: missing, not executable, a directory, ...

    ``command`` is the argv[0] that failed and ``reason`` the operating system's
    explanation; the caller turns this into a bakeplan error naming the delegate.
    """

    def __init__(self, command: str, reason: str, *, errno_code: int | None = None) -> None:
        super().__init__(f"cannot run {command!r}: {reason}")
        self.command = command
        self.reason = reason
        self.errno = errno_code


class _Live:
    """A registry entry: one running process group, and whether terminate_all hit it."""

    __slots__ = ("killed", "pgid")

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        # A plain attribute, not an Event: terminate_all may run in a signal handler on
        # the very thread that is inside run(), where taking the Event's lock could
        # deadlock.  The run loop reads it on each turn.
        self.killed = False


# Live process groups, for terminate_all.  An RLock because terminate_all may run in a
# signal handler on a thread that holds the lock in run(); dict updates are single
# bytecodes, so the handler never sees one half done.
_live_lock = threading.RLock()
_live: dict[int, _Live] = {}


def terminate_all() -> None:
    """SIGKILL every live delegate process group; their runs report ``cancelled``.

    Safe from a signal handler or another thread: it takes no lock a run could hold
    on another thread for long, never waits, and the runs reap their own children.
    """
    with _live_lock:
        entries = list(_live.values())
    for entry in entries:
        entry.killed = True
        _killpg(entry.pgid, signal.SIGKILL)


def run(
    argv: Sequence[str],
    request: bytes,
    *,
    env: Mapping[str, str],
    limits: Limits = Limits(),  # frozen, so one shared default is safe
    cancel: threading.Event | None = None,
) -> Outcome:
    """Run ``argv`` with ``request`` on its stdin and return how it ended.

    ``env`` is the whole environment (see ``protocol.delegate_env``); ``TMPDIR`` is
    replaced by the private working directory.  Raises ``SpawnError`` when the command
    cannot be started.  Whatever happens, the process group is killed, the child reaped and the
    private directory removed before this returns or raises.
    """
    args = tuple(argv)
    if not args:
        raise ValueError("run() needs a command, argv is empty")
    _check_nul(args, env)
    # A relative path with a slash means relative to our cwd, not to the private
    # directory the child starts in (where Popen would look for it).
    executable = str(Path(args[0]).absolute()) if "/" in args[0] else None
    workdir = tempfile.mkdtemp(prefix="bakeplan-")
    try:
        child_env = dict(env)
        child_env["TMPDIR"] = workdir
        try:
            proc = subprocess.Popen(
                list(args),
                executable=executable,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Own session: no controlling terminal, and its own process group so a
                # single killpg reaches every grandchild.
                start_new_session=True,
                close_fds=True,
                env=child_env,
                cwd=workdir,
            )
        except OSError as exc:
            raise _spawn_error(args[0], executable, exc) from exc
        try:
            return _Pump(proc, args, request, limits, cancel).run()
        except BaseException:
            # SIGINT/SIGTERM raise in the main thread wherever it is, also between Popen
            # and the pump's own clean-up: the group must go then too.  A reaped child
            # (returncode set) was already killed by the pump; its pgid may be reused.
            if proc.returncode is None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    proc.wait()
            raise
    finally:
        _remove_tree(workdir)


class _Pump:
    """The selector loop of one run: feed stdin, drain stdout and stderr, enforce limits."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        argv: tuple[str, ...],
        request: bytes,
        limits: Limits,
        cancel: threading.Event | None,
    ) -> None:
        if proc.stdin is None or proc.stdout is None or proc.stderr is None:
            raise RuntimeError("the delegate was started without its three pipes")
        self.proc = proc
        self.argv = argv
        self.limits = limits
        self.cancel = cancel
        self.request = memoryview(request)
        self.written = 0
        self.stdin_fd = proc.stdin.fileno()
        self.stdout_fd = proc.stdout.fileno()
        self.stderr_fd = proc.stderr.fileno()
        self.stdout = bytearray()
        self.stdout_truncated = False
        self.stderr = bytearray()
        self.stderr_bytes = 0
        self.timed_out = False
        self.cancelled = False
        self.term_at: float | None = None  # when SIGTERM went to the group
        self.killed = False  # SIGKILL sent to the group
        self.exited_at: float | None = None
        self.sel = selectors.DefaultSelector()
        self.open_fds: set[int] = set()
        self.pidfd: int | None = None
        self.entry = _Live(proc.pid)  # start_new_session: pgid == pid

    def run(self) -> Outcome:
        start = time.monotonic()
        try:
            with _live_lock:
                _live[self.entry.pgid] = self.entry
            self._setup()
            self._loop(start)
        finally:
            # The group goes whatever happened, while the unreaped child still pins its
            # pid and pgid, so the kill cannot reach a recycled group.
            self._kill(signal.SIGKILL)
            with _live_lock:
                _live.pop(self.entry.pgid, None)
            with contextlib.suppress(OSError):
                self._drain()
            self._close()
            # SIGKILL cannot be caught, so this wait is short.
            self.proc.wait()
        rc = self.proc.returncode
        return Outcome(
            argv=self.argv,
            returncode=rc if rc >= 0 else None,
            signal=-rc if rc < 0 else None,
            timed_out=self.timed_out,
            stdout=bytes(self.stdout),
            stdout_truncated=self.stdout_truncated,
            stderr_tail=bytes(self.stderr[-self.limits.stderr_tail :])
            if self.limits.stderr_tail
            else b"",
            stderr_bytes=self.stderr_bytes,
            cancelled=self.cancelled,
            limits=self.limits,
            elapsed=time.monotonic() - start,
        )

    def _setup(self) -> None:
        for fd in (self.stdout_fd, self.stderr_fd):
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ)
            self.open_fds.add(fd)
        os.set_blocking(self.stdin_fd, False)
        self.open_fds.add(self.stdin_fd)
        if self.request:
            self.sel.register(self.stdin_fd, selectors.EVENT_WRITE)
        else:
            self._close_fd(self.stdin_fd)
        try:
            self.pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):
            # Not Linux >= 5.3 (or seccomp forbids it): poll for the exit instead.
            self.pidfd = None
        else:
            self.sel.register(self.pidfd, selectors.EVENT_READ)

    def _loop(self, start: float) -> None:
        limits = self.limits
        deadline = start + limits.timeout
        while True:
            now = time.monotonic()
            if self.entry.killed:
                # terminate_all sets the flag before its SIGKILL, so it is visible by
                # the time the exit it caused is: the run reports cancelled, not crashed.
                self.cancelled = True
            if self.exited_at is None and self._has_exited():
                self.exited_at = now
            if self.exited_at is not None and (
                not self._reading() or now >= self.exited_at + limits.exit_grace
            ):
                # Done, or a grandchild holds the pipes: never wait on it.
                return
            if not self.cancelled and self.cancel is not None and self.cancel.is_set():
                self.cancelled = True
                self._terminate(now)
            # The limit is on the delegate: once it has exited in time, only exit_grace
            # bounds the wait for a grandchild's pipes.
            if (
                self.exited_at is None
                and not self.timed_out
                and not self.cancelled
                and (now >= deadline)
            ):
                self.timed_out = True
                self._terminate(now)
            if self.term_at is not None and not self.killed and now >= self.term_at + limits.grace:
                self._kill(signal.SIGKILL)

            wake = self._next_wake(now, deadline)
            for key, _mask in self.sel.select(wake):
                fd = int(key.fd)
                if fd == self.pidfd:
                    # Readable once the child exits; _has_exited confirms next turn.
                    self.sel.unregister(fd)
                elif fd == self.stdin_fd:
                    self._write()
                elif fd == self.stdout_fd:
                    self._read_stdout()
                elif fd == self.stderr_fd:
                    self._read_stderr()

    def _next_wake(self, now: float, deadline: float) -> float:
        """Seconds the select may sleep before some limit needs looking at."""
        wakes = [deadline]
        if self.term_at is not None and not self.killed:
            wakes.append(self.term_at + self.limits.grace)
        if self.exited_at is not None:
            wakes.append(self.exited_at + self.limits.exit_grace)
        wait = min(wakes) - now
        if self.cancel is not None:
            wait = min(wait, _CANCEL_POLL)
        if self.pidfd is None:
            wait = min(wait, _EXIT_POLL)
        return max(wait, 0.0)

    def _has_exited(self) -> bool:
        """Whether the direct child has exited, without reaping it (see ``run``)."""
        if not hasattr(os, "waitid"):
            # No waitid (not Linux): poll() reaps, so the final killpg may come after
            # the pgid is free; harmless unless the pid is recycled within that moment.
            return self.proc.poll() is not None
        try:
            result = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return result is not None

    def _reading(self) -> bool:
        return self.stdout_fd in self.open_fds or self.stderr_fd in self.open_fds

    def _terminate(self, now: float) -> None:
        if self.term_at is None:
            self.term_at = now
            _killpg(self.entry.pgid, signal.SIGTERM)

    def _kill(self, sig: signal.Signals) -> None:
        self.killed = True
        _killpg(self.entry.pgid, sig)

    def _write(self) -> None:
        end = min(self.written + _CHUNK, len(self.request))
        try:
            self.written += os.write(self.stdin_fd, self.request[self.written : end])
        except BlockingIOError:
            return
        except OSError as exc:
            # EPIPE: the delegate closed stdin or exited without reading it all.  Not
            # our failure: stop writing and judge whatever it answered.
            if exc.errno not in (errno.EPIPE, errno.EINVAL):
                raise
            self._close_fd(self.stdin_fd)
            return
        if self.written >= len(self.request):
            # Closing stdin is the end-of-request signal the protocol promises.
            self._close_fd(self.stdin_fd)

    def _read_stdout(self) -> bool:
        data = self._read(self.stdout_fd)
        if data is None:
            return False
        room = self.limits.stdout_cap - len(self.stdout)
        if len(data) > room:
            self.stdout += data[:room]
            self.stdout_truncated = True
            # The answer is lost: stop the group at once and read no more of it.
            self._kill(signal.SIGKILL)
            self._close_fd(self.stdout_fd)
        else:
            self.stdout += data
        return True

    def _read_stderr(self) -> bool:
        data = self._read(self.stderr_fd)
        if data is None:
            return False
        self.stderr_bytes += len(data)
        keep = self.limits.stderr_tail
        if keep:
            self.stderr += data
            # Trim in batches so a flood costs O(n), not a copy per chunk; memory stays
            # below twice the tail plus one chunk.
            if len(self.stderr) > 2 * keep:
                del self.stderr[:-keep]
        return True

    def _read(self, fd: int) -> bytes | None:
        """One chunk from ``fd``; None when there was nothing or it reached EOF."""
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return None
        if not data:
            self._close_fd(fd)
            return None
        return data

    def _drain(self) -> None:
        """Read what is still buffered in the pipes, without waiting for more."""
        streams = ((self.stdout_fd, self._read_stdout), (self.stderr_fd, self._read_stderr))
        for fd, read in streams:
            for _ in range(_FINAL_DRAIN // _CHUNK):
                if fd not in self.open_fds or not read():
                    break

    def _close_fd(self, fd: int) -> None:
        if fd not in self.open_fds:
            return
        self.open_fds.discard(fd)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(fd)
        stream = {
            self.stdin_fd: self.proc.stdin,
            self.stdout_fd: self.proc.stdout,
            self.stderr_fd: self.proc.stderr,
        }[fd]
        # Close the file object, not the bare fd, so Popen never closes a reused number.
        with contextlib.suppress(OSError):
            if stream is not None:
                stream.close()

    def _close(self) -> None:
        for fd in list(self.open_fds):
            self._close_fd(fd)
        self.sel.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _killpg(pgid: int, sig: signal.Signals) -> None:
    # ESRCH: the group is already gone.  EPERM: only members that changed their
    # credentials are left, and signalling them is not ours to do.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _check_nul(argv: tuple[str, ...], env: Mapping[str, str]) -> None:
    # A JSON registry can carry "\u0000"; execve cannot.  Say so instead of the
    # ValueError Popen would raise.
    for arg in argv:
        if "\0" in arg:
            raise SpawnError(argv[0], f"argument {arg!r} contains a NUL character")
    for name, value in env.items():
        if "\0" in name or "\0" in value or "=" in name:
            raise SpawnError(argv[0], f"environment variable {name!r} cannot be passed")


def _spawn_error(command: str, executable: str | None, exc: OSError) -> SpawnError:
    """A SpawnError with the OS reason, made plainer for the usual confusions."""
    code = exc.errno
    reason = os.strerror(code) if code is not None else str(exc)
    named = executable or (command if "/" in command else None)
    path = Path(named) if named is not None else None
    if path is not None and path.exists():
        if path.is_dir():
            reason = f"{reason} (it is a directory)"
        elif code == errno.EACCES and not os.access(path, os.X_OK):
            reason = f"{reason} (the file is not executable)"
        elif code == errno.ENOENT:
            # The file is there, so what is missing is the interpreter on its #! line.
            reason = f"{reason} (the interpreter named on its #! line is missing?)"
    elif path is None and code == errno.ENOENT:
        reason = f"{reason} (not found on PATH)"
    return SpawnError(command, reason, errno_code=code)


def _remove_tree(path: str) -> None:
    """Remove the private directory, even one the delegate made unreadable."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError:
        # A delegate may chmod its directories to 0; give them back (never through a
        # symlink, which could point anywhere) and try once more.
        with contextlib.suppress(OSError):
            Path(path).chmod(0o700)
        for dirpath, dirnames, _files in os.walk(path):
            for name in dirnames:
                sub = Path(dirpath, name)
                if not sub.is_symlink():
                    with contextlib.suppress(OSError):
                        sub.chmod(0o700)
        shutil.rmtree(path, ignore_errors=True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} bytes"
