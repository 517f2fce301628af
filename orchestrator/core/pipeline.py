"""The main job, one way through: load, route, check, describe, run, assemble.

``prepare`` loads the config, the registries and the bake config, routes the parts to
their delegates and checks what needs no delegate; ``validate`` stops there;
``carry_out`` then asks every delegate ``describe``, runs them inside out
(``scheduler``, one ``configure.Configure`` call per run) and assembles the plan.
Everything is built from the modules that own each noun.  Problems found before any
delegate runs (routing, schema, commands) are collected and reported together, with the
lowest exit code of their kinds.

Nothing here writes to a stream: what a person may want to hear (``--verbose``, what
``validate`` could not check) goes to the ``note`` the command line passes in, one
message at a time.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from orchestrator.core import config as configs
from orchestrator.core import registry as registries
from orchestrator.core.plan import assemble, gate
from orchestrator.core.protocol import Context
from orchestrator.core.registry import BUILTIN, Entry, Registry
from orchestrator.core.routing import Routing, Run, filled, parse_overrides, route
from orchestrator.errors import BakeplanError, Problems, raise_all
from orchestrator.pointers import tokens_of
from orchestrator.rumprun import DEFAULT_DIALECT
from orchestrator.rumprun.bake import DEFAULT_CONFIG, BakeConfig, ConfBook, standard_book
from orchestrator.rumprun.runtime import convert

if TYPE_CHECKING:  # validate neither runs delegates nor reads locks: imported where used
    from orchestrator.core.cache import Space
    from orchestrator.core.describe import Described
    from orchestrator.core.lock import Lock
    from orchestrator.core.planmodel import Plan
    from orchestrator.core.scheduler import Result

INNER_MARK = "$inner"
# Hears one message for a person (maybe of several lines, without the last newline).
Note = Callable[[str], None]


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
    # rumprun-bake.conf files read after the standard configs, in order (--bake-conf).
    bake_confs: tuple[str, ...] = ()
    # The binaries rumprun-bake will bake (--bin), for checking rc[].bin; empty: unknown.
    binaries: tuple[str, ...] = ()
    # Consult and fill the response cache, describe answers included (off with
    # --no-cache: every delegate is asked and runs, and nothing is kept).
    use_cache: bool = True
    # Say on stderr why the response cache was not used (--verbose).
    verbose: bool = False
    # Which rumprun reads the runtime config at boot (--rumprun): its dialect.
    dialect: str = DEFAULT_DIALECT
    # A lock file the delegates and bake config must match before any configures (--locked).
    locked: str | None = None
    # Pin the delegates the plan uses (--lock): their code is digested only then.
    pin: bool = False


@dataclass(frozen=True)
class Prepared:
    """Everything known before any delegate runs."""

    config: configs.Config
    registry: Registry
    routing: Routing
    bake: BakeConfig
    commands: Mapping[str, tuple[str, ...]]

    @property
    def context(self) -> Context:
        return Context(
            bake_config=self.bake.name, platform=self.bake.platform, components=self.bake.components
        )


def _bake_book(paths: Sequence[str]) -> ConfBook:
    """The standard bake configs, then each ``--bake-conf`` file (read only if given)."""
    if not paths:
        return standard_book()
    from orchestrator.rumprun.bakeconf import read_books  # noqa: PLC0415

    return read_books(paths)


def prepare(options: Options, *, note: Note | None = None) -> Prepared:
    """Load and check every input; raise every problem found, together.  ``note`` hears
    the registries' warnings (a claim that looks like a typo)."""
    config = configs.load(options.config)
    overrides = parse_overrides(options.overrides)
    registry = registries.discover(options.registries)
    # Package delegates claim nothing, so they matter only when --delegate names one;
    # scanning every installed distribution's entry points costs more than planning.
    if any(registry.get(name) is None for name in overrides.values() if name != BUILTIN):
        # Read again, the files have nothing new to say: their warnings are the first
        # reading's, given once.
        said = registry.warnings
        registry = registries.discover(options.registries, packages=True)
        registry = dataclasses.replace(registry, warnings=said)
    for warning in registry.warnings:
        _tell(note, f"warning: {warning}")
    problems: list[BakeplanError] = []

    routing: Routing | None = None
    try:
        routing = route(config.data, registry, overrides)
    except BakeplanError as exc:
        problems.append(exc)
    # The parts other delegates own are theirs to check; the rest is rumprun's dialect.
    # Without a routing (it failed), every claim is taken as a delegate's, so that no
    # part is blamed on rumprun that a delegate may yet own once the routing is fixed.
    claimed = (
        set(routing.delegated())
        if routing is not None
        else {p for e in registry.entries for p in e.claims}
        | {p for p, name in overrides.items() if name != BUILTIN}
    )
    try:
        configs.check(config, skip=claimed)
    except BakeplanError as exc:
        problems.append(exc)
    bake: BakeConfig | None = None
    try:
        bake = _bake_book(options.bake_confs).get(options.bake_config)
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
    if problems:
        raise config.place(Problems(problems) if len(problems) > 1 else problems[0])
    assert routing is not None and bake is not None
    return Prepared(config, registry, routing, bake, MappingProxyType(commands))


def validate(options: Options, *, note: Note | None = None) -> Prepared:
    """Every check that needs no delegate: routing, schema, commands, and the gating of
    the parts rumprun keeps against the base bake config.  ``note`` hears what could not
    be checked (a delegate never described: its fragment schema is not known yet)."""
    prepared = prepare(options, note=note)
    residual = without(prepared.config.data, prepared.routing.delegated())
    problems = gate(
        residual,
        prepared.bake,
        prepared.bake.libs,
        (),
        binaries=options.binaries,
        devices_known=not prepared.routing.delegated(),
    )
    # What the target rumprun cannot say is known before any delegate runs, except for
    # what a delegate's answer may leave in the part it owns.
    runtime = convert(residual, options.dialect, options.binaries)
    if isinstance(runtime, list):
        problems.extend(runtime)
    # Fragment schemas of the describe answers already kept: no process is started.
    from orchestrator.core import describe  # noqa: PLC0415

    found, notes = describe.known_fragment_problems(
        prepared.config, prepared.routing, _entries(prepared), prepared.commands
    )
    problems.extend(found)
    for said in notes:
        _tell(note, f"validate: {said}")
    try:
        raise_all(problems)
    except BakeplanError as error:
        raise prepared.config.place(error) from None
    return prepared


def make_plan(
    options: Options,
    on_state: Callable[[Run, str], None] | None = None,
    prepared: Prepared | None = None,
    *,
    note: Note | None = None,
) -> Plan:
    """Run every delegate and assemble the plan."""
    return carry_out(prepared or prepare(options, note=note), options, on_state, note=note).plan


@dataclass(frozen=True)
class Execution:
    """What running a plan gave: the results in routing order, the plan, and the lock of
    the delegates and bake config it was made with."""

    results: tuple[Result, ...]
    plan: Plan
    lock: Lock | None  # with options.pin or options.locked


def execute(
    prepared: Prepared,
    options: Options,
    on_state: Callable[[Run, str], None] | None = None,
    *,
    note: Note | None = None,
) -> tuple[tuple[Result, ...], Plan]:
    """Run every delegate of ``prepared``; the results in routing order and the plan."""
    done = carry_out(prepared, options, on_state, note=note)
    return done.results, done.plan


def carry_out(
    prepared: Prepared,
    options: Options,
    on_state: Callable[[Run, str], None] | None = None,
    *,
    note: Note | None = None,
) -> Execution:
    """Describe, run and assemble: every delegate of ``prepared`` is asked ``describe``
    (all at once, cached by executable digest), then the runs go inside out (their
    fragments checked against the ``fragment_schema`` describe gave), then the answers
    are assembled into the plan.  With ``options.locked``, what describe said must match
    the lock before any delegate configures anything.  ``note`` hears what ``--verbose``
    shows (``options.verbose``): why the cache was not used, a delegate's stderr.
    """
    from orchestrator.core import describe, scheduler  # noqa: PLC0415
    from orchestrator.core.configure import Configure  # noqa: PLC0415

    firsts = _first_pointers(prepared)
    described = describe.describe_all(
        [(_entries(prepared)[n], prepared.commands[n], p) for n, p in firsts.items()],
        jobs=options.jobs,
        timeout=options.timeout,
        use_cache=options.use_cache,
    )
    pins = _pins(prepared, options, described, list(firsts))
    heard = note if options.verbose else None
    work = Configure(
        routing=prepared.routing,
        document=prepared.config.data,
        context=prepared.context,
        entries=_entries(prepared),
        commands=prepared.commands,
        timeout=options.timeout,
        responses=_responses(prepared, options, described, list(firsts), heard),
        check=describe.fragment_checker(prepared.config, described, prepared.routing),
        note=heard,
    )
    try:
        results = scheduler.execute(
            prepared.routing,
            work,
            jobs=options.jobs,
            keep_going=options.keep_going,
            on_state=on_state,
        )
        plan = assemble(prepared.bake, results, binaries=options.binaries, dialect=options.dialect)
    except BakeplanError as error:
        raise prepared.config.place(error) from None
    return Execution(results, plan, pins)


def _entries(prepared: Prepared) -> dict[str, Entry]:
    return {e.name: e for e in prepared.registry.entries}


def _first_pointers(prepared: Prepared) -> dict[str, str]:
    """Each external delegate of the routing, with the first part it owns (where its
    describe failures are shown)."""
    first: dict[str, str] = {}
    for run in prepared.routing.runs:
        if not run.builtin:
            first.setdefault(run.delegate, run.pointer)
    return first


def _pins(
    prepared: Prepared,
    options: Options,
    described: Mapping[str, Described],
    names: Sequence[str],
) -> Lock | None:
    """The lock of what the plan uses, with ``--lock`` or ``--locked``; with
    ``--locked``, refused when it does not match that file."""
    if not (options.pin or options.locked is not None):
        return None
    from orchestrator.core import lock  # noqa: PLC0415

    entries = _entries(prepared)
    try:
        pins = lock.of(
            prepared.bake,
            [lock.pin(entries[n], prepared.commands[n], described[n]) for n in names],
        )
    except OSError as exc:
        raise BakeplanError(f"cannot read a delegate's code to lock it: {exc}") from None
    if options.locked is not None:
        lock.refuse(options.locked, list(lock.differences(lock.read(options.locked), pins)))
    return pins


def _responses(
    prepared: Prepared,
    options: Options,
    described: Mapping[str, Described],
    names: Sequence[str],
    note: Note | None,
) -> Space | None:
    """The cache namespace of configure answers, for the delegates whose answers may be
    reused: opted in by the registry entry, or by the delegate's own word that it is
    pure.  None with ``--no-cache`` or when no delegate's answers may be reused."""
    if not options.use_cache:
        return None
    entries = _entries(prepared)
    reusable = [
        n for n in names if entries[n].cache or (n in described and described[n].description.pure)
    ]
    if not reusable:
        return None
    from orchestrator.core import cache  # noqa: PLC0415

    heard = None if note is None else (lambda message: note(f"response cache: {message}"))
    return cache.store(note=heard).space(cache.RESPONSES, reusable)


def _tell(note: Note | None, text: str) -> None:
    if note is not None:
        note(text)


def without(document: dict[str, Any], pointers: Sequence[str]) -> dict[str, Any]:
    """A copy of ``document`` without the subtrees at ``pointers``."""
    whole = Run(delegate=BUILTIN, pointer="", tokens=())
    gone = {Run(delegate=BUILTIN, pointer=p, tokens=tokens_of(p)): (False, None) for p in pointers}
    result: dict[str, Any] = filled(whole, document, gone)
    return result


def _marked(run: Run, document: Any, routing: Routing) -> Any:
    """The fragment ``run`` would receive, each inner run's part marked as to be filled."""
    inner = (routing.by_pointer[p] for p in run.inner)
    marks = {r: (True, {INNER_MARK: {"delegate": r.delegate, "pointer": r.pointer}}) for r in inner}
    return filled(run, document, marks)


def _run_facts(
    run: Run, entry: Entry | None, command: Sequence[str], request: bytes, use_cache: bool
) -> dict[str, str]:
    """A dry run's ``replay`` (a shell line giving the delegate exactly this request;
    empty when inner answers complete it) and ``cache`` (``configure.cache_state``)."""
    if run.builtin or entry is None or not command:
        return {"replay": "", "cache": ""}
    from orchestrator.core import configure, protocol  # noqa: PLC0415

    known = None if run.inner else request
    env = protocol.delegate_env(entry.env, protocol.environment(run.delegate, run.pointer))
    return {
        "replay": configure.replay_command(entry, command, run.pointer, request) if known else "",
        "cache": configure.cache_state(entry, command, known, env, use=use_cache),
    }


def dry_run(options: Options, *, note: Note | None = None) -> dict[str, Any]:
    """What ``plan`` would do, without starting any delegate, as plain data.

    The same content feeds the rich preview, the plain text and ``--dry-run --json``.
    Where an inner delegate's answer will fill part of an outer request, that part is
    ``{"$inner": {"delegate": ..., "pointer": ...}}``.
    """
    import hashlib  # noqa: PLC0415
    import shlex  # noqa: PLC0415

    from orchestrator.core.protocol import Request  # noqa: PLC0415
    from orchestrator.rumprun import layer  # noqa: PLC0415

    prepared = prepare(options, note=note)
    routing = prepared.routing
    runs = []
    for wave, group in enumerate(routing.waves()):
        for run in group:
            fragment = _marked(run, prepared.config.data, routing)
            request = Request(
                delegate=run.delegate,
                pointer=run.pointer,
                fragment=fragment,
                context=prepared.context,
            )
            command = prepared.commands.get(run.delegate, ())
            entry = prepared.registry.get(run.delegate)
            runs.append(
                {
                    "delegate": run.delegate,
                    "pointer": run.pointer,
                    "wave": wave,
                    "builtin": run.builtin,
                    "command": list(command),
                    "shell": shlex.join(command) if command else "",
                    "registry": entry.source if entry else "",
                    "timeout": entry.timeout if entry else None,
                    "inner": list(run.inner),
                    "request": request.as_json(),
                    # Only a request with no inner part is known to the byte before running.
                    "request_sha256": None
                    if run.inner
                    else hashlib.sha256(request.encode()).hexdigest(),
                    **_run_facts(run, entry, command, request.encode(), options.use_cache),
                }
            )
    residual = without(prepared.config.data, routing.delegated())
    linked = set(prepared.bake.components)
    rules = [
        {
            "pointer": need.pointer,
            "why": need.why,
            "needs": list(need.any_of) if need.any_of else [f"platform {need.platform}"],
            "met": bool(linked.intersection(need.any_of))
            if need.any_of
            else need.platform == prepared.bake.platform,
        }
        for need in layer.requirements(residual)
    ]
    runtime = convert(residual, options.dialect, options.binaries)
    return {
        "dry_run": True,
        "config": prepared.config.source,
        "document": prepared.config.data,
        "owners": [{"pointer": r.pointer, "delegate": r.delegate} for r in routing.runs],
        "absent": [{"pointer": p, "delegate": d} for p, d in routing.absent],
        "runs": runs,
        "bake": {
            "config": prepared.bake.name,
            "platform": prepared.bake.platform,
            "description": prepared.bake.description,
            "libs": list(prepared.bake.libs),
            "rules": rules,
        },
        # Which rumprun reads the runtime config, and what of the parts it keeps it
        # cannot say (before any delegate has answered).
        "runtime": {
            "dialect": options.dialect,
            "refused": [
                {"pointer": p.pointer or "", "message": p.message}
                for p in (runtime if isinstance(runtime, list) else ())
            ],
        },
    }


def lock_check(
    locked: Lock,
    *,
    registry_files: Sequence[str] = (),
    bake_confs: Sequence[str] = (),
    timeout: float | None = None,
    note: Note | None = None,
) -> list[str]:
    """How what is installed now differs from ``locked``: each locked delegate found in
    the registries, its code digested and asked ``describe`` (answers kept by content
    digest are reused), and the locked bake config read again."""
    from orchestrator.core import describe, lock  # noqa: PLC0415

    registry = registries.discover(registry_files, packages=True)
    for warning in registry.warnings:
        _tell(note, f"warning: {warning}")
    found: list[str] = []
    wanted: list[tuple[Entry, tuple[str, ...], str]] = []
    for pinned in locked.pins:
        entry = registry.get(pinned.name)
        if entry is None:
            found.append(f"delegate {pinned.name} is locked but no registry names it")
            continue
        try:
            wanted.append((entry, registries.resolve_command(entry), ""))
        except BakeplanError as error:
            found.append(f"delegate {pinned.name}: {error.message}")
    described = describe.describe_all(wanted, jobs=default_jobs(), timeout=timeout)
    try:
        pins = [lock.pin(entry, argv, described[entry.name]) for entry, argv, _ in wanted]
    except OSError as exc:
        raise BakeplanError(f"cannot read a delegate's code to compare it: {exc}") from None
    try:
        bake = _bake_book(bake_confs).get(locked.bake_config)
    except BakeplanError as error:
        found.append(f"bake config {locked.bake_config}: {error.message}")
        bake = BakeConfig(locked.bake_config, "", "", locked.libs)
    now = lock.of(bake, pins)
    found.extend(lock.differences(locked, now, only=[entry.name for entry, _, _ in wanted]))
    return found
