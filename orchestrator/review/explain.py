"""``bakeplan why``: the chain that put a library, device, config part or toolchain
argument into a plan, or kept it out.

Everything is read from the plan itself (its ``provenance``, ``directives``, ``devices``
and ``delegations``), so a plan written yesterday explains itself today.  A subject is
classified in this order: a config pointer (``/net``), a library (``-lrumpnet_netinet``
or ``rumpnet_netinet``), a device name, a toolchain argument.  "Absent" is an answer
too: a library the base config brings and a delegate removed, or one nobody brings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.planmodel import ArgumentOrigin, Delegation, Device, Plan
from orchestrator.errors import UsageError
from orchestrator.pointers import pointer_text, tokens_of
from orchestrator.suggest import did_you_mean


@dataclass(frozen=True)
class Step:
    """One link of a chain: what happened, who did it, for which config part."""

    what: str
    by: str = ""
    pointer: str | None = None

    def as_json(self) -> dict[str, Any]:
        step: dict[str, Any] = {"what": self.what}
        if self.by:
            step["by"] = self.by
        if self.pointer is not None:
            step["pointer"] = self.pointer
        return step


@dataclass(frozen=True)
class Answer:
    """Why ``subject`` is (or is not) in the plan: one sentence and the chain behind it."""

    subject: str
    kind: str  # library, device, pointer, argument
    present: bool
    summary: str
    chain: tuple[Step, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "kind": self.kind,
            "present": self.present,
            "summary": self.summary,
            "chain": [step.as_json() for step in self.chain],
        }

    def lines(self) -> list[str]:
        """The answer as plain lines: the sentence, then one line per step."""
        return [self.summary, *(f"  - {s.by + ': ' if s.by else ''}{s.what}" for s in self.chain)]


def why(plan: Plan, subject: str) -> Answer:
    """Explain ``subject`` in ``plan``; ``UsageError`` with a did-you-mean if unknown."""
    if subject == "" or subject.startswith("/"):
        return _pointer(plan, subject)
    if subject.startswith("-l") or _is_component(plan, subject):
        return _library(plan, subject if subject.startswith("-l") else f"-l{subject}")
    for device in plan.devices:
        if device.name == subject:
            return _device(device)
    arguments = [a for a in plan.provenance.toolchains if a.value == subject]
    if arguments:
        return _argument(subject, arguments)
    raise _unknown(plan, subject)


# --- libraries --------------------------------------------------------------------------


def _base_origin(plan: Plan, lib: str) -> list[str]:
    for origin in plan.provenance.libs:
        if origin.lib == lib:
            return list(origin.through)
    return []


def _known_libs(plan: Plan) -> list[str]:
    libs = [origin.lib for origin in plan.provenance.libs]
    for directive in plan.bake.directives:
        libs.extend(directive.args)
    return list(dict.fromkeys([*libs, *plan.bake.libs]))


def _is_component(plan: Plan, subject: str) -> bool:
    return f"-l{subject}" in _known_libs(plan) or subject.startswith("rump")


def _through(chain: Sequence[str]) -> str:
    return f" (through {', '.join(chain[1:])})" if len(chain) > 1 else ""


def describe_for(pointer: str) -> str:
    """``for /net``, as a sentence says for which config part something was done."""
    return f"for {pointer_text(pointer)}" if pointer else "for the whole config"


def _library(plan: Plan, lib: str) -> Answer:
    base = plan.bake.config
    origin = _base_origin(plan, lib)
    chain: list[Step] = []
    said: list[str] = []
    if origin:
        chain.append(Step(f"bake config {base} brings it{_through(origin)}"))
        said.append(f"{base} brings it{_through(origin)}")
    for directive in plan.bake.directives:
        if lib not in directive.args:
            continue
        verb = "added" if directive.op == "add" else "removed"
        pointer = directive.pointer or ""
        chain.append(Step(f"{verb} it {describe_for(pointer)}", directive.by, pointer))
        said.append(f"{directive.by} {verb} it {describe_for(pointer)}")
    present = lib in plan.bake.libs
    if not said:
        said.append(f"neither {base} nor any delegate brings it")
        suggestion = did_you_mean(lib, _known_libs(plan), quoted=False)
        if suggestion:
            said.append(suggestion)
    state = "is linked" if present else "is not linked"
    return Answer(lib, "library", present, f"{lib} {state}: {', '.join(said)}", tuple(chain))


# --- devices and toolchain arguments ----------------------------------------------------


def _device(device: Device) -> Answer:
    extra = ", ".join(f"{k} {v}" for k, v in device.fields.items())
    summary = (
        f"{device.name} is a {device.kind} device: {device.by} gives it "
        f"{describe_for(device.pointer)}" + (f" ({extra})" if extra else "")
    )
    step = Step(f"answered a {device.kind} device", device.by, device.pointer)
    return Answer(device.name, "device", True, summary, (step,))


def _argument(value: str, arguments: Sequence[ArgumentOrigin]) -> Answer:
    chain = tuple(
        Step(
            f"gave it to the {a.toolchain} toolchain ({a.key}) {describe_for(a.pointer)}",
            a.by,
            a.pointer,
        )
        for a in arguments
    )
    first = arguments[0]
    summary = (
        f"{value} is one of the {first.toolchain} toolchain's {first.key} arguments: "
        f"{first.by} gives it {describe_for(first.pointer)}"
    )
    return Answer(value, "argument", True, summary, chain)


# --- config pointers ------------------------------------------------------------------------


def _under(pointer: str, ancestor: str) -> bool:
    """Whether ``pointer`` is ``ancestor`` or inside it (by whole tokens)."""
    return pointer == ancestor or pointer.startswith(ancestor + "/")


def _known_pointers(plan: Plan) -> list[str]:
    found = [d.pointer for d in plan.delegations]
    found += [d.pointer for d in plan.devices]
    found += [o.source for o in plan.provenance.runtime]
    if plan.runtime.dialect == "spec":
        found += list(_leaves(plan.runtime.config, ""))
    return sorted(set(found) - {""})


def _leaves(value: Any, pointer: str) -> Iterable[str]:
    """Every pointer inside ``value`` (objects and arrays), ``pointer`` included."""
    yield pointer
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, pointer + "/" + key.replace("~", "~0").replace("/", "~1"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{pointer}/{index}")


def _is_known(plan: Plan, pointer: str) -> bool:
    if pointer == "":
        return True
    for run in plan.delegations:
        if not run.builtin and _under(pointer, run.pointer):
            return True  # inside a part a delegate owns: its own to know
    return any(_under(pointer, p) or _under(p, pointer) for p in _known_pointers(plan))


def _pointer(plan: Plan, pointer: str) -> Answer:
    tokens_of(pointer)  # a usage error if it is no JSON pointer
    if not _is_known(plan, pointer):
        raise _unknown(plan, pointer)
    runs = plan.delegations
    owner = max((r for r in runs if _under(pointer, r.pointer)), key=lambda r: len(r.pointer))
    inner = [r for r in runs if r is not owner and _under(r.pointer, pointer)]
    claim = (
        "what no delegate claims"
        if owner.builtin
        else f"its claim {pointer_text(owner.pointer)}"
        if owner.pointer != pointer
        else "its claim"
    )
    chain = [Step(f"owns {pointer_text(pointer)} ({claim})", owner.delegate, owner.pointer)]
    for run in inner:
        what = f"configured {pointer_text(run.pointer)} inside it first"
        chain.append(Step(what, run.delegate, run.pointer))
    for run in [owner, *inner]:
        chain.extend(_contributions(plan, run, pointer))
    kept = [o for o in plan.provenance.runtime if o.source and _overlaps(o.source, pointer)]
    if kept:
        paths = ", ".join(_runtime_part(plan, o.path) for o in kept)
        chain.append(Step(f"rumprun reads it at boot as {paths}"))
    elif not owner.builtin:
        chain.append(Step("consumed it: the runtime config does not carry it", owner.delegate))
    owned = "the built-in rumprun layer" if owner.builtin else owner.delegate
    summary = f"{pointer_text(pointer)} belongs to {owned} ({claim})"
    if inner:
        summary += "; filled first by " + ", ".join(r.delegate for r in inner)
    return Answer(pointer, "pointer", True, summary, tuple(chain))


def _runtime_part(plan: Plan, path: str) -> str:
    """A part of ``runtime.config`` as a person names it."""
    runtime = plan.runtime
    if runtime.dialect == "master":
        index = int(path.lstrip("/"))
        return f"master's {runtime.config[index][0]!r} (member {index})"
    return f"runtime.config {path}"


def _overlaps(a: str, b: str) -> bool:
    return _under(a, b) or _under(b, a)


def _contributions(plan: Plan, run: Delegation, pointer: str) -> list[Step]:
    """What ``run``'s answer contributed to the part at ``pointer``."""
    steps: list[Step] = []
    name, at = run.delegate, run.pointer
    scope = "" if _under(at, pointer) else f" (for all of {pointer_text(at)})"
    for device in plan.devices:
        if device.by == name and _overlaps(device.pointer, pointer):
            steps.append(Step(f"answered {device.kind} device {device.name}", name, at))
    for directive in plan.bake.directives:
        # A directive that does not say its part is every part of its delegate's.
        if directive.by == name and directive.pointer in (None, at):
            verb = "linked" if directive.op == "add" else "removed"
            steps.append(Step(f"{verb} {' '.join(directive.args)}{scope}", name, at))
    for argument in plan.provenance.toolchains:
        if argument.by == name and argument.pointer == at:
            steps.append(
                Step(f"gave {argument.toolchain} {argument.key} {argument.value}{scope}", name, at)
            )
    return steps


# --- unknown subjects ---------------------------------------------------------------------


def _unknown(plan: Plan, subject: str) -> UsageError:
    known = [
        *_known_pointers(plan),
        *_known_libs(plan),
        *(d.name for d in plan.devices),
        *(a.value for a in plan.provenance.toolchains),
    ]
    return UsageError(
        f"{subject!r} is no library, device, config pointer or toolchain argument of this plan",
        hint=did_you_mean(subject, known, cutoff=0.6)
        or "subjects: -lLIB, a device name, /pointer, a toolchain argument",
    )
