"""The compiled yes-or-no validators agree with jsonschema on every schema we ship."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_tree import nodes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.schemas import checker, explainer, files

INTERESTING = [
    "10.0.120.10/24", "10.0.0.300/24", "2001:db8::2/64", "fe80::1", "::", "1.2.3.4",
    "blkfront:xvda", "blkfront:xvdz9", "/dev/ld0a", "/dev", "|", "&", "", "1M", "512k", "lots",
    "vnd0", "vnd", "xbd0", "inet", "inet6", "static", "dhcp", "auto", "ipam", "etfs", "vnd",
    "blk", "kernfs", "tmpfs", "unlimited", "kern.hostname", "bakeplan/1", "bakeplan/2",
    "configure", "describe", "-lrumpnet", "rumpnet_netinet", "net", "block", "/net", "~",
    "/mount/~1data", "hw", "xen", "hw_virtio", "a=b", "rumprun", "mirage-net-config", "UPPER",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(INTERESTING),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([*INTERESTING, "bin", "argv", "type", "addr"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)


# A config at the edge of every limit, so that one more item or one changed value
# crosses it: 3 nameservers, 6 search suffixes, one gateway per family, ...
EVERY_RULE: dict[str, Any] = {
    "rc": [
        {
            "bin": "a",
            "argv": ["a", "-x"],
            "runmode": "|",
            "workdir": "/w",
            "netbsd": {"sysctl": {"rlimit.nofile.soft": 64}},
        },
        {"bin": "b", "runmode": "&"},
        {"bin": "c"},
    ],
    "env": {"A": "1", "B": ""},
    "blk": {
        "vnd0": {"type": "vnd", "path": "/img/a.iso"},
        "xbd0": {"type": "etfs", "path": "blkfront:xvda"},
    },
    "mount": {
        "/a": {"source": "blk", "path": "/dev/vnd0a"},
        "/k": {"source": "kernfs"},
        "/t": {"source": "tmpfs", "options": {"size": "512k"}},
    },
    "net": {
        "interfaces": {
            "vioif0": {
                "create": True,
                "addrs": [
                    {"type": "inet", "method": "static", "addr": "10.0.0.2/24"},
                    {"type": "inet6", "method": "static", "addr": "2001:db8::2/64"},
                    {"type": "inet6", "method": "auto"},
                ],
            },
            "vioif1": {"addrs": [{"type": "inet", "method": "dhcp"}]},
        },
        "gateways": [
            {"type": "inet", "addr": "10.0.0.1"},
            {"type": "inet6", "addr": "2001:db8::1"},
        ],
        "dns": {
            "nameservers": ["1.1.1.1", "8.8.8.8", "2001:4860:4860::8888"],
            "search": [
                "a.example",
                "b.example",
                "c.example",
                "d.example",
                "e.example",
                "f.example",
            ],
        },
    },
    "netbsd": {
        "sysctl": {
            "kern.hostname": "h",
            "proc.curproc.rlimit.nofile.hard": "unlimited",
            "kern.maxfiles": 1024,
            "net.inet.tcp.sack.enable": True,
        }
    },
}


def corpus(conformance: Path) -> dict[str, list[Any]]:
    configs = [
        json.loads(p.read_text())
        for p in sorted((conformance / "rumprun" / "valid").glob("*.json"))
    ]
    configs += [
        json.loads(p.read_text())
        for p in sorted((REPO / "examples").glob("*/config.json"))
        # examples/cni is rumprun config only once cni-ipam has resolved its "ipam" address.
        if p.parent.name != "cni"
    ]
    registries = [
        json.loads(p.read_text()) for p in sorted((REPO / "examples").glob("*/registry.json"))
    ]
    answers = [
        {
            "protocol": "bakeplan/1",
            "replace": {"a": 1},
            "devices": [{"name": "vioif0", "kind": "net", "pointer": "/net", "mac": "x"}],
            "components": {"add": ["rumpdev_bpf"], "remove": ["rumpnet_netinet"]},
            "toolchain": {"ocaml": {"boot": ["--ipv4=1.2.3.4/24"]}},
            "warnings": [{"pointer": "/net", "message": "m"}],
        },
        {
            "protocol": "bakeplan/1",
            "name": "d",
            "version": "1",
            "protocols": ["bakeplan/1"],
            "claims": ["/net"],
            "pure": True,
        },
        {"protocol": "bakeplan/1", "error": {"code": "c", "message": "m", "pointer": "/x"}},
    ]
    requests = [
        {"protocol": "bakeplan/1", "op": "describe"},
        {
            "protocol": "bakeplan/1",
            "op": "configure",
            "delegate": "d",
            "pointer": "/net",
            "fragment": {},
            "context": {"bake_config": "hw_virtio", "platform": "hw", "components": ["rumpvfs"]},
        },
    ]
    return {"config": configs, "registry": registries, "response": answers, "request": requests}


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for token in path:
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document


def mutate(document: Any, data: st.DataObject) -> Any:
    """One random change: a node replaced, removed, or given a new key."""
    result = copy.deepcopy(document)
    paths = nodes(result)
    if not paths:
        return data.draw(values)
    path = data.draw(st.sampled_from(paths))
    parent: Any = result
    for token in path[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    last: Any = int(path[-1]) if isinstance(parent, list) else path[-1]
    action = data.draw(st.sampled_from(["replace", "remove", "add", "duplicate"]))
    if action == "duplicate":
        # A copy of a valid item crosses a count limit (maxItems, maxContains) while
        # keeping every other rule satisfied.
        lists = [p for p in paths if isinstance(_at(result, p), list) and _at(result, p)]
        if lists:
            target = _at(result, data.draw(st.sampled_from(lists)))
            target.append(copy.deepcopy(data.draw(st.sampled_from(target))))
    elif action == "replace":
        parent[last] = data.draw(values)
    elif action == "remove":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][data.draw(st.sampled_from(INTERESTING))] = data.draw(values)
    elif isinstance(parent[last], list):
        parent[last].append(data.draw(values))
    return result


def agree(name: str, document: Any, ref: str | None = None) -> bool:
    quick = checker.is_valid(name, document, ref)
    full = explainer.validator(name, ref).is_valid(document)
    assert quick == full, (name, ref, document)
    return full


@pytest.mark.parametrize("name", ["config", "registry", "response", "request"])
def test_the_corpus_is_valid_on_both_paths(name: str, conformance: Path) -> None:
    for document in corpus(conformance)[name]:
        assert agree(name, document)


@pytest.mark.parametrize("name", ["config", "registry", "response", "request"])
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_documents_get_the_same_verdict(
    name: str, conformance: Path, data: st.DataObject
) -> None:
    document = data.draw(st.sampled_from(corpus(conformance)[name]))
    for _ in range(data.draw(st.integers(1, 3))):
        document = mutate(document, data)
    agree(name, document)
    if name == "response":
        for section in ("configure", "describe", "failure"):
            agree(name, document, f"#/$defs/{section}")
    if name == "config" and isinstance(document, dict):
        for section in ("rc", "env", "blk", "mount", "net", "netbsd"):
            if section in document:
                agree(name, document[section], f"#/$defs/{section}")


@settings(max_examples=200, deadline=None)
@given(values)
def test_arbitrary_values_get_the_same_verdict(document: Any) -> None:
    for name in ("config", "registry", "response", "request", "plan"):
        agree(name, document)


def test_json_equality_is_not_python_equality() -> None:
    assert not checker.equal(True, 1)
    assert not checker.equal(0, False)
    assert checker.equal(1, 1.0)
    assert checker.equal({"a": [1, True]}, {"a": [1.0, True]})
    assert not checker.equal({"a": [1, True]}, {"a": [1, 1]})


def test_unknown_keywords_are_refused_not_passed() -> None:
    with pytest.raises(checker.Unsupported):
        checker.Compiler({}).compile({"unevaluatedProperties": False}, "")
    assert checker.compiled(json.dumps({"unevaluatedProperties": False})) is None


def test_a_delegate_schema_with_package_refs_compiles() -> None:
    schema = {"$ref": explainer.schema_id("config") + "#/$defs/net"}
    check = checker.compiled(json.dumps(schema))
    assert check is not None
    assert check({"interfaces": {}})
    assert not check({"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "x"}]}}})


def test_happy_path_does_not_import_jsonschema(tmp_path: Path) -> None:
    script = (
        "import sys, json\n"
        "from orchestrator.core import config\n"
        f"c = config.load({str(REPO / 'examples/hybrid/config.json')!r})\n"
        "config.check(c)\n"
        "print('jsonschema' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        (("net", "dns", "nameservers"), "9.9.9.9"),
        (("net", "dns", "search"), "g.example"),
        (("net", "gateways"), {"type": "inet", "addr": "10.0.0.254"}),
    ],
)
def test_one_past_each_limit_gets_the_same_verdict(path: tuple[str, ...], extra: Any) -> None:
    document = copy.deepcopy(EVERY_RULE)
    _at(document, path).append(extra)
    assert not agree("config", document)


def test_an_unknown_keyword_behind_a_ref_falls_back_to_jsonschema() -> None:
    schema = {
        "$defs": {"x": {"unevaluatedProperties": False, "properties": {"a": {"type": "string"}}}},
        "properties": {"v": {"$ref": "#/$defs/x"}},
    }
    check = checker.compiled(json.dumps(schema))
    assert check is not None
    with pytest.raises(checker.Unsupported):
        check({"v": {"a": "x"}})
    assert explainer.violations_of(schema, {"v": {"a": "x"}}) == []
    found = explainer.violations_of(schema, {"v": {"a": "x", "b": 1}})
    assert [v.pointer for v in found] == ["/v"]


@pytest.mark.parametrize("name", ["config", "registry", "request", "response", "plan"])
def test_every_part_of_every_package_schema_compiles(name: str) -> None:
    # Parts behind a $ref compile when data first reaches them: reach each one here, so a
    # keyword the compiler does not know cannot hide in a part few documents touch.
    document = explainer.load(name)
    parts = [None, *(f"#/$defs/{key}" for key in document.get("$defs", {}))]
    for part in parts:
        for value in (None, {}, [], "", 0):
            checker.checker(name, part)(value)


@pytest.mark.parametrize("name", explainer.names())
def test_the_light_reading_of_each_schema_file_is_the_strict_one(name: str) -> None:
    # The compiled checks and delegates read the files with json alone (schemas/files.py).
    assert files.load(name) == explainer.load(name)
    assert files.by_id(explainer.schema_id(name)) == explainer.load(name)
    assert files.by_id(explainer.schema_id(name) + "x") is None


def _imported(module: str) -> set[str]:
    """The orchestrator modules ``module``'s source imports, at any depth of its code."""
    import ast  # noqa: PLC0415

    path = REPO / (module.replace(".", "/") + ".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("orchestrator.")}


def test_the_schema_modules_import_one_way_files_checker_explainer() -> None:
    files_imports = _imported("orchestrator.schemas.files")
    checker_imports = _imported("orchestrator.schemas.checker")
    explainer_imports = _imported("orchestrator.schemas.explainer")
    assert files_imports == set()
    assert "orchestrator.schemas.explainer" not in checker_imports
    assert "orchestrator.schemas.files" in checker_imports
    assert "orchestrator.schemas.checker" in explainer_imports
