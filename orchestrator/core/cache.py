"""The cache: delegates' exact answer bytes, filed by what was asked of what.

One verified and bounded store (``Store``) holds every kept answer; each user reads and
writes it through a namespace (``Space``):

* ``describe``: the ``describe`` answers of every delegate: who it is does not change
  while its code does not, so a warm plan asks nothing;
* ``responses``: the ``configure`` answers of a delegate whose registry entry says
  ``"cache": true`` or whose ``describe`` answer says ``"pure": true``.

The namespaces share the store's folder and its bound, and their keys never meet: the
request is part of every key, and a describe request is no configure request.

The key (``entry_key``) is the SHA-256 of the command's digest (``digest.command_digest``:
the executable's bytes, its arguments and the files they name, the files of the Python
distribution whose code runs, the entry's ``inputs``), the full resolved argv, the
values of the variables the entry passes through, and the exact request bytes; so a
changed fragment, argv, environment, executable or code is simply another key.
``--no-cache`` neither reads nor writes either namespace.

Entries live flat under ``$XDG_CACHE_HOME/bakeplan/responses/`` (``~/.cache`` when
unset), one file per key: a header line ``bakeplan-response/1 KEY SHA256 LENGTH`` and
then the answer bytes.  A read checks all four, so a truncated, damaged or misfiled
entry is a miss (and the fresh answer replaces it), never a wrong answer.

Many bakeplan processes may share the folder at once.  Writers write a temporary file
in the folder and rename it over the entry, so readers see a whole entry or none.
Readers take no lock: an entry evicted under them is a miss (or, when already open,
still read whole).  Sizes are kept in a small ledger (the ``.ledger`` file, its number
updated under ``flock``) so that a write costs one locked read-add-write; only a write
that takes the total over the bound (default 64 MiB, ``BAKEPLAN_CACHE_MAX_BYTES``)
scans the folder, and then removes the least recently used entries (a hit touches its
entry's mtime) until the total is below 90% of the bound.  The scan also puts the
ledger right again, whatever crashes or races left it at.

A cache that cannot be read or written (a read-only folder, a full disk) is only slower:
nothing on a plan's path raises, and the reason goes to the store's ``note`` (shown with
``--verbose``).  ``clear`` (``bakeplan cache clear``) empties the store and the other
folders of the cache home (``FOLDERS``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.core import digest
from orchestrator.core.registry import Entry, cache_home
from orchestrator.errors import InputError
from orchestrator.output import write_atomic

FORMAT = "bakeplan-response/1"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_BYTES_VAR = "BAKEPLAN_CACHE_MAX_BYTES"
SUFFIX = ".answer"
LEDGER = ".ledger"
# Evict down to this share of the bound, so that the writes after an eviction do not
# each pay for another scan.
LOW_WATER = 0.9
# A temporary file this old was left by a writer that died; the next scan removes it.
STALE_SECONDS = 3600.0
# Longer than any header line: the format word, a key, a digest and a length.
_HEADER_MAX = 256


# The namespaces of the store (see the module docstring).
DESCRIBE = "describe"
RESPONSES = "responses"
NAMESPACES = (DESCRIBE, RESPONSES)
# The store's folder under the cache home.
STORE_FOLDER = "responses"
# Every folder of the cache home, and what ``cache clear`` calls its files: the store
# (all its namespaces), the folder earlier versions kept describe answers in, and which
# code each Python delegate runs (``installed.py``: only found again when gone).
FOLDERS = (
    ("answers", STORE_FOLDER),
    ("earlier describe answers", "describe"),
    ("found delegate code", "code"),
)


def folder(environ: Mapping[str, str] | None = None) -> Path:
    """Where the store keeps its entries: ``$XDG_CACHE_HOME/bakeplan/responses``."""
    return cache_home(environ) / STORE_FOLDER


def max_bytes(environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """The size bound from ``BAKEPLAN_CACHE_MAX_BYTES`` and, when that is not a whole
    number of bytes, the note saying the default is used instead (a stray variable must
    not stop every bake)."""
    environ = os.environ if environ is None else environ
    text = environ.get(MAX_BYTES_VAR, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES, ""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        return DEFAULT_MAX_BYTES, (
            f"{MAX_BYTES_VAR}={text!r} is not a whole number of bytes; "
            f"using {DEFAULT_MAX_BYTES} bytes"
        )
    return value, ""


def key_of(
    argv: Sequence[str],
    request: bytes,
    *,
    passed: Mapping[str, str | None] | None = None,
    extra: str = "",
    inputs: Sequence[str] = (),
    folder: str | Path | None = None,
) -> str:
    """The key of ``request`` sent to the resolved ``argv``; ``OSError`` when the
    executable cannot be read.  ``passed`` holds the values of the variables the entry
    passes through (None when unset): they reach the delegate, so they are input too.
    ``inputs`` (relative to ``folder``) are the entry's further files."""
    head = json.dumps(
        [
            FORMAT,
            digest.command_digest(argv, extra=extra, inputs=inputs, folder=folder),
            list(argv),
            sorted((passed or {}).items()),
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # json.dumps writes no raw newline, so the request bytes after it cannot be
    # mistaken for part of the head.
    return hashlib.sha256(head.encode("utf-8") + b"\n" + request).hexdigest()


def entry_key(entry: Entry, argv: Sequence[str], request: bytes, env: Mapping[str, str]) -> str:
    """The key of ``request`` sent to ``entry`` run as the resolved ``argv`` with the
    environment ``env``: its command's code, its ``inputs``, the values of the variables
    it passes through, and the request's bytes (``OSError``: unreadable executable)."""
    return key_of(
        argv,
        request,
        passed={name: env.get(name) for name in entry.env},
        extra=entry.package,
        inputs=entry.inputs,
        folder=entry.folder,
    )


def encoded(key: str, answer: bytes) -> bytes:
    """An entry's bytes: the header line that ``verified`` checks, then the answer."""
    header = f"{FORMAT} {key} {hashlib.sha256(answer).hexdigest()} {len(answer)}\n"
    return header.encode("ascii") + answer


def verified(data: bytes, key: str) -> bytes | None:
    """The answer bytes of an entry's ``data`` when it is whole and filed under ``key``."""
    head, newline, answer = data.partition(b"\n")
    if not newline:
        return None
    parts = head.split(b" ")
    if len(parts) != 4 or parts[0] != FORMAT.encode("ascii") or parts[1] != key.encode("ascii"):
        return None
    if not (parts[3].isascii() and parts[3].isdigit()) or int(parts[3]) != len(answer):
        return None
    if hashlib.sha256(answer).hexdigest().encode("ascii") != parts[2]:
        return None
    return answer


def _silent(message: str) -> None:
    del message


@dataclass(frozen=True, kw_only=True)
class Space:
    """One namespace of a store, as one run uses it: whose answers it keeps."""

    store: Store
    name: str
    delegates: frozenset[str] | None = None  # the names whose answers it keeps; None: all

    def wants(self, delegate: str) -> bool:
        """Whether ``delegate``'s answers are looked up and kept."""
        return self.delegates is None or delegate in self.delegates

    def key(self, entry: Entry, argv: Sequence[str], request: bytes, env: Mapping[str, str]) -> str:
        """``entry_key``, for callers that hold the cache but do not import this module."""
        return entry_key(entry, argv, request, env)

    def get(self, key: str, *, touch: bool = True) -> bytes | None:
        """The answer filed under ``key`` (``Store.get``)."""
        return self.store.get(key, touch=touch)

    def put(self, key: str, answer: bytes) -> None:
        """File ``answer`` under ``key`` (``Store.put``); never raises."""
        self.store.put(key, answer)


@dataclass(frozen=True, kw_only=True)
class Store:
    """The verified, bounded store: where, how big, and where its notes go."""

    folder: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    note: Callable[[str], None] = _silent
    _noted: set[str] = field(default_factory=set, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def space(self, name: str, delegates: Iterable[str] | None = None) -> Space:
        """The namespace ``name``, keeping the answers of ``delegates`` (None: of all)."""
        if name not in NAMESPACES:
            raise ValueError(f"no cache namespace {name!r}")
        kept = None if delegates is None else frozenset(delegates)
        return Space(store=self, name=name, delegates=kept)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}{SUFFIX}"

    def _say(self, message: str) -> None:
        """``message`` once per run: one unwritable folder is one note, not one per run."""
        with self._lock:
            if message in self._noted:
                return
            self._noted.add(message)
        self.note(message)

    def get(self, key: str, *, touch: bool = True) -> bytes | None:
        """The answer filed under ``key``, or None (absent, damaged, unreadable).
        ``touch=False`` only looks (a dry run): the entry's age is left as it is."""
        path = self.path(key)
        try:
            with path.open("rb") as stream:
                data = stream.read(self.max_bytes + _HEADER_MAX)
        except (FileNotFoundError, NotADirectoryError):
            return None  # not kept (yet), or no folder at all: put() says why if it matters
        except OSError as exc:
            self._say(f"cannot read the response cache in {self.folder}: {exc.strerror}")
            return None
        answer = verified(data, key)
        if answer is None:
            return None
        if touch:
            # Least recently *used*: a hit counts.  An entry evicted meanwhile is no loss.
            with contextlib.suppress(OSError):
                os.utime(path)
        return answer

    def put(self, key: str, answer: bytes) -> None:
        """File ``answer`` under ``key``; evict the least recently used entries when the
        cache grows past its bound.  Never raises: a cache not written is only slower."""
        data = encoded(key, answer)
        if len(data) > self.max_bytes:
            return  # it could never stay: storing it would only evict everything else
        target = self.path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._not_written(exc)
            return
        try:
            replaced = target.stat().st_size
        except OSError:
            replaced = 0
        # No fsync: after a crash a half-written entry fails verification and is a miss,
        # so durability would buy nothing but time on every miss.
        if not write_atomic(target, data, mode=0o600, fsync=False, on_error=self._not_written):
            return
        self._account(len(data) - replaced)

    def _not_written(self, exc: OSError) -> None:
        self._say(f"not caching answers: cannot write in {self.folder}: {exc.strerror}")

    def _account(self, delta: int) -> None:
        """Add ``delta`` bytes to the ledger; scan and evict when over the bound."""
        try:
            fd = os.open(self.folder / LEDGER, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            self._say(f"cannot keep the response cache's size in {self.folder}: {exc.strerror}")
            return
        try:
            # One writer at a time in the ledger, across processes and threads alike
            # (each open file description is its own flock owner).
            fcntl.flock(fd, fcntl.LOCK_EX)
            total = _read_ledger(fd)
            total = None if total is None else total + delta
            if total is None or total > self.max_bytes:
                total = self._evict()
            _write_ledger(fd, total)
        except OSError as exc:
            self._say(f"cannot keep the response cache's size in {self.folder}: {exc.strerror}")
        finally:
            os.close(fd)  # releases the lock

    def _evict(self) -> int:
        """Scan the folder, remove least recently used entries until under the low-water
        mark if over the bound, and return the bytes that stay.  Called under the lock."""
        entries: list[tuple[int, str, int]] = []
        total = 0
        stale = time.time() - STALE_SECONDS
        with os.scandir(self.folder) as scan:
            for item in scan:
                try:
                    info = item.stat(follow_symlinks=False)
                except OSError:
                    continue  # removed meanwhile
                if item.name.endswith(SUFFIX) and item.is_file(follow_symlinks=False):
                    entries.append((info.st_mtime_ns, item.name, info.st_size))
                    total += info.st_size
                elif item.name.endswith(".tmp") and info.st_mtime < stale:
                    with contextlib.suppress(OSError):
                        Path(item.path).unlink()
        if total <= self.max_bytes:
            return total
        goal = int(self.max_bytes * LOW_WATER)
        for _, name, size in sorted(entries):
            if total <= goal:
                break
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()
            total -= size
        return total


def _read_ledger(fd: int) -> int | None:
    """The ledger's total, or None when it is new or damaged (then a scan decides)."""
    text = os.pread(fd, 32, 0).strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _write_ledger(fd: int, total: int) -> None:
    encoded = f"{max(total, 0)}\n".encode("ascii")
    os.ftruncate(fd, 0)
    os.pwrite(fd, encoded, 0)


def store(
    *, note: Callable[[str], None] | None = None, environ: Mapping[str, str] | None = None
) -> Store:
    """The store in the folder and with the bound the environment gives; ``note`` hears
    why it cannot be used (once per reason), the bound's own problem first."""
    bound, problem = max_bytes(environ)
    made = Store(folder=folder(environ), max_bytes=bound, note=note or _silent)
    if problem:
        made.note(problem)
    return made


# -- bakeplan cache clear -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Cleared:
    """What ``clear`` removed from one folder."""

    what: str
    folder: Path
    files: int
    size: int


def clear(environ: Mapping[str, str] | None = None) -> tuple[Cleared, ...]:
    """Empty every folder of the cache home (``FOLDERS``): the store, every namespace at
    once, and the others when they are there; say what each held.

    The folders are flat.  Files another bakeplan removes meanwhile are no failure;
    ``InputError`` (exit 2) when a file or a folder stays because it cannot be removed.
    """
    base = cache_home(environ)
    return tuple(
        _clear_folder(what, base / name)
        for what, name in FOLDERS
        if name == STORE_FOLDER or (base / name).exists()
    )


def _clear_folder(what: str, where: Path) -> Cleared:
    files = size = 0
    problems: list[str] = []
    try:
        with os.scandir(where) as scan:
            items = list(scan)
    except FileNotFoundError:
        items = []
    except OSError as exc:
        raise InputError(f"cannot read the {what} cache: {exc.strerror}", file=str(where)) from None
    for item in items:
        try:
            length = item.stat(follow_symlinks=False).st_size
            if item.is_dir(follow_symlinks=False):
                shutil.rmtree(item.path)
            else:
                Path(item.path).unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"{item.path}: {exc.strerror}")
            continue
        # The ledger and half-written files are bookkeeping, not answers.
        if item.name != LEDGER and not item.name.endswith(".tmp"):
            files += 1
            size += length
    try:
        where.rmdir()
    except OSError as exc:
        # Absent, or refilled by a bakeplan running meanwhile: both are fine.
        if not problems and exc.errno not in (errno.ENOENT, errno.ENOTEMPTY):
            problems.append(f"{where}: {exc.strerror}")
    if problems:
        raise InputError(f"cannot remove the {what} cache", file=str(where), detail=problems)
    return Cleared(what=what, folder=where, files=files, size=size)
