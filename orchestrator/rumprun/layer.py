"""The rumprun layer: what rumprun's own config code will read at boot, and what it needs.

This is the built-in ``rumprun`` delegate.  It validates the residual config against the
specification dialect, answers with it unchanged as the runtime config, and lists the
devices the domain builder must attach for it.  ``requirements`` says which components
and which platform each part needs, so that bakeplan can refuse at plan time a config
that rumprun would only refuse at boot (the gating rules of the contract).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.core import config as dialect
from orchestrator.core.protocol import Answer, Context, Device
from orchestrator.pointers import pointer_of

NAME = "rumprun"
VERSION = "1"
# rumprun's hw/multiboot.c copies the config into a 4096-byte buffer with its NUL
# (BMK_MULTIBOOT_CMDLINE_SIZE): passed as a multiboot module it halts the boot at 4095
# bytes or more, on the kernel command line at 4096 or more.
MULTIBOOT_SIZE = 4096
MODULE_LIMIT = MULTIBOOT_SIZE - 1
CMDLINE_LIMIT = MULTIBOOT_SIZE
# A block device node as rumprun's mount code takes it: disk name, then partition letter.
# Matched whole (fullmatch): "$" would let "/dev/ld0a\n" through.
_DISK = re.compile(r"/dev/(?P<disk>[a-z]+[0-9]+)[a-p]?")


class LayerError(Exception):
    """The fragment is not something rumprun's config layer can read."""

    def __init__(self, violations: Sequence[dialect.Violation]) -> None:
        super().__init__(f"{len(violations)} violation(s) of the rumprun config dialect")
        self.violations = tuple(violations)


@dataclass(frozen=True)
class Requirement:
    """The part at ``pointer`` needs one of ``any_of`` linked, or the platform ``platform``."""

    pointer: str
    any_of: tuple[str, ...] = ()
    platform: str | None = None
    why: str = ""


def _section(pointer: str) -> str | None:
    if pointer == "":
        return None
    key = pointer[1:]
    if key not in dialect.RUMPRUN_KEYS:
        raise ValueError(
            f"the rumprun layer configures the whole document or one of its keys, not {pointer!r}"
        )
    return key


def configure(fragment: Any, pointer: str, context: Context) -> Answer:
    """Answer a ``configure`` request for the whole document or one rumprun key."""
    del context  # the layer reads the same config on every platform; gating is bakeplan's
    section = _section(pointer)
    violations = dialect.validate_dialect(fragment, base_pointer=pointer, section=section)
    if violations:
        raise LayerError(violations)
    document = fragment if section is None else {section: fragment}
    return Answer(replaced=True, replace=fragment, devices=tuple(devices(document)))


def devices(document: Mapping[str, Any]) -> Iterator[Device]:
    """The devices the domain builder attaches for a runtime config, in config order."""
    for name, interface in (document.get("net", {}).get("interfaces") or {}).items():
        extra = {"create": True} if interface.get("create") else {}
        yield Device(
            name=name, kind="net", pointer=pointer_of(["net", "interfaces", name]), fields=extra
        )
    blk = document.get("blk") or {}
    for name, spec in blk.items():
        if spec.get("type") == "etfs":
            path = spec.get("path", "")
            yield Device(
                name=name,
                kind="block",
                pointer=pointer_of(["blk", name]),
                fields={"path": path, "vdev": path.partition(":")[2]},
            )
    seen = set(blk)
    for mountpoint, mount in (document.get("mount") or {}).items():
        if mount.get("source") != "blk":
            continue
        match = _DISK.fullmatch(mount.get("path", ""))
        if match is None or match["disk"] in seen:
            continue
        seen.add(match["disk"])
        yield Device(
            name=match["disk"],
            kind="block",
            pointer=pointer_of(["mount", mountpoint]),
            fields={"path": f"/dev/{match['disk']}"},
        )


def requirements(document: Mapping[str, Any]) -> Iterator[Requirement]:
    """What each part of a runtime config needs from the bake config, in config order."""
    net = document.get("net")
    if isinstance(net, dict):
        yield from _net_requirements(net)
    yield from _blk_requirements(document.get("blk") or {})
    yield from _mount_requirements(document.get("mount") or {})


def _net_requirements(net: Mapping[str, Any]) -> Iterator[Requirement]:
    families: list[tuple[str, str]] = []
    for name, interface in (net.get("interfaces") or {}).items():
        if interface.get("create"):
            # A hw NIC exists already: creating it fails at boot (ifcreate: EINVAL).
            yield Requirement(
                pointer_of(["net", "interfaces", name, "create"]),
                platform="xen",
                why="creating an interface (Xen netback's; a hw NIC exists already)",
            )
        for index, address in enumerate(interface.get("addrs") or ()):
            where = pointer_of(["net", "interfaces", name, "addrs", str(index)])
            families.append((where, address.get("type")))
    for index, gateway in enumerate(net.get("gateways") or ()):
        families.append((pointer_of(["net", "gateways", str(index)]), gateway.get("type")))
    for where, family in families:
        if family == "inet6":
            yield Requirement(where, ("rumpnet_netinet6",), why="an inet6 address")
        else:
            yield Requirement(where, ("rumpnet_netinet",), why="an inet address")
    if not families:
        yield Requirement("/net", ("rumpnet_netinet",), why="network configuration")


def _blk_requirements(blk: Mapping[str, Any]) -> Iterator[Requirement]:
    for name, spec in blk.items():
        where = pointer_of(["blk", name])
        if spec.get("type") == "vnd":
            yield Requirement(where, ("rumpdev_vnd",), why="a vnd device")
        elif spec.get("type") == "etfs":
            yield Requirement(where, platform="xen", why="an etfs device (Xen blkfront)")


def _mount_requirements(mounts: Mapping[str, Any]) -> Iterator[Requirement]:
    for mountpoint, mount in mounts.items():
        where = pointer_of(["mount", mountpoint])
        source = mount.get("source")
        if source == "kernfs":
            yield Requirement(where, ("rumpfs_kernfs",), why="a kernfs mount")
        elif source == "tmpfs":
            yield Requirement(where, ("rumpfs_tmpfs",), why="a tmpfs mount")
        elif source == "blk":
            yield Requirement(where, ("rumpdev_disk",), why="a block device mount")
            yield Requirement(
                where,
                ("rumpfs_ffs", "rumpfs_ext2fs", "rumpfs_cd9660"),
                why="a block device mount",
            )


def under(path: str, mountpoint: str) -> bool:
    """Whether ``path`` lies inside the file system mounted at ``mountpoint``."""
    return path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")


def parents_first(mountpoints: Sequence[str]) -> list[str]:
    """``mountpoints`` in their order, except that a parent comes before its children:
    rumprun mounts in the order of the text, and a parent mounted after a child hides it
    (seen booting both rumpruns).  Nothing else moves."""
    order: list[str] = []
    for mountpoint in mountpoints:
        child = next((i for i, m in enumerate(order) if under(m, mountpoint)), len(order))
        order.insert(child, mountpoint)
    return order


# --- what the real toolchain needs to link and to boot ---------------------------------


@dataclass(frozen=True)
class LinkRule:
    """One of ``any_of`` must be linked (when ``when`` is, or always): found by linking and
    booting real rumprun images, stated by no document."""

    any_of: tuple[str, ...]
    why: str
    hint: str
    when: str | None = None

    def broken_by(self, linked: frozenset[str]) -> bool:
        applies = self.when is None or self.when in linked
        return applies and not linked.intersection(self.any_of)


LINK_RULES = (
    LinkRule(
        ("rumpnet_config",),
        "librumprun_base calls rumpnet_config's functions, so the link fails without it",
        "leave rumpnet_config linked: rumprun's own layer needs it even when it configures "
        "no network",
    ),
    LinkRule(
        ("rumpnet_netinet", "rumpnet_netinet6"),
        "rumpnet_config panics at boot without an IP stack linked "
        "(netconfig: missing both inet and inet6)",
        "a delegate that takes over the network removes the stack it replaces and keeps "
        "the other linked, unconfigured",
        when="rumpnet_config",
    ),
)


# --- what rumprun only finds out at boot -----------------------------------------------

# master's rumprun-bake links at most this many binaries (rumprun_main1..8).
MAX_BINARIES = 8
# rumprun on Xen attaches at most this many blkfront disks (xvda..xvdj).
MAX_XEN_BLOCK_DEVICES = 10
# Disks the hw platform's drivers create, by device name prefix, and the component
# whose driver makes them.
HW_DISKS = {"ld": "rumpdev_virtio_ld", "sd": "rumpdev_scsipi", "cd": "rumpdev_scsipi"}


@dataclass(frozen=True)
class BootProblem:
    """Something rumprun would stop on at boot, found at plan time."""

    pointer: str
    message: str
    hint: str | None = None


def baked_name(path: str) -> str:
    """The name a binary is baked under: the basename of the rumprun-bake input."""
    return path.rstrip("/").rpartition("/")[2] or path


def boot_problems(
    document: Mapping[str, Any],
    *,
    platform: str,
    linked: frozenset[str],
    binaries: Sequence[str] = (),
    devices: Sequence[tuple[str, str]] = (),
    all_devices: bool = True,
) -> Iterator[BootProblem]:
    """What rumprun (or rumprun-bake) would refuse only at boot (or bake) time.

    ``binaries`` are the rumprun-bake inputs, when known; ``devices`` are the plan's
    ``(name, kind)`` pairs from every delegate, rumprun's own included.  Without
    ``all_devices`` they are only some of them (delegates have not answered yet): too
    many is still too many, but a device not found may yet come from a delegate.
    """
    yield from _binary_problems(document.get("rc"), binaries)
    blocks = [name for name, kind in devices if kind == "block"]
    if platform == "xen" and len(blocks) > MAX_XEN_BLOCK_DEVICES:
        yield BootProblem(
            "/blk" if "blk" in document else "",
            f"{len(blocks)} block devices ({', '.join(blocks)}); rumprun on Xen attaches at "
            f"most {MAX_XEN_BLOCK_DEVICES}",
        )
    if all_devices:
        yield from _mount_device_problems(document, platform, linked, {n for n, _ in devices})


def _binary_problems(rc: Any, binaries: Sequence[str]) -> Iterator[BootProblem]:
    entries = rc if isinstance(rc, list) else []
    if len(binaries) > MAX_BINARIES:
        yield BootProblem(
            "/rc" if entries else "",
            f"{len(binaries)} binaries to bake (--bin); rumprun-bake takes at most {MAX_BINARIES}",
        )
    bins = [e.get("bin") for e in entries if isinstance(e, dict)]
    distinct = list(dict.fromkeys(b for b in bins if isinstance(b, str)))
    if not binaries and len(distinct) > MAX_BINARIES:
        yield BootProblem(
            "/rc",
            f"rc runs {len(distinct)} different binaries; rumprun-bake takes at most "
            f"{MAX_BINARIES}",
        )
    if not binaries:
        return
    baked = [baked_name(b) for b in binaries]
    for index, name in enumerate(bins):
        if not isinstance(name, str) or name in baked or baked_name(name) in baked:
            continue
        yield BootProblem(
            pointer_of(["rc", str(index), "bin"]),
            f"bin {name!r} is not one of the baked binaries ({', '.join(baked)})",
            hint="rc[].bin names a binary by the basename it was baked under (--bin)",
        )


def _mount_device_problems(
    document: Mapping[str, Any], platform: str, linked: frozenset[str], provided: set[str]
) -> Iterator[BootProblem]:
    blk = document.get("blk")
    blk = blk if isinstance(blk, dict) else {}
    mounts = document.get("mount")
    for mountpoint, mount in (mounts if isinstance(mounts, dict) else {}).items():
        if not isinstance(mount, dict) or mount.get("source") != "blk":
            continue
        path = mount.get("path")
        if not isinstance(path, str) or _blk_provides(blk, path):
            continue
        match = _DISK.fullmatch(path)
        disk = match["disk"] if match else None
        if disk is not None and disk in provided and disk not in _disk_names(document):
            continue  # a delegate's own block device
        prefix = disk.rstrip("0123456789") if disk else None
        if platform == "hw" and prefix in HW_DISKS:
            if HW_DISKS[prefix] in linked:
                continue
            reason = f"the hw driver for {prefix} disks ({HW_DISKS[prefix]}) is not linked"
        elif platform == "hw":
            reason = f"no blk entry names it, and hw drivers make only {', '.join(HW_DISKS)} disks"
        else:
            reason = "no blk entry names it (Xen disks come from etfs blk entries)"
        yield BootProblem(
            pointer_of(["mount", mountpoint, "path"]),
            f"nothing provides the device {path}: {reason}",
            hint='add a blk entry for it, e.g. {"type": "etfs", "path": "blkfront:xvda"} on '
            'Xen or {"type": "vnd", "path": FILE} named vnd0',
        )


def _disk_names(document: Mapping[str, Any]) -> set[str]:
    """The disks rumprun's own devices() derives from mount paths (not from delegates)."""
    return {d.name for d in devices(document) if d.kind == "block"}


def _blk_provides(blk: Mapping[str, Any], path: str) -> bool:
    """Whether a blk entry makes the node ``path``: etfs registers ``/dev/<name>`` itself;
    a vnd's disk has partitions ``/dev/vnd<unit>[a-p]``."""
    for name, spec in blk.items():
        if path == f"/dev/{name}":
            return True
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "vnd" and re.fullmatch(re.escape(f"/dev/{name}") + "[a-p]", path):
            return True
    return False
