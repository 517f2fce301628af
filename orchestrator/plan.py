"""Delegates' answers assembled into the one deterministic bake plan.

Everything here is a pure function of the routing, the bake config and the results, all
taken in routing order, so the same inputs give the same bytes: no timestamps,
durations, temporary paths or dictionary-order accidents.  This is also where the
contract's gating happens: a runtime config that needs a component the final library
list lacks, or a platform the bake config is not, is a conflict (exit 3).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from orchestrator import protocol, rumprun
from orchestrator.bake import BakeConfig, Directive, apply_directives, component_of, flag_of
from orchestrator.errors import BakeplanError, ConflictError, pointer_text, raise_all
from orchestrator.routing import RUMPRUN_KEYS, pointer_of
from orchestrator.scheduler import Result

PLAN_VERSION = "bakeplan/1"
RESERVED = frozenset({"name", "kind", "by", "pointer"})


def directives_of(results: Iterable[Result]) -> tuple[Directive, ...]:
    """Each run's ``add`` then ``remove``, in routing order, as rumprun-bake ``-m`` commands."""
    directives: list[Directive] = []
    for result in results:
        answer = result.answer
        if answer.add:
            directives.append(
                Directive("add", tuple(flag_of(c) for c in answer.add), result.run.delegate)
            )
        if answer.remove:
            directives.append(
                Directive("remove", tuple(flag_of(c) for c in answer.remove), result.run.delegate)
            )
    return tuple(directives)


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
    boot (``rumprun.boot_problems``): ``binaries`` are the rumprun-bake inputs when known,
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
    for need in rumprun.requirements(runtime):
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
        devices = [(d.name, d.kind) for d in rumprun.devices(runtime)]
    problems.extend(
        ConflictError(problem.message, pointer=problem.pointer, hint=problem.hint)
        for problem in rumprun.boot_problems(
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
    bake: BakeConfig, results: Sequence[Result], *, binaries: Sequence[str] = ()
) -> dict[str, Any]:
    """The plan document, or the conflicts found (all of them) raised together."""
    directives = directives_of(results)
    libs = apply_directives(bake.libs, directives)
    builtin = next(r for r in results if r.run.builtin)
    runtime = builtin.answer.replace if builtin.answer.replaced else {}

    problems: list[BakeplanError] = []
    devices: list[dict[str, Any]] = []
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
                {
                    "name": device.name,
                    "kind": device.kind,
                    "by": result.run.delegate,
                    "pointer": device.pointer if device.pointer is not None else result.run.pointer,
                    # The answer schema refuses "by"; never let a field rename the giver.
                    **{k: device.fields[k] for k in sorted(device.fields) if k not in RESERVED},
                }
            )
    problems.extend(
        gate(
            runtime,
            bake,
            libs,
            directives,
            binaries=binaries,
            devices=[(d["name"], d["kind"]) for d in devices],
        )
    )
    raise_all(problems)

    toolchains: dict[str, dict[str, list[str]]] = {}
    for result in results:
        for chain, args in result.answer.toolchain.items():
            merged = toolchains.setdefault(chain, {})
            for key, values in args.items():
                merged.setdefault(key, []).extend(values)

    warnings = [
        {
            "by": r.run.delegate,
            "pointer": w.pointer if w.pointer is not None else r.run.pointer,
            "message": w.message,
        }
        for r in results
        for w in r.answer.warnings
    ]
    for key in runtime:
        if key not in RUMPRUN_KEYS:
            warnings.append(
                {
                    "by": "bakeplan",
                    "pointer": pointer_of([key]),
                    "message": f"rumprun does not know the key {key!r} a delegate left in the "
                    "runtime config; it warns at boot and ignores it",
                }
            )
    size = len(protocol.encode(runtime)) - 1
    # The plan does not know how the config will be passed: warn at the lower limit.
    if bake.platform == "hw" and size >= rumprun.MODULE_LIMIT:
        warnings.append(
            {
                "by": "bakeplan",
                "pointer": "",
                "message": f"the runtime config is {size} bytes; rumprun on hw halts when the "
                f"config reaches {rumprun.MODULE_LIMIT} bytes as a multiboot module "
                f"({rumprun.CMDLINE_LIMIT} on the kernel command line)",
            }
        )

    return {
        "plan": PLAN_VERSION,
        "bake": {
            "config": bake.name,
            "platform": bake.platform,
            "description": bake.description,
            "directives": [d.as_json() for d in directives],
            "libs": list(libs),
        },
        "devices": devices,
        "runtime": {"config": runtime},
        "toolchains": {
            c: {k: toolchains[c][k] for k in sorted(toolchains[c])} for c in sorted(toolchains)
        },
        "delegations": [
            {
                "delegate": r.run.delegate,
                "pointer": r.run.pointer,
                "command": list(r.command),
                "builtin": r.run.builtin,
                "request_sha256": hashlib.sha256(r.request).hexdigest(),
                "answer_sha256": hashlib.sha256(r.answer_bytes).hexdigest(),
                # The only field a cache hit changes: the answer bytes are the same.
                "cached": r.cached,
            }
            for r in results
        ],
        "warnings": warnings,
    }


def dumps(plan: dict[str, Any]) -> str:
    """The plan as text: two-space indented UTF-8 JSON and a final newline."""
    return json.dumps(plan, indent=2, ensure_ascii=False) + "\n"
