"""The lock file: the delegates and the bake config a plan was made with, pinned.

``plan --lock FILE`` writes it, ``plan --locked FILE`` refuses (exit 3) a plan whose
delegates or bake config differ from it, naming each difference, before any delegate
configures anything; ``bakeplan lock check FILE`` says whether what is installed now
still matches.  Per delegate it pins what makes an answer what it is: the resolved
command, the content digest the response cache keys by (the executable, the code it
runs, its entry's ``inputs``), ``describe``'s ``version`` and ``protocols``, and the
digest of its ``fragment_schema``; for the bake config, its name and library list.
The text is deterministic: the same delegates give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.core import jsontext
from orchestrator.errors import ConflictError

if TYPE_CHECKING:
    from orchestrator.core.describe import Described
    from orchestrator.core.registry import Entry
    from orchestrator.rumprun.bake import BakeConfig

FORMAT = "bakeplan-lock/1"
MAX_LOCK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Pin:
    """One delegate as the plan used it."""

    name: str
    command: tuple[str, ...]
    digest: str
    version: str
    protocols: tuple[str, ...]
    fragment_schema_sha256: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": list(self.command),
            "digest": self.digest,
            "version": self.version,
            "protocols": list(self.protocols),
            "fragment_schema_sha256": self.fragment_schema_sha256,
        }


@dataclass(frozen=True)
class Lock:
    """Every delegate a plan used (by name) and its bake config."""

    bake_config: str
    libs: tuple[str, ...]
    pins: tuple[Pin, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "lock": FORMAT,
            "bake": {"config": self.bake_config, "libs": list(self.libs)},
            "delegates": [pin.as_json() for pin in self.pins],
        }

    def text(self) -> str:
        return json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n"


def schema_digest(schema: Any) -> str | None:
    """The SHA-256 of a fragment schema's canonical JSON, or None without one."""
    if schema is None:
        return None
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def command_digest(entry: Entry, argv: Sequence[str]) -> str:
    """The content digest the response cache keys ``entry`` run as ``argv`` by."""
    from orchestrator.core import digest  # noqa: PLC0415

    return digest.command_digest(
        argv, extra=entry.package, inputs=entry.inputs, folder=entry.folder
    )


def pin(entry: Entry, argv: Sequence[str], described: Described) -> Pin:
    description = described.description
    return Pin(
        name=entry.name,
        command=tuple(argv),
        digest=command_digest(entry, argv),
        version=description.version,
        protocols=description.protocols,
        fragment_schema_sha256=schema_digest(description.fragment_schema),
    )


def of(bake: BakeConfig, pins: Sequence[Pin]) -> Lock:
    return Lock(bake.name, bake.libs, tuple(sorted(pins, key=lambda p: p.name)))


# --- reading and comparing -----------------------------------------------------------------


def read(path: str) -> Lock:
    """The lock file at ``path``, checked against ``bakeplan schema lock``."""
    from orchestrator.review.planfile import check, read_bounded  # noqa: PLC0415

    raw = read_bounded(path, path, limit=MAX_LOCK_BYTES, what="a lock file")
    document = jsontext.parse(raw, source=path)
    check(
        "lock",
        document,
        raw.decode("utf-8"),
        path,
        what="a bakeplan lock file",
        hint="write one with bakeplan plan ... --lock FILE",
    )
    return Lock(
        bake_config=document["bake"]["config"],
        libs=tuple(document["bake"]["libs"]),
        pins=tuple(
            Pin(
                name=d["name"],
                command=tuple(d["command"]),
                digest=d["digest"],
                version=d["version"],
                protocols=tuple(d["protocols"]),
                fragment_schema_sha256=d["fragment_schema_sha256"],
            )
            for d in document["delegates"]
        ),
    )


_FIELDS = {
    "command": "its resolved command",
    "digest": "its code (the content digest)",
    "version": "its describe version",
    "protocols": "the protocols it speaks",
    "fragment_schema_sha256": "its fragment schema",
}


def differences(locked: Lock, now: Lock, *, only: Sequence[str] | None = None) -> Iterator[str]:
    """Each way ``now`` differs from ``locked``, in words.  With ``only``, just those
    delegates are compared (a check of what is installed, not of one plan's use)."""
    if locked.bake_config != now.bake_config:
        yield f"bake config {now.bake_config}, locked {locked.bake_config}"
    elif locked.libs != now.libs:
        gone = [lib for lib in locked.libs if lib not in now.libs]
        came = [lib for lib in now.libs if lib not in locked.libs]
        said = ", ".join([*(f"no longer {lib}" for lib in gone), *(f"now {lib}" for lib in came)])
        yield f"bake config {now.bake_config} links other libraries: {said or 'another order'}"
    before: Mapping[str, Pin] = {p.name: p for p in locked.pins}
    after: Mapping[str, Pin] = {p.name: p for p in now.pins}
    names = only if only is not None else sorted(set(before) | set(after))
    for name in names:
        was, is_ = before.get(name), after.get(name)
        if was is None:
            yield f"delegate {name} is used but not locked"
        elif is_ is None:
            yield f"delegate {name} is locked but not used"
        else:
            for field, what in _FIELDS.items():
                old, new = getattr(was, field), getattr(is_, field)
                if old != new:
                    yield f"delegate {name}: {what} changed ({_short(old)} -> {_short(new)})"


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    if isinstance(value, tuple):
        return " ".join(value)
    return str(value)


def refuse(path: str, found: Sequence[str]) -> None:
    """Raise the differences from the lock at ``path`` as one conflict (exit 3)."""
    if found:
        raise ConflictError(
            f"the plan's delegates or bake config differ from the lock {path}",
            detail=tuple(found),
            hint="plan with --lock to accept them, after reviewing the change",
        )
