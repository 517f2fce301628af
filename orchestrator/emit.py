"""The bake plan rendered for the program that consumes it (``--emit FORMAT``).

Each emitter reads only the plan, so what it prints is what the plan says:

* ``rumprun-json``: the runtime config as strict compact JSON, the exact bytes of the
  multiboot module (hw) or of xenstore's ``rumprun/cfg`` (Xen), with no final newline;
* ``qemu-append``: the same with every comma doubled, for QEMU's ``-append`` (how master's
  ``rumprun`` launcher passed it);
* ``rumprun-bake-conf``: a rumprun-bake.conf defining ``<base>_bakeplan``: the base config
  with the plan's directives, so that ``rumprun-bake -c FILE <base>_bakeplan OUT IN...``
  links exactly ``bake.libs``;
* ``qemu-args``: a ``qemu-system-x86_64`` command line (kernel, memory, a NIC per net
  device, a drive per block device, the config as the first multiboot module via
  ``-initrd``, as rumprun's configuration specification boots hw);
* ``xl``: a Xen ``xl`` domain config (name, kernel, memory, a ``vif`` per net device, a
  ``disk`` per etfs device at its ``vdev``) with the xenstore step in its comments;
* ``solo5-manifest``: a Solo5 application manifest, with Solo5's name rules checked.

Values only the host knows come from ``--host KEY=VALUE``; the rest stay ``<host:KEY>``
placeholders, each reported on stderr.  Keys: ``kernel`` (the baked image), ``config`` (a
file holding the ``rumprun-json`` output), ``memory`` (MiB), ``name`` (the Xen domain),
``disk.DEV`` (the image behind block device DEV), ``tap.DEV`` (QEMU's tap interface for
net device DEV) and ``bridge.DEV`` (the Xen bridge for net device DEV).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import ConflictError, UsageError, raise_all
from orchestrator.rumprun import CMDLINE_LIMIT, MODULE_LIMIT

BAKEPLAN_SUFFIX = "_bakeplan"
QEMU = "qemu-system-x86_64"
# Solo5's manifest rules (solo5/include/mft_abi.h): names of 1 to 67 alphanumeric
# characters (68 with the NUL), unique, and at most 63 devices.
SOLO5_NAME = re.compile(r"^[A-Za-z0-9]{1,67}$")
SOLO5_MAX_DEVICES = 63
SOLO5_TYPES = {"net": "NET_BASIC", "block": "BLOCK_BASIC"}
_HOST_KEY = re.compile(r"^(kernel|config|memory|name|(disk|tap|bridge)\.[A-Za-z0-9_]+)$")
_UNIT = re.compile(r"^(?P<driver>[a-z]+?)(?P<unit>[0-9]+)$")


@dataclass(frozen=True)
class Emitted:
    """An emitter's text and what the person running it should know (stderr)."""

    text: str
    notes: tuple[str, ...] = ()


def parse_host(values: Iterable[str]) -> dict[str, str]:
    """``--host KEY=VALUE`` options as a mapping; unknown keys are usage errors."""
    host: dict[str, str] = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not _HOST_KEY.match(key):
            raise UsageError(
                f"--host {value!r}: expected KEY=VALUE with KEY one of kernel, config, memory, "
                "name, disk.DEV, tap.DEV, bridge.DEV"
            )
        if key == "memory" and not (setting.isascii() and setting.isdigit() and int(setting) > 0):
            raise UsageError(f"--host memory={setting!r}: a whole number of MiB")
        host[key] = setting
    return host


@dataclass
class _Host:
    """Host values, recording which placeholders were left."""

    values: Mapping[str, str]
    missing: list[str] = field(default_factory=list)

    def get(self, key: str) -> str:
        if key in self.values:
            return self.values[key]
        if key not in self.missing:
            self.missing.append(key)
        return f"<host:{key}>"

    def notes(self) -> list[str]:
        return [
            f"placeholder <host:{key}> left in the output; give --host {key}=..."
            for key in self.missing
        ]


def render(plan: Mapping[str, Any], fmt: str, host: Mapping[str, str]) -> Emitted:
    """The plan in format ``fmt``."""
    emitter = EMITTERS.get(fmt)
    if emitter is None:
        raise UsageError(f"unknown --emit format {fmt!r}; known: plan, {', '.join(EMITTERS)}")
    return emitter(plan, _Host(host))


def runtime_json(plan: Mapping[str, Any]) -> str:
    """The runtime config's exact bytes in the plan's dialect (``runtime.dialect``)."""
    from orchestrator.runtime import text  # noqa: PLC0415

    return text(plan["runtime"])


def _size_note(plan: Mapping[str, Any], size: int, limit: int, how: str) -> list[str]:
    """A warning when rumprun on hw would halt on a config of ``size`` bytes."""
    if plan["bake"]["platform"] != "hw" or size < limit:
        return []
    return [
        f"warning: the runtime config is {size} bytes ({plan['runtime']['dialect']} dialect); "
        f"rumprun on hw halts when the {how} holding it is {limit} bytes or more"
    ]


def _rumprun_json(plan: Mapping[str, Any], host: _Host) -> Emitted:
    del host
    text = runtime_json(plan)
    notes = _size_note(plan, len(text.encode("utf-8")), MODULE_LIMIT, "multiboot module")
    return Emitted(text, tuple(notes))


def _qemu_append(plan: Mapping[str, Any], host: _Host) -> Emitted:
    del host
    text = runtime_json(plan)
    notes = []
    if plan["bake"]["platform"] == "xen":
        notes.append("warning: -append is QEMU's; this plan is for Xen, which reads xenstore")
    notes += _size_note(plan, len(text.encode("utf-8")), CMDLINE_LIMIT, "multiboot command line")
    # QEMU reads ",," in an option value as one comma: every comma is doubled.
    return Emitted(text.replace(",", ",,"), tuple(notes))


def bakeplan_config_name(plan: Mapping[str, Any]) -> str:
    return f"{plan['bake']['config']}{BAKEPLAN_SUFFIX}"


def _rumprun_bake_conf(plan: Mapping[str, Any], host: _Host) -> Emitted:
    del host
    from orchestrator.bake import standard_book  # noqa: PLC0415

    base = plan["bake"]["config"]
    name = bakeplan_config_name(plan)
    lines = [
        f"# rumprun-bake configuration written by bakeplan: {base} with the bake plan's",
        "# directives applied, so that rumprun-bake links exactly the plan's bake.libs:",
        f"#   rumprun-bake -c THIS_FILE {name} OUTPUT INPUT...",
        "",
        "version 20160209",
        "",
        f"conf {name}",
        f'\tcreate\t\t"{base} as planned by bakeplan"',
        f"\tassimilate\t{base}",
    ]
    for directive in plan["bake"]["directives"]:
        lines.append(f"\t{directive['op']}\t\t{' '.join(directive['args'])}\t# {directive['by']}")
    lines += ["fnoc", ""]
    notes = []
    if base not in standard_book().names():
        notes.append(
            f"{base} is not one of rumprun's standard configs: give rumprun-bake the -c file "
            "that defines it before this one"
        )
    return Emitted("\n".join(lines), tuple(notes))


def _units(
    devices: Iterable[Mapping[str, Any]], kind: str
) -> list[tuple[str, int, Mapping[str, Any]]]:
    """Devices of ``kind`` as (driver, unit, device), in unit order: the domain builder
    attaches them in that order and the guest numbers them so."""
    found = []
    for device in devices:
        if device["kind"] != kind:
            continue
        match = _UNIT.match(device["name"])
        if match is None:
            raise ConflictError(
                f"device {device['name']!r} has no unit number, so no attachment order for it",
                pointer=device["pointer"],
            )
        found.append((match["driver"], int(match["unit"]), device))
    return sorted(found, key=lambda item: (item[0], item[1]))


def _needs_platform(plan: Mapping[str, Any], platform: str, fmt: str, other: str) -> None:
    if plan["bake"]["platform"] != platform:
        raise UsageError(
            f"--emit {fmt} is for {platform} plans; bake config {plan['bake']['config']} is "
            f"{plan['bake']['platform']}",
            hint=f"use --emit {other}, or choose a {platform}_ bake config with -b",
        )


def _qemu_value(text: str) -> str:
    """A value inside a QEMU option list, where a comma must be doubled."""
    return text.replace(",", ",,")


_QEMU_NICS = {"vioif": "virtio-net-pci", "wm": "e1000"}


def _qemu_args(plan: Mapping[str, Any], host: _Host) -> Emitted:
    _needs_platform(plan, "hw", "qemu-args", "xl")
    notes: list[str] = []
    argv = [
        QEMU,
        "-kernel",
        host.get("kernel"),
        # The config is the first multiboot module; QEMU separates modules with commas.
        "-initrd",
        _qemu_value(host.get("config")),
        "-m",
        host.get("memory"),
        "-vga",
        "none",
        "-nographic",
    ]
    for driver, _, device in _units(plan["devices"], "net"):
        model = _QEMU_NICS.get(driver)
        if model is None:
            raise ConflictError(
                f"net device {device['name']!r}: QEMU has no NIC for the {driver} driver "
                f"(known: {', '.join(_QEMU_NICS)})",
                pointer=device["pointer"],
            )
        name = device["name"]
        tap = _qemu_value(host.get(f"tap.{name}"))
        argv += [
            "-netdev",
            f"tap,id={name},ifname={tap},script=no,downscript=no",
            "-device",
            f"{model},netdev={name}",
        ]
    argv += _qemu_drives(plan, host, notes)
    return Emitted(shlex.join(argv) + "\n", tuple(notes + host.notes()))


def _qemu_drives(plan: Mapping[str, Any], host: _Host, notes: list[str]) -> list[str]:
    args: list[str] = []
    by_driver: dict[str, dict[int, Mapping[str, Any]]] = {}
    for driver, unit, device in _units(plan["devices"], "block"):
        if driver not in ("ld", "sd", "cd"):
            raise ConflictError(
                f"block device {device['name']!r}: QEMU has no disk for the {driver} driver "
                "(known: ld, sd, cd)",
                pointer=device["pointer"],
            )
        by_driver.setdefault(driver, {})[unit] = device
    ld = by_driver.get("ld", {})
    for unit in range(max(ld) + 1 if ld else 0):
        # The n-th virtio disk becomes ld<n>, so a missing unit still needs a disk.
        if unit not in ld:
            notes.append(
                f"ld{unit} is not in the plan; a disk is attached in its place so that the "
                "later virtio disks keep their numbers"
            )
        image = _qemu_value(host.get(f"disk.ld{unit}"))
        args += ["-drive", f"if=virtio,file={image},format=raw"]
    scsi = [(d, u) for d in ("sd", "cd") for u in sorted(by_driver.get(d, {}))]
    if scsi:
        args += ["-device", "virtio-scsi-pci,id=scsi0"]
    for driver, unit in scsi:
        name = f"{driver}{unit}"
        image = _qemu_value(host.get(f"disk.{name}"))
        kind = "scsi-hd" if driver == "sd" else "scsi-cd"
        args += [
            "-drive",
            f"if=none,id={name},file={image},format=raw",
            "-device",
            f"{kind},drive={name},bus=scsi0.0",
        ]
    return args


def _xl_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _xl(plan: Mapping[str, Any], host: _Host) -> Emitted:
    _needs_platform(plan, "xen", "xl", "qemu-args")
    notes: list[str] = []
    kernel = host.get("kernel")
    if "name" in host.values or "kernel" not in host.values:
        name = host.get("name")
    else:  # as master's rumprun launcher names the domain
        name = "rumprun-" + kernel.rstrip("/").rpartition("/")[2]
    config = host.get("config")
    vifs = []
    for driver, _, device in _units(plan["devices"], "net"):
        if driver != "xenif":
            notes.append(f"net device {device['name']} is not a xenif; attached as a vif anyway")
        vifs.append(f"bridge={host.get('bridge.' + device['name'])}")
    disks = []
    for device in plan["devices"]:
        if device["kind"] != "block":
            continue
        vdev = device.get("vdev")
        if not vdev:
            notes.append(
                f"block device {device['name']} is not an etfs device: Xen attaches no disk for it"
            )
            continue
        image = host.get(f"disk.{device['name']}")
        disks.append(f"format=raw, vdev={vdev}, access=rw, target={image}")
    lines = [
        f"# Xen xl domain config written by bakeplan for bake config {plan['bake']['config']}.",
        "# rumprun on Xen reads its config from xenstore, so the domain starts paused:",
        "#   xl create -p THIS_FILE",
        f'#   xenstore-write "/local/domain/$(xl domid {name})/rumprun/cfg" "$(cat {config})"',
        f"#   xl unpause {name}",
        f"# where {config} holds: bakeplan plan ... --emit rumprun-json "
        f"(the {plan['runtime']['dialect']} dialect)",
        f"name = {_xl_string(name)}",
        f"kernel = {_xl_string(kernel)}",
        "memory = "
        + (host.values["memory"] if "memory" in host.values else _xl_string(host.get("memory"))),
        "vcpus = 1",
        'on_poweroff = "preserve"',
        'on_crash = "preserve"',
    ]
    if vifs:
        lines.append("vif = [ " + ", ".join(_xl_list_item(v) for v in vifs) + " ]")
    if disks:
        lines.append("disk = [ " + ", ".join(_xl_list_item(d) for d in disks) + " ]")
    return Emitted("\n".join(lines) + "\n", tuple(notes + host.notes()))


def _xl_list_item(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """Every way ``manifest`` breaks Solo5's rules (type, version, names, device count)."""
    problems = []
    if manifest.get("type") != "solo5.manifest" or manifest.get("version") != 1:
        problems.append('a manifest has "type": "solo5.manifest" and "version": 1')
    devices = manifest.get("devices")
    if not isinstance(devices, list):
        return [*problems, "devices must be a list"]
    if len(devices) > SOLO5_MAX_DEVICES:
        problems.append(f"{len(devices)} devices; Solo5 takes at most {SOLO5_MAX_DEVICES}")
    seen: set[str] = set()
    for index, device in enumerate(devices):
        name = device.get("name") if isinstance(device, dict) else None
        if not isinstance(name, str) or not SOLO5_NAME.match(name):
            problems.append(f"devices[{index}]: name {name!r} must be 1 to 67 letters and digits")
        elif name in seen:
            problems.append(f"devices[{index}]: name {name!r} is used twice")
        else:
            seen.add(name)
        kind = device.get("type") if isinstance(device, dict) else None
        if kind not in SOLO5_TYPES.values():
            problems.append(f"devices[{index}]: type {kind!r} is not one of Solo5's")
    return problems


def _solo5_manifest(plan: Mapping[str, Any], host: _Host) -> Emitted:
    del host
    entries = []
    problems: list[ConflictError] = []
    for device in plan["devices"]:
        kind = SOLO5_TYPES.get(device["kind"])
        if kind is None:
            problems.append(
                ConflictError(
                    f"device {device['name']!r} is of kind {device['kind']!r}; Solo5 knows "
                    "net and block devices only",
                    pointer=device["pointer"],
                )
            )
            continue
        entries.append({"name": device["name"], "type": kind})
    manifest = {"type": "solo5.manifest", "version": 1, "devices": entries}
    for problem in manifest_problems(manifest):
        pointer = None
        index = re.match(r"devices\[(\d+)\]", problem)
        if index is not None:
            name = entries[int(index.group(1))]["name"]
            pointer = next(d["pointer"] for d in plan["devices"] if d["name"] == name)
        problems.append(ConflictError(f"Solo5 manifest: {problem}", pointer=pointer))
    raise_all(problems)
    return Emitted(json.dumps(manifest, indent=4) + "\n")


EMITTERS: dict[str, Callable[[Mapping[str, Any], _Host], Emitted]] = {
    "rumprun-json": _rumprun_json,
    "qemu-append": _qemu_append,
    "rumprun-bake-conf": _rumprun_bake_conf,
    "qemu-args": _qemu_args,
    "xl": _xl,
    "solo5-manifest": _solo5_manifest,
}
