"""rumprun-bake's configs and library-list semantics, against the real expansions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import InputError
from orchestrator.rumprun.bake import (
    ConfBook,
    Directive,
    apply_directives,
    component_of,
    flag_of,
    standard_book,
    uniq,
)


def test_standard_configs_expand_exactly_as_rumprun_bake_describes_them(
    conformance: Path,
) -> None:
    expected = json.loads((conformance / "rumprun-bake" / "expanded-configs.json").read_text())
    book = standard_book()
    assert set(book.names()) == set(expected)
    for name, libs in expected.items():
        assert list(book.get(name).libs) == libs, name


@pytest.mark.parametrize(
    ("name", "platform"), [("hw_virtio", "hw"), ("xen_pv", "xen"), ("hw-generic", "hw")]
)
def test_platform_comes_from_the_prefix_and_dash_reads_as_underscore(
    name: str, platform: str
) -> None:
    config = standard_book().get(name)
    assert config.platform == platform
    assert "-" not in config.name


def test_private_configs_are_not_offered() -> None:
    with pytest.raises(InputError, match="unknown bake config '_miconf'"):
        standard_book().get("_miconf")


def test_unknown_config_suggests_the_closest() -> None:
    with pytest.raises(InputError) as caught:
        standard_book().get("hw_virtoi")
    assert caught.value.hint == "did you mean 'hw_virtio'?"


def test_remove_drops_every_occurrence_and_add_after_remove_re_adds() -> None:
    libs = ("-la", "-lb", "-la", "-lc")
    assert apply_directives(libs, [Directive("remove", ("-la",), "x")]) == ("-lb", "-lc")
    assert apply_directives(
        libs, [Directive("remove", ("-la",), "x"), Directive("add", ("-la",), "y")]
    ) == ("-lb", "-lc", "-la")
    assert apply_directives(libs, [Directive("add", ("-lb", "-ld"), "x")]) == (
        "-la",
        "-lb",
        "-lc",
        "-ld",
    )


def test_remove_matches_the_exact_word_only() -> None:
    libs = ("-lrumpnet_netinet", "-lrumpnet_netinet6")
    assert apply_directives(libs, [Directive("remove", ("-lrumpnet_netinet",), "m")]) == (
        "-lrumpnet_netinet6",
    )


def test_hybrid_directives_on_hw_virtio(conformance: Path) -> None:
    expected = json.loads((conformance / "rumprun-bake" / "expanded-configs.json").read_text())
    base = standard_book().get("hw_virtio").libs
    final = apply_directives(
        base,
        [
            Directive("add", ("-lrumpdev_bpf",), "mirage-net-config"),
            Directive("remove", ("-lrumpnet_netinet", "-lrumpnet_netinet6"), "mirage-net-config"),
        ],
    )
    assert list(final) == [
        lib
        for lib in expected["hw_virtio"]
        if lib not in ("-lrumpnet_netinet", "-lrumpnet_netinet6")
    ]


def test_confbook_follows_rumprun_bake_rules() -> None:
    book = ConfBook()
    with pytest.raises(InputError, match="invalid config name"):
        book.create("virtio", "no prefix")
    book.create("_base", "private", where=("my.conf", 3))
    book.add("_base", ["-la"])
    book.create("hw_mine", "mine")
    book.assimilate("hw_mine", ["_base"])
    book.add("hw_mine", ["-lb", "-la"])
    with pytest.raises(InputError, match="already exists") as caught:
        book.create("hw_mine", "again", where=("my.conf", 9))
    assert (caught.value.file, caught.value.line) == ("my.conf", 9)
    book.end_of_file()
    assert book.names() == ("hw_mine",)
    assert book.get("hw_mine").libs == ("-la", "-lb")
    with pytest.raises(InputError, match='config "_base" not found'):
        book.assimilate("hw_mine", ["_base"])
    book.nuke("hw_mine")
    with pytest.raises(InputError, match="unknown bake config"):
        book.get("hw_mine")


def test_component_and_flag_are_inverse() -> None:
    assert flag_of("rumpnet_netinet") == "-lrumpnet_netinet"
    assert component_of("-lrumpnet_netinet") == "rumpnet_netinet"


words = st.lists(st.sampled_from(["-la", "-lb", "-lc", "-ld", "-le"]), max_size=8)


@given(words, st.lists(st.tuples(st.sampled_from(["add", "remove"]), words), max_size=6))
def test_directives_match_a_literal_model_of_rumprun_bake(
    base: list[str], ops: list[tuple[str, list[str]]]
) -> None:
    directives = [
        Directive("add" if op == "add" else "remove", tuple(args), "t") for op, args in ops
    ]
    model = list(base)
    for op, args in ops:
        model = model + args if op == "add" else [w for w in model if w not in args]
    expected = []
    for word in model:
        if word not in expected:
            expected.append(word)
    result = apply_directives(base, directives)
    assert list(result) == expected
    assert len(set(result)) == len(result)
    # Applying to the unique base gives the same list: rumprun-bake's order of _uniq
    # does not matter for the final result.
    assert apply_directives(uniq(base), directives) == result
