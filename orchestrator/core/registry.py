"""Delegate entries: where registry files are found, what they say, and which to trust.

Search order (the contract's): every ``-r/--registry FILE`` given; else the
colon-separated paths in ``BAKEPLAN_REGISTRY``; else ``./bakeplan-registry.json`` and
``$XDG_CONFIG_HOME/bakeplan/registry.json`` where they exist.  When two files define one
name, the first file in that order wins, so a project's registry shadows the user's.

A registry file, or a delegate's executable, that group or others may write is refused,
as ssh refuses such a key: whoever can write it can run code as the user who bakes.

Installed Python packages may declare delegates under the entry-point group
``bakeplan.delegates`` (``NAME = "module:ATTRIBUTE"``, the attribute an
``orchestrator.sdk.Delegate``).  They come last, after every registry file, and claim
nothing: installing a package never changes how a config is split.  A user gives them
parts with ``--delegate POINTER=NAME`` or ``bakeplan delegates add NAME``.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.core import jsontext
from orchestrator.core.config import RUMPRUN_KEYS
from orchestrator.errors import BakeplanError, InputError, raise_all
from orchestrator.pointers import pointer_of, tokens_of
from orchestrator.schemas import explainer
from orchestrator.suggest import did_you_mean

BUILTIN = "rumprun"
DEFAULT_TIMEOUT = 30.0
ENV_VAR = "BAKEPLAN_REGISTRY"


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One delegate as a registry file declares it."""

    name: str
    command: tuple[str, ...]
    claims: tuple[str, ...]
    timeout: float = DEFAULT_TIMEOUT
    env: tuple[str, ...] = ()
    cache: bool = False
    # Files or globs (relative to the registry file's folder) whose bytes enter the
    # cache keys: what the delegate reads that its command does not show.
    inputs: tuple[str, ...] = ()
    source: str = ""
    # For a delegate declared by an installed Python package (entry-point group
    # ``bakeplan.delegates``): "DIST VERSION"; empty for registry-file entries.
    package: str = ""

    @property
    def folder(self) -> Path:
        """The registry file's folder, against which a command with a slash resolves."""
        return Path(self.source).parent

    @property
    def portable_command(self) -> tuple[str, ...]:
        """The command as the plan records it: as registered, except that a package's
        delegate is named without this machine's interpreter and site paths (plans must
        not depend on where bakeplan is installed)."""
        if self.package:
            return ("python", "-m", "orchestrator.sdk", self.command[-1])
        return self.command


@dataclass(frozen=True)
class Registry:
    """The entries in effect, by name, first definition winning."""

    entries: tuple[Entry, ...]
    files: tuple[str, ...]
    # What reading the files found worth saying (a claim that looks like a typo); the
    # command line shows it.
    warnings: tuple[str, ...] = ()

    def get(self, name: str) -> Entry | None:
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None

    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def unknown(self, name: str) -> InputError:
        """The error for a name nobody registered, with the closest known name."""
        known = (*self.names(), BUILTIN)
        return InputError(
            f"unknown delegate {name!r}",
            hint=did_you_mean(name, known) or f"known: {', '.join(known)}",
        )


# Top-level keys no config can have: a config holding one is refused as the legacy
# dialect, so a claim there would never run.  Each with where the specification says it.
_LEGACY_KEYS = {"cmdline": "/rc", "rc_TESTING": "/rc", "hostname": "/netbsd/sysctl/kern.hostname"}


def _distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from ``a`` to ``b``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def claim_problem(pointer: str) -> str | None:
    """Why a claim can never own a part of any config, naming the closest known pointer;
    None for a claim that can.

    A claim under one of rumprun's keys can.  So can one under a key of the delegate's
    own that resembles none of them (a config may carry such a section for it).  A key
    a letter or two away from one of rumprun's (``/nett``, ``/Net``, ``/mounts``) is a
    typo: the config's part stays rumprun's, silently.  A legacy key (``/cmdline``) is in
    no config bakeplan accepts.
    """
    try:
        tokens = tokens_of(pointer)
    except BakeplanError:
        return None  # not a pointer: the registry schema says so
    if not tokens or tokens[0] in RUMPRUN_KEYS:
        return None
    top, rest = tokens[0], tokens[1:]
    if top in _LEGACY_KEYS:
        return (
            f"claims {pointer}, but {top!r} is a key of rumprun's legacy dialect, which no "
            f"config bakeplan reads may have; did you mean {_LEGACY_KEYS[top]}?"
        )
    limit = 1 if len(top) <= 4 else 2
    for key in RUMPRUN_KEYS:
        if top.lower() == key or _distance(top.lower(), key) <= limit:
            return (
                f"claims {pointer}, but rumprun's config has no key {top!r}: the part it "
                f"means would stay rumprun's; did you mean {pointer_of((key, *rest))}?"
            )
    return None


# Claim warnings already given by this process: a registry read again (``bakeplan diff``
# plans two configs) does not repeat them.
_warned: set[str] = set()


def _claim_warnings(path: Path, text: str, document: dict[str, Any]) -> list[str]:
    """A located warning for each claim ``claim_problem`` refuses, once per process: a
    registry written by hand is still read, as it always was."""
    found = []
    for index, item in enumerate(document["delegates"]):
        for number, claim in enumerate(item["claims"]):
            problem = claim_problem(claim)
            if problem is None:
                continue
            at = f"/delegates/{index}/claims/{number}"
            line, col = jsontext.locate(text, at) or (None, None)
            where = f"{path}:{line}:{col}" if line is not None else str(path)
            message = f"{where}: delegate {item['name']!r} {problem}"
            if message not in _warned:
                _warned.add(message)
                found.append(message)
    return found


def _refuse_writable(path: Path, what: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}", file=str(path)) from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = " and ".join(
            w for w, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if mode & bit
        )
        raise InputError(
            f"{what} is writable by {who} (mode {stat.S_IMODE(mode):04o}); refusing to trust it",
            file=str(path),
            hint=f"chmod go-w {path}",
        )


def load_file(path: str | Path) -> tuple[Entry, ...]:
    """The entries of one registry file, checked against the registry schema."""
    return read_file(path)[0]


def read_file(path: str | Path) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
    """The entries of one registry file, checked against the registry schema, and the
    warnings about its claims."""
    path = Path(path)
    _refuse_writable(path, "registry file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read registry: {exc.strerror}", file=str(path)) from None
    document = jsontext.parse(data, source=str(path))
    text = data.decode("utf-8")
    problems: list[BakeplanError] = [
        InputError(
            v.message,
            file=str(path),
            line=(pos := jsontext.locate(text, v.pointer) or (None, None))[0],
            col=pos[1],
            pointer=v.pointer,
            detail=(f"expected: {v.expected}",) if v.expected else (),
        )
        for v in explainer.violations("registry", document)
    ]
    raise_all(problems)
    warnings = _claim_warnings(path, text, document)
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(document["delegates"]):
        name = item["name"]
        if name in seen:
            line, col = jsontext.locate(text, f"/delegates/{index}/name") or (None, None)
            problems.append(
                InputError(
                    f"delegate {name!r} is defined twice (first as /delegates/{seen[name]})",
                    file=str(path),
                    line=line,
                    col=col,
                    pointer=f"/delegates/{index}/name",
                )
            )
            continue
        seen[name] = index
        entries.append(
            Entry(
                name=name,
                command=tuple(item["command"]),
                claims=tuple(item["claims"]),
                timeout=float(item.get("timeout", DEFAULT_TIMEOUT)),
                env=tuple(item.get("env", ())),
                cache=bool(item.get("cache", False)),
                inputs=tuple(item.get("inputs", ())),
                source=str(path),
            )
        )
    raise_all(problems)
    return tuple(entries), tuple(warnings)


def search_paths(
    explicit: Sequence[str], environ: Mapping[str, str], cwd: Path
) -> tuple[Path, ...]:
    """The registry files to read, in precedence order."""
    if explicit:
        return tuple(Path(p) for p in explicit)
    if environ.get(ENV_VAR):
        return tuple(Path(p) for p in environ[ENV_VAR].split(":") if p)
    found: list[Path] = []
    project = cwd / "bakeplan-registry.json"
    if project.is_file():
        found.append(project)
    user = user_registry_path(environ)
    if user.is_file():
        found.append(user)
    return tuple(found)


def cache_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/bakeplan`` (``~/.cache/bakeplan`` when unset): where the describe
    answers and the response cache are kept."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bakeplan"


def user_registry_path(environ: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/bakeplan/registry.json`` (``~/.config`` when unset)."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bakeplan" / "registry.json"


def discover(
    explicit: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    packages: bool = False,
) -> Registry:
    """Read every registry file in the search order; the first definition of a name wins.

    With ``packages``, the delegates installed packages declare come last.
    """
    environ = os.environ if environ is None else environ
    files = search_paths(explicit, environ, cwd or Path.cwd())
    entries: dict[str, Entry] = {}
    warnings: list[str] = []
    for path in files:
        found, said = read_file(path)
        warnings.extend(said)
        for entry in found:
            entries.setdefault(entry.name, entry)
    if packages:
        for entry in package_entries():
            entries.setdefault(entry.name, entry)
    return Registry(
        entries=tuple(entries.values()),
        files=tuple(str(p) for p in files),
        warnings=tuple(warnings),
    )


ENTRY_POINT_GROUP = "bakeplan.delegates"
_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")  # fullmatch: "$" passes "a\n"


def package_entries() -> tuple[Entry, ...]:
    """The delegates installed packages declare, sorted by name, without claims.

    Each runs as ``python -m orchestrator.sdk [--path FOLDER] module:ATTRIBUTE`` with
    this interpreter; ``--path`` names the package's folder when it is not in this
    interpreter's own site-packages, because a delegate's environment has no
    PYTHONPATH.  Badly named entry points are skipped: they are not ours to refuse.
    """
    from importlib import metadata  # noqa: PLC0415  (only when packages are asked for)

    site = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    found: dict[str, Entry] = {}
    for point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        if not _NAME.fullmatch(point.name) or point.name == BUILTIN or point.name in found:
            continue
        dist = point.dist
        command = [sys.executable, "-m", "orchestrator.sdk"]
        where = str(dist.locate_file("")) if dist is not None else ""
        if where and where not in site:
            command += ["--path", where]
        command.append(point.value)
        package = f"{dist.name} {dist.version}" if dist is not None else point.value
        found[point.name] = Entry(
            name=point.name,
            command=tuple(command),
            claims=(),
            source=f"package {package}",
            package=package,
        )
    return tuple(found.values())


def find_program(name: str, environ: Mapping[str, str]) -> str | None:
    """The executable a bare ``name`` runs: on ``environ``'s PATH, then beside the running
    bakeplan (where the reference delegates are installed even when that folder is not on
    PATH, as in a pipx or virtualenv install); None when neither has it."""
    found = shutil.which(name, path=environ.get("PATH", os.defpath))
    if found is None:
        beside = [sysconfig.get_path("scripts"), str(Path(sys.argv[0]).parent)]
        found = shutil.which(name, path=os.pathsep.join(beside))
    return found


def program_path(program: str, folder: Path, environ: Mapping[str, str]) -> Path | None:
    """Where the program of a command is, made absolute; None when nothing is there.

    A name with a slash is relative to ``folder`` (a registry file's, or the current
    one); a bare name is found by ``find_program`` (PATH, then beside bakeplan).
    Symlinks are kept: a virtualenv's python is a symlink whose folder is what makes it
    that virtualenv's.  Whether it may run is ``is_executable``'s to say.
    """
    if "/" in program:
        candidate = Path(program) if Path(program).is_absolute() else folder / program
        found = str(candidate) if candidate.exists() else None
    else:
        found = find_program(program, environ)
    if found is None:
        return None
    return Path(os.path.abspath(found))  # noqa: PTH100  (not resolve(): see the docstring)


def is_executable(path: Path) -> bool:
    """Whether ``path`` is a file this user may execute."""
    return path.is_file() and os.access(path, os.X_OK)


def resolve_command(entry: Entry, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The argv with its executable made absolute and checked, or ``InputError``.

    The program is found by ``program_path``, a name with a slash relative to the
    registry file's folder; then it must be executable, and trusted.
    """
    environ = os.environ if environ is None else environ
    program = entry.command[0]
    origin = entry.source if entry.package else f"registry {entry.source or '(built in)'}"
    where = f"delegate {entry.name!r} ({origin})"
    path = program_path(program, entry.folder, environ)
    if path is None:
        raise InputError(
            f"{where}: command {program!r} not found",
            hint="install it, or fix the command in the registry"
            if "/" in program
            else "install it or put its folder on PATH",
        )
    if not is_executable(path):
        raise InputError(f"{where}: {path} is not an executable file", hint=f"chmod +x {path}")
    # A symlink is kept, but the trust check judges its target.
    _refuse_writable(path, f"executable of delegate {entry.name!r}")
    return (str(path), *entry.command[1:])
