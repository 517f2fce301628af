"""Content digests of delegate executables: what "an unchanged delegate" means.

The describe handshake and the response cache both key their entries by what a
delegate *is*, not by where it is.  A command's digest covers:

* the bytes of its executable;
* the rest of its argv, and the bytes of any argument that names a file (so
  ``sh ./delegate.sh`` or ``python tool.py`` change key when the script changes);
* for an installed Python program (a console script, ``python -m MODULE``, a package
  delegate), every file of the distribution whose code runs, its sources for an
  editable install, and the versions of what it requires (``installed``);
* the files its registry entry's ``inputs`` name (paths or globs, relative to the
  registry file's folder), so a delegate that reads a file of its own can say so;
* ``extra`` (a package delegate's "DIST VERSION").

A file's digest is computed once per process unless its size, mtime or inode moved.
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


def _maybe_sha256(path: str) -> str | None:
    """A file's digest, or None when it is gone or unreadable (a key all the same)."""
    try:
        return file_sha256(path)
    except OSError:
        return None


def inputs_digest(patterns: Sequence[str], folder: str | Path | None = None) -> list[object]:
    """Each pattern of a registry entry's ``inputs`` with the files it matches now and
    their digests.  Relative patterns are taken from ``folder``; a folder matched stands
    for every file under it; a pattern matching nothing is part of the key as such, so
    that the file appearing later is another key."""
    import glob  # noqa: PLC0415  (only for entries with inputs)

    from orchestrator.core.installed import files_under  # noqa: PLC0415

    base = Path(folder) if folder is not None else Path.cwd()
    parts: list[object] = []
    for pattern in patterns:
        anchored = pattern if Path(pattern).is_absolute() else str(base / pattern)
        # glob, not Path.glob: a pattern may be absolute, and Path.glob takes none.
        matches = sorted(glob.glob(anchored, recursive=True))  # noqa: PTH207
        files = sorted(set(files_under(matches)))
        parts.append([pattern, [[name, _maybe_sha256(name)] for name in files]])
    return parts


def command_digest(
    argv: Sequence[str],
    *,
    extra: str = "",
    inputs: Sequence[str] = (),
    folder: str | Path | None = None,
) -> str:
    """The SHA-256 (hex) naming a resolved command: what the module docstring lists.
    ``OSError`` when the executable cannot be read."""
    parts: list[object] = [file_sha256(argv[0])]
    for argument in argv[1:]:
        try:
            is_file = Path(argument).is_file()
        except (OSError, ValueError):
            is_file = False
        parts.append([argument, file_sha256(argument) if is_file else None])
    parts.append(extra)
    from orchestrator.core.installed import code_of  # noqa: PLC0415

    code = code_of(argv)
    if code:
        parts.append(
            [[c.as_json(), [[name, _maybe_sha256(name)] for name in c.files]] for c in code]
        )
    if inputs:
        parts.append(inputs_digest(inputs, folder))
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
