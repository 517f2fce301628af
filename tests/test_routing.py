"""Routing: owners by deepest claim, conflicts, unknown keys, inside-out order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import SPEC, run_main
from helpers_tree import leaves, nodes
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.registry import Entry, Registry
from orchestrator.core.routing import Routing, parse_overrides, route
from orchestrator.errors import ConflictError, InputError, Problems, UsageError, exit_code_of
from orchestrator.pointers import pointer_of, tokens_of, within
from orchestrator.show import messages


def registry(*claims: tuple[str, tuple[str, ...]]) -> Registry:
    return Registry(
        entries=tuple(Entry(name=n, command=(n,), claims=c) for n, c in claims), files=()
    )


HYBRID: dict[str, Any] = {
    "net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}}},
    "mount": {"/data": {"source": "blk", "path": "/dev/ld0a"}},
    "rc": [{"bin": "www"}],
}


def test_unclaimed_rumprun_keys_belong_to_the_builtin_layer() -> None:
    routing = route(HYBRID, registry())
    assert [(r.delegate, r.pointer) for r in routing.runs] == [("rumprun", "")]
    assert routing.owner("/mount/~1data/path").delegate == "rumprun"


def test_deepest_claim_wins_and_runs_inside_out() -> None:
    routing = route(
        HYBRID,
        registry(
            ("mirage-net-config", ("/net",)),
            ("cni-ipam", ("/net/interfaces/vioif0/addrs/0",)),
        ),
    )
    assert [(r.delegate, r.pointer, r.level) for r in routing.runs] == [
        ("cni-ipam", "/net/interfaces/vioif0/addrs/0", 0),
        ("mirage-net-config", "/net", 1),
        ("rumprun", "", 2),
    ]
    assert routing.owner("/net/interfaces/vioif0/addrs/0/method").delegate == "cni-ipam"
    assert routing.owner("/net/interfaces/vioif0").delegate == "mirage-net-config"
    assert routing.owner("/rc/0/bin").delegate == "rumprun"
    assert routing.by_pointer[""].inner == ("/net",)
    assert [len(w) for w in routing.waves()] == [1, 1, 1]


def test_independent_claims_share_a_wave() -> None:
    routing = route(HYBRID, registry(("a", ("/net",)), ("b", ("/mount/~1data",))))
    assert [sorted(r.delegate for r in w) for w in routing.waves()] == [["a", "b"], ["rumprun"]]


def test_escaped_pointers_reach_keys_with_slash_and_tilde() -> None:
    config = {"mount": {"/data": {"source": "tmpfs"}}, "env": {"a~b": "1"}}
    routing = route(config, registry(("m", ("/mount/~1data",)), ("e", ("/env/a~0b",))))
    assert {r.pointer for r in routing.runs} == {"", "/mount/~1data", "/env/a~0b"}
    assert tokens_of("/mount/~1data") == ("mount", "/data")
    assert pointer_of(["env", "a~b"]) == "/env/a~0b"


def test_absent_claims_run_nothing() -> None:
    routing = route({"rc": []}, registry(("mirage-net-config", ("/net",))))
    assert [r.delegate for r in routing.runs] == ["rumprun"]
    assert routing.absent == (("/net", "mirage-net-config"),)


def test_two_claims_on_one_present_pointer_conflict() -> None:
    with pytest.raises(ConflictError) as caught:
        route(HYBRID, registry(("a", ("/net",)), ("b", ("/net",))))
    assert caught.value.pointer == "/net"
    assert "a, b" in caught.value.message
    assert caught.value.hint == "choose one with --delegate /net=a"
    assert exit_code_of(caught.value) == 3


def test_two_claims_on_an_absent_pointer_do_not_conflict() -> None:
    routing = route({"rc": []}, registry(("a", ("/net",)), ("b", ("/net",))))
    assert routing.absent == (("/net", "a"), ("/net", "b"))
    assert [r.delegate for r in routing.runs] == ["rumprun"]


def test_delegate_option_settles_a_conflict() -> None:
    routing = route(HYBRID, registry(("a", ("/net",)), ("b", ("/net",))), {"/net": "b"})
    assert routing.owner("/net").delegate == "b"


def test_two_delegate_options_for_one_pointer_are_refused_by_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = str(REPO / "examples" / "hybrid" / "config.json")
    twice = ("--delegate", "/net=a", "--delegate", "/net=b")
    code, out, err = run_main(capsys, "plan", *SPEC, config, *twice)
    assert (code, out) == (2, "")
    assert "--delegate /net given twice ('a' and 'b')" in err
    assert "unknown delegate" not in err  # refused before any name is looked up
    # The same choice given twice is one choice.
    same = ("--delegate", "/net=rumprun", "--delegate", "/net=rumprun")
    code, out, err = run_main(capsys, "plan", *SPEC, config, *same)
    assert code == 0, err
    assert [d["delegate"] for d in json.loads(out)["delegations"]] == ["rumprun"]


def test_delegate_option_can_give_a_part_back_to_rumprun() -> None:
    routing = route(HYBRID, registry(("a", ("/net",))), {"/net": "rumprun"})
    assert [r.delegate for r in routing.runs] == ["rumprun"]


def test_delegate_option_with_unknown_name_suggests_one() -> None:
    with pytest.raises(UsageError) as caught:
        route(HYBRID, registry(("mirage-net-config", ("/net",))), {"/net": "mirage-net"})
    assert caught.value.hint == "did you mean 'mirage-net-config'?"


def test_unknown_key_names_the_closest_known_key() -> None:
    with pytest.raises(InputError) as caught:
        route({"nett": {}}, registry())
    assert caught.value.pointer == "/nett"
    assert caught.value.hint == "did you mean 'net'?"


def test_a_claimed_extra_key_is_known() -> None:
    routing = route({"mirage": {"x": 1}}, registry(("m", ("/mirage",))))
    assert routing.owner("/mirage/x").delegate == "m"


def test_several_problems_are_reported_together_with_the_lowest_exit_code() -> None:
    with pytest.raises(Problems) as caught:
        route({**HYBRID, "bogus": 1}, registry(("a", ("/net",)), ("b", ("/net",))))
    assert {type(p) for p in caught.value.problems} == {ConflictError, InputError}
    assert exit_code_of(caught.value) == 2


@pytest.mark.parametrize("value", ["net=a", "/net=", "/net", "=a"])
def test_malformed_delegate_option(value: str) -> None:
    with pytest.raises(UsageError):
        parse_overrides([value])


# -- the partition property --------------------------------------------------------------

leaf = st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.none())
keys = st.text(alphabet="ab/~", min_size=1, max_size=3)
tree = st.recursive(
    leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)
configs = st.dictionaries(
    st.sampled_from(["rc", "env", "blk", "mount", "net", "netbsd"]), tree, min_size=1
)


def owners_of(routing: Routing, leaf_tokens: tuple[str, ...]) -> list[str]:
    """Runs whose own region (their subtree minus inner runs' subtrees) holds the leaf."""
    found = []
    for run in routing.runs:
        if not within(leaf_tokens, run.tokens):
            continue
        if any(within(leaf_tokens, routing.by_pointer[p].tokens) for p in run.inner):
            continue
        found.append(run.pointer)
    return found


@settings(max_examples=200, deadline=None)
@given(configs, st.data())
def test_routing_partitions_the_config(config: dict[str, Any], data: st.DataObject) -> None:
    candidates = nodes(config)
    chosen = data.draw(st.lists(st.sampled_from(candidates), unique=True, max_size=5))
    reg = registry(*((f"d{i}", (pointer_of(t),)) for i, t in enumerate(chosen)))
    routing = route(config, reg)
    assert len(routing.runs) == len(chosen) + 1
    for leaf_tokens in leaves(config):
        owners = owners_of(routing, leaf_tokens)
        assert len(owners) == 1, (leaf_tokens, owners)
        assert routing.owner(pointer_of(leaf_tokens)).pointer == owners[0]
    # Inner runs always come before the runs that contain them.
    position = {r.pointer: i for i, r in enumerate(routing.runs)}
    for run in routing.runs:
        assert all(position[p] < position[run.pointer] for p in run.inner)


def test_a_huge_unknown_key_is_shortened_in_the_message() -> None:
    with pytest.raises(InputError) as caught:
        route({"x" * 100_000: 1}, registry())
    assert len(messages.plain(caught.value)) < 400
    assert "(100000 characters)" in caught.value.message


@pytest.mark.parametrize("token", ["²", "٣", "1²"])
def test_non_ascii_digits_never_index_an_array(token: str) -> None:
    config = {"rc": [{"bin": "a"}]}
    routing = route(config, registry(("d", (f"/rc/{token}",))))
    assert routing.absent == ((f"/rc/{token}", "d"),)
