"""Delegates' answers assembled into the one deterministic bake plan.

Everything here is a pure function of the routing, the bake config and the results, all
taken in routing order, so the same inputs give the same bytes: no timestamps,
durations, temporary paths or dictionary-order accidents.  This is also where the
contract's gating happens: a runtime config that needs a component the final library
list lacks, or a platform the bake config is not, is a conflict (exit 3).

``assemble`` gives a ``planmodel.Plan``; ``dumps`` its text.  ``bakeplan validate`` gates
with ``gate`` and assembles nothing, so the plan's classes are imported where a plan is
made, not with this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from orchestrator.core.config import RUMPRUN_KEYS
from orchestrator.errors import BakeplanError, ConflictError, raise_all
from orchestrator.pointers import pointer_of, pointer_text
from orchestrator.rumprun import DEFAULT_DIALECT, layer
from orchestrator.rumprun import runtime as runtimes
from orchestrator.rumprun.bake import BakeConfig, Directive, apply_directives, component_of, flag_of

if TYPE_CHECKING:  # the scheduler (and the runner under it) is not needed to check
    from orchestrator.core.planmodel import Plan, PlanWarning
    from orchestrator.core.scheduler import Result


def directives_of(results: Iterable[Result]) -> tuple[Directive, ...]:
    """Each run's ``add`` then ``remove``, in routing order, as rumprun-bake ``-m`` commands."""
    directives: list[Directive] = []
    for result in results:
        answer, run = result.answer, result.run
        if answer.add:
            directives.append(
                Directive("add", tuple(flag_of(c) for c in answer.add), run.delegate, run.pointer)
            )
        if answer.remove:
            directives.append(
                Directive(
                    "remove", tuple(flag_of(c) for c in answer.remove), run.delegate, run.pointer
                )
            )
    return tuple(directives)


def link_problems(
    bake: BakeConfig, libs: Sequence[str], directives: Sequence[Directive]
) -> tuple[list[BakeplanError], list[PlanWarning]]:
    """What the real toolchain needs to link and boot (``layer.LINK_RULES``): a rule
    the directives break is a conflict naming the delegates; one the base bake config
    breaks by itself is only a warning, that config being its author's to know."""
    from orchestrator.core.planmodel import PlanWarning  # noqa: PLC0415

    linked = frozenset(component_of(lib) for lib in libs)
    base = frozenset(bake.components)
    problems: list[BakeplanError] = []
    warnings: list[PlanWarning] = []
    for rule in layer.LINK_RULES:
        if not rule.broken_by(linked):
            continue
        names = " or ".join(rule.any_of)
        if rule.broken_by(base):
            warnings.append(
                PlanWarning("bakeplan", "", f"bake config {bake.name} links no {names}: {rule.why}")
            )
            continue
        removed = {
            component_of(a): d.by
            for d in directives
            if d.op == "remove"
            for a in d.args
            if component_of(a) in rule.any_of
        }
        culprits = ", ".join(dict.fromkeys(removed.values())) or "the directives"
        problems.append(
            ConflictError(
                f"{culprits} removed {' and '.join(removed)}, so bake config {bake.name} would "
                f"link no {names}: {rule.why}",
                detail=(f"component: {names}", f"bake config: {bake.name}"),
                hint=rule.hint,
            )
        )
    return problems, warnings


def gate(
    runtime: Any,
    bake: BakeConfig,
    libs: Sequence[str],
    directives: Sequence[Directive],
    *,
    binaries: Sequence[str] = (),
    devices: Sequence[tuple[str, str]] | None = None,
    devices_known: bool = True,
) -> list[BakeplanError]:
    """Every part of the runtime config that the bake cannot serve, as conflicts.

    Besides components and platform, this catches what rumprun would only stop on at
    boot (``layer.boot_problems``): ``binaries`` are the rumprun-bake inputs when known,
    ``devices`` the plan's ``(name, kind)`` pairs (default: rumprun's own for ``runtime``).
    Without ``devices_known`` (``validate``, where no delegate has answered, so any may
    yet bring a block device) a mount's device is not looked for; counts still apply.
    """
    linked = {component_of(lib) for lib in libs}
    removed_by: dict[str, str] = {}
    for directive in directives:
        if directive.op == "remove":
            for arg in directive.args:
                removed_by.setdefault(component_of(arg), directive.by)
    problems: list[BakeplanError] = []
    if not isinstance(runtime, dict):
        return problems
    for need in layer.requirements(runtime):
        if need.platform is not None and need.platform != bake.platform:
            problems.append(
                ConflictError(
                    f"{need.why} needs the {need.platform} platform; bake config {bake.name} is "
                    f"{bake.platform}",
                    pointer=need.pointer,
                    hint=f"choose a {need.platform}_ bake config with -b",
                )
            )
        if need.any_of and not linked.intersection(need.any_of):
            names = " or ".join(need.any_of)
            culprits = sorted({removed_by[c] for c in need.any_of if c in removed_by})
            why = f" (removed by {', '.join(culprits)})" if culprits else ""
            problems.append(
                ConflictError(
                    f"{need.why} needs component {names}, which bake config {bake.name} does not "
                    f"link{why}",
                    pointer=need.pointer,
                    detail=(f"component: {names}", f"bake config: {bake.name}"),
                )
            )
    if devices is None:
        devices = [(d.name, d.kind) for d in layer.devices(runtime)]
    problems.extend(
        ConflictError(problem.message, pointer=problem.pointer, hint=problem.hint)
        for problem in layer.boot_problems(
            runtime,
            platform=bake.platform,
            linked=frozenset(linked),
            binaries=binaries,
            devices=devices,
            all_devices=devices_known,
        )
    )
    return problems


def assemble(
    bake: BakeConfig,
    results: Sequence[Result],
    *,
    binaries: Sequence[str] = (),
    dialect: str = DEFAULT_DIALECT,
) -> Plan:
    """The plan, or the conflicts found (all of them) raised together."""
    import hashlib  # noqa: PLC0415

    from orchestrator.core import planmodel as model  # noqa: PLC0415

    directives = directives_of(results)
    libs = apply_directives(bake.libs, directives)
    builtin = next(r for r in results if r.run.builtin)
    residual = builtin.answer.replace if builtin.answer.replaced else {}

    problems, link_warnings = link_problems(bake, libs, directives)
    devices: list[model.Device] = []
    owner_of_device: dict[str, Result] = {}
    for result in results:
        for device in result.answer.devices:
            first = owner_of_device.get(device.name)
            if first is not None:
                problems.append(
                    ConflictError(
                        f"device name {device.name!r} given by {first.run.delegate} (at "
                        f"{pointer_text(first.run.pointer)}) and by {result.run.delegate}",
                        pointer=device.pointer or result.run.pointer,
                    )
                )
                continue
            owner_of_device[device.name] = result
            devices.append(
                model.Device(
                    name=device.name,
                    kind=device.kind,
                    by=result.run.delegate,
                    pointer=device.pointer if device.pointer is not None else result.run.pointer,
                    # The answer schema refuses "by"; never let a field rename the giver.
                    fields={
                        k: device.fields[k]
                        for k in sorted(device.fields)
                        if k not in model.RESERVED
                    },
                )
            )
    problems.extend(
        gate(
            residual,
            bake,
            libs,
            directives,
            binaries=binaries,
            devices=[(d.name, d.kind) for d in devices],
        )
    )
    runtime = runtimes.convert(residual, dialect, binaries)
    if isinstance(runtime, list):
        problems.extend(runtime)
    raise_all(problems)
    assert isinstance(runtime, runtimes.Runtime)

    toolchains: dict[str, dict[str, list[str]]] = {}
    for result in results:
        for chain, args in result.answer.toolchain.items():
            merged = toolchains.setdefault(chain, {})
            for key, values in args.items():
                merged.setdefault(key, []).extend(values)

    warnings = [
        model.PlanWarning(
            r.run.delegate, w.pointer if w.pointer is not None else r.run.pointer, w.message
        )
        for r in results
        for w in r.answer.warnings
    ]
    warnings.extend(link_warnings)
    warnings.extend(_runtime_warnings(runtime, residual, bake))

    return model.Plan(
        bake=model.Bake(
            config=bake.name,
            platform=bake.platform,
            description=bake.description,
            directives=tuple(model.Directive(d.op, d.args, d.by, d.pointer) for d in directives),
            libs=tuple(libs),
        ),
        devices=tuple(devices),
        # What the conversion noted is in the warnings, which member says which config
        # part in the provenance: the plan keeps the dialect and the config.
        runtime=runtimes.Runtime(runtime.dialect, runtime.config),
        toolchains={
            c: {k: tuple(toolchains[c][k]) for k in sorted(toolchains[c])}
            for c in sorted(toolchains)
        },
        delegations=tuple(
            model.Delegation(
                delegate=r.run.delegate,
                pointer=r.run.pointer,
                command=tuple(r.command),
                builtin=r.run.builtin,
                request_sha256=hashlib.sha256(r.request).hexdigest(),
                answer_sha256=hashlib.sha256(r.answer_bytes).hexdigest(),
                # Whether the answer came from the response cache is not here: a warm
                # plan must be the cold plan's very bytes (--timings and --verbose say it).
            )
            for r in results
        ),
        warnings=tuple(warnings),
        provenance=model.Provenance(
            libs=tuple(model.LibOrigin(lib, tuple(chain)) for lib, chain in bake.origins),
            runtime=tuple(model.RuntimeOrigin(path, at) for path, at in runtime.origins()),
            toolchains=tuple(
                model.ArgumentOrigin(chain, key, value, result.run.delegate, result.run.pointer)
                for result in results
                for chain, args in sorted(result.answer.toolchain.items())
                for key, values in sorted(args.items())
                for value in values
            ),
        ),
    )


def _runtime_warnings(
    runtime: runtimes.Runtime, residual: Any, bake: BakeConfig
) -> list[PlanWarning]:
    """What to know of the runtime config: keys rumprun ignores, a size it halts on."""
    from orchestrator.core.planmodel import PlanWarning  # noqa: PLC0415

    warnings = [PlanWarning("bakeplan", "", note) for note in runtime.notes]
    for key in residual if runtime.dialect == "spec" else ():
        if key not in RUMPRUN_KEYS:
            warnings.append(
                PlanWarning(
                    "bakeplan",
                    pointer_of([key]),
                    f"rumprun does not know the key {key!r} a delegate left in the runtime "
                    "config; it warns at boot and ignores it",
                )
            )
    size = runtime.size()
    # The plan does not know how the config will be passed: warn at the lower limit.
    if bake.platform == "hw" and size >= layer.MODULE_LIMIT:
        warnings.append(
            PlanWarning(
                "bakeplan",
                "",
                f"the runtime config is {size} bytes in the {runtime.dialect} dialect; rumprun "
                f"on hw halts when the config reaches {layer.MODULE_LIMIT} bytes as a multiboot "
                f"module ({layer.CMDLINE_LIMIT} on the kernel command line)",
            )
        )
    return warnings


def dumps(plan: Plan) -> str:
    """The plan as text: two-space indented UTF-8 JSON and a final newline."""
    return json.dumps(plan.to_json(), indent=2, ensure_ascii=False) + "\n"
