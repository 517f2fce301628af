"""The corpus: one folder per case under ``e2e/cases``, each with a ``case.json`` saying
what to plan and bake, and what the suite expects beyond what the plan itself says.

``case.json`` keys (all optional but ``about``):

- ``about``: one line on what the case proves.
- ``config`` (default ``config.json``) or ``legacy``: a legacy-dialect file that
  ``bakeplan upgrade`` converts first.
- ``registry``: a registry file (default: an empty registry); it is copied to the
  run's folder, so its commands are bare names looked up on PATH.
- ``bake_config`` (``-b``) and ``bake_conf`` (``--bake-conf`` files in the folder).
- ``bins``: the binaries to bake, in bake order (default: the basenames of
  ``rc[].bin``, in order, or ``["probe"]``); each is a probe built under that name.
- ``disks``: kind of the image behind each ``ld`` disk of the plan, ``"iso"`` (the
  default) or ``"ext2"``, or ``{"kind": ..., "images": {"name": kind}}`` for images
  inside it (a vnd's file).
- ``dialects``: per dialect, ``{"refused": [pointer, ...]}`` when bakeplan must refuse
  the config (exit 3) naming each pointer (or one beneath it), without anything being
  baked; ``"known_bug"``: ``{test: text}``, a bakeplan bug that makes this dialect's
  ``test`` (``refused``, ``link`` or ``boot``) fail today, said in full; that test is
  then expected to fail (strictly: once the bug is fixed it passes, fails as an
  unexpected pass, and the entry must go).
- ``forbid``: ``{"libs": [...], "families": [...]}``: libraries the link must not
  have, and address families no interface may carry.
- ``pad_to``: the size in bytes the emitted runtime config is padded to (with an
  environment variable ``BAKEPLAN_PAD``), for rumprun's limit on it.
- ``panics``: text the kernel's panic message must hold: the real boot must stop there,
  before any program, and the plan must have warned of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rumprun.tools import CASES, DIALECTS

_KEYS = {"about", "config", "legacy", "registry", "bake_config", "bake_conf", "bins"}
_KEYS |= {"disks", "dialects", "forbid", "pad_to", "panics"}


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    about: str
    config: str | None = "config.json"
    legacy: str | None = None
    registry: str | None = None
    bake_config: str | None = None
    bake_conf: tuple[str, ...] = ()
    bins: tuple[str, ...] | None = None
    disks: Mapping[str, Any] = field(default_factory=dict)
    refused: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    known_bugs: Mapping[tuple[str, str], str] = field(default_factory=dict)
    forbid_libs: tuple[str, ...] = ()
    forbid_families: tuple[str, ...] = ()
    pad_to: int | None = None
    panics: str | None = None

    def known_bug(self, test: str, dialect: str) -> str | None:
        return self.known_bugs.get((test, dialect))

    def refusal(self, dialect: str) -> tuple[str, ...]:
        """The pointers bakeplan must refuse for ``dialect``; empty when it must plan."""
        return self.refused.get(dialect, ())


def load(folder: Path) -> Case:
    data = json.loads((folder / "case.json").read_text())
    unknown = data.keys() - _KEYS
    if unknown:
        raise ValueError(f"{folder}/case.json: unknown keys {sorted(unknown)}")
    dialects = data.get("dialects", {})
    if dialects.keys() - set(DIALECTS):
        raise ValueError(f"{folder}/case.json: dialects are {DIALECTS}")
    forbid = data.get("forbid", {})
    legacy = data.get("legacy")
    return Case(
        name=folder.name,
        folder=folder,
        about=data["about"],
        config=None if legacy else data.get("config", "config.json"),
        legacy=legacy,
        registry=data.get("registry"),
        bake_config=data.get("bake_config"),
        bake_conf=tuple(data.get("bake_conf", ())),
        bins=tuple(data["bins"]) if "bins" in data else None,
        disks=data.get("disks", {}),
        refused={d: tuple(v.get("refused", ())) for d, v in dialects.items()},
        known_bugs={
            (test, d): text
            for d, v in dialects.items()
            for test, text in v.get("known_bug", {}).items()
        },
        forbid_libs=tuple(forbid.get("libs", ())),
        forbid_families=tuple(forbid.get("families", ())),
        pad_to=data.get("pad_to"),
        panics=data.get("panics"),
    )


def load_all() -> list[Case]:
    return [load(folder) for folder in sorted(CASES.iterdir()) if (folder / "case.json").is_file()]
