"""``bakeplan graph`` and ``emit/graph.py``: the DOT picture of a plan.

The DOT text is parsed back here (the subset bakeplan writes: quoted IDs, attribute
lists, clusters), so each test checks the graph's nodes, clusters and edges, not
substrings: braces balance, every edge joins two declared nodes, and names a config or
a delegate's answer may hold (quotes, backslashes, newlines, braces) come back as they
were.  Where Graphviz's ``dot`` is installed it must read the same graph.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import BAKEPLAN, run_main
from helpers_protocol import write_py_delegate, write_registry
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core import pipeline
from orchestrator.emit import graph

BIN = str(Path(sys.executable).parent)
HYBRID = REPO / "examples" / "hybrid"
HYBRID_ARGS = (str(HYBRID / "config.json"), "-r", str(HYBRID / "registry.json"))
DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed")

# -- reading DOT back -----------------------------------------------------------------------------

TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(->|[{}\[\];,=])|([A-Za-z_][A-Za-z0-9_]*|[0-9.]+))')
ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def unquote(token: str) -> str:
    """The text of a quoted DOT string, as ``graph.quote`` wrote it."""
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m[1], "\\" + m[1]), token[1:-1])


def tokens(text: str) -> list[str]:
    """DOT tokens; a quoted string stays quoted, so that ``"{"`` is never a brace."""
    found, at = [], 0
    while text[at:].strip():
        match = TOKEN.match(text, at)
        assert match, f"no DOT token at {text[at : at + 40]!r}"
        found.append(match[0].strip())
        at = match.end()
    return found


@dataclass
class Graph:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    clusters: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


def parse(text: str) -> Graph:
    """The graph of DOT ``text``; fails on anything unbalanced or out of place."""
    stream = tokens(text)
    assert stream[:3] == ["digraph", "bakeplan", "{"], stream[:3]
    parsed, at = Graph(), 3

    def name(token: str) -> str:
        return unquote(token) if token.startswith('"') else token

    def attributes() -> dict[str, str]:
        nonlocal at
        found: dict[str, str] = {}
        assert stream[at] == "["
        at += 1
        while stream[at] != "]":
            key, equals, value = stream[at : at + 3]
            assert equals == "=", stream[at : at + 3]
            found[name(key)] = name(value)
            at += 3
            if stream[at] == ",":
                at += 1
        at += 1
        return found

    def statements(members: list[str] | None) -> None:
        nonlocal at
        while stream[at] != "}":
            first = stream[at]
            if first == "subgraph":
                cluster, opening = name(stream[at + 1]), stream[at + 2]
                assert opening == "{"
                at += 3
                inside: list[str] = []
                assert stream[at : at + 2] == ["label", "="]
                label = name(stream[at + 2])
                assert stream[at + 3] == ";"
                at += 4
                statements(inside)
                parsed.clusters[cluster] = (label, inside)
                continue  # a subgraph ends at its brace
            if first in ("node", "edge"):
                at += 1
                attributes()
            elif stream[at + 1] == "=":
                at += 3
            elif stream[at + 1] == "->":
                source, target = name(first), name(stream[at + 2])
                at += 3
                parsed.edges.append((source, target, attributes()))
            else:
                at += 1
                identifier = name(first)
                assert identifier not in parsed.nodes, f"{identifier!r} declared twice"
                parsed.nodes[identifier] = attributes()
                if members is not None:
                    members.append(identifier)
            assert stream[at] == ";", stream[at - 3 : at + 1]
            at += 1
        at += 1  # the closing brace

    statements(None)
    assert at == len(stream), f"text after the graph: {stream[at:]}"
    for source, target, _ in parsed.edges:
        assert source in parsed.nodes and target in parsed.nodes, (source, target)
    return parsed


def edges_of(parsed: Graph) -> list[tuple[str, str, str]]:
    return [(source, target, attrs["label"]) for source, target, attrs in parsed.edges]


def dot_reads(text: str) -> dict[str, Any]:
    """What Graphviz's ``dot`` reads in ``text`` (its JSON output)."""
    assert DOT is not None
    done = subprocess.run(
        [DOT, "-Tjson0"], input=text.encode(), capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    assert not done.stderr, done.stderr.decode()  # dot warns of syntax errors and goes on
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def dot_name(identifier: str) -> str:
    """The name dot gives a node: the quoted text with only its quotes unescaped."""
    return graph.quote(identifier)[1:-1].replace('\\"', '"')


def assert_dot_agrees(text: str, parsed: Graph) -> None:
    """dot reads the same clusters, nodes and edges as the parse above."""
    document = dot_reads(text)
    clusters = [o for o in document["objects"] if "nodes" in o]
    nodes = {o["_gvid"]: o["name"] for o in document["objects"] if "nodes" not in o}
    assert {o["name"] for o in clusters} == {dot_name(c) for c in parsed.clusters}
    assert sorted(nodes.values()) == sorted(dot_name(n) for n in parsed.nodes)
    assert sorted((nodes[e["tail"]], nodes[e["head"]]) for e in document["edges"]) == sorted(
        (dot_name(source), dot_name(target)) for source, target, _ in parsed.edges
    )


# -- the hybrid example through the command --------------------------------------------------------


@pytest.fixture
def hybrid_dot(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    code, out, err = run_main(capsys, "graph", *HYBRID_ARGS)
    assert code == 0, err
    assert err == ""
    return out


def test_the_hybrid_graph_has_each_part_delegate_and_contribution(hybrid_dot: str) -> None:
    parsed = parse(hybrid_dot)
    assert parsed.clusters == {
        "cluster_config": (str(HYBRID / "config.json"), ["part:/net", "part:"]),
        "cluster_plan": (
            "bake plan (hw_virtio)",
            ["libs", "runtime", "device:vioif0", "device:ld0", "toolchain:ocaml"],
        ),
    }
    labels = {identifier: attrs["label"] for identifier, attrs in parsed.nodes.items()}
    assert labels == {
        "part:/net": "/net",
        "part:": "/ (all not claimed)",
        "delegate:mirage-net-config": "mirage-net-config",
        "delegate:rumprun": "rumprun",
        "libs": "bake.libs (24 libraries)",
        "runtime": "runtime config (rumprun master)",
        "device:vioif0": "vioif0 (net)",
        "device:ld0": "ld0 (block)",
        "toolchain:ocaml": "toolchain ocaml",
    }
    assert edges_of(parsed) == [
        ("part:/net", "delegate:mirage-net-config", "fragment"),
        ("delegate:mirage-net-config", "libs", "+rumpdev_bpf\n-rumpnet_netinet"),
        ("delegate:mirage-net-config", "device:vioif0", "device"),
        ("delegate:mirage-net-config", "toolchain:ocaml", "boot, packages"),
        ("part:", "delegate:rumprun", "fragment"),
        ("delegate:mirage-net-config", "delegate:rumprun", "consumed /net"),
        ("delegate:rumprun", "device:ld0", "device"),
        ("delegate:rumprun", "runtime", "replace"),
    ]
    assert parsed.edges[5][2]["style"] == "dashed"  # an inner answer, not a contribution


def test_the_spec_dialect_is_named_on_the_runtime_node(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    code, out, err = run_main(capsys, "graph", "--rumprun", "spec", *HYBRID_ARGS)
    assert code == 0, err
    assert parse(out).nodes["runtime"]["label"] == "runtime config (rumprun spec)"


@needs_dot
def test_dot_reads_the_hybrid_graph_and_renders_it(hybrid_dot: str) -> None:
    assert_dot_agrees(hybrid_dot, parse(hybrid_dot))
    assert DOT is not None
    done = subprocess.run(
        [DOT, "-Tsvg"], input=hybrid_dot.encode(), capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert b"<svg" in done.stdout


def test_graph_as_a_real_process_writes_its_output_file(tmp_path: Path) -> None:
    out = tmp_path / "hybrid.dot"
    done = subprocess.run(
        [*BAKEPLAN, "graph", *HYBRID_ARGS, "-o", str(out)],
        capture_output=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert "delegate:mirage-net-config" in parse(out.read_text()).nodes


# -- hostile names, through graph.dot ------------------------------------------------------------

# A config key and a toolchain a delegate may name: DOT's quote, escape and line break,
# braces and a statement end, none of which may end a string or a statement.
KEY = 'k"\\{x};\n[y]->'
CHAIN = 'tool"chain\\\n}'
ARG = 'a"rg\\'


def hostile_plan(folder: Path) -> tuple[pipeline.Prepared, str]:
    """A plan whose delegate claims ``/env/KEY`` in a config file whose name has a quote,
    and answers with its fragment, a device and the ``CHAIN`` toolchain."""
    write_py_delegate(
        folder,
        "odd",
        f"""
        import json
        request = json.load(sys.stdin)
        print(json.dumps({{
            "protocol": "bakeplan/1",
            "replace": request["fragment"],
            "devices": [{{"name": "tap0", "kind": "net"}}],
            "toolchain": {{{CHAIN!r}: {{{ARG!r}: ["v"]}}}},
        }}))
        """,
    )
    registry = write_registry(
        folder, {"name": "odd", "command": [str(folder / "odd")], "claims": [f"/env/{KEY}"]}
    )
    config = folder / 'my "odd" config.json'
    config.write_text(json.dumps({"env": {KEY: "1"}}))
    options = pipeline.Options(config=str(config), registries=(str(registry),), dialect="spec")
    prepared = pipeline.prepare(options)
    results, plan = pipeline.execute(prepared, options)
    return prepared, graph.dot(prepared, results, plan)


def test_hostile_names_come_back_as_they_were(tmp_path: Path) -> None:
    prepared, text = hostile_plan(tmp_path)
    parsed = parse(text)
    part = f"part:/env/{KEY}"
    assert parsed.clusters["cluster_config"] == (prepared.config.source, [part, "part:"])
    assert parsed.nodes[part]["label"] == f"/env/{KEY}"
    assert parsed.nodes[f"toolchain:{CHAIN}"]["label"] == f"toolchain {CHAIN}"
    assert edges_of(parsed) == [
        (part, "delegate:odd", "fragment"),
        ("delegate:odd", "device:tap0", "device"),
        ("delegate:odd", f"toolchain:{CHAIN}", ARG),
        ("part:", "delegate:rumprun", "fragment"),
        ("delegate:odd", "delegate:rumprun", f"replace /env/{KEY}"),
        ("delegate:rumprun", "runtime", "replace"),
    ]
    # One statement a line: no name breaks a line of the DOT text.
    assert all(line.rstrip().endswith((";", "{", "}")) for line in text.splitlines())


def test_a_delegate_that_changes_no_library_has_no_edge_to_the_libraries(tmp_path: Path) -> None:
    _, text = hostile_plan(tmp_path)
    assert [e for e in parse(text).edges if e[1] == "libs"] == []


@needs_dot
def test_dot_reads_hostile_names_as_the_same_graph(tmp_path: Path) -> None:
    _, text = hostile_plan(tmp_path)
    assert_dot_agrees(text, parse(text))


@given(st.text())
def test_quote_is_one_dot_string_that_reads_back(text: str) -> None:
    quoted = graph.quote(text)
    assert tokens(quoted) == [quoted]
    assert "\n" not in quoted
    assert unquote(quoted) == text
