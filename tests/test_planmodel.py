"""``planmodel``: the plan as frozen data and as the document ``bakeplan plan`` writes.

``to_json`` gives the members in the order bakeplan has always written them and leaves
out the optional ones a plan lacks; ``from_json`` takes such a document back to the very
same plan.  Proven on the examples' plans, on plans built here member by member (every
optional member present or absent, any strings, any JSON a device or runtime carries),
and on the document of an older plan.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from conftest import needs_cni_plugins
from helpers_cli import run_main
from helpers_plan import plan_document
from helpers_snapshot import SNAPSHOTS, assert_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core import plan, planmodel
from orchestrator.core.planmodel import (
    ArgumentOrigin,
    Bake,
    Delegation,
    Device,
    Directive,
    LibOrigin,
    Plan,
    PlanWarning,
    Provenance,
    RuntimeOrigin,
)
from orchestrator.rumprun.runtime import Runtime
from orchestrator.schemas import explainer

REPO = Path(__file__).resolve().parents[1]
SHA_ABC = hashlib.sha256(b"abc").hexdigest()


def example_plan(capsys: pytest.CaptureFixture[str], example: str, *extra: str) -> str:
    """The text ``bakeplan plan`` writes for an example."""
    folder = REPO / "examples" / example
    code, out, err = run_main(
        capsys, "plan", str(folder / "config.json"), "-r", str(folder / "registry.json"), *extra
    )
    assert code == 0, err
    return out


def written_plan(capsys: pytest.CaptureFixture[str], example: str, dialect: str) -> str:
    """The plan text of an example: its snapshot, which the test below proves to be the
    bytes ``bakeplan plan`` writes, or else what it writes now."""
    recorded = SNAPSHOTS / "plans" / f"{example}-{dialect}.json"
    if recorded.exists():
        return recorded.read_text(encoding="utf-8")
    return example_plan(capsys, example, "--rumprun", dialect)


# -- the examples' plans -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "dialect"), [("hybrid", "master"), ("hybrid", "spec"), ("rumprun-only", "master")]
)
def test_the_examples_plans_are_the_bytes_bakeplan_has_always_written(
    capsys: pytest.CaptureFixture[str], example: str, dialect: str
) -> None:
    # Recorded from the plan as a dict, before the plan had classes: other tools read
    # these bytes, so no change of the code behind them may change them.
    out = example_plan(capsys, example, "--rumprun", dialect)
    assert_snapshot(f"plans/{example}-{dialect}.json", out)


@pytest.mark.parametrize(
    "example", ["hybrid", "rumprun-only", pytest.param("cni", marks=needs_cni_plugins)]
)
@pytest.mark.parametrize("dialect", ["master", "spec"])
def test_a_plan_written_reads_back_to_the_same_plan_and_the_same_bytes(
    capsys: pytest.CaptureFixture[str], example: str, dialect: str
) -> None:
    text = written_plan(capsys, example, dialect)
    document = json.loads(text)
    again = Plan.from_json(document)
    assert again.to_json() == document
    assert plan.dumps(again) == text
    assert Plan.from_json(again.to_json()) == again


def test_the_runtime_config_is_carried_not_copied(capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(written_plan(capsys, "hybrid", "master"))
    read = Plan.from_json(document)
    assert read.runtime.config is document["runtime"]["config"]
    assert read.to_json()["runtime"]["config"] is read.runtime.config


def test_a_device_keeps_the_delegates_fields_apart_from_the_plans_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = json.loads(written_plan(capsys, "hybrid", "master"))
    vioif0 = Plan.from_json(document).devices[0]
    assert (vioif0.name, vioif0.kind, vioif0.by) == ("vioif0", "net", "mirage-net-config")
    assert dict(vioif0.fields) == {"driver": "bpf"}
    assert vioif0.to_json() == document["devices"][0]
    assert list(vioif0.to_json())[:4] == ["name", "kind", "by", "pointer"]


# -- optional members and frozen data --------------------------------------------------------------


def test_members_the_schema_makes_optional_stay_absent() -> None:
    document = plan_document(
        bake={"directives": [{"op": "add", "args": ["-lx"], "by": "d"}], "libs": ["-lx"]},
        delegations=[
            {
                "delegate": "d",
                "pointer": "/net",
                "command": ["d"],
                "request_sha256": SHA_ABC,
                "answer_sha256": SHA_ABC,
            }
        ],
    )
    assert not explainer.explain("plan", document)
    read = Plan.from_json(copy.deepcopy(document))
    assert read.bake.description is None
    assert read.bake.directives[0].pointer is None
    assert read.delegations[0].builtin is None
    assert read.to_json() == document


def test_every_class_of_the_plan_is_frozen(capsys: pytest.CaptureFixture[str]) -> None:
    read = Plan.from_json(json.loads(written_plan(capsys, "hybrid", "master")))
    instances = [
        read,
        read.bake,
        read.bake.directives[0],
        read.devices[0],
        read.delegations[0],
        PlanWarning("d", "/env", "look"),
        read.provenance,
        read.provenance.libs[0],
        read.provenance.runtime[0],
        read.provenance.toolchains[0],
    ]
    classes = {
        c for c in vars(planmodel).values() if dataclasses.is_dataclass(c) and isinstance(c, type)
    }
    assert {type(i) for i in instances} == classes - {Runtime}
    for instance in instances:
        first = dataclasses.fields(instance)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(instance, first, getattr(instance, first))


# -- plans built member by member ------------------------------------------------------------------

text = st.text(max_size=6)
lib = st.from_regex(r"-l[a-z0-9_]{1,8}", fullmatch=True)
sha = st.text("0123456789abcdef", min_size=64, max_size=64)
maybe_text = st.one_of(st.none(), text)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)
MASTER_KEYS = ["cmdline", "rc_TESTING", "env", "hostname", "blk", "net"]

plans = st.builds(
    Plan,
    bake=st.builds(
        Bake,
        config=st.from_regex(r"(hw|xen)_[a-z0-9_]{0,8}", fullmatch=True),
        platform=st.sampled_from(["hw", "xen"]),
        directives=st.lists(
            st.builds(
                Directive,
                op=st.sampled_from(["add", "remove"]),
                args=st.lists(lib, min_size=1, max_size=3).map(tuple),
                by=text,
                pointer=maybe_text,
            ),
            max_size=3,
        ).map(tuple),
        libs=st.lists(lib, unique=True, max_size=4).map(tuple),
        description=maybe_text,
    ),
    devices=st.lists(
        st.builds(
            Device,
            name=text,
            kind=text,
            by=text,
            pointer=text,
            fields=st.dictionaries(
                text.filter(lambda k: k not in planmodel.RESERVED), json_value, max_size=3
            ),
        ),
        max_size=3,
    ).map(tuple),
    runtime=st.one_of(
        st.builds(Runtime, st.just("spec"), st.dictionaries(text, json_value, max_size=3)),
        st.builds(
            Runtime,
            st.just("master"),
            st.lists(st.tuples(st.sampled_from(MASTER_KEYS), json_value).map(list), max_size=3),
        ),
    ),
    toolchains=st.dictionaries(
        text, st.dictionaries(text, st.lists(text, max_size=3).map(tuple), max_size=2), max_size=2
    ),
    delegations=st.lists(
        st.builds(
            Delegation,
            delegate=text,
            pointer=text,
            command=st.lists(text, max_size=3).map(tuple),
            request_sha256=sha,
            answer_sha256=sha,
            builtin=st.one_of(st.none(), st.booleans()),
        ),
        max_size=3,
    ).map(tuple),
    warnings=st.lists(st.builds(PlanWarning, text, text, text), max_size=2).map(tuple),
    provenance=st.builds(
        Provenance,
        libs=st.lists(
            st.builds(LibOrigin, lib, st.lists(text, min_size=1, max_size=2).map(tuple)),
            max_size=2,
        ).map(tuple),
        runtime=st.lists(st.builds(RuntimeOrigin, text, text), max_size=2).map(tuple),
        toolchains=st.lists(
            st.builds(ArgumentOrigin, text, text, text, text, text), max_size=2
        ).map(tuple),
    ),
)


@settings(max_examples=60, deadline=None)
@given(plans)
def test_any_plan_is_a_valid_document_that_reads_back_to_itself(built: Plan) -> None:
    document = built.to_json()
    assert not explainer.explain("plan", document)
    written = json.dumps(document, indent=2, ensure_ascii=False)
    again = Plan.from_json(json.loads(written))
    assert again == built
    assert json.dumps(again.to_json(), indent=2, ensure_ascii=False) == written
    # An optional member is written exactly when the plan has it, in its place.
    bake = ["config", "platform", "description", "directives", "libs"]
    assert list(document["bake"]) == [
        k for k in bake if k != "description" or built.bake.description is not None
    ]
    for directive, written_directive in zip(
        built.bake.directives, document["bake"]["directives"], strict=True
    ):
        assert ("pointer" in written_directive) == (directive.pointer is not None)
    order = ["delegate", "pointer", "command", "builtin", "request_sha256", "answer_sha256"]
    for delegation, written_delegation in zip(
        built.delegations, document["delegations"], strict=True
    ):
        assert list(written_delegation) == [
            k for k in order if k != "builtin" or delegation.builtin is not None
        ]
