"""The bake plan rendered for the program that consumes it (``--emit FORMAT``).

Each emitter reads only the plan (its typed parts, ``planmodel.Plan``), so what it prints
is what the plan says:

* ``rumprun-json``: the runtime config as strict compact JSON, the exact bytes of the
  multiboot module (hw) or of xenstore's ``rumprun/cfg`` (Xen), with no final newline;
* ``qemu-append``: the same bytes, for QEMU's ``-append`` (the kernel command line, which
  rumprun reads when no multiboot module is given), checked against the command line's
  own limit; QEMU passes it as it is, commas included
* ``rumprun-bake-conf``: a rumprun-bake.conf defining ``<base>_bakeplan``: the base config
  with the plan's directives, so that ``rumprun-bake -c FILE <base>_bakeplan OUT IN...``
  links exactly ``bake.libs``;
* ``qemu-args``: a ``qemu-system-x86_64`` command line (kernel, memory, a NIC per net
  device, a drive per block device, the config as the first multiboot module via
  ``-initrd``, as rumprun's configuration specification boots hw, and the toolchains'
  boot arguments via ``-append`` for a Solo5 virtio kernel);
* ``xl``: a Xen ``xl`` domain config (name, kernel, memory, a ``vif`` per net device, a
  ``disk`` per etfs device at its ``vdev``) with the xenstore step in its comments;
* ``solo5-manifest``: a Solo5 application manifest, with Solo5's name rules checked;
* ``solo5-hvt`` and ``solo5-spt``: the Solo5 tender's command line, a device option per
  manifest entry and, after the kernel, the unikernel's boot arguments from the plan's
  toolchains.

Every emitter that attaches devices attaches them in one order (``attachment_order``):
Solo5's virtio target pairs the n-th manifest entry with the n-th virtio PCI device,
whatever its kind, and rumprun numbers its virtio NICs and disks in the order they come,
so the manifest and the QEMU line must agree on it.

Values only the host knows come from ``--host KEY=VALUE``; the rest stay ``<host:KEY>``
placeholders, each reported on stderr.  Keys: ``kernel`` (the baked image), ``config`` (a
file holding the ``rumprun-json`` output), ``memory`` (MiB), ``name`` (the Xen domain),
``disk.DEV`` (the image behind block device DEV), ``tap.DEV`` (the tap interface of net
device DEV) and ``bridge.DEV`` (the Xen bridge for net device DEV).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.planmodel import Device, Plan
from orchestrator.emit import FORMATS
from orchestrator.errors import BakeplanError, ConflictError, UsageError, raise_all
from orchestrator.rumprun.layer import CMDLINE_LIMIT, MODULE_LIMIT

BAKEPLAN_SUFFIX = "_bakeplan"
QEMU = "qemu-system-x86_64"
# Solo5's manifest rules (solo5/include/mft_abi.h): names of 1 to 67 alphanumeric
# characters (68 with the NUL), unique, and at most 63 devices.  Every pattern here is
# used with fullmatch: "$" also matches before a final newline, which elftool refuses.
SOLO5_NAME = re.compile(r"[A-Za-z0-9]{1,67}")
SOLO5_MAX_DEVICES = 63
SOLO5_TYPES = {"net": "NET_BASIC", "block": "BLOCK_BASIC"}
_HOST_KEY = re.compile(r"kernel|config|memory|name|(disk|tap|bridge)\.[A-Za-z0-9][A-Za-z0-9_.-]*")
# A device name as a driver and its unit; "ld00" has no unit, so it cannot pose as ld0.
_UNIT = re.compile(r"(?P<driver>[a-z]+)(?P<unit>0|[1-9][0-9]*)")


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
        if not sep or not _HOST_KEY.fullmatch(key):
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


# What renders a plan in one format, given the host's values.
Emitter = Callable[[Plan, _Host], Emitted]


def render(plan: Plan, fmt: str, host: Mapping[str, str]) -> Emitted:
    """The plan in format ``fmt``."""
    emitter = EMITTERS.get(fmt)
    if emitter is None:
        raise UsageError(f"unknown --emit format {fmt!r}; known: {', '.join(FORMATS)}")
    return emitter(plan, _Host(host))


def _size_note(plan: Plan, size: int, limit: int, how: str) -> list[str]:
    """A warning when rumprun on hw would halt on a config of ``size`` bytes."""
    if plan.bake.platform != "hw" or size < limit:
        return []
    return [
        f"warning: the runtime config is {size} bytes ({plan.runtime.dialect} dialect); "
        f"rumprun on hw halts when the {how} holding it is {limit} bytes or more"
    ]


def _rumprun_json(plan: Plan, host: _Host) -> Emitted:
    del host
    text = plan.runtime.text()
    notes = _size_note(plan, len(text.encode("utf-8")), MODULE_LIMIT, "multiboot module")
    return Emitted(text, tuple(notes))


def _qemu_append(plan: Plan, host: _Host) -> Emitted:
    del host
    text = plan.runtime.text()
    notes = []
    if plan.bake.platform == "xen":
        notes.append("warning: -append is QEMU's; this plan is for Xen, which reads xenstore")
    notes += _size_note(plan, len(text.encode("utf-8")), CMDLINE_LIMIT, "multiboot command line")
    # QEMU hands -append to the kernel as it is (QEMU 7.2, seen by booting): a comma is
    # not doubled.  rumprun's old launcher doubled them, which its parser tolerates.
    return Emitted(text, tuple(notes))


def bakeplan_config_name(plan: Plan) -> str:
    return f"{plan.bake.config}{BAKEPLAN_SUFFIX}"


def _rumprun_bake_conf(plan: Plan, host: _Host) -> Emitted:
    del host
    from orchestrator.rumprun.bake import standard_book  # noqa: PLC0415

    base = plan.bake.config
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
    for directive in plan.bake.directives:
        lines.append(f"\t{directive.op}\t\t{' '.join(directive.args)}\t# {directive.by}")
    lines += ["fnoc", ""]
    notes = []
    if base not in standard_book().names():
        notes.append(
            f"{base} is not one of rumprun's standard configs: give rumprun-bake the -c file "
            "that defines it before this one"
        )
    return Emitted("\n".join(lines), tuple(notes))


def _units(devices: Iterable[Device], kind: str) -> list[tuple[str, int, Device]]:
    """Devices of ``kind`` as (driver, unit, device), in unit order: the domain builder
    attaches them in that order and the guest numbers them so."""
    found = []
    for device in devices:
        if device.kind != kind:
            continue
        match = _UNIT.fullmatch(device.name)
        if match is None:
            raise ConflictError(
                f"device {device.name!r} has no unit number, so no attachment order for it",
                pointer=device.pointer,
            )
        found.append((match["driver"], int(match["unit"]), device))
    return sorted(found, key=lambda item: (item[0], item[1]))


def _needs_platform(plan: Plan, platform: str, fmt: str, other: str) -> None:
    if plan.bake.platform != platform:
        raise UsageError(
            f"--emit {fmt} is for {platform} plans; bake config {plan.bake.config} is "
            f"{plan.bake.platform}",
            hint=f"use --emit {other}, or choose a {platform}_ bake config with -b",
        )


def _qemu_value(text: str) -> str:
    """A value inside a QEMU option list, where a comma must be doubled."""
    return text.replace(",", ",,")


# QEMU names its own drives and network backends (the default SD card drive is "sd0", the
# CD-ROM "ide1-cd0", if=virtio drives "virtio0"...) and refuses a second use of an id, so
# ours carry a prefix QEMU never gives: "-drive if=none,id=sd0" clashes, this cannot.
QEMU_ID_PREFIX = "bakeplan-"
_QEMU_NICS = {"vioif": "virtio-net-pci", "wm": "e1000"}
_QEMU_DISKS = {"ld": "virtio-blk-pci", "sd": "scsi-hd", "cd": "scsi-cd"}
# Drivers whose guest numbers its devices by the order they are attached (rumprun's ld<n>
# is the n-th virtio disk QEMU attaches, vioif<n> the n-th virtio NIC): a unit missing from
# the plan still needs a device in its place, or every later one takes the wrong number.
_NUMBERED = {"vioif": "net", "wm": "net", "ld": "block"}
# Nets before disks, and within a kind the virtio drivers first, then the others: QEMU
# puts each -device on the next free PCI slot, so this is also the PCI order.
_KINDS = ("net", "block")
_DRIVERS = ("vioif", "wm", "ld", "sd", "cd")
# Solo5's virtio bindings drive virtio-net and virtio-blk only; QEMU attaches these
# drivers' devices as something else, which the bindings skip without counting.
_SOLO5_UNDRIVEN = {
    "sd": "a SCSI disk, attached on virtio-scsi, which Solo5's virtio target has no driver for",
    "cd": "a SCSI CD-ROM, attached on virtio-scsi, which Solo5's virtio target has no driver for",
    "wm": "an e1000 NIC, which Solo5's virtio target has no driver for",
}
# The tenders copy the words after the kernel into a buffer of 8192 bytes with its NUL
# (SPT_CMDLINE_SIZE, HVT_CMDLINE_SIZE); the virtio bindings keep as much of theirs.
SOLO5_CMDLINE_LIMIT = 8191
# What C's isspace() takes for white space: where sscanf's %s and Solo5 split words.
_C_SPACE = frozenset(" \t\n\v\f\r")
# The tenders read --block:NAME=PATH into a PATH_MAX buffer and open() it; --net:NAME=TAP
# into 19 characters, then refuse a name of IFNAMSIZ (16) or more unless it is @FD.
_PATH_MAX = 4096
_IFNAMSIZ = 16
_TAP_FD = re.compile(r"@[0-9]+")


@dataclass(frozen=True)
class Slot:
    """One device in the order every domain builder attaches them.

    ``device`` is the plan's device; ``None`` for a filler, a device the plan does not
    have that takes a missing unit's place so that the later units keep their numbers.
    """

    name: str
    kind: str
    driver: str | None
    unit: int | None
    device: Device | None

    @property
    def pointer(self) -> str | None:
        return None if self.device is None else self.device.pointer


def attachment_order(plan: Plan) -> list[Slot]:
    """The plan's net and block devices in the one order the QEMU line attaches them and
    the Solo5 manifest declares them, fillers included.

    Nets come first, then disks; within a kind, devices named driver and unit (``ld0``)
    by driver, virtio first, then by unit, a filler for each unit a numbered driver
    misses; last, devices without a unit number, in plan order.
    """
    slots: list[Slot] = []
    for kind in _KINDS:
        numbered: dict[str, dict[int, Device]] = {}
        others: list[Slot] = []
        for device in plan.devices:
            if device.kind != kind:
                continue
            match = _UNIT.fullmatch(device.name)
            if match is None:
                others.append(Slot(device.name, kind, None, None, device))
            else:
                numbered.setdefault(match["driver"], {})[int(match["unit"])] = device
        for driver in sorted(numbered, key=_driver_rank):
            units = numbered[driver]
            every = range(max(units) + 1) if _NUMBERED.get(driver) == kind else sorted(units)
            for unit in every:
                slots.append(Slot(f"{driver}{unit}", kind, driver, unit, units.get(unit)))
        slots += others
    return slots


def _driver_rank(driver: str) -> tuple[int, str]:
    return (_DRIVERS.index(driver) if driver in _DRIVERS else len(_DRIVERS), driver)


def _filler_notes(slots: Iterable[Slot], what: str) -> list[str]:
    return [
        f"{slot.name} is not in the plan; {what} in its place so that the later "
        f"{'NICs' if slot.kind == 'net' else 'disks'} keep their numbers"
        for slot in slots
        if slot.device is None
    ]


def _boot_words(plan: Plan, fmt: str) -> tuple[list[str], list[BakeplanError]]:
    """The unikernel's boot arguments (every toolchain's ``boot``, in plan order), and
    why a Solo5 command line cannot carry some of them."""
    words: list[str] = []
    problems: list[BakeplanError] = []
    for toolchain in plan.toolchains:
        for index, word in enumerate(plan.arguments(toolchain, "boot")):
            where = f"toolchains.{toolchain}.boot[{index}]"
            if not word:
                problems.append(
                    ConflictError(
                        f"--emit {fmt}: {where} is empty, and the unikernel's command line "
                        "is words joined by spaces: an empty one is lost"
                    )
                )
            elif _C_SPACE.intersection(word):
                problems.append(
                    ConflictError(
                        f"--emit {fmt}: {where} {word!r} holds white space, and the unikernel "
                        "gets its arguments as one command line it splits at white space: "
                        "it would read several words"
                    )
                )
            words.append(word)
    size = len(" ".join(words).encode("utf-8"))
    if size > SOLO5_CMDLINE_LIMIT:
        problems.append(
            ConflictError(
                f"--emit {fmt}: the boot arguments are {size} bytes joined; Solo5 passes "
                f"at most {SOLO5_CMDLINE_LIMIT}"
            )
        )
    return words, problems


def _qemu_args(plan: Plan, host: _Host) -> Emitted:
    _needs_platform(plan, "hw", "qemu-args", "xl")
    problems: list[BakeplanError] = []
    kernel = _multiboot_path(
        host,
        "kernel",
        "QEMU's multiboot loader gives the kernel the command line '<kernel> <-append>', "
        "and a Solo5 kernel takes what follows the path's first space as its arguments",
        problems,
    )
    config = _multiboot_path(
        host,
        "config",
        "QEMU's multiboot loader reads what follows a space in an -initrd path as the "
        "module's command line, so it would open another file",
        problems,
    )
    argv = [
        QEMU,
        "-kernel",
        kernel,
        # The config is the first multiboot module; QEMU separates modules with commas.
        "-initrd",
        _qemu_value(config),
        "-m",
        host.get("memory"),
        "-vga",
        "none",
        "-nographic",
    ]
    slots = attachment_order(plan)
    scsi: list[str] = []
    for slot in slots:
        ident = QEMU_ID_PREFIX + slot.name
        model = (_QEMU_NICS if slot.kind == "net" else _QEMU_DISKS).get(slot.driver or "")
        if model is None:
            problems.append(_no_qemu_model(slot))
        elif slot.kind == "net":
            tap = _qemu_value(host.get(f"tap.{slot.name}"))
            argv += [
                "-netdev",
                f"tap,id={ident},ifname={tap},script=no,downscript=no",
                "-device",
                f"{model},netdev={ident}",
            ]
        else:
            drive = f"if=none,id={ident},file={_qemu_value(host.get(f'disk.{slot.name}'))}"
            if slot.driver == "ld":
                argv += ["-drive", f"{drive},format=raw", "-device", f"{model},drive={ident}"]
            else:  # after every virtio device: its controller is one Solo5 does not count
                scsi += ["-drive", f"{drive},format=raw", "-device", f"{model},drive={ident}"]
                scsi[-1] += f",bus={QEMU_ID_PREFIX}scsi.0"
    if scsi:
        argv += ["-device", f"virtio-scsi-pci,id={QEMU_ID_PREFIX}scsi", *scsi]
    # The unikernel's own arguments: a Solo5 virtio kernel reads them from the multiboot
    # command line; rumprun, given its config as a module, does not read it.
    words, word_problems = _boot_words(plan, "qemu-args")
    problems += word_problems
    if words:
        argv += ["-append", " ".join(words)]
    raise_all(problems)
    notes = _filler_notes(slots, "a device is attached")
    return Emitted(shlex.join(argv) + "\n", tuple(notes + host.notes()))


def _no_qemu_model(slot: Slot) -> ConflictError:
    if slot.driver is None:
        return ConflictError(
            f"device {slot.name!r} has no unit number, so no attachment order for it",
            pointer=slot.pointer,
        )
    if slot.kind == "net":
        return ConflictError(
            f"net device {slot.name!r}: QEMU has no NIC for the {slot.driver} driver "
            f"(known: {', '.join(_QEMU_NICS)})",
            pointer=slot.pointer,
        )
    return ConflictError(
        f"block device {slot.name!r}: QEMU has no disk for the {slot.driver} driver "
        f"(known: {', '.join(_QEMU_DISKS)})",
        pointer=slot.pointer,
    )


def _multiboot_path(host: _Host, key: str, why: str, problems: list[BakeplanError]) -> str:
    value = host.get(key)
    if key in host.values and " " in value:
        problems.append(
            UsageError(
                f"--host {key}={value!r}: a path with a space cannot be passed: {why}",
                hint=f"give --host {key} a path without spaces (a link to the file will do)",
            )
        )
    return value


def _xl_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _xl(plan: Plan, host: _Host) -> Emitted:
    _needs_platform(plan, "xen", "xl", "qemu-args")
    notes: list[str] = []
    kernel = host.get("kernel")
    if "name" in host.values or "kernel" not in host.values:
        name = host.get("name")
    else:  # as master's rumprun launcher names the domain
        name = "rumprun-" + kernel.rstrip("/").rpartition("/")[2]
    config = host.get("config")
    vifs = []
    for driver, _, device in _units(plan.devices, "net"):
        if driver != "xenif":
            notes.append(f"net device {device.name} is not a xenif; attached as a vif anyway")
        vifs.append(f"bridge={host.get('bridge.' + device.name)}")
    disks = []
    for device in plan.devices:
        if device.kind != "block":
            continue
        vdev = device.field("vdev")
        if not vdev:
            notes.append(
                f"block device {device.name} is not an etfs device: Xen attaches no disk for it"
            )
            continue
        image = host.get(f"disk.{device.name}")
        disks.append(f"format=raw, vdev={vdev}, access=rw, target={image}")
    lines = [
        f"# Xen xl domain config written by bakeplan for bake config {plan.bake.config}.",
        "# rumprun on Xen reads its config from xenstore, so the domain starts paused:",
        "#   xl create -p THIS_FILE",
        f'#   xenstore-write "/local/domain/$(xl domid {name})/rumprun/cfg" "$(cat {config})"',
        f"#   xl unpause {name}",
        f"# where {config} holds: bakeplan plan ... --emit rumprun-json "
        f"(the {plan.runtime.dialect} dialect)",
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


@dataclass(frozen=True)
class ManifestProblem:
    """One way a manifest breaks Solo5's rules, and the entry it is about (its index in
    ``devices``; ``None`` for the manifest as a whole)."""

    what: str
    index: int | None = None

    def text(self) -> str:
        return self.what if self.index is None else f"devices[{self.index}]: {self.what}"


def manifest_faults(manifest: Mapping[str, Any]) -> list[ManifestProblem]:
    """Every way ``manifest`` breaks Solo5's rules (type, version, names, device count)."""
    problems = []
    if manifest.get("type") != "solo5.manifest" or manifest.get("version") != 1:
        problems.append(ManifestProblem('a manifest has "type": "solo5.manifest" and "version": 1'))
    devices = manifest.get("devices")
    if not isinstance(devices, list):
        return [*problems, ManifestProblem("devices must be a list")]
    if len(devices) > SOLO5_MAX_DEVICES:
        problems.append(
            ManifestProblem(f"{len(devices)} devices; Solo5 takes at most {SOLO5_MAX_DEVICES}")
        )
    seen: set[str] = set()
    for index, device in enumerate(devices):
        name = device.get("name") if isinstance(device, dict) else None
        if not isinstance(name, str) or not SOLO5_NAME.fullmatch(name):
            problems.append(
                ManifestProblem(f"name {name!r} must be 1 to 67 letters and digits", index)
            )
        elif name in seen:
            problems.append(ManifestProblem(f"name {name!r} is used twice", index))
        else:
            seen.add(name)
        kind = device.get("type") if isinstance(device, dict) else None
        if kind not in SOLO5_TYPES.values():
            problems.append(ManifestProblem(f"type {kind!r} is not one of Solo5's", index))
    return problems


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """``manifest_faults`` in words, each entry's prefixed with its ``devices[N]``."""
    return [problem.text() for problem in manifest_faults(manifest)]


def solo5_devices(plan: Plan, fmt: str) -> list[Slot]:
    """The devices a Solo5 unikernel of this plan declares, in its manifest's order (the
    QEMU line's, see ``attachment_order``); what Solo5 cannot bind is refused."""
    problems: list[BakeplanError] = [
        ConflictError(
            f"--emit {fmt}: device {device.name!r} is of kind {device.kind!r}; Solo5 "
            "knows net and block devices only",
            pointer=device.pointer,
        )
        for device in plan.devices
        if device.kind not in SOLO5_TYPES
    ]
    slots = attachment_order(plan)
    for slot in slots:
        why = _SOLO5_UNDRIVEN.get(slot.driver or "")
        if why is not None:
            problems.append(
                ConflictError(
                    f"--emit {fmt}: {slot.kind} device {slot.name!r} is {why}; the manifest "
                    "is the same for every Solo5 target, so it cannot declare it",
                    pointer=slot.pointer,
                    hint="a Solo5 unikernel takes ld disks and vioif NICs (-b hw_virtio)",
                )
            )
    for problem in manifest_faults(_manifest_of(slots)):
        pointer = None if problem.index is None else slots[problem.index].pointer
        problems.append(ConflictError(f"Solo5 manifest: {problem.text()}", pointer=pointer))
    raise_all(problems)
    return slots


def _manifest_of(slots: Iterable[Slot]) -> dict[str, Any]:
    entries = [{"name": slot.name, "type": SOLO5_TYPES[slot.kind]} for slot in slots]
    return {"type": "solo5.manifest", "version": 1, "devices": entries}


def _solo5_manifest(plan: Plan, host: _Host) -> Emitted:
    del host
    slots = solo5_devices(plan, "solo5-manifest")
    notes = _filler_notes(slots, "the manifest declares it, as QEMU attaches a device")
    return Emitted(json.dumps(_manifest_of(slots), indent=4) + "\n", tuple(notes))


def _tender_value(host: _Host, key: str, problems: list[BakeplanError], tender: str) -> str:
    """A host value for a ``--net:`` or ``--block:`` option, refused (exit 2) when the
    tender cannot take it: it reads the value up to the first white space."""
    value = host.get(key)
    if key not in host.values:
        return value
    option = "--block:NAME=PATH" if key.startswith("disk.") else "--net:NAME=TAP"
    size = len(value.encode("utf-8"))
    why = None
    if not value:
        why = f"{tender} takes no empty value in {option}"
    elif _C_SPACE.intersection(value):
        why = f"{tender} reads {option} up to the first white space"
    elif key.startswith("disk.") and size >= _PATH_MAX:
        why = f"{size} bytes; {tender} opens a path of at most {_PATH_MAX - 1}"
    elif key.startswith("tap.") and size >= _IFNAMSIZ and not _TAP_FD.fullmatch(value):
        why = f"{size} bytes; {tender} takes an interface name of at most {_IFNAMSIZ - 1} (or @FD)"
    if why is not None:
        problems.append(UsageError(f"--host {key}={value!r}: {why}"))
    return value


def _solo5_tender(tender: str) -> Emitter:
    """The emitter of ``solo5-hvt`` or ``solo5-spt``: one option per manifest device by its
    manifest name, ``--`` (a kernel path may start with a dash), the kernel, and the
    unikernel's boot arguments, which are all the tender passes on after the kernel."""

    def emit(plan: Plan, host: _Host) -> Emitted:
        program = f"solo5-{tender}"
        slots = solo5_devices(plan, program)
        problems: list[BakeplanError] = []
        argv = [program, f"--mem={host.get('memory')}"]
        for slot in slots:
            if slot.kind == "net":
                value = _tender_value(host, f"tap.{slot.name}", problems, program)
                argv.append(f"--net:{slot.name}={value}")
            else:
                value = _tender_value(host, f"disk.{slot.name}", problems, program)
                argv.append(f"--block:{slot.name}={value}")
        words, word_problems = _boot_words(plan, program)
        raise_all(problems + word_problems)
        argv += ["--", host.get("kernel"), *words]
        notes = _filler_notes(slots, "the manifest declares it and it is attached")
        return Emitted(shlex.join(argv) + "\n", tuple(notes + host.notes()))

    return emit


# An emitter per --emit format but "plan" (the plan's own text, ``plan.dumps``), keyed by
# the names orchestrator.emit.FORMATS gives them: a format without an emitter fails here.
_BY_FORMAT: dict[str, Emitter] = {
    "rumprun-json": _rumprun_json,
    "qemu-append": _qemu_append,
    "rumprun-bake-conf": _rumprun_bake_conf,
    "qemu-args": _qemu_args,
    "xl": _xl,
    "solo5-manifest": _solo5_manifest,
    "solo5-hvt": _solo5_tender("hvt"),
    "solo5-spt": _solo5_tender("spt"),
}
EMITTERS: Mapping[str, Emitter] = {name: _BY_FORMAT[name] for name in FORMATS if name != "plan"}
