"""rumprun master's config dialect, and the one table between it and the specification's.

Released rumprun (master, b04d422: ``lib/librumprun_base/config.c``) reads a different
config from the one its configuration specification describes: the top-level keys
``cmdline``, ``rc_TESTING``, ``env``, ``hostname``, ``blk`` and ``net``, and it halts the
boot on any other (``no match for key``).  ``env`` and ``blk`` repeat, one key per
variable or device, so master's text is JSON with repeated keys: bakeplan keeps it as an
ordered list of ``(key, value)`` members and writes those bytes exactly.

Every correspondence between the two dialects is written here once, as a pair: the
direction a plan needs (``to_master``: the residual config of a plan, for a master-built
unikernel) and the direction ``bakeplan upgrade`` needs (the ``*_to_spec`` functions,
which ``upgrade.py`` applies to legacy text).  What master cannot say is refused with
the pointer of the part, never dropped.

Facts the real parser imposes, beyond its keys (each was checked by booting):

* programs are matched to baked binaries by *position*: the n-th ``rc_TESTING`` entry
  runs the n-th binary rumprun-bake linked, whatever its ``bin`` says; ``bin`` only
  becomes argv[0], and ``argv`` (the arguments after it) is required;
* master mounts a 1 MiB tmpfs on ``/tmp`` itself, and only there;
* strings are taken as the raw bytes between the quotes (jsmn does not unescape), so a
  value that JSON must escape (``"``, ``\\``, control characters) cannot be passed;
* vnd devices are numbered in the order master meets them and mounted through their raw
  partition ``/dev/vnd<unit>d`` (x86's RAW_PART), read-only;
* one flat ``net`` object: one interface, one address, a gateway only with a static
  address of the same family.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.core.config import RUMPRUN_KEYS
from orchestrator.errors import BakeplanError, ConflictError, raise_all
from orchestrator.pointers import pointer_of, strings
from orchestrator.rumprun.layer import baked_name, parents_first, under

KEYS = ("cmdline", "rc_TESTING", "env", "hostname", "blk", "net")
NET_FIELDS = ("if", "cloner", "type", "method", "addr", "mask", "gw")
BLK_FIELDS = ("source", "path", "fstype", "mountpoint")
NET_METHODS = {"inet": ("dhcp", "static"), "inet6": ("auto", "static")}
FSTYPES = ("blk", "kernfs")
RUNMODES = ("&", "|")
HOSTNAME_SYSCTL = "kern.hostname"
# rumprun_boot mounts this tmpfs before any config is read (ta_size_max 1 MiB).
TMP_MOUNTPOINT = "/tmp"  # noqa: S108  (the guest's /tmp, not a file of ours)
TMP_SIZE = 1024 * 1024
# The raw partition master mounts a vnd through on x86 (RAW_PART 3, 'd').
VND_PARTITION = "d"
# What master's own launcher writes as the (unused) path of a kernfs entry.
KERNFS_PATH = "virtual"
ETFS_PREFIX = "blkfront:"
SPEC_HINT = "--rumprun spec plans for the configuration specification's parser, which reads it"

Member = tuple[str, Any]
# A member with the pointer of the config part it says (its provenance).
_Sourced = tuple[str, Any, str]

_SIZE = re.compile(r"(?P<number>[0-9]+)(?P<unit>[kKmMgG]?)")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# jsmn hands master the bytes between the quotes as they are: these would arrive escaped.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


# --- the table: each correspondence in both directions ---------------------------------


def argv_to_master(argv: Sequence[str]) -> dict[str, Any]:
    """A program's full argv as master's entry: ``bin`` is argv[0], ``argv`` the rest."""
    return {"bin": argv[0], "argv": list(argv[1:])}


def argv_to_spec(binary: str, args: Sequence[str]) -> list[str]:
    """Master's ``bin`` and ``argv`` (the arguments after argv[0]) as the full argv."""
    return [binary, *args]


def env_to_master(name: str, value: str) -> str:
    """One variable as master's repeated ``env`` value, which it ``putenv``s."""
    return f"{name}={value}"


def env_to_spec(text: str) -> tuple[str, str] | None:
    """Master's ``NAME=VALUE`` as a name and a value; None when putenv would refuse it."""
    name, sep, value = text.partition("=")
    return (name, value) if sep and name else None


def address_to_master(address: Mapping[str, Any]) -> dict[str, str]:
    """A specification address as master's flat ``type``/``method``/``addr``/``mask``."""
    flat = {"type": address["type"], "method": address["method"]}
    if address["method"] == "static":
        addr, _, prefix = address["addr"].partition("/")
        flat["addr"], flat["mask"] = addr, prefix
    return flat


def address_to_spec(family: str, method: str, addr: str, mask: str) -> dict[str, str]:
    """Master's flat address fields as a specification address (``A/LEN`` for static);
    ``ValueError`` when they do not make an address, as master's ``atoi`` never says."""
    if method != "static":
        return {"type": family, "method": method}
    cidr = f"{addr}/{prefix_length(family, mask)}"
    ipaddress.ip_interface(cidr)
    return {"type": family, "method": "static", "addr": cidr}


def prefix_length(family: str, mask: str) -> int:
    """Master's ``mask`` (a prefix length as digits) as a number; ``ValueError`` if not one."""
    limit = 32 if family == "inet" else 128
    if not (mask.isascii() and mask.isdigit()) or int(mask) > limit:
        raise ValueError(f"mask {mask!r} is not a prefix length 0 to {limit}")
    return int(mask)


def etfs_to_master(path: str) -> str:
    """``blkfront:xvda`` as master's etfs ``path`` (the Xen disk, registered as /dev/xvda)."""
    return path.removeprefix(ETFS_PREFIX)


def etfs_to_spec(disk: str) -> str:
    """Master's etfs ``path`` (a Xen disk name) as the specification's ``blkfront:`` path."""
    return ETFS_PREFIX + disk.removeprefix("/dev/")


def vnd_node(unit: int) -> str:
    """The node master mounts vnd unit ``unit`` through."""
    return f"/dev/vnd{unit}{VND_PARTITION}"


def create_to_spec(cloner: str) -> bool:
    """Master creates the interface whenever ``cloner`` is present, whatever its value."""
    del cloner
    return True


# --- the specification dialect to master's ---------------------------------------------


@dataclass(frozen=True)
class Converted:
    """A runtime config in master's dialect: its members in order, and what to know."""

    members: tuple[Member, ...]
    notes: tuple[str, ...] = ()
    # Per member, the pointer of the specification-dialect part it says.
    sources: tuple[str, ...] = ()

    def as_json(self) -> list[list[Any]]:
        """The members as the plan keeps them: ``[key, value]`` pairs, in order."""
        return [[key, value] for key, value in self.members]


def encode(members: Sequence[Sequence[Any]]) -> str:
    """Master's config text: one object whose keys repeat, compact, no final newline."""
    return "{" + ",".join(f"{_compact(key)}:{_compact(value)}" for key, value in members) + "}"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@dataclass
class _Refusals:
    problems: list[BakeplanError]

    def add(self, pointer: str, message: str) -> None:
        self.problems.append(
            ConflictError(
                f"rumprun master cannot say this: {message}", pointer=pointer, hint=SPEC_HINT
            )
        )

    def text(self, value: Any) -> None:
        """Refuse every string of ``value`` that master would misread, at its pointer."""
        for where, string in strings(value):
            if _NEEDS_ESCAPE.search(string):
                self.add(
                    where,
                    f"the string {string[:40]!r} needs JSON escapes, and master takes a "
                    "string's bytes as they are (its parser does not unescape)",
                )


def to_master(config: Mapping[str, Any], binaries: Sequence[str] = ()) -> Converted:
    """``config`` (the specification dialect) as master reads it, or every part master
    cannot say raised together (exit 3, each at its pointer).

    ``binaries`` are the rumprun-bake inputs in bake order (``--bin``), when known:
    master runs the n-th program entry on the n-th of them.
    """
    refusals = _Refusals([])
    refusals.text(config)
    notes: list[str] = []
    members: list[_Sourced] = []
    for key in config:
        if key not in RUMPRUN_KEYS:
            refusals.add(
                pointer_of([key]),
                f"master knows only the keys {', '.join(KEYS)} and halts the boot on any "
                f"other (no match for key {key!r})",
            )
    members.extend(_programs(config.get("rc"), binaries, refusals, notes))
    for name, value in (config.get("env") or {}).items():
        members.append(("env", env_to_master(name, value), pointer_of(["env", name])))
    members.extend(_netbsd(config.get("netbsd") or {}, refusals))
    members.extend(("blk", entry, where) for entry, where in _disks(config, refusals))
    net = _net(config.get("net") or {}, refusals)
    if net is not None:
        members.append(("net", net, pointer_of(["net", "interfaces", net["if"]])))
    raise_all(refusals.problems)
    return Converted(
        tuple((key, value) for key, value, _ in members),
        tuple(notes),
        tuple(where for _, _, where in members),
    )


def _programs(
    rc: Any, binaries: Sequence[str], refusals: _Refusals, notes: list[str]
) -> Iterator[_Sourced]:
    baked = [baked_name(b) for b in binaries]
    if rc is None:
        if not baked:
            refusals.add(
                "",
                "without rc, the specification runs every baked binary; master runs only "
                "the programs its config lists, and bakeplan does not know the binaries",
            )
            return
        # The specification's default: each baked binary, in bake order, as argv [bin].
        yield "rc_TESTING", [argv_to_master([name]) for name in baked], ""
        return
    entries = []
    for index, entry in enumerate(rc):
        where = pointer_of(["rc", str(index)])
        if entry.get("workdir", "/") != "/":
            refusals.add(f"{where}/workdir", "master starts every program in /")
        if (entry.get("netbsd") or {}).get("sysctl"):
            refusals.add(f"{where}/netbsd", "master has no per-program sysctls")
        name = baked_name(entry["bin"])
        if baked:
            if index >= len(baked):
                refusals.add(
                    where,
                    f"master runs the n-th program entry on the n-th baked binary, and only "
                    f"{len(baked)} are baked (--bin)",
                )
            elif baked[index] != name and name in baked:
                refusals.add(
                    f"{where}/bin",
                    f"master runs the n-th program entry on the n-th baked binary: this entry "
                    f"names {name!r}, but position {index + 1} bakes {baked[index]!r} "
                    "(list rc in bake order, or bake in rc order)",
                )
        elif name in [baked_name(e["bin"]) for e in rc[:index]]:
            refusals.add(
                f"{where}/bin",
                f"master runs each baked binary once, by position; {name!r} is run twice",
            )
        program = argv_to_master(entry.get("argv") or [entry["bin"]])
        if entry.get("runmode"):
            program["runmode"] = entry["runmode"]
        entries.append(program)
    if len(rc) > 1 and not baked:
        order = ", ".join(baked_name(e["bin"]) for e in rc)
        notes.append(
            f"rumprun master runs the baked binaries by position: bake them in this order: "
            f"{order} (give --bin to have it checked)"
        )
    if entries:
        yield "rc_TESTING", entries, "/rc"


def _netbsd(netbsd: Mapping[str, Any], refusals: _Refusals) -> Iterator[_Sourced]:
    for node, value in (netbsd.get("sysctl") or {}).items():
        where = pointer_of(["netbsd", "sysctl", node])
        if node == HOSTNAME_SYSCTL and isinstance(value, str):
            yield "hostname", value, where
        else:
            refusals.add(where, f"master sets no sysctl but the host name ({HOSTNAME_SYSCTL})")


def tmpfs_size(size: str) -> int:
    """A tmpfs ``options.size`` (``1M``, ``512k``) in bytes."""
    match = _SIZE.fullmatch(size)
    if match is None:
        raise ValueError(f"not a tmpfs size: {size!r}")
    return int(match["number"]) * _SIZE_UNITS[match["unit"].lower()]


def _disks(config: Mapping[str, Any], refusals: _Refusals) -> Iterator[tuple[dict[str, str], str]]:
    """Master's ``blk`` entries: devices without a mount first (the specification sets up
    ``blk`` before ``mount``), then one entry per mount, in mount order; each with the
    pointer of the part it says."""
    blk: Mapping[str, Any] = config.get("blk") or {}
    mounts: Mapping[str, Any] = config.get("mount") or {}
    mounted_at: dict[str, str] = {}  # blk name -> its mountpoint
    for mountpoint, mount in mounts.items():
        owner = _blk_of(blk, mount)
        if owner is None:
            continue
        if owner in mounted_at:
            refusals.add(
                pointer_of(["mount", mountpoint]),
                f"master mounts a blk device once; {owner} is mounted at {mounted_at[owner]}",
            )
        else:
            mounted_at[owner] = mountpoint
    # A vnd over a file of a disk this config mounts is set up after that mount: master
    # takes its blk entries in order, so it can (the specification's parser cannot).
    unmounted = [
        (name, _device(name, device, refusals), pointer_of(["blk", name]))
        for name, device in blk.items()
        if name not in mounted_at
    ]
    on_mounts = [e for e in unmounted if _on_a_mount(blk[str(e[0])], mounts)]
    entries: list[tuple[str | None, dict[str, str], str]] = [
        e for e in unmounted if e not in on_mounts
    ]
    for mountpoint in parents_first(list(mounts)):
        mount = mounts[mountpoint]
        source = mount.get("source")
        owner = _blk_of(blk, mount)
        if source == "tmpfs":
            _tmp(mountpoint, mount, refusals)
            continue
        if owner is not None and mounted_at[owner] != mountpoint:
            continue  # refused above
        if source == "kernfs":
            entry = {"source": "dev", "path": KERNFS_PATH, "fstype": "kernfs"}
        elif owner is not None:
            entry = {**_device(owner, blk[owner], refusals), "fstype": "blk"}
        else:
            entry = {"source": "dev", "path": mount["path"], "fstype": "blk"}
        entry["mountpoint"] = mountpoint
        entries.append((owner, entry, pointer_of(["mount", mountpoint])))
    entries.extend(on_mounts)
    _check_vnd_order([name for name, entry, _ in entries if entry["source"] == "vnd"], refusals)
    for _, entry, where in entries:
        yield entry, where


def _on_a_mount(device: Mapping[str, Any], mounts: Mapping[str, Any]) -> bool:
    """Whether a vnd's file lies on a file system the config mounts."""
    return device.get("type") == "vnd" and any(
        under(device.get("path", ""), m)
        for m, mount in mounts.items()
        if mount.get("source") != "tmpfs"
    )


def _blk_of(blk: Mapping[str, Any], mount: Mapping[str, Any]) -> str | None:
    """The blk entry whose device a ``blk`` mount names, if any: etfs registers
    ``/dev/<name>``; a vnd is mounted through a partition of ``/dev/<name>``."""
    if mount.get("source") != "blk":
        return None
    path = mount.get("path", "")
    for name, device in blk.items():
        if path == f"/dev/{name}":
            return name
        if device.get("type") == "vnd" and re.fullmatch(re.escape(f"/dev/{name}") + "[a-p]", path):
            return name
    return None


def _device(name: str, device: Mapping[str, Any], refusals: _Refusals) -> dict[str, str]:
    where = pointer_of(["blk", name])
    if device.get("type") == "vnd":
        return {"source": "vnd", "path": device["path"]}
    disk = etfs_to_master(device["path"])
    if disk != name:
        refusals.add(
            where,
            f"master registers an etfs disk under its Xen name (/dev/{disk}), not as /dev/{name}",
        )
    return {"source": "etfs", "path": disk}


def _tmp(mountpoint: str, mount: Mapping[str, Any], refusals: _Refusals) -> None:
    """Master mounts its own 1 MiB tmpfs on /tmp and no other: that one is already there."""
    where = pointer_of(["mount", mountpoint])
    size = (mount.get("options") or {}).get("size", "1M")
    if mountpoint != TMP_MOUNTPOINT:
        refusals.add(where, f"master mounts a tmpfs only on {TMP_MOUNTPOINT}, by itself")
    elif tmpfs_size(size) != TMP_SIZE:
        refusals.add(
            f"{where}/options/size",
            f"master's own tmpfs on {TMP_MOUNTPOINT} is 1M; it cannot be {size}",
        )


def _check_vnd_order(names: Sequence[str | None], refusals: _Refusals) -> None:
    """Master numbers vnd devices as it sets them up: the n-th must be vnd<n>."""
    for unit, name in enumerate(names):
        if name != f"vnd{unit}":
            refusals.add(
                pointer_of(["blk", str(name)]),
                f"master numbers vnd devices in the order it sets them up, so this one "
                f"would be vnd{unit}, not {name}",
            )


def _net(net: Mapping[str, Any], refusals: _Refusals) -> dict[str, str] | None:
    """The one flat ``net`` master reads, from one interface with one address."""
    if net.get("dns"):
        refusals.add("/net/dns", "master configures no resolver")
    interfaces: Mapping[str, Any] = net.get("interfaces") or {}
    names = list(interfaces)
    for extra in names[1:]:
        refusals.add(
            pointer_of(["net", "interfaces", extra]),
            f"master configures one interface; {names[0]} is already one",
        )
    interface = interfaces[names[0]] if names else {}
    where = pointer_of(["net", "interfaces", names[0]]) if names else "/net"
    addrs = interface.get("addrs") or []
    for index in range(1, len(addrs)):
        refusals.add(f"{where}/addrs/{index}", "master configures one address per config")
    if not addrs:
        if interface.get("create"):
            refusals.add(f"{where}/create", "master creates an interface only to address it")
        _gateways(net, None, refusals)
        return None
    flat: dict[str, str] = {"if": names[0]}
    if interface.get("create"):
        flat["cloner"] = "true"
    flat.update(address_to_master(addrs[0]))
    gateway = _gateways(net, (f"{where}/addrs/0", addrs[0]), refusals)
    if gateway is not None:
        flat["gw"] = gateway
    return flat


def _gateways(
    net: Mapping[str, Any], address: tuple[str, Mapping[str, Any]] | None, refusals: _Refusals
) -> str | None:
    """The one gateway master sets: beside a static address of the same family."""
    found = None
    for index, gateway in enumerate(net.get("gateways") or ()):
        at = pointer_of(["net", "gateways", str(index)])
        if address is None:
            refusals.add(at, "master sets a gateway only beside the address it configures")
        elif found is not None:
            refusals.add(at, "master takes one gateway")
        elif gateway["type"] != address[1]["type"] or address[1]["method"] != "static":
            refusals.add(
                at,
                f"master sets a gateway only beside a static address of its family "
                f"({address[0]} is {address[1]['type']} {address[1]['method']})",
            )
        else:
            found = gateway["addr"]
    return found
