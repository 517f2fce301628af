"""Each emitter's output parsed back, and the boot-time mistakes caught at plan time."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import SPEC
from helpers_plan import plan_of_parts
from helpers_snapshot import assert_snapshot

from orchestrator.cli import main
from orchestrator.core.pipeline import Options, make_plan, validate
from orchestrator.core.planmodel import Plan
from orchestrator.emit import FORMATS, formats
from orchestrator.errors import BakeplanError, ConflictError, UsageError, exit_code_of
from orchestrator.rumprun.bake import standard_book
from orchestrator.rumprun.bakeconf import read_text

HYBRID = REPO / "examples" / "hybrid"
XEN = {
    "net": {
        "interfaces": {"xenif0": {"create": True, "addrs": [{"type": "inet", "method": "dhcp"}]}}
    },
    "blk": {"xbd0": {"type": "etfs", "path": "blkfront:xvda"}},
    "mount": {"/test": {"source": "blk", "path": "/dev/xbd0"}, "/kern": {"source": "kernfs"}},
    "rc": [{"bin": "wopr.bin"}],
}
HW = {
    "net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}}},
    "mount": {
        "/etc": {"source": "blk", "path": "/dev/ld0a"},
        "/data": {"source": "blk", "path": "/dev/ld1a"},
    },
    "env": {"A": "1,2"},
    "rc": [{"bin": "mathopd", "argv": ["mathopd", "-f", "/data/a,b.conf"]}],
}


def test_the_cli_lists_every_emitter_and_no_other() -> None:
    # The list is kept apart so that --help imports no emitter; the two must not drift.
    assert ("plan", *formats.EMITTERS) == FORMATS


def test_an_unknown_format_names_every_format() -> None:
    with pytest.raises(UsageError) as caught:
        formats.render(plan_of_parts(), "qcow2", {})
    assert caught.value.message == f"unknown --emit format 'qcow2'; known: {', '.join(FORMATS)}"


def plan_of(tmp_path: Path, config: dict[str, Any], **options: Any) -> Plan:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    registry = tmp_path / "registry.json"
    registry.write_text('{"delegates": []}')
    options.setdefault("dialect", "spec")
    return make_plan(Options(config=str(path), registries=(str(registry),), **options))


def hybrid_plan(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(
        [
            "plan",
            *SPEC,
            str(HYBRID / "config.json"),
            "-r",
            str(HYBRID / "registry.json"),
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize(
    "fmt", ["rumprun-json", "rumprun-bake-conf", "qemu-args", "solo5-manifest", "solo5-hvt"]
)
def test_the_hybrid_example_emitted_is_its_recorded_bytes(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    code, out, err = hybrid_plan(capsys, "--rumprun", "master", "--emit", fmt)
    assert code == 0, err
    assert_snapshot(f"plans/hybrid-master.{fmt}.txt", out)


def test_a_xen_domain_config_is_its_recorded_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(XEN))
    registry = tmp_path / "registry.json"
    registry.write_text('{"delegates": []}')
    emit = ("--emit", "xl", "--host", "kernel=/img/wopr.bin")
    code = main(["plan", *SPEC, str(config), "-r", str(registry), "-b", "xen_pv", *emit])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert_snapshot("plans/xen-spec.xl.txt", out)


def test_rumprun_json_is_the_runtime_config_strict_and_compact(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, HW)
    emitted = formats.render(plan, "rumprun-json", {})
    assert json.loads(emitted.text) == plan.runtime.config
    assert " " not in emitted.text.replace("a,b.conf", "")
    assert not emitted.text.endswith("\n")
    assert emitted.notes == ()


def test_rumprun_json_warns_with_the_byte_count_near_the_multiboot_limit(tmp_path: Path) -> None:
    config = {"env": {"BIG": "x" * 4100}, "rc": [{"bin": "a"}]}
    emitted = formats.render(plan_of(tmp_path, config), "rumprun-json", {})
    size = len(emitted.text.encode())
    assert emitted.notes == (
        f"warning: the runtime config is {size} bytes (spec dialect); rumprun on hw halts "
        "when the multiboot module holding it is 4095 bytes or more",
    )
    xen = formats.render(plan_of(tmp_path, config, bake_config="xen_pv"), "rumprun-json", {})
    assert xen.notes == ()


def test_qemu_append_is_the_config_as_it_is_since_qemu_passes_it_so(tmp_path: Path) -> None:
    # QEMU hands -append to the kernel verbatim (seen booting QEMU 7.2): doubling commas,
    # as rumprun's old launcher did, would reach rumprun doubled.
    plan = plan_of(tmp_path, HW)
    text = formats.render(plan, "qemu-append", {}).text
    assert text == formats.render(plan, "rumprun-json", {}).text
    assert '"A":"1,2"' in text


def test_rumprun_bake_conf_reads_back_to_exactly_the_plans_libs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = hybrid_plan(capsys, "--emit", "rumprun-bake-conf")
    assert code == 0, err
    book = standard_book()
    read_text(out, "plan.conf", book)
    _, plan_text, _ = hybrid_plan(capsys)
    plan = json.loads(plan_text)
    assert plan["bake"]["directives"]  # the test means something only with directives
    assert list(book.get("hw_virtio_bakeplan").libs) == plan["bake"]["libs"]
    assert "rumprun-bake -c THIS_FILE hw_virtio_bakeplan OUTPUT INPUT..." in out
    assert "\tadd\t\t-lrumpdev_bpf\t# mirage-net-config" in out


def test_rumprun_bake_conf_without_directives_is_the_base(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, XEN, bake_config="xen-pv")
    book = standard_book()
    read_text(formats.render(plan, "rumprun-bake-conf", {}).text, "x.conf", book)
    assert book.get("xen_pv_bakeplan").libs == book.get("xen_pv").libs
    assert book.get("xen_pv_bakeplan").platform == "xen"


def test_qemu_args_attach_each_device_and_pass_the_config_as_a_module(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, HW)
    emitted = formats.render(
        plan,
        "qemu-args",
        {
            "kernel": "math.bin",
            "config": "cfg,1.json",
            "memory": "128",
            "tap.vioif0": "tap0",
            "disk.ld0": "etc.img",
        },
    )
    argv = shlex.split(emitted.text)
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-kernel") + 1] == "math.bin"
    assert argv[argv.index("-initrd") + 1] == "cfg,,1.json"
    assert argv[argv.index("-m") + 1] == "128"
    assert argv.count("-netdev") == 1
    assert argv[argv.index("-netdev") + 1] == (
        "tap,id=bakeplan-vioif0,ifname=tap0,script=no,downscript=no"
    )
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert devices == [
        "virtio-net-pci,netdev=bakeplan-vioif0",
        "virtio-blk-pci,drive=bakeplan-ld0",
        "virtio-blk-pci,drive=bakeplan-ld1",
    ]
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives == [
        "if=none,id=bakeplan-ld0,file=etc.img,format=raw",
        "if=none,id=bakeplan-ld1,file=<host:disk.ld1>,format=raw",
    ]
    assert emitted.notes == (
        "placeholder <host:disk.ld1> left in the output; give --host disk.ld1=...",
    )


def test_qemu_args_refuse_a_xen_plan(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--emit qemu-args is for hw plans"):
        formats.render(plan_of(tmp_path, XEN, bake_config="xen_pv"), "qemu-args", {})


def parse_xl(text: str) -> dict[str, str]:
    """xl's config grammar as far as the emitter uses it: KEY = VALUE lines, # comments."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(" = ")
        assert sep, line
        assert key.isidentifier(), line
        assert key not in pairs, key
        pairs[key] = value
    return pairs


def test_xl_names_kernel_memory_vif_and_etfs_disks(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, XEN, bake_config="xen_pv")
    emitted = formats.render(
        plan,
        "xl",
        {
            "kernel": "/img/wopr.bin",
            "memory": "256",
            "disk.xbd0": "test.img",
            "config": "wopr.json",
        },
    )
    pairs = parse_xl(emitted.text)
    assert json.loads(pairs["name"]) == "rumprun-wopr.bin"
    assert json.loads(pairs["kernel"]) == "/img/wopr.bin"
    assert pairs["memory"] == "256"
    assert pairs["vif"] == "[ 'bridge=<host:bridge.xenif0>' ]"
    assert pairs["disk"] == "[ 'format=raw, vdev=xvda, access=rw, target=test.img' ]"
    assert "#   xl create -p THIS_FILE" in emitted.text
    assert (
        '#   xenstore-write "/local/domain/$(xl domid rumprun-wopr.bin)/rumprun/cfg" '
        '"$(cat wopr.json)"' in emitted.text
    )
    assert "#   xl unpause rumprun-wopr.bin" in emitted.text
    assert emitted.notes == (
        "placeholder <host:bridge.xenif0> left in the output; give --host bridge.xenif0=...",
    )


def test_solo5_manifest_matches_solo5_s_own(tmp_path: Path, conformance: Path) -> None:
    for path in sorted((conformance / "solo5").glob("*.json")):
        assert formats.manifest_problems(json.loads(path.read_text())) == [], path.name
    plan = plan_of_parts(
        devices=[
            {"name": "service0", "kind": "net", "by": "x", "pointer": "/a"},
            {"name": "service1", "kind": "net", "by": "x", "pointer": "/b"},
        ]
    )
    emitted = formats.render(plan, "solo5-manifest", {})
    assert json.loads(emitted.text) == json.loads(
        (conformance / "solo5" / "solo5_test_net_2if_manifest.json").read_text()
    )
    hw = json.loads(formats.render(plan_of(tmp_path, HW), "solo5-manifest", {}).text)
    assert formats.manifest_problems(hw) == []
    assert hw["devices"] == [
        {"name": "vioif0", "type": "NET_BASIC"},
        {"name": "ld0", "type": "BLOCK_BASIC"},
        {"name": "ld1", "type": "BLOCK_BASIC"},
    ]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["net-0"], "must be 1 to 67 letters and digits"),
        (["a" * 68], "must be 1 to 67 letters and digits"),
        ([f"d{i}" for i in range(64)], "64 devices; Solo5 takes at most 63"),
    ],
)
def test_solo5_name_rules_are_conflicts(names: list[str], message: str) -> None:
    plan = plan_of_parts(
        devices=[
            {"name": n, "kind": "block", "by": "x", "pointer": f"/p{i}"}
            for i, n in enumerate(names)
        ]
    )
    with pytest.raises(ConflictError) as caught:
        formats.render(plan, "solo5-manifest", {})
    problems = getattr(caught.value, "problems", (caught.value,))
    assert any(message in p.message for p in problems)
    manifest = {
        "type": "solo5.manifest",
        "version": 1,
        "devices": [{"name": n, "type": "BLOCK_BASIC"} for n in names],
    }
    assert any(message in p for p in formats.manifest_problems(manifest))
    twice = {**manifest, "devices": [{"name": "a", "type": "NET_BASIC"}] * 2}
    assert formats.manifest_problems(twice) == ["devices[1]: name 'a' is used twice"]
    assert formats.manifest_faults(twice) == [
        formats.ManifestProblem("name 'a' is used twice", index=1)
    ]


def test_a_manifest_problem_points_at_the_device_of_its_entry() -> None:
    # The manifest entry a problem is about is the attachment slot of the same index, so
    # the conflict is placed at that device's config part.
    plan = plan_of_parts(
        devices=[
            {"name": "vioif0", "kind": "net", "by": "x", "pointer": "/net/interfaces/vioif0"},
            {"name": "ld0", "kind": "block", "by": "x", "pointer": "/mount/~1d"},
            {"name": "my-disk", "kind": "block", "by": "x", "pointer": "/blk/my-disk"},
        ]
    )
    with pytest.raises(ConflictError) as caught:
        formats.render(plan, "solo5-manifest", {})
    assert caught.value.message == (
        "Solo5 manifest: devices[2]: name 'my-disk' must be 1 to 67 letters and digits"
    )
    assert caught.value.pointer == "/blk/my-disk"
    whole = {"type": "solo5.manifest", "version": 2, "devices": []}
    assert formats.manifest_faults(whole) == [
        formats.ManifestProblem('a manifest has "type": "solo5.manifest" and "version": 1')
    ]


def test_host_options_are_checked() -> None:
    assert formats.parse_host(["tap.vioif0=tap0", "memory=64"]) == {
        "tap.vioif0": "tap0",
        "memory": "64",
    }
    with pytest.raises(UsageError, match="KEY=VALUE"):
        formats.parse_host(["colour=blue"])
    with pytest.raises(UsageError, match="whole number"):
        formats.parse_host(["memory=lots"])


def test_cli_emit_writes_atomically(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "cfg.json"
    code, _, err = hybrid_plan(capsys, "--emit", "rumprun-json", "-o", str(out))
    assert code == 0, err
    assert "net" not in json.loads(out.read_text())
    code, _, err = hybrid_plan(capsys, "--emit", "qemu-args", "--host", "kernel=www.bin")
    assert code == 0
    assert "bakeplan: emit qemu-args: placeholder <host:memory> left" in err
    code, _, err = hybrid_plan(capsys, "--emit", "xl", "-o", str(tmp_path / "x.cfg"))
    assert code == 2
    assert "--emit xl is for xen plans" in err
    assert not (tmp_path / "x.cfg").exists()


# -- boot-time mistakes caught at plan time ------------------------------------------------


def conflicts(tmp_path: Path, config: dict[str, Any], **options: Any) -> list[tuple[str, str]]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    registry = tmp_path / "registry.json"
    registry.write_text('{"delegates": []}')
    with pytest.raises(BakeplanError) as caught:
        validate(
            Options(config=str(path), registries=(str(registry),), **{"dialect": "spec", **options})
        )
    assert exit_code_of(caught.value) == 3
    problems = getattr(caught.value, "problems", (caught.value,))
    return [(p.pointer or "", p.message) for p in problems]


def test_rc_bin_is_checked_against_the_baked_binaries(tmp_path: Path) -> None:
    config = {"rc": [{"bin": "mathopd"}, {"bin": "./wopr.bin"}, {"bin": "nope"}]}
    found = conflicts(tmp_path, config, binaries=("out/mathopd", "wopr.bin"))
    assert found == [
        ("/rc/2/bin", "bin 'nope' is not one of the baked binaries (mathopd, wopr.bin)")
    ]


def test_more_than_eight_binaries(tmp_path: Path) -> None:
    many = tuple(f"b{i}" for i in range(9))
    found = conflicts(tmp_path, {"rc": [{"bin": "b0"}]}, binaries=many)
    assert found == [("/rc", "9 binaries to bake (--bin); rumprun-bake takes at most 8")]
    found = conflicts(tmp_path, {"rc": [{"bin": b} for b in many]})
    assert found == [("/rc", "rc runs 9 different binaries; rumprun-bake takes at most 8")]


def test_more_than_ten_xen_block_devices(tmp_path: Path) -> None:
    blk = {
        f"xbd{i}": {"type": "etfs", "path": f"blkfront:xvd{'abcdefghijk'[i]}"} for i in range(11)
    }
    found = conflicts(tmp_path, {"blk": blk}, bake_config="xen_pv")
    assert [p for p, _ in found] == ["/blk"]
    assert "11 block devices" in found[0][1] and "at most 10" in found[0][1]


def test_a_mount_whose_device_nothing_provides(tmp_path: Path) -> None:
    config = {
        "mount": {
            "/a": {"source": "blk", "path": "/dev/vnd0a"},
            "/b": {"source": "blk", "path": "/dev/ld0a"},
        }
    }
    found = conflicts(tmp_path, config, bake_config="xen_pv")
    assert [p for p, _ in found] == ["/mount/~1a/path", "/mount/~1b/path"]
    assert "nothing provides the device /dev/vnd0a" in found[0][1]
    assert "Xen disks come from etfs blk entries" in found[1][1]
    # On hw, ld disks come from the virtio driver; a vnd needs its blk entry.
    found = conflicts(tmp_path, config)
    assert [p for p, _ in found] == ["/mount/~1a/path"]


def test_the_specimens_pass_the_boot_checks(tmp_path: Path, conformance: Path) -> None:
    valid = conformance / "rumprun" / "valid"
    for name, bake in [
        ("runner-mathopd.json", "hw_virtio"),
        ("spec-doc-hw-mathopd.fixed.json", "hw_virtio"),
        ("spec-doc-xen-wopr.fixed.json", "xen_pv"),
    ]:
        config = json.loads((valid / name).read_text())
        bins = ("wopr.bin",) if "wopr" in name else ("mathopd",)
        plan = plan_of(tmp_path, config, bake_config=bake, binaries=bins)
        assert plan.to_json()["plan"] == "bakeplan/1"


def test_cli_bin_option_exit_3_with_pointer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = hybrid_plan(capsys, "--bin", "other.bin")
    assert code == 3
    assert "at /rc/0/bin" in err
    code, _, err = hybrid_plan(capsys, "--bin", "build/www")
    assert code == 0, err
