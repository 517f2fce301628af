"""``bakeplan diff``: what changed between two bake plans, in the plan's own terms.

Libraries added and removed (each with the chain ``bakeplan why`` gives for it in the
new plan, so the cause is named), devices by name, toolchain arguments, runtime config
changes by JSON pointer, delegations whose request or answer changed, and warnings.
Two plans are the same when there is nothing to say; ``diff`` exits 0 then, 1 when they
differ, as ``diff`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.core.planmodel import Delegation, Device, Plan, PlanWarning
from orchestrator.pointers import pointer_of, pointer_text
from orchestrator.review import explain
from orchestrator.rumprun.runtime import Runtime


@dataclass(frozen=True)
class Change:
    """One difference: its part of the plan, ``+``, ``-`` or ``~``, and what it says."""

    part: str  # bake, libs, devices, toolchains, runtime, delegations, warnings
    sign: str
    text: str
    data: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"part": self.part, "change": _CHANGES[self.sign], **self.data}


_CHANGES = {"+": "added", "-": "removed", "~": "changed"}


@dataclass(frozen=True)
class Difference:
    """Every change from ``old`` to ``new``, part by part, in plan order."""

    changes: tuple[Change, ...]

    @property
    def same(self) -> bool:
        return not self.changes

    def as_json(self) -> dict[str, Any]:
        return {"same": self.same, "changes": [c.as_json() for c in self.changes]}


def diff(old: Plan, new: Plan) -> Difference:
    """The changes from plan ``old`` to plan ``new``."""
    return Difference(
        (
            *_bake(old, new),
            *_libs(old, new),
            *_devices(old.devices, new.devices),
            *_toolchains(old, new),
            *_runtime(old.runtime, new.runtime),
            *_delegations(old.delegations, new.delegations),
            *_warnings(old.warnings, new.warnings),
        )
    )


def _bake(old: Plan, new: Plan) -> Iterator[Change]:
    for key, was, is_ in (
        ("config", old.bake.config, new.bake.config),
        ("platform", old.bake.platform, new.bake.platform),
    ):
        if was != is_:
            yield Change(
                "bake", "~", f"bake {key} {was} -> {is_}", {"field": key, "old": was, "new": is_}
            )


def _libs(old: Plan, new: Plan) -> Iterator[Change]:
    before, after = old.bake.libs, new.bake.libs
    for lib in after:
        if lib not in before:
            why = explain.why(new, lib)
            yield Change("libs", "+", f"{lib}: {_reason(why)}", {"lib": lib, "why": why.summary})
    for lib in before:
        if lib not in after:
            why = explain.why(new, lib)
            yield Change("libs", "-", f"{lib}: {_reason(why)}", {"lib": lib, "why": why.summary})
    if [x for x in before if x in after] != [x for x in after if x in before]:
        yield Change("libs", "~", "the libraries both link are in another order", {})


def _reason(answer: explain.Answer) -> str:
    return answer.summary.partition(": ")[2] or answer.summary


def _devices(old: Sequence[Device], new: Sequence[Device]) -> Iterator[Change]:
    before = {d.name: d for d in old}
    after = {d.name: d for d in new}
    for sign, mine, theirs, side in (("+", after, before, "new"), ("-", before, after, "old")):
        for name, device in mine.items():
            if name not in theirs:
                yield Change(
                    "devices", sign, _device_text(device), {"name": name, side: device.to_json()}
                )
    for name, device in after.items():
        was = before.get(name)
        if was is None or was == device:
            continue
        # Field by field, the plan's own and the delegate's alike, in name order.
        old_fields, new_fields = was.to_json(), device.to_json()
        fields = sorted(set(old_fields) | set(new_fields))
        changed = {
            k: [old_fields.get(k), new_fields.get(k)]
            for k in fields
            if old_fields.get(k) != new_fields.get(k)
        }
        said = ", ".join(f"{k} {v[0]!r} -> {v[1]!r}" for k, v in changed.items())
        yield Change("devices", "~", f"{name}: {said}", {"name": name, "fields": changed})


def _device_text(device: Device) -> str:
    where = explain.describe_for(device.pointer)
    return f"{device.name} ({device.kind}) by {device.by} {where}"


def _arguments(plan: Plan) -> list[tuple[str, str, str]]:
    return [
        (chain, key, value)
        for chain, args in plan.toolchains.items()
        for key, values in args.items()
        for value in values
    ]


def _toolchains(old: Plan, new: Plan) -> Iterator[Change]:
    before, after = _arguments(old), _arguments(new)
    for plan, sign, mine, theirs in ((new, "+", after, before), (old, "-", before, after)):
        for chain, key, value in mine:
            if (chain, key, value) in theirs:
                continue
            source = next(
                (
                    a
                    for a in plan.provenance.toolchains
                    if (a.toolchain, a.key, a.value) == (chain, key, value)
                ),
                None,
            )
            by = f" by {source.by} {explain.describe_for(source.pointer)}" if source else ""
            yield Change(
                "toolchains",
                sign,
                f"{chain} {key} {value}{by}",
                {"toolchain": chain, "key": key, "value": value},
            )


def _flat(value: Any, tokens: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every leaf of ``value`` by its JSON pointer (empty objects and arrays are leaves)."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flat(item, (*tokens, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _flat(item, (*tokens, str(index)))
    else:
        yield pointer_of(tokens), value


def _runtime(old: Runtime, new: Runtime) -> Iterator[Change]:
    if old.dialect != new.dialect:
        yield Change(
            "runtime",
            "~",
            f"dialect {old.dialect} -> {new.dialect}",
            {"field": "dialect", "old": old.dialect, "new": new.dialect},
        )
    if old.dialect == new.dialect == "master":
        yield from _members(old.config, new.config)
    else:
        yield from _leaves(old.config, new.config, (), "")


def _leaves(old: Any, new: Any, tokens: tuple[str, ...], label: str) -> Iterator[Change]:
    """Changes between two JSON values, leaf by leaf; pointers start with ``tokens``
    (into ``runtime.config``), texts with ``label``."""
    before, after = dict(_flat(old)), dict(_flat(new))
    base = pointer_of(tokens)

    def said(pointer: str) -> str:
        if not label:
            return pointer_text(pointer)
        return f"{label} {pointer}" if pointer else label

    for pointer, value in after.items():
        where = base + pointer
        if pointer not in before:
            yield Change("runtime", "+", f"{said(pointer)}: {_compact(value)}",
                         {"pointer": where, "new": value})  # fmt: skip
        elif before[pointer] != value:
            yield Change(
                "runtime",
                "~",
                f"{said(pointer)}: {_compact(before[pointer])} -> {_compact(value)}",
                {"pointer": where, "old": before[pointer], "new": value},
            )
    for pointer, value in before.items():
        if pointer not in after:
            yield Change("runtime", "-", f"{said(pointer)}: {_compact(value)}",
                         {"pointer": base + pointer, "old": value})  # fmt: skip


def _members(old: Sequence[Sequence[Any]], new: Sequence[Sequence[Any]]) -> Iterator[Change]:
    """Master's members, matched in order: a member with the same key in the same place
    changes leaf by leaf; the others come and go whole."""
    import difflib  # noqa: PLC0415

    texts = [[_compact(m) for m in side] for side in (old, new)]
    matcher = difflib.SequenceMatcher(a=texts[0], b=texts[1], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        gone, came = list(range(i1, i2)), list(range(j1, j2))
        while gone and came and old[gone[0]][0] == new[came[0]][0]:
            i, j = gone.pop(0), came.pop(0)
            yield from _leaves(old[i][1], new[j][1], (str(j), "1"), f"{new[j][0]} (member {j})")
        for i in gone:
            yield Change("runtime", "-", f"{old[i][0]} {_compact(old[i][1])}",
                         {"pointer": f"/{i}", "old": list(old[i])})  # fmt: skip
        for j in came:
            yield Change("runtime", "+", f"{new[j][0]} {_compact(new[j][1])}",
                         {"pointer": f"/{j}", "new": list(new[j])})  # fmt: skip


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _delegations(old: Sequence[Delegation], new: Sequence[Delegation]) -> Iterator[Change]:
    before = {(d.delegate, d.pointer): d for d in old}
    after = {(d.delegate, d.pointer): d for d in new}
    for key, run in after.items():
        name = f"{key[0]} {explain.describe_for(key[1])}"
        was = before.get(key)
        if was is None:
            yield Change(
                "delegations", "+", f"{name} runs", {"delegate": key[0], "pointer": key[1]}
            )
            continue
        what = [
            part
            for part, then, now in (
                ("command", was.command, run.command),
                ("request_sha256", was.request_sha256, run.request_sha256),
                ("answer_sha256", was.answer_sha256, run.answer_sha256),
            )
            if then != now
        ]
        if what:
            said = ", ".join(w.removesuffix("_sha256") for w in what)
            yield Change(
                "delegations",
                "~",
                f"{name}: another {said}",
                {"delegate": key[0], "pointer": key[1], "fields": what},
            )
    for key in before:
        if key not in after:
            yield Change(
                "delegations",
                "-",
                f"{key[0]} {explain.describe_for(key[1])} no longer runs",
                {"delegate": key[0], "pointer": key[1]},
            )


def _warnings(old: Sequence[PlanWarning], new: Sequence[PlanWarning]) -> Iterator[Change]:
    for warning in new:
        if warning not in old:
            yield Change("warnings", "+", _warning_text(warning), {"warning": warning.to_json()})
    for warning in old:
        if warning not in new:
            yield Change("warnings", "-", _warning_text(warning), {"warning": warning.to_json()})


def _warning_text(warning: PlanWarning) -> str:
    return f"{warning.by} at {pointer_text(warning.pointer)}: {warning.message}"
