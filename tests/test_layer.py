"""rumprun's own config layer (``rumprun.layer``) read directly: what it answers for a
fragment, the devices the domain builder attaches, what each part needs linked or which
platform, the link rules, what only boot would refuse, and the mount order helpers.
Through assembly and ``validate`` the same rules are in test_plan and test_emit."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.protocol import Context, Device
from orchestrator.rumprun import layer
from orchestrator.rumprun.layer import Requirement

CONTEXT = Context(bake_config="hw_virtio", platform="hw", components=())

NET: dict[str, Any] = {
    "interfaces": {
        "vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]},
        "xenif1": {"create": True, "addrs": [{"type": "inet6", "method": "auto"}]},
    },
    "gateways": [{"type": "inet6", "addr": "fe80::1"}],
}
DOCUMENT: dict[str, Any] = {
    "net": NET,
    "blk": {
        "xbd0": {"type": "etfs", "path": "blkfront:xvda"},
        "vnd0": {"type": "vnd", "path": "/a.img"},
    },
    "mount": {
        "/a": {"source": "blk", "path": "/dev/ld0a"},
        "/b": {"source": "blk", "path": "/dev/ld0e"},  # the same disk again
        "/x": {"source": "blk", "path": "/dev/xbd0"},  # a blk entry's own node
        "/k": {"source": "kernfs"},
        "/t": {"source": "tmpfs"},
    },
}


# -- configure -------------------------------------------------------------------------------


def test_the_answer_is_the_fragment_unchanged_with_its_devices() -> None:
    answer = layer.configure(DOCUMENT, "", CONTEXT)
    assert answer.replaced and answer.replace is DOCUMENT
    assert [d.name for d in answer.devices] == ["vioif0", "xenif1", "xbd0", "ld0"]
    assert (answer.add, answer.remove, answer.warnings) == ((), (), ())


def test_one_key_is_configured_as_that_part_of_a_document() -> None:
    answer = layer.configure(NET, "/net", CONTEXT)
    assert answer.replace is NET
    assert [(d.name, d.pointer) for d in answer.devices] == [
        ("vioif0", "/net/interfaces/vioif0"),
        ("xenif1", "/net/interfaces/xenif1"),
    ]
    assert layer.configure({"A": "1"}, "/env", CONTEXT).devices == ()


def test_a_fragment_rumprun_cannot_read_is_refused_at_its_pointers() -> None:
    with pytest.raises(layer.LayerError) as caught:
        layer.configure({"env": {"A": 5}, "rc": 3}, "", CONTEXT)
    assert [(v.pointer, v.message) for v in caught.value.violations] == [
        ("/env/A", "must be a string, not an integer"),
        ("/rc", "must be an array, not an integer"),
    ]
    assert str(caught.value) == "2 violation(s) of the rumprun config dialect"
    # A key's fragment is checked as that key, at its own pointer.
    with pytest.raises(layer.LayerError) as caught:
        layer.configure({"interfaces": 3}, "/net", CONTEXT)
    assert [v.pointer for v in caught.value.violations] == ["/net/interfaces"]


@pytest.mark.parametrize("pointer", ["/env/A", "/bogus", "/net/interfaces"])
def test_only_the_whole_document_or_one_rumprun_key_is_configured(pointer: str) -> None:
    with pytest.raises(ValueError, match="the whole document or one of its keys"):
        layer.configure({}, pointer, CONTEXT)


# -- devices ---------------------------------------------------------------------------------


def test_devices_come_in_config_order_each_disk_once() -> None:
    assert list(layer.devices(DOCUMENT)) == [
        Device(name="vioif0", kind="net", pointer="/net/interfaces/vioif0"),
        Device(
            name="xenif1", kind="net", pointer="/net/interfaces/xenif1", fields={"create": True}
        ),
        Device(
            name="xbd0",
            kind="block",
            pointer="/blk/xbd0",
            fields={"path": "blkfront:xvda", "vdev": "xvda"},
        ),
        # A vnd is rumprun's own, over a file: nothing for the domain builder to attach.
        Device(name="ld0", kind="block", pointer="/mount/~1a", fields={"path": "/dev/ld0"}),
    ]


@pytest.mark.parametrize(
    "path", ["/dev/ld0q", "/dev/ld0a\n", "/dev/ld", "ld0a", "/dev/0a", "/dev/ld0ab"]
)
def test_a_mount_path_that_is_no_disk_node_makes_no_device(path: str) -> None:
    assert list(layer.devices({"mount": {"/d": {"source": "blk", "path": path}}})) == []


def test_only_block_mounts_make_devices() -> None:
    document = {"mount": {"/d": {"source": "kernfs", "path": "/dev/ld0a"}}}
    assert list(layer.devices(document)) == []
    assert list(layer.devices({})) == []


# -- requirements ----------------------------------------------------------------------------


def test_each_part_needs_its_components_or_platform_in_config_order() -> None:
    disk = ("rumpfs_ffs", "rumpfs_ext2fs", "rumpfs_cd9660")
    found = [(r.pointer, r.any_of, r.platform) for r in layer.requirements(DOCUMENT)]
    assert found == [
        ("/net/interfaces/xenif1/create", (), "xen"),
        ("/net/interfaces/vioif0/addrs/0", ("rumpnet_netinet",), None),
        ("/net/interfaces/xenif1/addrs/0", ("rumpnet_netinet6",), None),
        ("/net/gateways/0", ("rumpnet_netinet6",), None),
        ("/blk/xbd0", (), "xen"),
        ("/blk/vnd0", ("rumpdev_vnd",), None),
        *((f"/mount/~1{m}", need, None) for m in "abx" for need in (("rumpdev_disk",), disk)),
        ("/mount/~1k", ("rumpfs_kernfs",), None),
        ("/mount/~1t", ("rumpfs_tmpfs",), None),
    ]
    assert all(r.why for r in layer.requirements(DOCUMENT))


def test_a_network_without_an_address_still_needs_an_ip_stack() -> None:
    assert list(layer.requirements({"net": {"interfaces": {"vioif0": {}}}})) == [
        Requirement("/net", ("rumpnet_netinet",), why="network configuration")
    ]
    # No network at all needs none.
    assert list(layer.requirements({"env": {"A": "1"}, "rc": [{"bin": "x"}]})) == []


# -- the link rules --------------------------------------------------------------------------


def rule(first: str) -> layer.LinkRule:
    return next(r for r in layer.LINK_RULES if r.any_of[0] == first)


def test_rumpnet_config_must_always_be_linked() -> None:
    config = rule("rumpnet_config")
    assert config.broken_by(frozenset({"rumpnet_netinet"}))
    assert not config.broken_by(frozenset({"rumpnet_config"}))


def test_an_ip_stack_is_needed_only_where_rumpnet_config_is_linked() -> None:
    stack = rule("rumpnet_netinet")
    assert stack.broken_by(frozenset({"rumpnet_config"}))
    assert not stack.broken_by(frozenset({"rumpnet_config", "rumpnet_netinet6"}))
    assert not stack.broken_by(frozenset({"rumpnet_config", "rumpnet_netinet"}))
    assert not stack.broken_by(frozenset())  # the rule for rumpnet_config says that one
    assert len(layer.LINK_RULES) == 2
    assert all(r.why and r.hint for r in layer.LINK_RULES)


# -- what only boot would refuse ---------------------------------------------------------------


def problems(document: dict[str, Any], **given: Any) -> list[tuple[str, str]]:
    settings = {"platform": "hw", "linked": frozenset(), **given}
    return [(p.pointer, p.message) for p in layer.boot_problems(document, **settings)]


def blk_mount(path: str, **blk: Any) -> dict[str, Any]:
    return {"blk": blk, "mount": {"/d": {"source": "blk", "path": path}}}


def test_hw_disks_need_their_driver_linked() -> None:
    assert problems(blk_mount("/dev/ld0a"), linked=frozenset({"rumpdev_virtio_ld"})) == []
    assert problems(blk_mount("/dev/sd1a"), linked=frozenset({"rumpdev_scsipi"})) == []
    assert problems(blk_mount("/dev/cd0a"), linked=frozenset({"rumpdev_scsipi"})) == []
    ((where, said),) = problems(blk_mount("/dev/sd0a"), linked=frozenset({"rumpdev_virtio_ld"}))
    assert where == "/mount/~1d/path"
    assert said == (
        "nothing provides the device /dev/sd0a: the hw driver for sd disks (rumpdev_scsipi) "
        "is not linked"
    )
    ((_, said),) = problems(blk_mount("/dev/wd0a"))
    assert said.endswith("no blk entry names it, and hw drivers make only ld, sd, cd disks")


def test_a_blk_entry_provides_its_own_node_and_a_vnd_its_partitions() -> None:
    etfs = {"type": "etfs", "path": "blkfront:xvda"}
    assert problems(blk_mount("/dev/xbd0", xbd0=etfs), platform="xen") == []
    vnd = {"type": "vnd", "path": "/a.img"}
    for part in "ap":
        assert problems(blk_mount(f"/dev/vnd0{part}", vnd0=vnd)) == []
    assert problems(blk_mount("/dev/vnd0q", vnd0=vnd)) != []
    # An etfs entry makes only its own node, no partitions.
    assert problems(blk_mount("/dev/xbd0a", xbd0=etfs), platform="xen") != []


def test_the_disk_rumprun_guesses_from_a_mount_path_provides_nothing() -> None:
    # rumprun's own devices name the disk of every block mount; that is no provider.
    document = blk_mount("/dev/xbd1")
    assert [d.name for d in layer.devices(document)] == ["xbd1"]
    assert problems(document, platform="xen", devices=[("xbd1", "block")]) == [
        (
            "/mount/~1d/path",
            "nothing provides the device /dev/xbd1: no blk entry names it (Xen disks come "
            "from etfs blk entries)",
        )
    ]


def test_before_delegates_answer_a_missing_device_is_not_looked_for_but_counts_apply() -> None:
    assert problems(blk_mount("/dev/wd0a"), all_devices=False) == []
    devices = [(f"xbd{i}", "block") for i in range(11)]
    found = problems({}, platform="xen", devices=devices, all_devices=False)
    assert [p for p, _ in found] == [""]  # no blk key to point at
    assert found[0][1].startswith("11 block devices (xbd0, xbd1,")
    assert problems({}, platform="xen", devices=devices[:10]) == []
    assert problems({}, platform="hw", devices=devices) == []  # the bound is Xen's
    net = [(f"vif{i}", "net") for i in range(11)]
    assert problems({}, platform="xen", devices=net) == []


def test_binaries_and_rc() -> None:
    rc = {"rc": [{"bin": "./wopr.bin"}, {"bin": "out/mathopd"}, {"bin": 7}, "junk"]}
    assert problems(rc, binaries=("build/wopr.bin", "mathopd")) == []
    # Without --bin, only the count of different binaries rc runs is known.
    many = {"rc": [{"bin": f"b{i % 9}"} for i in range(12)]}
    assert [p for p, _ in problems(many)] == ["/rc"]
    assert problems({"rc": [{"bin": f"b{i % 8}"} for i in range(12)]}) == []
    # With --bin, the rc names are checked and the count is the baked one.
    assert problems(many, binaries=tuple(f"b{i}" for i in range(8))) == [
        ("/rc/8/bin", "bin 'b8' is not one of the baked binaries (b0, b1, b2, b3, b4, b5, b6, b7)")
    ]
    # An rc that is not a list is the dialect's to refuse, not a crash here.
    assert problems({"rc": "x"}, binaries=tuple("abcdefghi")) == [
        ("", "9 binaries to bake (--bin); rumprun-bake takes at most 8")
    ]


# -- names and mount order -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [("www", "www"), ("out/www", "www"), ("./a/b.bin", "b.bin"), ("dir/", "dir"), ("/", "/")],
)
def test_a_binary_is_baked_under_its_basename(path: str, name: str) -> None:
    assert layer.baked_name(path) == name


@pytest.mark.parametrize(
    ("path", "mountpoint", "inside"),
    [
        ("/data", "/data", True),
        ("/data/x", "/data", True),
        ("/data/x", "/data/", True),
        ("/data2", "/data", False),
        ("/dat", "/data", False),
        ("/anything", "/", True),
    ],
)
def test_under(path: str, mountpoint: str, inside: bool) -> None:
    assert layer.under(path, mountpoint) is inside


def test_parents_come_first_and_nothing_else_moves() -> None:
    assert layer.parents_first(["/a/b", "/c", "/a"]) == ["/a", "/a/b", "/c"]
    assert layer.parents_first(["/x", "/a/b/c", "/a/b", "/a"]) == ["/x", "/a", "/a/b", "/a/b/c"]
    assert layer.parents_first(["/b", "/a", "/data2", "/data"]) == ["/b", "/a", "/data2", "/data"]


mountpoints = st.lists(
    st.lists(st.sampled_from("abc"), min_size=1, max_size=3).map(lambda p: "/" + "/".join(p)),
    unique=True,
    max_size=8,
)


@given(mountpoints)
def test_parents_first_puts_every_parent_before_its_children(given_order: list[str]) -> None:
    order = layer.parents_first(given_order)
    assert sorted(order) == sorted(given_order)
    for i, mountpoint in enumerate(order):
        assert not any(layer.under(mountpoint, later) for later in order[i + 1 :])
    assert layer.parents_first(order) == order
