"""Writing results: to a file (``-o``), or to stdout.

What a path names decides how it is written, as a shell's ``>`` would treat it, but
without ever leaving half a file:

* a regular file, or nothing yet: a temporary file in the same folder is written whole
  and renamed over the path, so a failure or an interrupt leaves no file behind and an
  existing file untouched.  The new file keeps the old one's permission bits and, when
  bakeplan runs as root, its owner and group: replacing an output never widens or
  narrows who may read it;
* a symbolic link: followed (through every link), and its final target is written as
  above; the link stays a link.  A dangling link creates its target, as ``>`` does;
* a character or block device, a FIFO or a socket: opened and written in place, never
  replaced (``-o /dev/stdout``, ``-o /dev/full``, a named pipe a build step reads);
* a regular file with more than one hard link: refused.  Replacing it would silently
  split it from its other names, and writing it in place could leave every name
  half-written; copies made with ``cp -al`` must not change under a build either;
* a folder: refused.

``write_atomic`` is the one such writer: plan output, the user registry and the
response cache all go through it.  ``write_stdout`` writes every byte to stdout (a
short write is finished, never dropped).  Every failure is an ``InputError`` (exit 2)
naming the path, or ``<stdout>``, and the system's reason; only a reader of stdout that
went away is a ``BrokenPipeError``, which ``cli`` turns into exit 141 as a shell would.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import InputError

STDOUT = "<stdout>"


def _followed(path: Path) -> Path:
    """``path`` with every symbolic link on it followed (a dangling one too)."""
    if not path.is_symlink():
        return path
    return Path(os.path.realpath(path))


def _existing(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _refusal(path: Path, info: os.stat_result) -> OSError | None:
    """Why ``path`` (as ``info`` describes it) cannot be written at all, if it cannot."""
    if stat.S_ISDIR(info.st_mode):
        return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        error = OSError(
            errno.EMLINK,
            f"it has {info.st_nlink} hard links; replacing it would split it from the others, "
            f"and writing it in place could leave them all half-written",
        )
        error.filename = str(path)
        return error
    return None


def _in_place(path: Path, info: os.stat_result, payload: bytes) -> None:
    """Write ``payload`` into the device, FIFO or socket at ``path``."""
    if stat.S_ISSOCK(info.st_mode):
        import socket  # noqa: PLC0415  (only for this rare target)

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
            peer.connect(str(path))
            peer.sendall(payload)
        return
    # No O_TRUNC and no O_CREAT: the node is what it is.  O_NOCTTY so that writing to
    # a terminal's device never makes it bakeplan's controlling terminal.
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        _write_all(fd, payload)
    finally:
        os.close(fd)


def _write_all(fd: int, payload: bytes) -> None:
    """Every byte of ``payload`` to ``fd``; a short write is continued, not dropped."""
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _default_mode() -> int:
    """The permissions a plain ``open()`` would give, not mkstemp's 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _replace(
    target: Path, payload: bytes, info: os.stat_result | None, mode: int | None, fsync: bool
) -> None:
    """Write a temporary file beside ``target`` and rename it over ``target``."""
    import tempfile  # noqa: PLC0415  (stdout, the common case, needs none)

    temporary: str | None = None
    try:
        fd, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
        with os.fdopen(fd, "wb") as stream:
            stream.write(payload)
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
            if info is not None and os.geteuid() == 0:
                # Root replacing someone's file gives it back to them, not to root.
                os.fchown(stream.fileno(), info.st_uid, info.st_gid)
        if mode is None:
            mode = stat.S_IMODE(info.st_mode) if info is not None else _default_mode()
        Path(temporary).chmod(mode)
        Path(temporary).replace(target)
    except BaseException:
        if temporary is not None:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()
        raise


def write_atomic(
    path: str | Path,
    data: str | bytes,
    *,
    mode: int | None = None,
    fsync: bool = True,
    what: str = "output",
    on_error: Callable[[OSError], None] | None = None,
) -> bool:
    """Write ``data`` at ``path`` as the module docstring says: a regular file replaced
    all at once or left as it was, a device, FIFO or socket written in place.

    Args:
        path: the file to replace (or create); its folder must exist.
        data: text (written as UTF-8, newlines untranslated) or bytes.
        mode: the file's permissions whatever the umask; None keeps an existing file's,
            and gives a new one those a plain ``open()`` would (0666 less the umask).
        fsync: flush the data to disk before the rename.  A caller that can tell a
            half-written file on its own (the response cache verifies every entry) may
            skip it.
        what: names the file in the error, "cannot write {what}: ...".
        on_error: called with an ``OSError`` instead of raising ``InputError``, for a
            caller that carries on without the file.

    Returns:
        True when ``path`` was written; False when ``on_error`` took the error.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        target = _followed(Path(path))
        info = _existing(target)
        refused = _refusal(target, info) if info is not None else None
        if refused is not None:
            raise refused
        if info is not None and not stat.S_ISREG(info.st_mode):
            _in_place(target, info, payload)
        else:
            _replace(target, payload, info, mode, fsync)
    except OSError as exc:
        if on_error is None:
            raise InputError(
                f"cannot write {what}: {exc.strerror or exc}", file=str(path)
            ) from None
        on_error(exc)
        return False
    return True


def write_stdout(data: str | bytes, *, what: str = "output") -> None:
    """Every byte of ``data`` to stdout, after whatever ``sys.stdout`` still holds.

    ``BrokenPipeError`` when the reader went away; ``InputError`` (exit 2) for any other
    failure (a full disk behind ``> file``, ``> /dev/full``).
    """
    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
    except BrokenPipeError:
        raise
    except (AttributeError, ValueError, io.UnsupportedOperation):
        fd = -1  # a stream with no descriptor (a test's capture): write through it
    except OSError as exc:
        raise _stdout_error(what, exc) from None
    try:
        if fd < 0:
            sys.stdout.write(data if isinstance(data, str) else data.decode("utf-8"))
            sys.stdout.flush()
        else:
            _write_all(fd, data.encode("utf-8") if isinstance(data, str) else data)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _stdout_error(what, exc) from None


def flush_stdout() -> None:
    """Flush what others wrote to ``sys.stdout``, with ``write_stdout``'s errors."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _stdout_error("output", exc) from None
    except ValueError:
        pass  # already closed: nothing left to flush


def _stdout_error(what: str, exc: OSError) -> InputError:
    return InputError(f"cannot write {what}: {exc.strerror or exc}", file=STDOUT)


def deliver(text: str, path: str | None, *, what: str = "output") -> None:
    """``text`` to ``path`` (``-o``), or to stdout when no path (or ``-``) is given."""
    if path is None or path == "-":
        write_stdout(text, what=what)
    else:
        write_atomic(path, text, what=what)
