"""Delegates for tests of configure runs: one Python script in ``tmp_path`` run as every
delegate, with its name, its spec (JSON) and a work folder as arguments, and the
``Configure`` that routes a config to them, each claiming one pointer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers_exec import write_python

from orchestrator.core.configure import Configure
from orchestrator.core.protocol import Context
from orchestrator.core.registry import Entry, Registry
from orchestrator.core.routing import Routing, route


def routing_for(config: dict[str, Any], claims: dict[str, str]) -> Routing:
    """``claims`` maps pointer -> delegate name; each delegate claims one pointer."""
    entries = tuple(Entry(name=n, command=(n,), claims=(p,)) for p, n in claims.items())
    return route(config, Registry(entries=entries, files=()))


class Rig:
    """Delegates in ``tmp_path`` running ``script``: each claims one pointer and behaves
    as its spec says; ``work`` is where they write what they saw."""

    def __init__(self, tmp_path: Path, script: str) -> None:
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.script = write_python(tmp_path, "delegate.py", script)
        self.specs: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(self, name: str, pointer: str, **spec: Any) -> None:
        self.specs[name] = (pointer, spec)

    def argv(self, name: str) -> tuple[str, ...]:
        """The command ``name`` runs as, resolved: the script with its arguments."""
        return (str(self.script), name, json.dumps(self.specs[name][1]), str(self.work))

    def make(self, config: dict[str, Any], context: Context, **settings: Any) -> Configure:
        """The work of every run of ``config``; ``settings`` are ``Configure``'s own.
        Each entry is registered as its bare name, with a time limit of a minute."""
        return Configure(
            routing=routing_for(config, {p: n for n, (p, _) in self.specs.items()}),
            document=config,
            context=context,
            entries={
                n: Entry(name=n, command=(n,), claims=(p,), timeout=60.0)
                for n, (p, _) in self.specs.items()
            },
            commands={n: self.argv(n) for n in self.specs},
            **settings,
        )
