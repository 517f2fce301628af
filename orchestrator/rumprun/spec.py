"""What the configuration specification's parser really reads, where it differs from the
specification: the runtime config a plan gives a unikernel built with it (``--rumprun
spec``, rumprun's ``mato-wip-rumprun-config`` branch).

Booting real images showed (``make e2e``):

* it reads ``\\u`` escapes (``\\u00fc``) but stops at the first byte above 0x7f
  (``unknown byte``), so the text is written in ASCII; a character beyond U+FFFF
  arrives as two CESU-8 halves, not as UTF-8, so it cannot be passed at all;
* ``rc[].bin`` is matched whole against the names rumprun-bake recorded, the inputs'
  basenames: ``./wopr.bin``, as the specification's own example writes, is not found.
  The plan names the baked binary and keeps the program's argv[0] as it was;
* it sets up ``blk`` devices before it mounts anything, so a vnd over a file on a disk
  the same config mounts cannot be set up: refused;
* it mounts in the order of the text, so a parent mount point is put before its
  children (for master too: ``rumprun.parents_first``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator.errors import BakeplanError, ConflictError
from orchestrator.pointers import pointer_of, strings
from orchestrator.rumprun.layer import baked_name, parents_first, under

HINT = "--rumprun master plans for released rumprun, whose parser reads it"


def to_spec(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str], list[BakeplanError]]:
    """The residual config as the spec parser must get it, the notes on what was changed,
    and what it cannot read (conflicts at their pointers)."""
    document = copy.deepcopy(dict(config))
    notes: list[str] = []
    problems: list[BakeplanError] = [
        ConflictError(
            f"the specification's parser cannot read {text[:40]!r}: a character beyond "
            "U+FFFF reaches it as two halves, not as one UTF-8 character",
            pointer=where,
            hint=HINT,
        )
        for where, text in strings(document)
        if any(ord(c) > 0xFFFF for c in text)
    ]
    problems.extend(_vnd_problems(document))
    for index, entry in enumerate(document.get("rc") or ()):
        if isinstance(entry, dict) and isinstance(entry.get("bin"), str):
            name = baked_name(entry["bin"])
            if name != entry["bin"]:
                entry.setdefault("argv", [entry["bin"]])
                notes.append(
                    f"rc[{index}].bin {entry['bin']!r} written as {name!r}: the specification's "
                    "parser matches the baked name whole"
                )
                entry["bin"] = name
    mounts = document.get("mount")
    if isinstance(mounts, dict):
        order = parents_first(list(mounts))
        if order != list(mounts):
            notes.append(
                "mounts put parents first (" + ", ".join(order) + "): rumprun mounts in order"
            )
            document["mount"] = {m: mounts[m] for m in order}
    return document, notes, problems


def encode(config: Any) -> str:
    """The bytes the spec parser reads: compact JSON in ASCII, ``\\u`` escapes for the rest."""
    return json.dumps(config, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _vnd_problems(document: Mapping[str, Any]) -> Iterator[BakeplanError]:
    blk = document.get("blk") if isinstance(document.get("blk"), dict) else {}
    mounts = document.get("mount") if isinstance(document.get("mount"), dict) else {}
    for name, device in (blk or {}).items():
        if not isinstance(device, dict) or device.get("type") != "vnd":
            continue
        path = device.get("path", "")
        for mountpoint, mount in (mounts or {}).items():
            if (
                isinstance(mount, dict)
                and mount.get("source") != "tmpfs"
                and under(path, mountpoint)
            ):
                yield ConflictError(
                    f"the specification's parser sets up blk devices before it mounts, so "
                    f"{name}'s file {path} on the file system mounted at {mountpoint} does "
                    "not exist yet when it is needed",
                    pointer=pointer_of(["blk", name]),
                    hint=HINT + " in the order given",
                )
                break
