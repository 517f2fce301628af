"""Who owns which part of the config, and in which order the owners run.

Each registry entry claims pointers.  A node belongs to the delegate whose claim is the
deepest at or above it.  The built-in ``rumprun`` layer is the outermost delegate: it
claims the whole document (pointer ``""``) and so receives, last, everything nobody
else claimed, with every inner answer's ``replace`` in place.  Its answer's ``replace``
is the residual runtime config.

Claims run inside out: a run depends on the runs directly inside it, and runs that do
not contain one another are independent (the scheduler runs them side by side).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orchestrator.core.config import RUMPRUN_KEYS
from orchestrator.core.registry import BUILTIN, Registry
from orchestrator.errors import BakeplanError, ConflictError, InputError, UsageError, raise_all
from orchestrator.pointers import is_present, order, pointer_of, tokens_of, value_at, within
from orchestrator.suggest import did_you_mean


@dataclass(frozen=True)
class Run:
    """One delegate run: ``delegate`` configures the fragment at ``pointer``."""

    delegate: str
    pointer: str
    tokens: tuple[str, ...]
    inner: tuple[str, ...] = ()  # pointers of the runs directly inside this one
    level: int = 0  # 0 for runs with nothing inside; an outer run is one more than its inner

    @property
    def builtin(self) -> bool:
        return self.delegate == BUILTIN


def filled(run: Run, document: Any, inner: Mapping[Run, tuple[bool, Any]]) -> Any:
    """A copy of ``run``'s subtree of ``document`` with, at each inner run's place,
    ``(True, value)`` put in or, for ``(False, _)``, the part removed.

    Applied from the last path to the first, so removing an array element never shifts
    an index that another inner run still has to reach.
    """
    import copy  # noqa: PLC0415

    fragment = copy.deepcopy(value_at(document, run.tokens))
    depth = len(run.tokens)
    for part in sorted(inner, key=lambda r: order(r.tokens[depth:]), reverse=True):
        keep, value = inner[part]
        rel = part.tokens[depth:]
        parent = value_at(fragment, rel[:-1])
        last: Any = int(rel[-1]) if isinstance(parent, list) else rel[-1]
        if keep:
            parent[last] = copy.deepcopy(value)
        else:
            del parent[last]
    return fragment


@dataclass(frozen=True)
class Routing:
    """Every run in execution order, and the claims that run nothing."""

    runs: tuple[Run, ...]
    absent: tuple[tuple[str, str], ...] = ()  # (pointer, delegate) claimed but not in the config
    by_pointer: Mapping[str, Run] = field(default_factory=dict)

    def waves(self) -> tuple[tuple[Run, ...], ...]:
        """Runs grouped by level: each wave needs only the waves before it."""
        top = max((r.level for r in self.runs), default=-1)
        return tuple(tuple(r for r in self.runs if r.level == n) for n in range(top + 1))

    def owner(self, pointer: str) -> Run:
        """The run owning the node at ``pointer``: the deepest run at or above it."""
        tokens = tokens_of(pointer)
        best = self.by_pointer[""]
        for run in self.runs:
            if within(tokens, run.tokens) and len(run.tokens) > len(best.tokens):
                best = run
        return best

    def delegated(self) -> tuple[str, ...]:
        """Pointers owned by delegates other than the built-in rumprun layer."""
        return tuple(r.pointer for r in self.runs if not r.builtin)


def parse_overrides(values: Sequence[str]) -> dict[str, str]:
    """``--delegate POINTER=NAME`` options as a mapping, checked for form."""
    chosen: dict[str, str] = {}
    for value in values:
        pointer, sep, name = value.rpartition("=")
        if not sep or not pointer.startswith("/") or not name:
            raise UsageError(
                f"--delegate {value!r}: expected POINTER=NAME",
                hint="for example --delegate /net=mirage-net-config",
            )
        tokens_of(pointer)
        if pointer in chosen and chosen[pointer] != name:
            raise UsageError(f"--delegate {pointer} given twice ({chosen[pointer]!r} and {name!r})")
        chosen[pointer] = name
    return chosen


def _short(key: str, limit: int = 60) -> str:
    """A key quoted for a message; a hostile megabyte-long key must not make one."""
    shown = repr(key)
    return shown if len(shown) <= limit else f"{shown[: limit - 5]}…' ({len(key)} characters)"


def route(
    config: Mapping[str, Any], registry: Registry, overrides: Mapping[str, str] | None = None
) -> Routing:
    """Assign every part of ``config`` to its owner and order the runs inside out.

    Raises ``UsageError``/``InputError`` (exit 2) for unknown delegates and keys, and
    ``ConflictError`` (exit 3) for two claims on one present pointer; every problem
    found is reported together.
    """
    overrides = dict(overrides or {})
    problems: list[BakeplanError] = []

    claims: dict[str, list[str]] = {}
    for entry in registry.entries:
        for pointer in entry.claims:
            claims.setdefault(pointer, []).append(entry.name)
    for pointer, name in overrides.items():
        if name != BUILTIN and registry.get(name) is None:
            error = registry.unknown(name)
            problems.append(
                UsageError(f"--delegate {pointer}={name}: {error.message}", hint=error.hint)
            )
            continue
        if name == BUILTIN:
            # The built-in layer takes a part back by removing every other claim on it.
            claims.pop(pointer, None)
        else:
            claims[pointer] = [name]

    runs: list[tuple[str, str]] = []
    absent: list[tuple[str, str]] = []
    for pointer in sorted(claims):
        names = claims[pointer]
        if not is_present(config, pointer):
            absent.extend((pointer, n) for n in names)
            continue
        if len(names) > 1:
            problems.append(
                ConflictError(
                    f"claimed by {len(names)} delegates: {', '.join(names)}",
                    pointer=pointer,
                    hint=f"choose one with --delegate {pointer}={names[0]}",
                )
            )
            continue
        runs.append((pointer, names[0]))

    claimed_tops = {tokens_of(p)[0] for p in claims}
    for key in config:
        if key in RUMPRUN_KEYS or any(p == pointer_of([key]) for p, _ in runs):
            continue
        # The empty key is never offered: nothing is like it, and "did you mean ''?" helps
        # nobody.
        known = [k for k in (*RUMPRUN_KEYS, *claimed_tops) if k]
        inside = sorted(p for p, _ in runs if within(tokens_of(p), (key,)))
        detail = (f"delegates claim only {', '.join(inside)} inside it",) if inside else ()
        problems.append(
            InputError(
                f"unknown key {_short(key)}: rumprun does not know it and no delegate claims it",
                pointer=pointer_of([key]),
                detail=detail,
                hint=did_you_mean(key, known, cutoff=0.5)
                or f"rumprun knows {', '.join(RUMPRUN_KEYS)}",
            )
        )
    raise_all(problems)
    return _order([("", BUILTIN), *runs], absent)


def _order(pairs: Sequence[tuple[str, str]], absent: Sequence[tuple[str, str]]) -> Routing:
    """Link each run to the runs directly inside it and compute levels."""
    toks = {pointer: tokens_of(pointer) for pointer, _ in pairs}
    parent: dict[str, str] = {}
    for pointer, _ in pairs:
        if pointer == "":
            continue
        outer = max(
            (p for p, _ in pairs if p != pointer and within(toks[pointer], toks[p])),
            key=lambda p: len(toks[p]),
        )
        parent[pointer] = outer
    inner: dict[str, list[str]] = {p: [] for p, _ in pairs}
    for child, outer in parent.items():
        inner[outer].append(child)
    level: dict[str, int] = {}
    # Deepest first, so every inner run has its level before its outer run needs it.
    for pointer, _ in sorted(pairs, key=lambda pair: -len(toks[pair[0]])):
        level[pointer] = 1 + max((level[c] for c in inner[pointer]), default=-1)
    built = [
        Run(
            delegate=name,
            pointer=pointer,
            tokens=toks[pointer],
            inner=tuple(sorted(inner[pointer])),
            level=level[pointer],
        )
        for pointer, name in pairs
    ]
    built.sort(key=lambda r: (r.level, r.pointer))
    return Routing(
        runs=tuple(built),
        absent=tuple(sorted(absent)),
        by_pointer=MappingProxyType({r.pointer: r for r in built}),
    )
