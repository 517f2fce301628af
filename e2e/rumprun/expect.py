"""What the probe must see, said from the plan alone, and the difference from what it saw.

``from_plan`` reads ``runtime.config`` in the plan's own dialect, as the rumprun that
reads it would (``e2e/README.md`` lists the rules and where each was measured):

- ``spec``: the specification-dialect object. Programs are ``rc`` in order (or every
  baked binary, argv ``[name]``, without ``rc``), each on the binary baked under its
  ``bin``; ``workdir`` and per-program sysctls apply to that program; only the mounts
  the config names exist (no implicit ``/tmp``).
- ``master``: ``[key, value]`` pairs in order, keys repeating. ``rc_TESTING[n]`` runs
  on the n-th baked binary whatever its ``bin`` says, with argv ``[bin] + argv``;
  ``cmdline`` gives every baked binary the same argv; ``blk`` entries are set up in
  order (so a ``vnd`` file may lie on an earlier entry's mount) and a vnd unit is
  mounted through ``/dev/vnd<n>d``; a 1M tmpfs is always on ``/tmp``.

Both set ``PTHREAD_STACKSIZE=256`` in every environment and name the host ``rumprun``
unless the config names it.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rumprun.disks import Image
from rumprun.net import DhcpPool
from rumprun.report import ProgramReport

RUMPRUN_ENV = {"PTHREAD_STACKSIZE": "256"}
DEFAULT_HOSTNAME = "rumprun"
DEFAULT_TMPFS = "1M"  # the specification's default tmpfs size, and master's /tmp
MASTER_TMP = "/tmp"  # noqa: S108 (a path in the guest, where master mounts a tmpfs)
MASTER_KEYS = frozenset({"cmdline", "rc_TESTING", "env", "hostname", "blk", "net"})
_DEVICE = re.compile(r"/dev/((?:ld|sd|vnd)\d+)[a-p]?")
_SIZE = re.compile(r"(?i)(\d+)([bkmgt]?)")
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
Scalar = str | int | bool


class ExpectationError(AssertionError):
    """The plan asks for something the harness cannot check, or rumprun cannot do."""


@dataclass(frozen=True)
class Addr:
    interface: str
    family: str
    addr: str
    prefixlen: int

    def __str__(self) -> str:
        return f"{self.interface} {self.family} {self.addr}/{self.prefixlen}"


@dataclass
class Program:
    """One program rumprun must start, and what is its own."""

    image: str  # the name of the baked binary rumprun must run
    argv: list[str]
    cwd: str = "/"
    sysctls: dict[str, Scalar] = field(default_factory=dict)


@dataclass
class Machine:
    """What every program of the image must see, and the programs."""

    programs: list[Program] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=lambda: dict(RUMPRUN_ENV))
    hostname: str = DEFAULT_HOSTNAME
    mounts: dict[str, str] = field(default_factory=dict)  # mountpoint -> fstype
    files: dict[str, str] = field(default_factory=dict)  # mountpoint -> probe file text
    tmpfs: dict[str, int] = field(default_factory=dict)  # mountpoint -> size in bytes
    addrs: set[Addr] = field(default_factory=set)  # static addresses
    dhcp: dict[str, DhcpPool] = field(default_factory=dict)  # interface -> its pool
    gateways: dict[str, str] = field(default_factory=dict)  # family -> default gateway
    resolv: list[str] = field(default_factory=list)  # the lines rumprun writes first
    sysctls: dict[str, Scalar] = field(default_factory=dict)
    forbid_families: frozenset[str] = frozenset()
    # Block-device mounts set up so far, for a vnd file that lies on one.
    _blk_mounts: dict[str, Image] = field(default_factory=dict)

    def mount_image(self, mountpoint: str, image: Image) -> None:
        self.mounts[mountpoint] = image.fstype
        self.files[mountpoint] = image.content()
        self._blk_mounts[mountpoint] = image

    def mount_kernfs(self, mountpoint: str) -> None:
        self.mounts[mountpoint] = "kernfs"
        self.files[mountpoint] = self.hostname + "\n"  # kernfs's hostname file

    def mount_tmpfs(self, mountpoint: str, size: str) -> None:
        self.mounts[mountpoint] = "tmpfs"
        self.tmpfs[mountpoint] = size_bytes(size)

    def file_image(self, path: str, what: str) -> Image:
        """The image that the guest file ``path`` is, through the mounts so far."""
        for mountpoint in sorted(self._blk_mounts, key=len, reverse=True):
            prefix = mountpoint.rstrip("/") + "/"
            if path.startswith(prefix):
                found = self._blk_mounts[mountpoint].find(path[len(prefix) :])
                if found is not None:
                    return found
        raise ExpectationError(
            f"{what}: {path} is no image the harness made on a disk mounted before it "
            f"(mounted so far: {sorted(self._blk_mounts) or 'none'})"
        )


def size_bytes(text: str) -> int:
    """A tmpfs size as rumprun's dehumanize_number reads it: 512k, 1M, 1G."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ExpectationError(f"tmpfs size {text!r} is not a number with k, M, G or T")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _device(path: str, disks: Mapping[str, Image], vnds: Mapping[str, Image]) -> Image:
    match = _DEVICE.fullmatch(path)
    name = match.group(1) if match else ""
    if name in disks:
        return disks[name]
    if name in vnds:
        return vnds[name]
    raise ExpectationError(
        f"mount of {path}: no disk the plan attaches and no vnd device it sets up "
        f"(disks: {sorted(disks) or 'none'}, vnd: {sorted(vnds) or 'none'})"
    )


def from_spec(
    config: Mapping[str, Any],
    *,
    bins: Sequence[str],
    disks: Mapping[str, Image],
    pools: Mapping[str, DhcpPool],
) -> Machine:
    """What rumprun-spec makes of a specification-dialect config."""
    machine = Machine()
    sysctl = dict(config.get("netbsd", {}).get("sysctl", {}))
    machine.hostname = str(sysctl.pop("kern.hostname", DEFAULT_HOSTNAME))
    machine.sysctls = sysctl
    machine.env.update(config.get("env", {}))
    rc = config.get("rc")
    if rc is None:
        machine.programs = [Program(name, [name]) for name in bins]
    for entry in rc or []:
        _no_pipe(entry)
        own = entry.get("netbsd", {}).get("sysctl", {})
        machine.programs.append(
            Program(
                image=entry["bin"],
                argv=list(entry.get("argv") or [entry["bin"]]),
                cwd=entry.get("workdir", "/"),
                sysctls={f"proc.curproc.{k}": v for k, v in own.items()},
            )
        )
    _spec_storage(machine, config, disks)
    _spec_net(machine, config.get("net", {}), pools)
    return machine


def _no_pipe(entry: Mapping[str, Any]) -> None:
    if entry.get("runmode") == "|":
        raise ExpectationError("a piped rc entry writes its report into a pipe, not the console")


def _spec_storage(machine: Machine, config: Mapping[str, Any], disks: Mapping[str, Image]) -> None:
    # rumprun-spec sets up blk before mount: a vnd file must be on no mount at all.
    vnds: dict[str, Image] = {}
    for name, spec in config.get("blk", {}).items():
        if spec.get("type") != "vnd":
            raise ExpectationError(f"blk {name}: type {spec.get('type')!r} is not for hw")
        vnds[name] = machine.file_image(spec["path"], f"blk {name}")
    for mountpoint, spec in config.get("mount", {}).items():
        source = spec["source"]
        if source == "tmpfs":
            machine.mount_tmpfs(mountpoint, spec.get("options", {}).get("size", DEFAULT_TMPFS))
        elif source == "kernfs":
            machine.mount_kernfs(mountpoint)
        else:
            machine.mount_image(mountpoint, _device(spec["path"], disks, vnds))


def _spec_net(machine: Machine, net: Mapping[str, Any], pools: Mapping[str, DhcpPool]) -> None:
    for interface, spec in net.get("interfaces", {}).items():
        for addr in spec.get("addrs", []):
            _address(
                machine,
                interface,
                family=addr["type"],
                method=addr.get("method"),
                cidr=addr.get("addr"),
                pools=pools,
            )
    for gateway in net.get("gateways", []):
        machine.gateways[gateway["type"]] = gateway["addr"]
    dns = net.get("dns", {})
    machine.resolv = [f"nameserver {ns}" for ns in dns.get("nameservers", [])]
    if dns.get("search"):
        machine.resolv.append("search " + " ".join(dns["search"]))


def _address(
    machine: Machine,
    interface: str,
    *,
    family: str,
    method: str | None,
    cidr: str | None,
    pools: Mapping[str, DhcpPool],
) -> None:
    if method == "static" and cidr:
        net = ipaddress.ip_interface(cidr)
        machine.addrs.add(Addr(interface, family, str(net.ip), net.network.prefixlen))
    elif method == "dhcp" and family == "inet":
        if interface not in pools:
            raise ExpectationError(
                f"{interface} is configured by DHCP, but the plan attaches no NIC for it"
            )
        machine.dhcp[interface] = pools[interface]
    else:
        raise ExpectationError(
            f"{interface}: a {family} address by {method!r} is none the probe could check "
            "on an isolated tap"
        )


def from_master(
    pairs: Sequence[Sequence[Any]],
    *,
    bins: Sequence[str],
    disks: Mapping[str, Image],
    pools: Mapping[str, DhcpPool],
) -> Machine:
    """What released rumprun makes of its config, read key after key."""
    machine = Machine()
    machine.mount_tmpfs(MASTER_TMP, DEFAULT_TMPFS)  # mounted before the config is read
    by_key: dict[str, list[Any]] = {}
    for key, value in pairs:
        if key not in MASTER_KEYS:
            raise ExpectationError(f'master halts at boot on key {key!r}: no match for key "{key}"')
        by_key.setdefault(key, []).append(value)
    for assignment in by_key.get("env", []):
        name, _, value = assignment.partition("=")
        machine.env[name] = value
    for hostname in by_key.get("hostname", []):
        machine.hostname = hostname
    machine.programs = _master_programs(by_key, bins)
    _master_blk(machine, by_key.get("blk", []), disks)
    nets = by_key.get("net", [])
    if len(nets) > 1:
        raise ExpectationError("master configures one net entry; the plan gives several")
    for net in nets:
        cidr = f"{net.get('addr')}/{net.get('mask')}" if net["method"] == "static" else None
        _address(
            machine, net["if"], family=net["type"], method=net["method"], cidr=cidr, pools=pools
        )
        if "gw" in net:
            machine.gateways[net["type"]] = net["gw"]
    return machine


def _master_programs(by_key: Mapping[str, list[Any]], bins: Sequence[str]) -> list[Program]:
    if "rc_TESTING" in by_key:
        entries = [e for rc in by_key["rc_TESTING"] for e in rc]
        for entry in entries:
            _no_pipe(entry)
        # The n-th entry runs on the n-th baked binary; master stops at the shorter list.
        return [Program(b, [e["bin"], *e["argv"]]) for b, e in zip(bins, entries, strict=False)]
    if "cmdline" in by_key:
        # Every baked binary runs with the one command line.
        return [Program(b, shlex.split(by_key["cmdline"][-1])) for b in bins]
    raise ExpectationError("master starts nothing without rc_TESTING or cmdline: no bins")


def _master_blk(
    machine: Machine, blks: Sequence[Mapping[str, str]], disks: Mapping[str, Image]
) -> None:
    # Set up in order: a vnd's file may lie on the mount of an earlier entry.
    vnds: dict[str, Image] = {}
    for entry in blks:
        source, path = entry["source"], entry["path"]
        if source == "vnd":
            name = f"vnd{len(vnds)}"  # master numbers vnd units as it sets them up
            vnds[name] = machine.file_image(path, f"blk vnd {path}")
            path = f"/dev/{name}d"
        elif source != "dev":
            raise ExpectationError(f"blk source {source!r} is not for hw")
        mountpoint = entry.get("mountpoint")
        if mountpoint is None:
            continue
        if entry.get("fstype") == "kernfs":
            machine.mount_kernfs(mountpoint)
        else:
            machine.mount_image(mountpoint, _device(path, disks, vnds))


def from_plan(
    plan: Mapping[str, Any],
    *,
    bins: Sequence[str],
    disks: Mapping[str, Image],
    pools: Mapping[str, DhcpPool],
) -> Machine:
    runtime = plan["runtime"]
    dialect = runtime.get("dialect")
    if dialect == "spec":
        return from_spec(runtime["config"], bins=bins, disks=disks, pools=pools)
    if dialect == "master":
        return from_master(runtime["config"], bins=bins, disks=disks, pools=pools)
    raise ExpectationError(f"the plan's runtime.dialect is {dialect!r}")


# -- comparison -------------------------------------------------------------------------


def _pair(
    programs: Sequence[Program], reports: Sequence[ProgramReport]
) -> list[tuple[Program, ProgramReport | None]]:
    """Each program with its report: the first unused one from the same binary, since
    a background program's report may come after the next one's."""
    unused = list(reports)
    pairs: list[tuple[Program, ProgramReport | None]] = []
    for program in programs:
        found = next((r for r in unused if r.image == program.image), None)
        if found is None and unused:
            found = unused[0]
        if found is not None:
            unused.remove(found)
        pairs.append((program, found))
    return pairs


def _norm(value: object) -> object:
    """A sysctl value as a number where it is one: the probe reports bool nodes as
    true/false and the config may write 1, or a number as a string."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


class _Diff:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def same(self, where: str, plan: object, saw: object) -> None:
        if plan != saw:
            self.lines.append(f"{where}: plan says {plan!r}, probe saw {saw!r}")

    def same_map(self, where: str, plan: Mapping[str, object], saw: object) -> None:
        """Key by key, so that one wrong variable in a long environment reads as one."""
        if not isinstance(saw, Mapping):
            self.same(where, dict(plan), saw)
            return
        for key in sorted(plan.keys() | saw.keys()):
            if key not in saw:
                self.add(f"{where} {key}: plan says {plan[key]!r}, probe saw it unset")
            elif key not in plan:
                self.add(f"{where} {key}: plan says nothing of it, probe saw {saw[key]!r}")
            else:
                self.same(f"{where} {key}", plan[key], saw[key])

    def add(self, line: str) -> None:
        self.lines.append(line)


def _seen(report: ProgramReport, fact: str) -> object:
    error = report.error(fact)
    return f"error: {error}" if error else report.value(fact)


def _addresses(report: ProgramReport) -> list[Addr]:
    found = []
    for entry in report.value("ifaddrs") or []:
        if entry.get("family") not in ("inet", "inet6"):
            continue
        found.append(Addr(entry["name"], entry["family"], entry["addr"], entry["prefixlen"]))
    return found


def _configured(addr: Addr) -> bool:
    """An address the config gave, not the loopback's or a link-local one."""
    ip = ipaddress.ip_address(addr.addr)
    return not (addr.interface.startswith("lo") or ip.is_link_local or ip.is_loopback)


def _compare_program(
    diff: _Diff, label: str, machine: Machine, want: Program, got: ProgramReport
) -> None:
    if not got.complete:
        diff.add(f"{label}: the report stops after {got.last!r} (see the console)")
    diff.same(f"{label} baked binary run", want.image, got.image)
    diff.same(f"{label} argv", want.argv, _seen(got, "argv"))
    diff.same(f"{label} cwd", want.cwd, _seen(got, "cwd"))
    diff.same_map(f"{label} environment", machine.env, _seen(got, "env"))
    diff.same(f"{label} host name", machine.hostname, _seen(got, "hostname"))
    _compare_storage(diff, label, machine, got)
    _compare_net(diff, label, machine, got)
    _compare_sysctls(diff, label, machine, want, got)


def _compare_storage(diff: _Diff, label: str, machine: Machine, got: ProgramReport) -> None:
    mounts = got.value("mounts")
    if mounts is None:
        diff.add(f"{label} mounts: probe saw {_seen(got, 'mounts')!r}")
        return
    seen = {m["mountpoint"]: m["fstype"] for m in mounts if m["mountpoint"] != "/"}
    for mountpoint in sorted(machine.mounts.keys() | seen.keys()):
        plan_fs = machine.mounts.get(mountpoint, "nothing mounted")
        saw_fs = seen.get(mountpoint, "nothing mounted")
        if plan_fs != saw_fs:
            diff.add(f"{label} mount {mountpoint}: plan says {plan_fs}, probe saw {saw_fs}")
    for mountpoint, text in machine.files.items():
        fact = got.files.get(mountpoint, {})
        saw = fact.get("content", f"error: {fact['error']}" if "error" in fact else "no file")
        diff.same(f"{label} file read from {mountpoint}", text, saw)
    for mountpoint, size in machine.tmpfs.items():
        fact = got.tmpfs.get(mountpoint, {})
        diff.same(f"{label} tmpfs {mountpoint} size", size, fact.get("size"))
        diff.same(f"{label} tmpfs {mountpoint} writable", True, fact.get("writable"))


def _compare_net(diff: _Diff, label: str, machine: Machine, got: ProgramReport) -> None:
    addrs = _addresses(got)
    configured = {a for a in addrs if _configured(a)}
    for interface, pool in machine.dhcp.items():
        leased = {
            a
            for a in configured
            if a.interface == interface and a.family == "inet" and pool.holds(a.addr, a.prefixlen)
        }
        if len(leased) != 1:
            diff.add(
                f"{label} {interface}: plan says one DHCP lease from {pool.network}, "
                f"probe saw {sorted(map(str, leased)) or 'none'}"
            )
        configured -= leased
    for addr in sorted(machine.addrs - configured, key=str):
        diff.add(f"{label} address: plan says {addr}, probe saw none such")
    for addr in sorted(configured - machine.addrs, key=str):
        diff.add(f"{label} address: plan says nothing of {addr}, probe saw it")
    for addr in addrs:
        if addr.family in machine.forbid_families:
            diff.add(f"{label} address: the case forbids any {addr.family} one, probe saw {addr}")
    defaults = {
        r["family"]: r["gateway"]
        for r in got.value("routes") or []
        if r["prefixlen"] == 0 and ipaddress.ip_address(r["dst"]).is_unspecified
    }
    diff.same_map(f"{label} default gateway", machine.gateways, defaults)
    if machine.resolv:
        fact = got.facts.get("resolv", {})
        lines = str(fact.get("content", "")).splitlines()[: len(machine.resolv)]
        diff.same(f"{label} /etc/resolv.conf begins", machine.resolv, lines or fact.get("error"))


def _compare_sysctls(
    diff: _Diff, label: str, machine: Machine, want: Program, got: ProgramReport
) -> None:
    wanted = {**machine.sysctls, **want.sysctls}
    for name, fact in got.sysctls.items():
        if name in wanted:
            saw = fact.get("value", f"error: {fact.get('error')}")
            if _norm(wanted[name]) != _norm(saw):
                diff.add(f"{label} sysctl {name}: plan says {wanted[name]!r}, probe saw {saw!r}")
    for name in sorted(want.sysctls.keys() - got.sysctls.keys()):
        diff.add(f"{label} sysctl {name}: set for this program, whose argv lacks --sysctl={name}")


def compare(machine: Machine, reports: Sequence[ProgramReport]) -> list[str]:
    """Every difference between what the plan says and what the probe saw, one a line."""
    diff = _Diff()
    if len(reports) != len(machine.programs):
        diff.add(
            f"programs: plan says {len(machine.programs)} "
            f"({', '.join(p.image for p in machine.programs) or 'none'}), probe reported "
            f"{len(reports)} ({', '.join(r.describe() for r in reports) or 'none'})"
        )
    for number, (want, got) in enumerate(_pair(machine.programs, reports), 1):
        label = f"program {number} ({want.image})"
        if got is None:
            diff.add(f"{label}: no report: rumprun did not run it, or it failed at once")
            continue
        _compare_program(diff, label, machine, want, got)
    asked = {name for r in reports for name in r.sysctls}
    for name in sorted(machine.sysctls.keys() - asked):
        diff.add(f"sysctl {name}: the plan sets it, but no program's argv has --sysctl={name}")
    return diff.lines
