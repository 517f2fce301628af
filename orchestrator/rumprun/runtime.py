"""The runtime config in the dialect of the rumprun that reads it, and its exact bytes.

Two rumpruns read a runtime config at boot, each its own dialect (``--rumprun``):

* ``master``, released rumprun, the default: its legacy keys, converted by
  ``master.to_master``; kept in the plan as ``[key, value]`` pairs because its keys
  repeat;
* ``spec``, the parser of the configuration specification (rumprun's
  ``mato-wip-rumprun-config`` branch): the residual config, an object, as that parser
  really reads it (``orchestrator.rumprun.spec``).

``text`` gives the bytes rumprun reads (the multiboot module on hw, xenstore's
``rumprun/cfg`` on Xen), so every emitter and every size check uses the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import BakeplanError, Problems
from orchestrator.pointers import pointer_of


@dataclass(frozen=True)
class Runtime:
    """A runtime config in one dialect, as the plan keeps it, and what to know of it."""

    dialect: str
    config: Any  # spec: the object; master: a list of [key, value] pairs
    notes: tuple[str, ...] = ()
    # master: per member, the pointer of the config part it says.
    sources: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "config": self.config}

    def origins(self) -> list[tuple[str, str]]:
        """Each top-level part of ``config`` (its pointer there) and the config part it
        says, as (path, pointer) pairs: the plan's ``provenance.runtime``."""
        if self.dialect == "master":
            return [(f"/{i}", where) for i, where in enumerate(self.sources)]
        return [(pointer_of([key]), pointer_of([key])) for key in self.config]

    def text(self) -> str:
        """The exact bytes rumprun reads (compact, no final newline)."""
        return _encode(self.dialect, self.config)

    def size(self) -> int:
        """The length in bytes of what rumprun reads."""
        return len(self.text().encode("utf-8"))


def convert(
    residual: Mapping[str, Any], dialect: str, binaries: Sequence[str] = ()
) -> Runtime | list[BakeplanError]:
    """The residual config (specification dialect) in ``dialect``, or every part that
    dialect cannot say, as conflicts."""
    if dialect == "spec":
        from orchestrator.rumprun import spec  # noqa: PLC0415

        config, notes, problems = spec.to_spec(residual)
        return problems or Runtime("spec", config, tuple(notes))
    from orchestrator.rumprun import master  # noqa: PLC0415

    try:
        converted = master.to_master(residual, binaries)
    except Problems as error:
        return list(error.problems)
    except BakeplanError as error:
        return [error]
    return Runtime("master", converted.as_json(), converted.notes, converted.sources)


def text(runtime: Mapping[str, Any]) -> str:
    """The exact bytes rumprun reads for a plan document's ``runtime`` member."""
    return _encode(runtime["dialect"], runtime["config"])


def _encode(dialect: str, config: Any) -> str:
    if dialect == "master":
        from orchestrator.rumprun import master  # noqa: PLC0415

        return master.encode(config)
    from orchestrator.rumprun import spec  # noqa: PLC0415

    return spec.encode(config)
