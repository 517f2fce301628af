"""The bake as a picture: a Graphviz DOT graph of config parts, delegates and their answers.

Left to right: the parts of the config each run owns, the delegates that configure them
(an inner delegate's answer flowing into the outer one), and what each contributes to the
plan: components added and removed, devices, toolchain arguments, the runtime config.
``dot -Tsvg`` renders it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from orchestrator.core.pipeline import Prepared
from orchestrator.core.planmodel import Plan
from orchestrator.core.scheduler import Result


def quote(text: str) -> str:
    """A DOT double-quoted string (labels may hold newlines as ``\\n``)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _attrs(**attributes: str) -> str:
    return "[" + ", ".join(f"{key}={quote(value)}" for key, value in attributes.items()) + "]"


def _edge(source: str, target: str, **attributes: str) -> str:
    return f"  {quote(source)} -> {quote(target)} {_attrs(**attributes)};"


def _cluster(name: str, label: str, lines: Iterable[str]) -> list[str]:
    return [
        f"  subgraph {quote('cluster_' + name)} {{",
        f"    label={quote(label)};",
        *(f"  {line}" for line in lines),
        "  }",
    ]


def _node(identifier: str, **attributes: str) -> str:
    return f"  {quote(identifier)} {_attrs(**attributes)};"


def dot(prepared: Prepared, results: Sequence[Result], plan: Plan) -> str:
    """The DOT text for a finished plan."""
    parts = [
        _node(f"part:{r.run.pointer}", label=r.run.pointer or "/ (all not claimed)", shape="note")
        for r in results
    ]
    delegates = sorted({r.run.delegate for r in results})
    lines = [
        "digraph bakeplan {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
        *_cluster("config", prepared.config.source, parts),
        *(_node(f"delegate:{d}", label=d, shape="box", style="rounded,bold") for d in delegates),
    ]
    outputs = [
        _node("libs", label=f"bake.libs ({len(plan.bake.libs)} libraries)"),
        _node("runtime", label=f"runtime config (rumprun {plan.runtime.dialect})"),
        *(_node(f"device:{d.name}", label=f"{d.name} ({d.kind})") for d in plan.devices),
        *(_node(f"toolchain:{chain}", label=f"toolchain {chain}") for chain in plan.toolchains),
    ]
    lines.extend(_cluster("plan", f"bake plan ({plan.bake.config})", outputs))
    for result in results:
        lines.extend(_contributions(result, {r.run.pointer: r for r in results}))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _contributions(result: Result, by_pointer: Mapping[str, Result]) -> list[str]:
    """The edges of one run: its part in, inner answers in, its contributions out."""
    run, answer = result.run, result.answer
    me = f"delegate:{run.delegate}"
    edges = [_edge(f"part:{run.pointer}", me, label="fragment")]
    for inner in run.inner:
        inner_result = by_pointer[inner]
        how = "replace" if inner_result.answer.replaced else "consumed"
        edges.append(
            _edge(
                f"delegate:{inner_result.run.delegate}", me, label=f"{how} {inner}", style="dashed"
            )
        )
    changes = [f"+{c}" for c in answer.add] + [f"-{c}" for c in answer.remove]
    if changes:
        edges.append(_edge(me, "libs", label="\n".join(changes)))
    edges.extend(_edge(me, f"device:{d.name}", label="device") for d in answer.devices)
    edges.extend(
        _edge(me, f"toolchain:{chain}", label=", ".join(sorted(args)))
        for chain, args in answer.toolchain.items()
    )
    if run.builtin and answer.replaced:
        edges.append(_edge(me, "runtime", label="replace"))
    return edges
