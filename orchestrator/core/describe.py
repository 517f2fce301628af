"""The ``describe`` handshake: who a delegate is, asked once per executable.

Before any ``configure``, bakeplan asks every external delegate of the plan ``describe``
(all of them at once, on a small thread pool) and refuses one that does not list
``bakeplan/1`` among its protocols.  A ``fragment_schema`` in the answer then checks
each fragment before the delegate sees it, and a violation is reported at the config's
file:line:col like any other schema violation.

Answers are kept in memory for the process and in the cache's ``describe`` namespace
(``cache``: verified entries, a bounded size) so that the next run does not ask again,
under the same key a ``configure`` answer would have (``cache.entry_key``: the command's
bytes, the code of a Python delegate's distribution, the entry's ``inputs``, the
variables it is passed), for the describe request; a changed delegate has another key
and is asked afresh.  ``use_cache=False`` (``--no-cache``) neither reads nor keeps them.
The built-in rumprun layer is never asked: it is part of bakeplan.

Reading an answer is ``protocol.judge`` with ``read`` (the describe answer's own checks);
this module only words a failure as the handshake's.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.core import protocol
from orchestrator.core.config import Config
from orchestrator.core.protocol import PROTOCOL, Description
from orchestrator.core.registry import Entry
from orchestrator.core.routing import Routing, Run
from orchestrator.errors import BakeplanError, DelegateError, Problems, raise_all
from orchestrator.pointers import tokens_of, within

if TYPE_CHECKING:
    from orchestrator.core.cache import Space

__all__ = ["Described", "ask", "cached", "describe_all", "fragment_checker", "read"]


@dataclass(frozen=True, kw_only=True)
class Described:
    """A delegate's validated ``describe`` answer and where it came from."""

    delegate: str
    key: str  # the cache key the answer is filed under
    raw: bytes  # the exact answer bytes
    description: Description
    source: str  # "asked", "memory" or "cache"


_lock = threading.Lock()
# Answers this process has seen, by store folder and key: a process that moves its cache
# folder (XDG_CACHE_HOME) must not be answered from another folder's memory.
_memory: dict[tuple[Path, str], tuple[bytes, Description]] = {}
_spaces: dict[Path, Space] = {}


def _space() -> Space:
    """The describe namespace of this process's cache folder (one per folder: tests move
    it).  Silent: a describe answer not kept only means asking again."""
    from orchestrator.core import cache  # noqa: PLC0415

    where = cache.folder()
    with _lock:
        space = _spaces.get(where)
        if space is None:
            space = _spaces[where] = cache.store().space(cache.DESCRIBE)
    return space


def read(raw: bytes, *, filed: bool = False) -> Description:
    """A describe answer: valid, speaking ``bakeplan/1``, its ``fragment_schema`` a JSON
    Schema; else ``ProtocolViolation``.  A ``filed`` answer (from the cache) had its
    schema checked before it was filed: checking it again would import jsonschema on
    every plan."""
    description = protocol.parse_describe(raw)
    problem = "" if filed else schema_problem(description.fragment_schema)
    if problem:
        raise protocol.ProtocolViolation(
            f"its fragment_schema is not a valid JSON Schema: {problem}", kind="schema"
        )
    return description


# The failures that show how the run ended and its stderr: the others are about an
# answer the delegate did write, whole.
_SHOWS_RUN = frozenset({"cancelled", "failed", "unreadable"})


def _error(
    entry: Entry, argv: Sequence[str], pointer: str | None, failure: protocol.Failure
) -> DelegateError:
    """The ``DelegateError`` a failed handshake is."""
    shows_run = failure.kind in _SHOWS_RUN
    return _failure(
        entry,
        argv,
        pointer,
        failure.message,
        detail=failure.detail,
        status=failure.status if shows_run else None,
        stderr=failure.stderr if shows_run else "",
        hint=f"install a version of the delegate that speaks {PROTOCOL}"
        if failure.kind == "unspoken"
        else None,
    )


def _failure(
    entry: Entry,
    argv: Sequence[str],
    pointer: str | None,
    message: str,
    *,
    detail: Sequence[str] = (),
    status: str | None = None,
    stderr: str = "",
    hint: str | None = None,
) -> DelegateError:
    return DelegateError(
        message,
        delegate=entry.name,
        pointer=pointer,
        command=argv,
        status=status,
        stderr_tail=stderr,
        detail=("during the describe handshake", *detail),
        hint=hint,
    )


def schema_problem(schema: Any) -> str:
    """Why ``schema`` is not a valid Draft 2020-12 JSON Schema; ``""`` when it is (or None)."""
    if schema is None:
        return ""
    from jsonschema import (  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
        Draft202012Validator,  # lazy: only a delegate with a schema pays for jsonschema
    )
    from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
        SchemaError,
    )

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return str(exc.message)
    return ""


def _env(entry: Entry) -> dict[str, str]:
    return protocol.delegate_env(entry.env, protocol.environment(entry.name))


def _key(entry: Entry, argv: Sequence[str], pointer: str | None) -> str:
    from orchestrator.core import cache  # noqa: PLC0415

    try:
        return cache.entry_key(entry, argv, protocol.describe_request(), _env(entry))
    except OSError as exc:
        raise _failure(
            entry, argv, pointer, f"cannot read the executable: {exc.strerror}"
        ) from None


def cached(entry: Entry, argv: Sequence[str], *, pointer: str | None = None) -> Described | None:
    """The describe answer kept for this delegate (in memory, then in the store), if any.
    Starts no process."""
    key = _key(entry, argv, pointer)
    space = _space()
    with _lock:
        known = _memory.get((space.store.folder, key))
    if known is not None:
        return Described(
            delegate=entry.name, key=key, raw=known[0], description=known[1], source="memory"
        )
    raw = space.get(key)
    if raw is None:
        return None
    try:
        description = read(raw, filed=True)
    except protocol.ProtocolViolation:
        return None  # filed by a bakeplan that checked less: ask the delegate again
    with _lock:
        _memory[space.store.folder, key] = (raw, description)
    return Described(delegate=entry.name, key=key, raw=raw, description=description, source="cache")


def ask(
    entry: Entry,
    argv: Sequence[str],
    *,
    pointer: str | None = None,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    use_cache: bool = True,
) -> Described:
    """The ``describe`` answer of ``entry`` run as ``argv`` (resolved), cached.

    ``pointer`` is where the delegate was to work, for error messages.  Raises
    ``DelegateError`` (exit 1) when the delegate fails, answers badly, or does not speak
    ``bakeplan/1``.
    """
    if use_cache:
        known = cached(entry, argv, pointer=pointer)
        if known is not None:
            return known
    # Imported only when a delegate is asked: validate reads kept answers and runs none.
    from orchestrator.core import runner  # noqa: PLC0415

    key = _key(entry, argv, pointer) if use_cache else ""
    env = _env(entry)
    limits = runner.Limits(timeout=timeout or entry.timeout)
    try:
        outcome = runner.run(
            argv, protocol.describe_request(), env=env, limits=limits, cancel=cancel
        )
    except runner.SpawnError as exc:
        raise _failure(entry, argv, pointer, str(exc)) from None
    description = protocol.judge(outcome, read)
    if isinstance(description, protocol.Failure):
        raise _error(entry, argv, pointer, description)
    if use_cache:
        # Only a valid answer is kept, as for configure answers.
        _file(key, outcome.stdout, description)
    return Described(
        delegate=entry.name, key=key, raw=outcome.stdout, description=description, source="asked"
    )


def describe_all(
    wanted: Sequence[tuple[Entry, Sequence[str], str]],
    *,
    jobs: int = 8,
    timeout: float | None = None,
    use_cache: bool = True,
) -> dict[str, Described]:
    """``describe`` for each ``(entry, argv, pointer)``, side by side; every failure is
    reported together.  ``pointer`` is the first part of the config the delegate owns.
    Without ``use_cache`` every delegate is asked and nothing is kept."""
    if not wanted:
        return {}
    from orchestrator.core import runner  # noqa: PLC0415  (as for ask)
    from orchestrator.core.mapper import thread_map  # noqa: PLC0415

    # One executable under several names is asked once: the names share its answer.
    names: dict[tuple[tuple[str, ...], str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    distinct: list[tuple[Entry, Sequence[str], str]] = []
    for entry, argv, pointer in wanted:
        same = _same(entry, argv)
        if same not in names:
            names[same] = []
            distinct.append((entry, argv, pointer))
        names[same].append(entry.name)
    wanted = distinct
    cancel = threading.Event()

    def one(item: tuple[Entry, Sequence[str], str]) -> Described | BakeplanError:
        entry, argv, pointer = item
        try:
            # Only delegates whose answers were not kept come here: ask them directly.
            described = ask(
                entry, argv, pointer=pointer, timeout=timeout, cancel=cancel, use_cache=False
            )
            if use_cache:
                _keep(entry, argv, pointer, described)
        except BakeplanError as error:
            return error
        return described

    def known(item: tuple[Entry, Sequence[str], str]) -> Described | BakeplanError | None:
        entry, argv, pointer = item
        if not use_cache:
            return None
        try:
            return cached(entry, argv, pointer=pointer)
        except BakeplanError as error:
            return error

    def stop() -> None:
        cancel.set()
        runner.terminate_all()

    # Kept answers are read here, one after another: handing them to threads would
    # cost more than reading them.  Only the delegates to ask go side by side.
    found: list[Described | BakeplanError | None] = [known(item) for item in wanted]
    missing = [i for i, answer in enumerate(found) if answer is None]
    for index, answer in zip(
        missing, thread_map(one, [wanted[i] for i in missing], jobs, stop), strict=True
    ):
        found[index] = answer
    raise_all([f for f in found if isinstance(f, BakeplanError)])
    return {
        name: dataclasses.replace(d, delegate=name)
        for (entry, argv, _), d in zip(wanted, found, strict=True)
        if isinstance(d, Described)
        for name in names[_same(entry, argv)]
    }


def _same(
    entry: Entry, argv: Sequence[str]
) -> tuple[tuple[str, ...], str, tuple[str, ...], tuple[str, ...]]:
    """What makes two entries the same delegate to ask: the names share its answer."""
    return (tuple(argv), entry.package, entry.inputs, entry.env)


def _keep(entry: Entry, argv: Sequence[str], pointer: str, described: Described) -> None:
    """File an answer ``ask`` got without the cache (the caller checked for it first)."""
    _file(_key(entry, argv, pointer), described.raw, described.description)


def _file(key: str, raw: bytes, description: Description) -> None:
    """Keep a valid answer, in memory and in the store."""
    space = _space()
    with _lock:
        _memory[space.store.folder, key] = (raw, description)
    space.put(key, raw)


def _filled_by(routing: Routing, run: Run, pointer: str) -> Run | None:
    """The inner run whose answer filled the part of ``run``'s fragment at ``pointer``."""
    tokens = tokens_of(pointer)
    for inner in run.inner:
        candidate = routing.by_pointer[inner]
        if within(tokens, candidate.tokens):
            return candidate
    return None


def fragment_checker(
    config: Config, described: Mapping[str, Described], routing: Routing
) -> Callable[[Run, Any], None]:
    """A check, for the scheduler, of each fragment against its delegate's
    ``fragment_schema``.  A violation in what the config says is invalid input, at the
    config's file:line:col (exit 2); one in a part an inner delegate's answer filled is
    that delegate's failure (exit 1), since the config there was never the problem."""

    def check(run: Run, fragment: Any) -> None:
        known = described.get(run.delegate)
        if known is None or known.description.fragment_schema is None:
            return
        from orchestrator.schemas import explainer  # noqa: PLC0415  (jsonschema only when needed)

        found = explainer.violations_of(
            known.description.fragment_schema, fragment, base_pointer=run.pointer
        )
        problems: list[BakeplanError] = []
        for v in found:
            inner = _filled_by(routing, run, v.pointer)
            expected = (f"expected: {v.expected}",) if v.expected else ()
            if inner is None:
                problems.append(
                    config.error_at(
                        v.pointer,
                        f"{v.message} (the fragment schema of delegate {run.delegate!r})",
                        detail=expected,
                    )
                )
            else:
                problems.append(
                    DelegateError(
                        f"its answer breaks the fragment schema of delegate {run.delegate!r}: "
                        f"{v.message}",
                        delegate=inner.delegate,
                        pointer=v.pointer,
                        detail=expected,
                    )
                )
        if len(problems) > 1:
            raise Problems(problems)
        raise_all(problems)

    return check


def known_fragment_problems(
    config: Config,
    routing: Routing,
    entries: Mapping[str, Entry],
    commands: Mapping[str, Sequence[str]],
) -> tuple[list[BakeplanError], list[str]]:
    """For ``validate``, which starts no process: each fragment checked against the
    ``fragment_schema`` of its delegate's describe answer when one is already kept, and
    a note naming each delegate never described (its schema could not be applied).

    A part an inner delegate will fill is not judged (its answer is not known yet), nor
    is an object or array that holds such a part: what the inner delegate leaves there
    may be what the schema wants.  What is reported is in the config as written, at its
    file:line:col, exactly as ``plan`` reports it.
    """
    from orchestrator.pointers import value_at  # noqa: PLC0415

    problems: list[BakeplanError] = []
    notes: list[str] = []
    described: dict[str, Described | None] = {}
    for run in routing.runs:
        if run.builtin or run.delegate not in commands:
            continue
        if run.delegate not in described:
            entry = entries[run.delegate]
            try:
                described[run.delegate] = cached(entry, commands[run.delegate], pointer=run.pointer)
            except BakeplanError:
                described[run.delegate] = None  # unreadable: plan will say why
            if described[run.delegate] is None:
                notes.append(
                    f"delegate {run.delegate!r} has not been described yet, so its fragment "
                    "schema was not applied (bakeplan plan asks it, then validate knows it)"
                )
        known = described[run.delegate]
        if known is None or known.description.fragment_schema is None:
            continue
        from orchestrator.schemas import explainer  # noqa: PLC0415  (jsonschema only when needed)

        inner = [routing.by_pointer[p].tokens for p in run.inner]
        for v in explainer.violations_of(
            known.description.fragment_schema,
            value_at(config.data, run.tokens),
            base_pointer=run.pointer,
        ):
            at = tokens_of(v.pointer)
            if any(within(at, part) or within(part, at) for part in inner):
                continue
            expected = (f"expected: {v.expected}",) if v.expected else ()
            problems.append(
                config.error_at(
                    v.pointer,
                    f"{v.message} (the fragment schema of delegate {run.delegate!r})",
                    detail=expected,
                )
            )
    return problems, notes
