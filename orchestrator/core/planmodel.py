"""The bake plan as typed, frozen data: what ``plan.assemble`` makes, what every emitter,
the graph, ``bakeplan why`` and ``bakeplan diff`` read.

``Plan.to_json`` gives the plan document ``bakeplan schema plan`` describes, member for
member in the order bakeplan writes them; ``Plan.from_json`` takes such a document back
(checked against that schema first: ``review/planfile.py``), so that a plan read from a
file and a plan just assembled are the same thing.  Members the schema makes optional
(older plans may lack them) are ``None`` here and stay absent in ``to_json``.

JSON values the plan only carries (the runtime config, a device's own fields) are kept
as they came and shared with the document ``to_json`` gives, not copied: a runtime
config of thousands of keys is not walked twice.  Neither side changes them.

Kept apart from ``core/plan.py`` (assembly and gating) so that ``bakeplan validate``,
which gates but assembles nothing, never pays for defining these classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.rumprun.runtime import Runtime

PLAN_VERSION = "bakeplan/1"
# A device's members that are the plan's own; every other member is the delegate's.
RESERVED = frozenset({"name", "kind", "by", "pointer"})


@dataclass(frozen=True)
class Directive:
    """A rumprun-bake ``-m`` command of the plan: ``add`` or ``remove`` of ``-l`` words,
    who asked, and for which config part (``None``: the plan does not say)."""

    op: str
    args: tuple[str, ...]
    by: str
    pointer: str | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"op": self.op, "args": list(self.args), "by": self.by}
        if self.pointer is not None:
            document["pointer"] = self.pointer
        return document


@dataclass(frozen=True)
class Bake:
    """The rumprun-bake side: the base config, its platform, the directives applied to
    it and the final library list."""

    config: str
    platform: str
    directives: tuple[Directive, ...]
    libs: tuple[str, ...]
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"config": self.config, "platform": self.platform}
        if self.description is not None:
            document["description"] = self.description
        document["directives"] = [d.to_json() for d in self.directives]
        document["libs"] = list(self.libs)
        return document


@dataclass(frozen=True)
class Device:
    """A device the domain builder attaches: its unique name, its kind, the delegate
    that gave it, the config part it comes from, and the delegate's own ``fields``."""

    name: str
    kind: str
    by: str
    pointer: str
    fields: Mapping[str, Any]

    def field(self, name: str) -> Any:
        """The delegate's own field ``name`` (``vdev``, ...), or ``None``."""
        return self.fields.get(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "by": self.by,
            "pointer": self.pointer,
            **self.fields,
        }


@dataclass(frozen=True)
class Delegation:
    """One delegate run: what it was given, and digests of the exact bytes exchanged."""

    delegate: str
    pointer: str
    command: tuple[str, ...]
    request_sha256: str
    answer_sha256: str
    # True for the built-in rumprun layer; None where the plan does not say.
    builtin: bool | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "delegate": self.delegate,
            "pointer": self.pointer,
            "command": list(self.command),
        }
        if self.builtin is not None:
            document["builtin"] = self.builtin
        document["request_sha256"] = self.request_sha256
        document["answer_sha256"] = self.answer_sha256
        return document


@dataclass(frozen=True)
class PlanWarning:
    """A warning of the plan: who warned, where in the config, and what about."""

    by: str
    pointer: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"by": self.by, "pointer": self.pointer, "message": self.message}


@dataclass(frozen=True)
class LibOrigin:
    """A library of the base bake config and the configs it came through, outermost
    first."""

    lib: str
    through: tuple[str, ...]


@dataclass(frozen=True)
class RuntimeOrigin:
    """A top-level part of the runtime config (its pointer in ``runtime.config``) and
    the config pointer it says (``source``, the document's ``from``)."""

    path: str
    source: str


@dataclass(frozen=True)
class ArgumentOrigin:
    """One toolchain argument, the delegate that gave it and the part it was given."""

    toolchain: str
    key: str
    value: str
    by: str
    pointer: str


@dataclass(frozen=True)
class Provenance:
    """Who and what put each part of the plan there."""

    libs: tuple[LibOrigin, ...]
    runtime: tuple[RuntimeOrigin, ...]
    toolchains: tuple[ArgumentOrigin, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "libs": [{"lib": o.lib, "through": list(o.through)} for o in self.libs],
            "runtime": [{"path": o.path, "from": o.source} for o in self.runtime],
            "toolchains": [
                {
                    "toolchain": a.toolchain,
                    "key": a.key,
                    "value": a.value,
                    "by": a.by,
                    "pointer": a.pointer,
                }
                for a in self.toolchains
            ],
        }


@dataclass(frozen=True)
class Plan:
    """The bake plan.  ``toolchains`` maps each toolchain to its named argument lists."""

    bake: Bake
    devices: tuple[Device, ...]
    runtime: Runtime
    toolchains: Mapping[str, Mapping[str, tuple[str, ...]]]
    delegations: tuple[Delegation, ...]
    warnings: tuple[PlanWarning, ...]
    provenance: Provenance

    def arguments(self, toolchain: str, key: str) -> tuple[str, ...]:
        """The argument list ``key`` (``boot``, ``packages``...) of ``toolchain``."""
        return self.toolchains.get(toolchain, {}).get(key, ())

    def to_json(self) -> dict[str, Any]:
        """The plan document, as ``bakeplan plan`` writes it."""
        return {
            "plan": PLAN_VERSION,
            "bake": self.bake.to_json(),
            "devices": [d.to_json() for d in self.devices],
            "runtime": self.runtime.as_json(),
            "toolchains": {
                chain: {key: list(values) for key, values in lists.items()}
                for chain, lists in self.toolchains.items()
            },
            "delegations": [d.to_json() for d in self.delegations],
            "warnings": [w.to_json() for w in self.warnings],
            "provenance": self.provenance.to_json(),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Plan:
        """The plan of a document that follows ``bakeplan schema plan`` (checked before:
        this takes each member as the schema says it is)."""
        bake, provenance = document["bake"], document["provenance"]
        return cls(
            bake=Bake(
                config=bake["config"],
                platform=bake["platform"],
                directives=tuple(
                    Directive(d["op"], tuple(d["args"]), d["by"], d.get("pointer"))
                    for d in bake["directives"]
                ),
                libs=tuple(bake["libs"]),
                description=bake.get("description"),
            ),
            devices=tuple(
                Device(
                    name=d["name"],
                    kind=d["kind"],
                    by=d["by"],
                    pointer=d["pointer"],
                    fields={k: v for k, v in d.items() if k not in RESERVED},
                )
                for d in document["devices"]
            ),
            runtime=Runtime(document["runtime"]["dialect"], document["runtime"]["config"]),
            toolchains={
                chain: {key: tuple(values) for key, values in lists.items()}
                for chain, lists in document["toolchains"].items()
            },
            delegations=tuple(
                Delegation(
                    delegate=d["delegate"],
                    pointer=d["pointer"],
                    command=tuple(d["command"]),
                    request_sha256=d["request_sha256"],
                    answer_sha256=d["answer_sha256"],
                    builtin=d.get("builtin"),
                )
                for d in document["delegations"]
            ),
            warnings=tuple(
                PlanWarning(w["by"], w["pointer"], w["message"]) for w in document["warnings"]
            ),
            provenance=Provenance(
                libs=tuple(LibOrigin(o["lib"], tuple(o["through"])) for o in provenance["libs"]),
                runtime=tuple(RuntimeOrigin(o["path"], o["from"]) for o in provenance["runtime"]),
                toolchains=tuple(
                    ArgumentOrigin(a["toolchain"], a["key"], a["value"], a["by"], a["pointer"])
                    for a in provenance["toolchains"]
                ),
            ),
        )
