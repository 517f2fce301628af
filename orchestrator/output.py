"""Writing results: atomically to a file, or to stdout.

A file is written to a temporary file in the same folder and renamed over the target
only once complete, so a failure or an interrupt leaves no file behind and an existing
file untouched.  ``write_atomic`` is the one such writer: plan output, the user
registry and the response cache all go through it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import InputError


def write_atomic(
    path: str | Path,
    data: str | bytes,
    *,
    mode: int | None = None,
    fsync: bool = True,
    what: str = "output",
    on_error: Callable[[OSError], None] | None = None,
) -> bool:
    """Replace ``path`` with ``data`` all at once, or leave it as it was.

    Args:
        path: the file to replace (or create); its folder must exist.
        data: text (written as UTF-8, newlines untranslated) or bytes.
        mode: the file's permissions whatever the umask; None gives those a plain
            ``open()`` would (0666 less the umask).
        fsync: flush the data to disk before the rename.  A caller that can tell a
            half-written file on its own (the response cache verifies every entry) may
            skip it.
        what: names the file in the error, "cannot write {what}: ...".
        on_error: called with an ``OSError`` instead of raising ``InputError``, for a
            caller that carries on without the file.

    Returns:
        True when ``path`` was replaced; False when ``on_error`` took the error.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
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
        if mode is None:
            # The permissions a plain open() would give, not mkstemp's 0600.
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        Path(temporary).chmod(mode)
        Path(temporary).replace(target)
    except BaseException as exc:
        if temporary is not None:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()
        if not isinstance(exc, OSError):
            raise
        if on_error is None:
            raise InputError(f"cannot write {what}: {exc.strerror}", file=str(target)) from None
        on_error(exc)
        return False
    return True


def emit(text: str, path: str | None) -> None:
    """``text`` to ``path`` atomically, or to stdout when no path (or ``-``) is given."""
    if path is None or path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(path, text)
