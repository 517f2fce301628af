"""Properties of the whole job: identity delegates give the config back, plans repeat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers_protocol import write_identity
from helpers_tree import nodes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.core import pipeline
from orchestrator.core.plan import dumps
from orchestrator.pointers import pointer_of
from orchestrator.schemas import explainer

names = st.text(alphabet="abcXYZ_019/~ .", min_size=1, max_size=6)
# What the spec parser reads as it is given: characters up to U+FFFF (beyond, its
# escapes reach it in halves) and binaries named as baked (it matches bin whole).
# No lone surrogates: they are not Unicode text, and a config holding one is refused.
values = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=6)
rc_entries = st.fixed_dictionaries(
    {"bin": st.sampled_from(["www", "mathopd", "wopr.bin"])},
    optional={
        "argv": st.lists(values, min_size=1, max_size=3),
        "runmode": st.sampled_from(["", "&"]),
        "workdir": st.sampled_from(["/", "/data", "/a b"]),
    },
)
configs = st.fixed_dictionaries(
    {},
    optional={
        "env": st.dictionaries(names.filter(lambda n: "=" not in n), values, max_size=3),
        "rc": st.lists(rc_entries, max_size=3),
        "mount": st.dictionaries(
            st.sampled_from(["/tmp", "/a/b", "/c~d", "/x y"]),
            st.fixed_dictionaries(
                {"source": st.just("tmpfs")},
                optional={
                    "options": st.fixed_dictionaries({"size": st.sampled_from(["1M", "512k"])})
                },
            ),
            max_size=2,
        ),
        "netbsd": st.fixed_dictionaries(
            {"sysctl": st.fixed_dictionaries({}, optional={"kern.hostname": names})}
        ),
    },
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(configs, st.data())
def test_identity_delegates_give_back_the_input_as_the_runtime_config(
    tmp_path: Path, config: dict[str, Any], data: st.DataObject
) -> None:
    write_identity(tmp_path)
    candidates = nodes(config)
    chosen = (
        data.draw(st.lists(st.sampled_from(candidates), unique=True, max_size=4))
        if candidates
        else []
    )
    registry = tmp_path / "registry.json"
    registry.write_text(
        json.dumps(
            {
                "delegates": [
                    {"name": f"id-{i}", "command": ["./identity"], "claims": [pointer_of(t)]}
                    for i, t in enumerate(chosen)
                ]
            }
        )
    )
    source = tmp_path / "config.json"
    source.write_text(json.dumps(config))
    options = pipeline.Options(
        config=str(source), registries=(str(registry),), jobs=4, dialect="spec"
    )
    plan = pipeline.make_plan(options)
    assert plan.runtime.config == config
    assert len(plan.delegations) == len(chosen) + 1
    explainer.validator("plan").validate(plan.to_json())
    # The same inputs, one job at a time, give the same bytes.
    again = pipeline.make_plan(
        pipeline.Options(config=str(source), registries=(str(registry),), jobs=1, dialect="spec")
    )
    assert dumps(again) == dumps(plan)
