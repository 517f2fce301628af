"""Writing results: atomically to a file, or to stdout.

An output file is written to a temporary file in the same folder and renamed over the
target only once complete, so a failure or an interrupt leaves no file behind and an
existing file untouched.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from orchestrator.errors import InputError


def write_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once, or leave it as it was."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path()
    import tempfile  # noqa: PLC0415  (stdout, the common case, needs none)

    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write output: {exc.strerror}", file=str(target)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        # Keep the permissions a plain open() would give, not mkstemp's 0600.
        umask = os.umask(0)
        os.umask(umask)
        Path(temporary).chmod(0o666 & ~umask)
        Path(temporary).replace(target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        if isinstance(exc, OSError):
            raise InputError(f"cannot write output: {exc.strerror}", file=str(target)) from None
        raise


def emit(text: str, path: str | None) -> None:
    """``text`` to ``path`` atomically, or to stdout when no path (or ``-``) is given."""
    if path is None or path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(path, text)
