"""The main job, one way through: load, route, check, run, assemble.

``cli.py`` parses the command line into ``Options`` and calls ``make_plan`` or
``validate``; everything they need is built here from the modules that own each noun.
Problems found before any delegate runs (routing, schema, commands) are collected and
reported together, with the lowest exit code of their kinds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator import config as configs
from orchestrator import registry as registries
from orchestrator.bake import DEFAULT_CONFIG, BakeConfig, standard_book
from orchestrator.errors import BakeplanError, raise_all
from orchestrator.plan import assemble, gate
from orchestrator.protocol import Context
from orchestrator.registry import BUILTIN, Entry, Registry
from orchestrator.routing import Routing, Run, parse_overrides, path_order, route, tokens_of
from orchestrator.scheduler import Scheduler, Settings


def default_jobs() -> int:
    """Delegates mostly wait (on their own start-up, on files, on other tools), so run
    more of them than there are cores; eight covers the usual hybrid bake at once."""
    return max(8, 2 * (os.cpu_count() or 1))


@dataclass(frozen=True, kw_only=True)
class Options:
    """What ``plan`` and ``validate`` were asked to do."""

    config: str
    registries: tuple[str, ...] = ()
    bake_config: str = DEFAULT_CONFIG
    overrides: tuple[str, ...] = ()
    jobs: int = 8
    timeout: float | None = None
    keep_going: bool = False


@dataclass(frozen=True)
class Prepared:
    """Everything known before any delegate runs."""

    config: configs.Config
    registry: Registry
    routing: Routing
    bake: BakeConfig
    commands: dict[str, tuple[str, ...]]

    @property
    def context(self) -> Context:
        return Context(
            bake_config=self.bake.name, platform=self.bake.platform, components=self.bake.components
        )


def prepare(options: Options) -> Prepared:
    """Load and check every input; raise every problem found, together."""
    config = configs.load(options.config)
    registry = registries.discover(options.registries)
    overrides = parse_overrides(options.overrides)
    problems: list[BakeplanError] = []

    routing: Routing | None = None
    try:
        routing = route(config.data, registry, overrides)
    except BakeplanError as exc:
        problems.append(exc)
    # The parts other delegates claim are theirs to check; the rest is rumprun's dialect.
    claimed = {p for e in registry.entries for p in e.claims} | {
        p for p, name in overrides.items() if name != BUILTIN
    }
    try:
        configs.check(config, skip=claimed)
    except BakeplanError as exc:
        problems.append(exc)
    bake: BakeConfig | None = None
    try:
        bake = standard_book().get(options.bake_config)
    except BakeplanError as exc:
        problems.append(exc)
    commands: dict[str, tuple[str, ...]] = {}
    for run in routing.runs if routing else ():
        entry = registry.get(run.delegate)
        if entry is None or run.delegate in commands:
            continue
        try:
            commands[run.delegate] = registries.resolve_command(entry)
        except BakeplanError as exc:
            problems.append(exc)
    raise_all(problems)
    assert routing is not None and bake is not None
    return Prepared(config, registry, routing, bake, commands)


def make_plan(
    options: Options, on_state: Callable[[Run, str], None] | None = None
) -> dict[str, Any]:
    """Run every delegate and assemble the plan."""
    prepared = prepare(options)
    entries: dict[str, Entry] = {e.name: e for e in prepared.registry.entries}
    scheduler = Scheduler(
        routing=prepared.routing,
        document=prepared.config.data,
        context=prepared.context,
        entries=entries,
        commands=prepared.commands,
        settings=Settings(
            jobs=options.jobs, timeout=options.timeout, keep_going=options.keep_going
        ),
        on_state=on_state,
    )
    return assemble(prepared.bake, scheduler.execute())


def without(document: dict[str, Any], pointers: Sequence[str]) -> dict[str, Any]:
    """A copy of ``document`` without the subtrees at ``pointers``.

    Removed from the last path to the first, so that no removal shifts an array index
    another one still needs.
    """
    import copy  # noqa: PLC0415

    result = copy.deepcopy(document)
    for tokens in sorted((tokens_of(p) for p in pointers), key=path_order, reverse=True):
        node: Any = result
        for token in tokens[:-1]:
            node = node[int(token)] if isinstance(node, list) else node[token]
        if isinstance(node, list):
            del node[int(tokens[-1])]
        else:
            del node[tokens[-1]]
    return result


def validate(options: Options) -> Prepared:
    """Every check that needs no delegate: routing, schema, commands, and the gating of
    the parts rumprun keeps against the base bake config."""
    prepared = prepare(options)
    residual = without(prepared.config.data, prepared.routing.delegated())
    raise_all(gate(residual, prepared.bake, prepared.bake.libs, ()))
    return prepared
