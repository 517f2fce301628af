"""The Solo5 emitters (manifest, ``solo5-hvt``, ``solo5-spt``) and the QEMU line they must
agree with, and the defects the real Solo5 tools found in them.

Plans come from the real pipeline: configs with their own devices, or a delegate (a real
executable in ``tmp_path``) that answers with devices in the order a test needs.
``e2e/test_solo5.py`` boots the same outputs under the real tenders and QEMU.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import SPEC, run_main
from helpers_plan import plan_of_parts
from helpers_protocol import write_py_delegate
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.planmodel import Plan
from orchestrator.emit import formats
from orchestrator.errors import BakeplanError, ConflictError, UsageError, exit_code_of
from orchestrator.rumprun import layer
from orchestrator.schemas import checker, explainer

HYBRID = REPO / "examples" / "hybrid"
BOOT = ["--ipv4=10.0.120.10/24", "--ipv4-gateway=10.0.120.1", "--ipv4-only=true"]
# The hybrid example planned with its registry: mirage-net-config owns /net.
HYBRID_PLAN = ("plan", str(HYBRID / "config.json"), "-r", str(HYBRID / "registry.json"))


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def devices_delegate(tmp_path: Path, devices: list[dict[str, str]], boot: list[str]) -> Path:
    """A registry whose one delegate claims /net and answers with ``devices`` in this
    order and ``boot`` as the ocaml toolchain's boot arguments."""
    answer = {
        "protocol": "bakeplan/1",
        "devices": devices,
        "toolchain": {"ocaml": {"boot": boot}} if boot else {},
    }
    write_py_delegate(
        tmp_path,
        "devs",
        f"""
        import json
        json.load(sys.stdin)
        print(json.dumps({answer!r}))
        """,
    )
    return write_json(
        tmp_path / "registry.json",
        {"delegates": [{"name": "devs", "command": ["./devs"], "claims": ["/net"]}]},
    )


def plan_with(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    devices: list[tuple[str, str]],
    boot: tuple[str, ...] = (),
) -> Plan:
    """The plan of a config whose /net a delegate answers with ``devices`` (name, kind),
    read back from the text ``bakeplan plan`` prints."""
    registry = devices_delegate(tmp_path, [{"name": n, "kind": k} for n, k in devices], list(boot))
    config = write_json(tmp_path / "config.json", {"net": {}})
    code, out, err = emit_cli(capsys, config, registry)
    assert code == 0, err
    return Plan.from_json(json.loads(out))


def emit_cli(
    capsys: pytest.CaptureFixture[str], config: Path, registry: Path, *extra: str
) -> tuple[int, str, str]:
    # The emitters read devices, bake and toolchains only: either runtime dialect will do.
    return run_main(capsys, "plan", *SPEC, str(config), "-r", str(registry), *extra)


def problems_of(error: BakeplanError) -> list[BakeplanError]:
    return list(getattr(error, "problems", (error,)))


def manifest_names(plan: Plan) -> list[str]:
    return [
        d["name"] for d in json.loads(formats.render(plan, "solo5-manifest", {}).text)["devices"]
    ]


def qemu_virtio_order(line: str) -> list[str]:
    """The devices of a ``qemu-args`` line in the order QEMU puts them on the PCI bus,
    virtio ones only (the ones Solo5's virtio target counts), by our id's device name."""
    argv = shlex.split(line)
    found = []
    for index, arg in enumerate(argv):
        if arg != "-device":
            continue
        model, _, rest = argv[index + 1].partition(",")
        options = dict(item.partition("=")[::2] for item in rest.split(","))
        if model == "virtio-net-pci":
            found.append(options["netdev"].removeprefix("bakeplan-"))
        elif model == "virtio-blk-pci":
            found.append(options["drive"].removeprefix("bakeplan-"))
    return found


def tender_options(line: str) -> tuple[list[str], list[str]]:
    """A tender line's device options by name, and the words after its kernel."""
    argv = shlex.split(line)
    cut = argv.index("--")
    names = []
    for option in argv[2:cut]:
        match = re.fullmatch(r"--(net|block):([^=]+)=.*", option)
        assert match is not None, option
        names.append(match[2])
    return names, argv[cut + 2 :]


# -- the tender lines -------------------------------------------------------------------


@pytest.mark.parametrize("tender", ["hvt", "spt"])
def test_a_tender_line_for_the_hybrid_example(
    capsys: pytest.CaptureFixture[str], tender: str
) -> None:
    code, out, err = run_main(
        capsys,
        *HYBRID_PLAN,
        "--no-cache",
        "--emit",
        f"solo5-{tender}",
        "--host",
        "kernel=www.hvt",
        "--host",
        "memory=64",
        "--host",
        "tap.vioif0=tap0",
        "--host",
        "disk.ld0=data,1.img",
    )
    assert code == 0, err
    assert shlex.split(out) == [
        f"solo5-{tender}",
        "--mem=64",
        "--net:vioif0=tap0",
        "--block:ld0=data,1.img",  # the tenders read no comma escapes: the path as it is
        "--",
        "www.hvt",
        *BOOT,
    ]
    assert err == ""


def test_placeholders_and_a_kernel_that_looks_like_an_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plan_with(tmp_path, capsys, [("vioif0", "net")])
    emitted = formats.render(plan, "solo5-spt", {"kernel": "-odd name.spt"})
    argv = shlex.split(emitted.text)
    assert argv == [
        "solo5-spt",
        "--mem=<host:memory>",
        "--net:vioif0=<host:tap.vioif0>",
        "--",  # the tender stops reading options here, so the kernel may start with '-'
        "-odd name.spt",
    ]
    assert emitted.text == (
        "solo5-spt '--mem=<host:memory>' '--net:vioif0=<host:tap.vioif0>' -- '-odd name.spt'\n"
    )
    assert emitted.notes == (
        "placeholder <host:memory> left in the output; give --host memory=...",
        "placeholder <host:tap.vioif0> left in the output; give --host tap.vioif0=...",
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("disk.ld0", "my disk.img", "reads --block:NAME=PATH up to the first white space"),
        ("disk.ld0", "disk\t.img", "reads --block:NAME=PATH up to the first white space"),
        ("disk.ld0", "", "takes no empty value in --block:NAME=PATH"),
        ("disk.ld0", "/" + "d" * 4095, "4096 bytes; solo5-hvt opens a path of at most 4095"),
        ("tap.vioif0", "tap 0", "reads --net:NAME=TAP up to the first white space"),
        ("tap.vioif0", "t" * 16, "takes an interface name of at most 15"),
    ],
)
def test_host_values_a_tender_cannot_take_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: str, message: str
) -> None:
    registry = devices_delegate(tmp_path, [{"name": "vioif0", "kind": "net"}], [])
    config = write_json(
        tmp_path / "config.json",
        {"net": {}, "mount": {"/d": {"source": "blk", "path": "/dev/ld0a"}}},
    )
    out = tmp_path / "line.sh"
    code, _, err = emit_cli(
        capsys, config, registry, "--emit", "solo5-hvt", "--host", f"{key}={value}", "-o", str(out)
    )
    assert code == 2
    assert f"bakeplan: usage: --host {key}={value!r}: " in err
    assert message in err
    assert not out.exists()


def test_a_tap_given_as_an_open_descriptor_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plan_with(tmp_path, capsys, [("vioif0", "net")])
    text = formats.render(plan, "solo5-hvt", {"tap.vioif0": "@1234567890123456"}).text
    assert "--net:vioif0=@1234567890123456" in text


@pytest.mark.parametrize(
    ("boot", "message"),
    [
        (["--logs=*:info debug"], "toolchains.ocaml.boot[0] '--logs=*:info debug' holds white"),
        (["--a", ""], "toolchains.ocaml.boot[1] is empty"),
        (["x" * 8192], "the boot arguments are 8192 bytes joined; Solo5 passes at most 8191"),
    ],
)
@pytest.mark.parametrize("fmt", ["solo5-hvt", "solo5-spt", "qemu-args"])
def test_boot_arguments_a_command_line_cannot_carry_are_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], boot: list[str], message: str, fmt: str
) -> None:
    plan = plan_with(tmp_path, capsys, [("vioif0", "net")], tuple(boot))
    with pytest.raises(ConflictError) as caught:
        formats.render(plan, fmt, {})
    assert exit_code_of(caught.value) == 3
    assert caught.value.message.startswith(f"--emit {fmt}: ")
    assert message in caught.value.message


def test_boot_arguments_of_every_toolchain_follow_the_kernel_in_plan_order() -> None:
    plan = plan_of_parts(
        toolchains={"ocaml": {"packages": ["tcpip"], "boot": ["--a=1"]}, "go": {"boot": ["-b"]}}
    )
    assert tender_options(formats.render(plan, "solo5-spt", {}).text) == ([], ["--a=1", "-b"])
    argv = shlex.split(formats.render(plan, "qemu-args", {}).text)
    assert argv[argv.index("-append") + 1] == "--a=1 -b"  # as QEMU 7.2 passes it: no escapes
    plan = plan_of_parts(toolchains={"ocaml": {"packages": ["tcpip"]}})
    assert "-append" not in shlex.split(formats.render(plan, "qemu-args", {}).text)


def test_the_cli_as_a_process_prints_a_tender_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", *HYBRID_PLAN, "--emit=solo5-spt", "--host=kernel=x"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert shlex.split(result.stdout) == [
        "solo5-spt",
        "--mem=<host:memory>",
        "--net:vioif0=<host:tap.vioif0>",
        "--block:ld0=<host:disk.ld0>",
        "--",
        "x",
        *BOOT,
    ]
    assert "bakeplan: emit solo5-spt: placeholder <host:memory> left" in result.stderr


# -- defect 1: names matched whole, a final newline included ---------------------------


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            if key == "patternProperties" and isinstance(value, dict):
                yield from value
            yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


def test_defect1_every_schema_pattern_anchored_at_the_end_refuses_a_final_newline() -> None:
    # JSON Schema patterns are ECMA-262, where "$" never matches before a final newline;
    # jsonschema and the compiled checker both use Python's re.search, where it does.  "$(?!\n)"
    # means the same in both engines.
    for name in explainer.names():
        for pattern in _patterns(explainer.load(name)):
            if pattern.endswith("$") and not pattern.endswith("\\$"):
                raise AssertionError(f"{name}.json: {pattern!r} ends in a bare $")


def configure_answer(name: str) -> dict[str, Any]:
    return {"protocol": "bakeplan/1", "devices": [{"name": name, "kind": "block"}]}


@pytest.mark.parametrize(
    ("schema", "ref", "good", "bad"),
    [
        ("response", "#/$defs/configure", configure_answer("xbd0"), configure_answer("xbd0\n")),
        (
            "response",
            "#/$defs/configure",
            {"protocol": "bakeplan/1", "components": {"add": ["rumpdev_bpf"]}},
            {"protocol": "bakeplan/1", "components": {"add": ["rumpdev_bpf\n"]}},
        ),
        (
            "registry",
            None,
            {"delegates": [{"name": "mirage", "command": ["m"], "claims": ["/net"]}]},
            {"delegates": [{"name": "mirage\n", "command": ["m"], "claims": ["/net"]}]},
        ),
        ("config", None, {"env": {"A": "1"}}, {"netbsd": {"sysctl": {"kern.hostname\n": "x"}}}),
    ],
)
def test_defect1_both_schema_checkers_refuse_a_name_with_a_final_newline(
    schema: str, ref: str | None, good: Any, bad: Any
) -> None:
    assert explainer.validator(schema, ref).is_valid(good)
    assert checker.is_valid(schema, good, ref)
    assert not explainer.validator(schema, ref).is_valid(bad)
    assert not checker.is_valid(schema, bad, ref)


def test_defect1_a_delegate_device_named_with_a_final_newline_is_its_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = devices_delegate(tmp_path, [{"name": "xbd0\n", "kind": "block"}], [])
    config = write_json(tmp_path / "config.json", {"net": {}})
    code, _, err = emit_cli(capsys, config, registry, "--emit", "solo5-manifest")
    assert code == 1
    assert "delegate 'devs' at /net" in err


def test_defect1_python_checks_match_names_whole() -> None:
    manifest = {"type": "solo5.manifest", "version": 1, "devices": []}
    manifest["devices"] = [{"name": "xbd0\n", "type": "BLOCK_BASIC"}]
    assert formats.manifest_problems(manifest) == [
        "devices[0]: name 'xbd0\\n' must be 1 to 67 letters and digits"
    ]
    mounts = {"mount": {"/d": {"source": "blk", "path": "/dev/ld0a\n"}}}
    assert list(layer.devices(mounts)) == []
    with pytest.raises(UsageError, match="KEY=VALUE"):
        formats.parse_host(["tap.vioif0\n=tap0"])
    plan = plan_of_parts(devices=[{"name": "ld0\n", "kind": "block", "by": "x", "pointer": "/x"}])
    with pytest.raises(ConflictError, match="has no unit number"):
        formats.render(plan, "qemu-args", {})


# -- defect 2: QEMU ids of our own -----------------------------------------------------


def test_defect2_qemu_ids_cannot_collide_with_qemu_s_own(tmp_path: Path) -> None:
    config = {
        "net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}}},
        "mount": {
            "/a": {"source": "blk", "path": "/dev/sd0a"},
            "/b": {"source": "blk", "path": "/dev/cd0a"},
            "/c": {"source": "blk", "path": "/dev/ld0a"},
        },
    }
    path = write_json(tmp_path / "config.json", config)
    registry = write_json(tmp_path / "registry.json", {"delegates": []})
    from orchestrator.core.pipeline import Options, make_plan  # noqa: PLC0415

    plan = make_plan(
        Options(
            config=str(path),
            registries=(str(registry),),
            bake_config="hw_virtio_scsi",
            dialect="spec",
        )
    )
    argv = shlex.split(formats.render(plan, "qemu-args", {}).text)
    ids = re.findall(r"(?:^|,)(?:id|netdev|drive|bus)=([^,]+)", " ".join(argv))
    assert ids
    # QEMU's own drives are sd0, ide1-cd0, floppy0, virtio0, ...: none starts so.
    assert all(i.startswith("bakeplan-") for i in ids), ids
    assert "if=none,id=bakeplan-sd0,file=<host:disk.sd0>,format=raw" in argv
    assert "scsi-hd,drive=bakeplan-sd0,bus=bakeplan-scsi.0" in argv
    assert "scsi-cd,drive=bakeplan-cd0,bus=bakeplan-scsi.0" in argv
    assert "tap,id=bakeplan-vioif0,ifname=<host:tap.vioif0>,script=no,downscript=no" in argv


# -- defect 3: what QEMU's multiboot loader cannot pass --------------------------------


@pytest.mark.parametrize("key", ["config", "kernel"])
def test_defect3_a_multiboot_path_with_a_space_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str
) -> None:
    out = tmp_path / "qemu.sh"
    code, _, err = emit_cli(
        capsys,
        HYBRID / "config.json",
        HYBRID / "registry.json",
        "--no-cache",
        "--emit",
        "qemu-args",
        "--host",
        f"{key}=my www.json",
        "-o",
        str(out),
    )
    assert code == 2
    usage = f"bakeplan: usage: --host {key}='my www.json': a path with a space cannot be passed"
    assert usage in err
    assert "multiboot loader" in err
    assert f"hint: give --host {key} a path without spaces" in err
    assert not out.exists()
    # Commas are QEMU's to unescape: doubled, they pass.
    code, out_text, err = emit_cli(
        capsys,
        HYBRID / "config.json",
        HYBRID / "registry.json",
        "--emit",
        "qemu-args",
        "--host",
        "config=a,b.json",
    )
    assert code == 0, err
    argv = shlex.split(out_text)
    assert argv[argv.index("-initrd") + 1] == "a,,b.json"


# -- defect 4: one device order for the manifest, the QEMU line and the tenders -----------


def test_defect4_the_nth_manifest_entry_is_the_nth_device_qemu_attaches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plan_with(
        tmp_path,
        capsys,
        [("ld1", "block"), ("vioif1", "net"), ("ld0", "block"), ("vioif0", "net")],
    )
    names = manifest_names(plan)
    assert names == ["vioif0", "vioif1", "ld0", "ld1"]
    assert qemu_virtio_order(formats.render(plan, "qemu-args", {}).text) == names
    for tender in ("solo5-hvt", "solo5-spt"):
        assert tender_options(formats.render(plan, tender, {}).text)[0] == names


def test_defect4_a_missing_unit_is_declared_and_attached_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plan_with(tmp_path, capsys, [("ld1", "block")])
    manifest = formats.render(plan, "solo5-manifest", {})
    assert [d["name"] for d in json.loads(manifest.text)["devices"]] == ["ld0", "ld1"]
    assert manifest.notes == (
        "ld0 is not in the plan; the manifest declares it, as QEMU attaches a device in its "
        "place so that the later disks keep their numbers",
    )
    qemu = formats.render(plan, "qemu-args", {"disk.ld1": "one.img"})
    assert qemu_virtio_order(qemu.text) == ["ld0", "ld1"]
    assert (
        "ld0 is not in the plan; a device is attached in its place so that the later disks "
        "keep their numbers"
    ) in qemu.notes
    spt = formats.render(plan, "solo5-spt", {"disk.ld1": "one.img"})
    assert tender_options(spt.text)[0] == ["ld0", "ld1"]
    placeholder = "placeholder <host:disk.ld0> left in the output; give --host disk.ld0=..."
    assert placeholder in spt.notes


UNITS = st.lists(
    st.tuples(st.sampled_from(["vioif", "ld"]), st.integers(0, 3)), min_size=1, max_size=8
).map(lambda pairs: list(dict.fromkeys(f"{d}{u}" for d, u in pairs)))


@settings(max_examples=60, deadline=None)
@given(names=UNITS, order=st.randoms(use_true_random=False))
def test_defect4_any_plan_order_gives_one_attachment_order(names: list[str], order: Any) -> None:
    order.shuffle(names)
    plan = plan_of_parts(
        devices=[
            {
                "name": n,
                "kind": "net" if n.startswith("vioif") else "block",
                "by": "x",
                "pointer": "/",
            }
            for n in names
        ],
    )
    manifest = manifest_names(plan)
    assert set(names) <= set(manifest)
    assert qemu_virtio_order(formats.render(plan, "qemu-args", {}).text) == manifest
    assert tender_options(formats.render(plan, "solo5-hvt", {}).text)[0] == manifest
    # rumprun numbers each driver's devices in the order they come: unit n is n-th.
    for driver in ("vioif", "ld"):
        own = [n for n in manifest if n.startswith(driver)]
        assert own == [f"{driver}{u}" for u in range(len(own))]


# -- defect 5: disks a target cannot drive -----------------------------------------------


@pytest.mark.parametrize("fmt", ["solo5-manifest", "solo5-hvt", "solo5-spt"])
def test_defect5_scsi_disks_are_refused_for_solo5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    config = write_json(
        tmp_path / "config.json",
        {
            "mount": {
                "/a": {"source": "blk", "path": "/dev/sd0a"},
                "/b": {"source": "blk", "path": "/dev/ld0a"},
                "/c": {"source": "blk", "path": "/dev/cd0a"},
            }
        },
    )
    registry = write_json(tmp_path / "registry.json", {"delegates": []})
    out = tmp_path / "out"
    code, _, err = emit_cli(
        capsys, config, registry, "-b", "hw_virtio_scsi", "--emit", fmt, "-o", str(out)
    )
    assert code == 3
    assert (
        f"at /mount/~1a: --emit {fmt}: block device 'sd0' is a SCSI disk, attached on "
        "virtio-scsi, which Solo5's virtio target has no driver for"
    ) in err
    assert f"at /mount/~1c: --emit {fmt}: block device 'cd0' is a SCSI CD-ROM" in err
    assert "'ld0'" not in err
    assert not out.exists()
    # QEMU itself drives them (rumprun's hw_virtio_scsi): qemu-args keeps them.
    code, _, err = emit_cli(capsys, config, registry, "-b", "hw_virtio_scsi", "--emit", "qemu-args")
    assert code == 0, err


def test_defect5_an_e1000_nic_is_refused_for_solo5_but_not_for_qemu() -> None:
    plan = plan_of_parts(
        bake={"config": "hw_generic"},
        devices=[{"name": "wm0", "kind": "net", "by": "x", "pointer": "/net/interfaces/wm0"}],
    )
    with pytest.raises(ConflictError) as caught:
        formats.render(plan, "solo5-manifest", {})
    (problem,) = problems_of(caught.value)
    assert problem.message == (
        "--emit solo5-manifest: net device 'wm0' is an e1000 NIC, which Solo5's virtio target "
        "has no driver for; the manifest is the same for every Solo5 target, so it cannot "
        "declare it"
    )
    assert problem.pointer == "/net/interfaces/wm0"
    assert "-device e1000,netdev=bakeplan-wm0" in formats.render(plan, "qemu-args", {}).text
