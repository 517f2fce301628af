"""Content digests of delegate executables: what "an unchanged delegate" means.

The describe handshake (issue 6) and the answer cache (issue 7) both key their entries
by what a delegate *is*, not by where it is: the SHA-256 of the executable's bytes, plus
the rest of its argv and the bytes of any argument that names a file (so
``sh ./delegate.sh`` or ``python tool.py`` change key when the script changes).  A
digest is computed once per file per process unless the file's size, mtime or inode
moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

_CHUNK = 1024 * 1024
_lock = threading.Lock()
# (path, inode, size, mtime_ns) -> hex digest.
_memo: dict[tuple[str, int, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """The SHA-256 (hex) of a file's bytes; ``OSError`` when it cannot be read."""
    name = os.fspath(path)
    info = Path(name).stat()
    key = (name, info.st_ino, info.st_size, info.st_mtime_ns)
    with _lock:
        known = _memo.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with Path(name).open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with _lock:
        _memo[key] = value
    return value


def command_digest(argv: Sequence[str], *, extra: str = "") -> str:
    """The SHA-256 (hex) naming a resolved command: its executable's bytes, its
    arguments, the bytes of every argument that is a file, and ``extra`` (such as a
    Python package's version for an entry-point delegate)."""
    parts: list[object] = [file_sha256(argv[0])]
    for argument in argv[1:]:
        try:
            is_file = Path(argument).is_file()
        except (OSError, ValueError):
            is_file = False
        parts.append([argument, file_sha256(argument) if is_file else None])
    parts.append(extra)
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
