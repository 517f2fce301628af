"""The ``bakeplan delegates`` commands that manage entries: add, remove, list, show.

``add`` and ``remove`` change the user registry (``$XDG_CONFIG_HOME/bakeplan/registry.json``)
and nothing else.  Each change reads, edits and rewrites the file under an exclusive
``flock`` on ``registry.json.lock`` beside it, so concurrent ``add``s all land, and the
file is replaced atomically with mode 0644 (the trust check refuses group- or
other-writable registries).  A command is stored with its program made absolute, so the
entry works from any folder; without ``--claim``, the claims are those the delegate
suggests in ``describe``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.core import registry as registries
from orchestrator.core.config import RUMPRUN_KEYS
from orchestrator.core.registry import BUILTIN, DEFAULT_TIMEOUT, Entry, Registry
from orchestrator.errors import InputError, UsageError, raise_all
from orchestrator.output import write_atomic

__all__ = ["NewEntry", "add", "entry_json", "find", "listing", "remove", "show"]


@dataclass(frozen=True, kw_only=True)
class NewEntry:
    """What ``delegates add`` was asked to register."""

    name: str
    command: tuple[str, ...]
    claims: tuple[str, ...] = ()
    timeout: float | None = None
    env: tuple[str, ...] = ()
    cache: bool = False
    inputs: tuple[str, ...] = ()  # globs, made absolute from the current folder
    replace: bool = False


def entry_json(entry: Entry) -> dict[str, Any]:
    """An entry as the registry file writes it, with where it comes from."""
    document: dict[str, Any] = {
        "name": entry.name,
        "command": list(entry.command),
        "claims": list(entry.claims),
        "timeout": entry.timeout,
        "env": list(entry.env),
        "cache": entry.cache,
        "inputs": list(entry.inputs),
    }
    if entry.package:
        dist, _, version = entry.package.partition(" ")
        document["source"] = {"kind": "package", "package": dist, "version": version}
    else:
        document["source"] = {"kind": "registry", "path": entry.source}
    return document


# -- the user registry, under a lock -----------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock for read-modify-write of ``path`` (its folder made if missing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InputError(f"cannot lock the user registry: {exc.strerror}", file=str(path)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read(path: Path) -> list[dict[str, Any]]:
    """The user registry's entries as written (checked and trusted), [] when absent."""
    if not path.exists():
        return []
    registries.load_file(path)  # trust, strict JSON, schema: refuse to edit a bad file
    document = json.loads(path.read_bytes())
    return list(document["delegates"])


def _write(path: Path, entries: Sequence[Mapping[str, Any]]) -> None:
    """Replace the registry atomically, mode 0644 whatever the umask."""
    text = json.dumps({"delegates": list(entries)}, indent=2, ensure_ascii=False) + "\n"
    write_atomic(path, text, mode=0o644, what="the user registry")


# -- add and remove ----------------------------------------------------------------------------


def _absolute_program(program: str, environ: Mapping[str, str]) -> str:
    """``program`` made absolute as ``registry.program_path`` finds it (a path with a slash
    from the current folder, where the user typed it), checked to be executable."""
    path = registries.program_path(program, Path.cwd(), environ)
    if path is None:
        raise InputError(
            f"command {program!r} not found",
            hint="give a path, or put the program's folder on PATH",
        )
    if not registries.is_executable(path):
        raise InputError(f"{path} is not an executable file", hint=f"chmod +x {path}")
    return str(path)


def sdk_command(spec: str) -> tuple[str, ...]:
    """The command that serves the ``Delegate`` in a Python file with bakeplan's own
    interpreter, which has ``orchestrator.sdk`` whatever PATH holds when it runs:
    ``FILE.py[:ATTRIBUTE]`` becomes ``python -m orchestrator.sdk --path FOLDER
    MODULE:ATTRIBUTE``, as bakeplan runs a package's delegates."""
    import sys  # noqa: PLC0415

    file, _, attribute = spec.partition(":")
    path = Path(file)
    if path.suffix != ".py" or not path.stem.isidentifier():
        raise UsageError(
            f"--sdk {spec}: not a Python file with an importable name (name.py)",
            hint="name it like a Python module, such as hostname_lower.py",
        )
    if not path.is_file():
        raise InputError(f"--sdk {spec}: no such file", file=file)
    folder = os.path.abspath(path.parent)  # noqa: PTH100  (symlinks kept, as for commands)
    target = f"{path.stem}:{attribute or 'DELEGATE'}"
    return (sys.executable, "-m", "orchestrator.sdk", "--path", folder, target)


def _schema_check(document: dict[str, Any], path: Path) -> None:
    from orchestrator.schemas import explainer  # noqa: PLC0415

    raise_all(
        [
            UsageError(f"the new entry would break the registry schema: {v.line()}", file=str(path))
            for v in explainer.violations("registry", document)
        ]
    )


def add(
    new: NewEntry,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Register ``new`` in the user registry; the file and the entry as written.

    Without a command, a delegate an installed package declares is registered with its
    own command.  Without claims, the delegate's ``describe`` suggests them.
    """
    environ = os.environ if environ is None else environ
    path = registries.user_registry_path(environ)
    command = new.command
    if not command:
        package = next((e for e in registries.package_entries() if e.name == new.name), None)
        if package is None:
            raise UsageError(
                f"no command given for {new.name!r}",
                hint=f"bakeplan delegates add {new.name} --claim POINTER -- COMMAND ARGS...",
            )
        command = package.command
    command = (_absolute_program(command[0], environ), *command[1:])
    claims = new.claims or _suggested_claims(new, command)
    refused = [(c, registries.claim_problem(c)) for c in claims]
    raise_all(
        [
            UsageError(
                f"delegate {new.name!r} {problem}",
                hint="a key of the delegate's own is fine when it is not a letter or two "
                f"away from one of rumprun's ({', '.join(RUMPRUN_KEYS)})",
            )
            for _, problem in refused
            if problem is not None
        ]
    )
    entry: dict[str, Any] = {"name": new.name, "command": list(command), "claims": list(claims)}
    if new.timeout is not None:
        entry["timeout"] = new.timeout
    if new.env:
        entry["env"] = list(new.env)
    if new.cache:
        entry["cache"] = True
    if new.inputs:
        # The user registry is elsewhere: a relative glob means the folder it was given in.
        entry["inputs"] = [os.path.abspath(p) for p in new.inputs]  # noqa: PTH100
    _schema_check({"delegates": [entry]}, path)
    with _locked(path):
        entries = _read(path)
        at = next((i for i, e in enumerate(entries) if e["name"] == new.name), None)
        if at is not None and not new.replace:
            raise UsageError(
                f"delegate {new.name!r} is already in the user registry",
                file=str(path),
                hint=f"bakeplan delegates remove {new.name}, or add --replace",
            )
        if at is None:
            entries.append(entry)
        else:
            entries[at] = entry
        _write(path, entries)
    return path, entry


def _suggested_claims(new: NewEntry, command: tuple[str, ...]) -> tuple[str, ...]:
    from orchestrator.core import describe  # noqa: PLC0415

    probe = Entry(
        name=new.name,
        command=command,
        claims=(),
        timeout=new.timeout or DEFAULT_TIMEOUT,
        env=new.env,
        inputs=tuple(os.path.abspath(p) for p in new.inputs),  # noqa: PTH100
        source="(the command line)",
    )
    argv = registries.resolve_command(probe)
    described = describe.ask(probe, argv)
    if not described.description.claims:
        raise UsageError(
            f"delegate {new.name!r} suggests no claims in its describe answer",
            hint="give them with --claim POINTER",
        )
    return described.description.claims


def remove(name: str, *, environ: Mapping[str, str] | None = None) -> Path:
    """Take ``name`` out of the user registry; the file."""
    environ = os.environ if environ is None else environ
    path = registries.user_registry_path(environ)
    with _locked(path):
        entries = _read(path)
        kept = [e for e in entries if e["name"] != name]
        if len(kept) == len(entries):
            raise UsageError(
                f"delegate {name!r} is not in the user registry",
                file=str(path),
                hint="bakeplan delegates list shows where each delegate comes from",
            )
        _write(path, kept)
    return path


# -- list and show -----------------------------------------------------------------------------


def find(registry: Registry, name: str) -> Entry:
    """The entry named ``name`` or the error naming the closest known one."""
    if name == BUILTIN:
        raise UsageError(
            "'rumprun' is the built-in layer, part of bakeplan itself",
            hint="its executable form is the delegate rumprun-config",
        )
    entry = registry.get(name)
    if entry is None:
        raise registry.unknown(name)
    return entry


def listing(registry: Registry) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The columns and rows of ``delegates list``."""
    columns: tuple[str, ...] = ("name", "claims", "command", "from")
    rows: list[tuple[str, ...]] = [
        (
            entry.name,
            " ".join(entry.claims) or "(none: use --delegate or delegates add)",
            " ".join(entry.command),
            entry.source,
        )
        for entry in registry.entries
    ]
    return columns, rows


def show(entry: Entry) -> dict[str, Any]:
    """The entry and its delegate's ``describe`` answer (asked, or from the cache)."""
    from orchestrator.core import describe  # noqa: PLC0415

    argv = registries.resolve_command(entry)
    described = describe.ask(entry, argv)
    return {"entry": entry_json(entry), "describe": json.loads(described.raw)}
