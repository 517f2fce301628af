"""The package's JSON Schema files as they are, read with nothing else imported.

The schemas package is three modules, each importing only those before it, so there is
no cycle: ``files`` (this one: the documents, and nothing of the package), ``checker``
(yes-or-no checks compiled from them) and ``explainer`` (jsonschema, to say what breaks
a schema).  ``explainer`` is the whole story (the strict reader, validators, messages a
person can act on) and importing it costs a delegate's start more than its own work.
The compiled checks and a delegate that declares a part of a package schema as its
fragment schema need only the documents, read here with ``json``;
``tests/test_checker.py`` checks that this reading and the strict one agree.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

# Not typing.TYPE_CHECKING: see orchestrator.core.wire.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FOLDER = Path(__file__).parent
ID_PREFIX = "https://bakeplan.dev/schemas/"


@functools.cache
def shared(name: str) -> dict[str, Any] | None:
    """The schema ``<name>.json``, parsed once and shared: callers must not change it.
    None when the package has no such schema."""
    path = FOLDER / f"{name}.json"
    if "/" in name or not path.is_file():
        return None
    document: dict[str, Any] = json.loads(path.read_bytes())
    return document


def load(name: str) -> dict[str, Any]:
    """A fresh copy of the schema ``<name>.json``, which the caller may change."""
    if shared(name) is None:
        raise KeyError(f"no schema named {name!r}")
    document: dict[str, Any] = json.loads((FOLDER / f"{name}.json").read_bytes())
    return document


def by_id(schema_id: str) -> dict[str, Any] | None:
    """The package schema whose ``$id`` is ``schema_id`` (``.../<name>.json``), if any."""
    if not schema_id.startswith(ID_PREFIX):
        return None
    document = shared(schema_id.removeprefix(ID_PREFIX).removesuffix(".json"))
    if document is None or document.get("$id") != schema_id:
        return None
    return document
