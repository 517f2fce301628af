"""Assembly (``plan.assemble``) and the plan it gives.

The link and boot rules (``rumprun.LINK_RULES``: what the real toolchain needs, found by
linking and booting real images, refused when a delegate breaks it); each part of the
plan as assembly makes it; the warnings of the runtime config, through ``bakeplan plan``
itself; and, as a property, assembly deterministic and its plan valid and read back.
The plan document itself (``planmodel``) is ``test_planmodel.py``'s.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import SPEC, run_main
from helpers_protocol import write_py_delegate
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core import plan, protocol
from orchestrator.core.planmodel import Device as PlanDevice
from orchestrator.core.planmodel import Directive, Plan, PlanWarning
from orchestrator.core.protocol import Answer, Device, Warning
from orchestrator.core.registry import BUILTIN
from orchestrator.core.routing import Run
from orchestrator.core.scheduler import Result
from orchestrator.errors import ConflictError, Problems, exit_code_of
from orchestrator.pointers import tokens_of
from orchestrator.rumprun.bake import BakeConfig, standard_book
from orchestrator.schemas import explainer

REPO = Path(__file__).resolve().parents[1]
HW = standard_book().get("hw_virtio")
XEN = standard_book().get("xen_pv")
SHA_EMPTY = hashlib.sha256(b"").hexdigest()
SHA_ABC = hashlib.sha256(b"abc").hexdigest()


def run(
    delegate: str, pointer: str, answer: Answer, request: bytes = b"", answer_bytes: bytes = b""
) -> Result:
    return Result(
        run=Run(delegate=delegate, pointer=pointer, tokens=tokens_of(pointer)),
        command=() if delegate == BUILTIN else (delegate,),
        request=request,
        answer_bytes=answer_bytes,
        answer=answer,
    )


def builtin(runtime: Any, **answer: Any) -> Result:
    return run(BUILTIN, "", Answer(replaced=True, replace=runtime, **answer))


def rumprun_keeping(runtime: dict[str, object]) -> Result:
    return run(BUILTIN, "", Answer(replaced=True, replace=runtime))


def net(**components: tuple[str, ...]) -> Result:
    return run("mirage", "/net", Answer(replaced=False, **components))


RC = {"rc": [{"bin": "www"}]}


def test_removing_both_ip_stacks_is_refused_naming_the_delegate_and_the_boot_panic() -> None:
    results = [net(remove=("rumpnet_netinet", "rumpnet_netinet6")), rumprun_keeping(RC)]
    with pytest.raises(ConflictError) as caught:
        plan.assemble(HW, results)
    assert exit_code_of(caught.value) == 3
    assert caught.value.message == (
        "mirage removed rumpnet_netinet and rumpnet_netinet6, so bake config hw_virtio would "
        "link no rumpnet_netinet or rumpnet_netinet6: rumpnet_config panics at boot without "
        "an IP stack linked (netconfig: missing both inet and inet6)"
    )
    assert caught.value.hint and "keeps the other linked" in caught.value.hint


def test_removing_one_stack_boots_and_plans() -> None:
    built = plan.assemble(HW, [net(remove=("rumpnet_netinet",)), rumprun_keeping(RC)])
    assert "-lrumpnet_netinet" not in built.bake.libs
    assert "-lrumpnet_netinet6" in built.bake.libs


def test_removing_rumpnet_config_is_refused_it_does_not_link_without() -> None:
    with pytest.raises(ConflictError) as caught:
        plan.assemble(HW, [net(remove=("rumpnet_config",)), rumprun_keeping(RC)])
    assert "librumprun_base calls rumpnet_config's functions" in caught.value.message


def test_another_delegate_adding_a_stack_back_keeps_the_rule() -> None:
    results = [
        net(remove=("rumpnet_netinet", "rumpnet_netinet6")),
        run("v6", "/env", Answer(replaced=True, replace={}, add=("rumpnet_netinet6",))),
        rumprun_keeping(RC),
    ]
    assert "-lrumpnet_netinet6" in plan.assemble(HW, results).bake.libs


def test_a_base_config_that_breaks_a_rule_itself_is_only_warned_about() -> None:
    tiny = BakeConfig(name="hw_tiny", description="d", platform="hw", libs=("-lrumpvfs",))
    built = plan.assemble(tiny, [rumprun_keeping(RC)])
    messages = [w.message for w in built.warnings if w.by == "bakeplan"]
    assert messages == [
        "bake config hw_tiny links no rumpnet_config: librumprun_base calls rumpnet_config's "
        "functions, so the link fails without it"
    ]


# -- each part of the plan -------------------------------------------------------------------


def test_directives_and_libs_follow_routing_order() -> None:
    results = [
        run(
            "mirage",
            "/net",
            Answer(
                replaced=False,
                remove=("rumpnet_netinet", "rumpnet_netinet6"),
                add=("rumpdev_bpf", "mirage_tcpip"),
            ),
        ),
        run("extra", "/env", Answer(replaced=False, add=("rumpnet_netinet", "zz"))),
        builtin({}),
    ]
    built = plan.assemble(HW, results, dialect="spec")
    assert built.bake.directives == (
        Directive("add", ("-lrumpdev_bpf", "-lmirage_tcpip"), "mirage", "/net"),
        Directive("remove", ("-lrumpnet_netinet", "-lrumpnet_netinet6"), "mirage", "/net"),
        Directive("add", ("-lrumpnet_netinet", "-lzz"), "extra", "/env"),
    )
    assert built.to_json()["bake"]["directives"][0] == {
        "op": "add",
        "args": ["-lrumpdev_bpf", "-lmirage_tcpip"],
        "by": "mirage",
        "pointer": "/net",
    }
    # rumprun-bake: add appends, remove drops every occurrence, then first occurrences kept.
    base = [lib for lib in HW.libs if lib not in ("-lrumpnet_netinet", "-lrumpnet_netinet6")]
    assert built.bake.libs == (*base, "-lmirage_tcpip", "-lrumpnet_netinet", "-lzz")
    assert built.bake.libs.count("-lrumpdev_bpf") == 1
    assert (built.bake.config, built.bake.platform) == ("hw_virtio", "hw")
    assert built.bake.description == HW.description


def test_devices_carry_by_pointer_and_sorted_extra_fields() -> None:
    results = [
        run(
            "mirage",
            "/net",
            Answer(
                replaced=False,
                devices=(
                    Device(name="vioif0", kind="net", fields={"zeta": 1, "alpha": [2]}),
                    Device(name="vioif1", kind="net", pointer="/net/interfaces/vioif1"),
                ),
            ),
        ),
        builtin({}, devices=(Device(name="ld0", kind="block", pointer="/mount/~1data"),)),
    ]
    built = plan.assemble(HW, results, dialect="spec")
    assert built.devices == (
        PlanDevice("vioif0", "net", "mirage", "/net", {"alpha": [2], "zeta": 1}),
        PlanDevice("vioif1", "net", "mirage", "/net/interfaces/vioif1", {}),
        PlanDevice("ld0", "block", "rumprun", "/mount/~1data", {}),
    )
    assert built.devices[0].field("zeta") == 1
    assert built.devices[0].field("vdev") is None
    document = built.to_json()["devices"]
    assert list(document[0]) == ["name", "kind", "by", "pointer", "alpha", "zeta"]
    assert document[2] == {
        "name": "ld0",
        "kind": "block",
        "by": "rumprun",
        "pointer": "/mount/~1data",
    }


def test_a_device_field_cannot_override_by() -> None:
    sneaky = Answer(replaced=False, devices=(Device(name="tap0", kind="net", fields={"by": 7}),))
    built = plan.assemble(HW, [run("sneaky", "/net", sneaky), builtin({})], dialect="spec")
    assert built.devices[0].by == "sneaky"
    assert built.to_json()["devices"][0]["by"] == "sneaky"
    explainer.validator("plan").validate(built.to_json())


def test_duplicate_device_names_are_a_conflict_naming_both_delegates() -> None:
    results = [
        run("mirage", "/net", Answer(replaced=False, devices=(Device(name="ld0", kind="net"),))),
        builtin({}, devices=(Device(name="ld0", kind="block", pointer="/mount/~1data"),)),
    ]
    with pytest.raises(ConflictError) as caught:
        plan.assemble(HW, results, dialect="spec")
    assert caught.value.message == "device name 'ld0' given by mirage (at /net) and by rumprun"
    assert caught.value.pointer == "/mount/~1data"
    assert exit_code_of(caught.value) == 3


def test_toolchains_concatenate_across_delegates_in_run_order() -> None:
    results = [
        run(
            "first",
            "/net",
            Answer(
                replaced=False,
                toolchain={"ocaml": {"packages": ("tcpip",), "boot": ("--ipv4=1",)}},
            ),
        ),
        run(
            "second",
            "/env",
            Answer(
                replaced=False,
                toolchain={"go": {"link": ("-s",)}, "ocaml": {"packages": ("mirage", "tcpip")}},
            ),
        ),
        builtin({}),
    ]
    built = plan.assemble(HW, results, dialect="spec")
    assert built.toolchains == {
        "go": {"link": ("-s",)},
        "ocaml": {"boot": ("--ipv4=1",), "packages": ("tcpip", "mirage", "tcpip")},
    }
    assert built.arguments("ocaml", "boot") == ("--ipv4=1",)
    assert built.arguments("halvm", "boot") == ()
    toolchains = built.to_json()["toolchains"]
    assert list(toolchains) == ["go", "ocaml"]
    assert list(toolchains["ocaml"]) == ["boot", "packages"]
    assert [(a.toolchain, a.key, a.value, a.by) for a in built.provenance.toolchains] == [
        ("ocaml", "boot", "--ipv4=1", "first"),
        ("ocaml", "packages", "tcpip", "first"),
        ("go", "link", "-s", "second"),
        ("ocaml", "packages", "mirage", "second"),
        ("ocaml", "packages", "tcpip", "second"),
    ]


def test_warnings_carry_by_and_default_to_the_runs_pointer() -> None:
    results = [
        run(
            "mirage",
            "/net",
            Answer(
                replaced=False,
                warnings=(
                    Warning(message="no gateway"),
                    Warning(message="dhcp ignored", pointer="/net/interfaces/vioif0"),
                ),
            ),
        ),
        builtin({}, warnings=(Warning(message="whole", pointer=""),)),
    ]
    assert plan.assemble(HW, results, dialect="spec").warnings == (
        PlanWarning("mirage", "/net", "no gateway"),
        PlanWarning("mirage", "/net/interfaces/vioif0", "dhcp ignored"),
        PlanWarning("rumprun", "", "whole"),
    )


def runtime_of_size(size: int, char: str = "a") -> dict[str, Any]:
    """A runtime config whose compact UTF-8 encoding is exactly ``size`` bytes."""
    room = size - len(b'{"env":{"X":""}}')
    width = len(char.encode("utf-8"))
    assert room % width == 0
    runtime = {"env": {"X": char * (room // width)}}
    assert len(protocol.encode(runtime)) - 1 == size
    return runtime


def multiboot_warnings(bake: BakeConfig, runtime: dict[str, Any]) -> list[PlanWarning]:
    built = plan.assemble(bake, [builtin(runtime)], dialect="spec")
    return [w for w in built.warnings if w.by == "bakeplan"]


def test_a_runtime_config_too_long_for_multiboot_warns_on_hw_only() -> None:
    runtime = runtime_of_size(4097)
    assert multiboot_warnings(HW, runtime) == [
        PlanWarning(
            "bakeplan",
            "",
            "the runtime config is 4097 bytes in the spec dialect; rumprun on hw halts "
            "when the config reaches 4095 bytes as a multiboot module (4096 on the kernel "
            "command line)",
        )
    ]
    assert multiboot_warnings(XEN, runtime) == []
    assert multiboot_warnings(HW, runtime_of_size(4000)) == []


def test_the_multiboot_size_counts_the_bytes_rumprun_reads_not_characters() -> None:
    runtime = runtime_of_size(16 + 2 * 2041, char="é")  # 4098 bytes of UTF-8, 2057 characters
    # The spec parser reads ASCII, so each é is the six bytes of \u00e9 there.
    assert [w.message.split(";")[0] for w in multiboot_warnings(HW, runtime)] == [
        f"the runtime config is {16 + 6 * 2041} bytes in the spec dialect"
    ]
    # Released rumprun takes the UTF-8 bytes as they are: two for each é.
    master = plan.assemble(HW, [builtin({"rc": [{"bin": "a"}], **runtime})], dialect="master")
    text = master.runtime.text()
    assert text.count("é") == 2041
    assert [w.message.split(";")[0] for w in master.warnings] == [
        f"the runtime config is {len(text) + 2041} bytes in the master dialect"
    ]


def test_the_warning_starts_where_a_multiboot_module_halts() -> None:
    assert len(multiboot_warnings(HW, runtime_of_size(4095))) == 1
    assert multiboot_warnings(HW, runtime_of_size(4094)) == []


def test_delegations_digest_the_exact_bytes() -> None:
    results = [
        run("mirage", "/net", Answer(replaced=False), request=b"abc", answer_bytes=b""),
        run(BUILTIN, "", Answer(replaced=True, replace={}), request=b"", answer_bytes=b"abc"),
    ]
    assert plan.assemble(HW, results, dialect="spec").to_json()["delegations"] == [
        {
            "delegate": "mirage",
            "pointer": "/net",
            "command": ["mirage"],
            "builtin": False,
            "request_sha256": SHA_ABC,
            "answer_sha256": SHA_EMPTY,
        },
        {
            "delegate": BUILTIN,
            "pointer": "",
            "command": [],
            "builtin": True,
            "request_sha256": SHA_EMPTY,
            "answer_sha256": SHA_ABC,
        },
    ]


def test_the_runtime_part_keeps_the_dialect_and_the_config_and_says_where_each_came_from() -> None:
    master = plan.assemble(HW, [builtin({"rc": [{"bin": "a"}], "env": {"A": "1"}})])
    assert master.runtime.dialect == "master"
    assert master.runtime.notes == () and master.runtime.sources == ()
    assert [(o.path, o.source) for o in master.provenance.runtime] == [
        ("/0", "/rc"),
        ("/1", "/env/A"),
    ]
    spec = plan.assemble(HW, [builtin({"env": {"A": "1"}})], dialect="spec")
    assert spec.runtime.config == {"env": {"A": "1"}}
    assert [(o.path, o.source) for o in spec.provenance.runtime] == [("/env", "/env")]
    assert [o.lib for o in spec.provenance.libs] == list(HW.libs)


# -- warnings of the runtime config, through bakeplan plan -------------------------------------


def test_a_key_a_delegate_leaves_that_rumprun_does_not_know_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_py_delegate(
        tmp_path,
        "keeper",
        """
        import json
        json.load(sys.stdin)
        print(json.dumps({"protocol": "bakeplan/1", "replace": {"kept": True}}))
        """,
    )
    registry = tmp_path / "registry.json"
    registry.write_text(
        json.dumps(
            {"delegates": [{"name": "keeper", "command": ["./keeper"], "claims": ["/mirage"]}]}
        )
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mirage": {"a": 1}, "rc": [{"bin": "www"}]}))
    code, out, err = run_main(capsys, "plan", *SPEC, str(config), "-r", str(registry))
    assert code == 0, err
    said = (
        "rumprun does not know the key 'mirage' a delegate left in the runtime config; it "
        "warns at boot and ignores it"
    )
    assert f"bakeplan: warning: bakeplan at /mirage: {said}\n" in err
    document = json.loads(out)
    assert document["runtime"]["config"]["mirage"] == {"kept": True}
    assert {"by": "bakeplan", "pointer": "/mirage", "message": said} in document["warnings"]
    # The keys rumprun knows are not warned about.
    assert [w for w in document["warnings"] if w["pointer"] == "/rc"] == []


# -- the assembly property -----------------------------------------------------------------------

component = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
word = st.text(alphabet="abcxyz-=/é", max_size=6)
field_name = st.text(alphabet="abcdefgh_", min_size=1, max_size=5)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), word)
device = st.builds(
    Device,
    name=st.sampled_from(["vioif0", "vioif1", "ld0", "ld1", "tap0", "xenif0"]),
    kind=st.sampled_from(["net", "block"]),
    pointer=st.one_of(st.none(), st.sampled_from(["/net", "/net/interfaces/vioif0", ""])),
    fields=st.dictionaries(field_name, json_leaf, max_size=3),
)
answers = st.builds(
    Answer,
    replaced=st.booleans(),
    replace=json_leaf,
    devices=st.lists(device, max_size=2).map(tuple),
    add=st.lists(component, max_size=3).map(tuple),
    remove=st.lists(
        st.one_of(component, st.sampled_from(["rumpnet_netinet", "rumpvfs"])), max_size=3
    ).map(tuple),
    toolchain=st.dictionaries(
        st.sampled_from(["ocaml", "go", "halvm"]),
        st.dictionaries(
            st.sampled_from(["packages", "link", "boot"]),
            st.lists(word, max_size=3).map(tuple),
            max_size=3,
        ),
        max_size=2,
    ),
    warnings=st.lists(
        st.builds(Warning, message=word, pointer=st.one_of(st.none(), st.just("/env"))),
        max_size=2,
    ).map(tuple),
)
runtimes = st.dictionaries(st.sampled_from(["env"]), st.dictionaries(st.sampled_from("XYZ"), word))
bakes = st.sampled_from([standard_book().get(n) for n in ("hw_virtio", "xen_pv", "hw_generic")])


def reordered(results: list[Result]) -> list[Result]:
    """The same results with every mapping built in the reverse insertion order."""

    def flip(mapping: Any) -> dict[str, Any]:
        return dict(reversed(list(mapping.items())))

    rebuilt = []
    for r in results:
        answer = r.answer
        devices = tuple(
            Device(name=d.name, kind=d.kind, pointer=d.pointer, fields=flip(d.fields))
            for d in answer.devices
        )
        toolchain = {c: flip(args) for c, args in flip(answer.toolchain).items()}
        rebuilt.append(
            Result(
                run=r.run,
                command=r.command,
                request=r.request,
                answer_bytes=r.answer_bytes,
                answer=Answer(
                    replaced=answer.replaced,
                    replace=answer.replace,
                    devices=devices,
                    add=answer.add,
                    remove=answer.remove,
                    toolchain=toolchain,
                    warnings=answer.warnings,
                ),
            )
        )
    return rebuilt


@settings(max_examples=60, deadline=None)
@given(
    bakes,
    st.lists(answers, max_size=4),
    runtimes,
    st.lists(st.binary(max_size=8), min_size=10, max_size=10),
)
def test_assembly_is_deterministic_valid_and_reads_back(
    bake: BakeConfig, inner: list[Answer], runtime: dict[str, Any], blobs: list[bytes]
) -> None:
    pointers = ["/net", "/env/X", "/env/Y", "/blk"]
    results = [
        run(f"d{i}", pointers[i], a, request=blobs[2 * i], answer_bytes=blobs[2 * i + 1])
        for i, a in enumerate(inner)
    ]
    results.append(builtin(runtime))
    names = [d.name for r in results for d in r.answer.devices]
    if len(set(names)) < len(names):
        with pytest.raises((ConflictError, Problems)) as caught:
            plan.assemble(bake, results, dialect="spec")
        assert exit_code_of(caught.value) == 3
        return
    built = plan.assemble(bake, results, dialect="spec")
    first = plan.dumps(built)
    assert plan.dumps(plan.assemble(bake, results, dialect="spec")) == first
    assert plan.dumps(plan.assemble(bake, reordered(results), dialect="spec")) == first
    document = json.loads(first)
    explainer.validator("plan").validate(document)
    assert document["runtime"]["config"] == runtime
    assert [d["delegate"] for d in document["delegations"]] == [
        *(f"d{i}" for i in range(len(inner))),
        BUILTIN,
    ]
    # What a file gives back is the plan that was written, and its very bytes.
    assert Plan.from_json(document) == built
    assert plan.dumps(Plan.from_json(document)) == first
