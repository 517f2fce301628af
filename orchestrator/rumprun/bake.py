"""rumprun-bake's configurations and its library-list semantics.

rumprun-bake (app-tools/rumprun-bake.in, format ``version 20160209``) keeps, per config
name, a raw word list: ``add`` appends words, ``assimilate`` appends another config's
current list, ``remove`` drops every occurrence of the exact word, and ``nuke`` forgets
the config.  Names starting with ``_`` are private to the file that defines them.  The
final link list keeps the first occurrence of each word (its ``_uniq``).  ``-m "add
-lfoo"`` commands apply to the chosen config after every file is read.

bakeplan mirrors that model exactly: the five standard configs are built in as the same
definitions as rumprun's shipped rumprun-bake.conf, and a delegate's
``components.add/remove`` become the ``-m`` style directives applied to the base config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.errors import InputError
from orchestrator.suggest import did_you_mean

NAME_RULE = re.compile(r"^(xen|hw)?_")
COMPONENT = re.compile(r"^[A-Za-z0-9_]+\Z")  # \Z: "$" also matches before a final "\n"
DEFAULT_CONFIG = "hw_virtio"


@dataclass(frozen=True)
class BakeConfig:
    """A public rumprun-bake config: its name, platform and final ``-l`` list.

    ``origins`` says, for each library, the configs it came through: the config itself,
    then each ``assimilate``d one down to the one whose ``add`` brought it (``hw_virtio``,
    ``_miconf``, ``_netinet`` for ``-lrumpnet_netinet``), first occurrence kept.
    """

    name: str
    description: str
    platform: str
    libs: tuple[str, ...]
    origins: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def origin(self, lib: str) -> tuple[str, ...]:
        """The configs ``lib`` came through (empty when the config does not bring it)."""
        return next((chain for word, chain in self.origins if word == lib), ())

    @property
    def components(self) -> tuple[str, ...]:
        """The libraries as component names (``rumpnet_netinet`` for ``-lrumpnet_netinet``)."""
        return tuple(component_of(lib) for lib in self.libs)


@dataclass(frozen=True)
class Directive:
    """One ``-m`` command for rumprun-bake: ``add`` or ``remove`` of ``-l`` words."""

    op: Literal["add", "remove"]
    args: tuple[str, ...]
    by: str
    # The config part whose delegate asked for it ("" for the whole config).
    pointer: str = ""

    def as_json(self) -> dict[str, object]:
        return {"op": self.op, "args": list(self.args), "by": self.by, "pointer": self.pointer}


def flag_of(component: str) -> str:
    """``rumpnet_netinet`` -> ``-lrumpnet_netinet``."""
    return f"-l{component}"


def component_of(lib: str) -> str:
    """``-lrumpnet_netinet`` -> ``rumpnet_netinet``; other words are kept as they are."""
    return lib[2:] if lib.startswith("-l") else lib


def uniq(words: Iterable[str]) -> tuple[str, ...]:
    """rumprun-bake's ``_uniq``: keep the first occurrence of each word, in order."""
    return tuple(dict.fromkeys(words))


def apply_directives(libs: Sequence[str], directives: Iterable[Directive]) -> tuple[str, ...]:
    """The final list rumprun-bake links for ``libs`` after ``-m`` directives, in order.

    ``add`` appends, ``remove`` drops every occurrence of the exact word, and the result
    is made unique keeping first occurrences, as rumprun-bake does after reading ``-m``.
    """
    words = list(libs)
    for directive in directives:
        if directive.op == "add":
            words.extend(directive.args)
        else:
            dropped = set(directive.args)
            words = [w for w in words if w not in dropped]
    return uniq(words)


class ConfBook:
    """The configs defined so far, with rumprun-bake's operations on them.

    Each operation raises ``InputError`` with the message rumprun-bake would die with,
    located at ``where`` (a ``file:line`` supplied by the reader of a conf file).
    """

    def __init__(self) -> None:
        # Each config's raw words, each with the configs it came through (see origins).
        self._raw: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self._descr: dict[str, str] = {}
        # rumprun-bake keeps every definition's words but forgets names on ``nuke`` and
        # hides private names once their file is read; "known" is that visible set.
        self._known: list[str] = []

    def _fail(self, message: str, where: tuple[str, int] | None) -> InputError:
        if where is None:
            return InputError(message)
        return InputError(message, file=where[0], line=where[1])

    def _have(self, name: str, where: tuple[str, int] | None) -> None:
        if name not in self._known:
            raise self._fail(f'config "{name}" not found', where)

    def create(self, name: str, description: str, where: tuple[str, int] | None = None) -> None:
        if not NAME_RULE.match(name):
            raise self._fail(f'invalid config name "{name}": must match ^(xen|hw)?_', where)
        if not description:
            raise self._fail("create: need description", where)
        if name in self._known:
            raise self._fail(f"config {name} already exists", where)
        self._known.append(name)
        self._descr[name] = description
        self._raw.setdefault(name, [])

    def add(self, name: str, words: Sequence[str], where: tuple[str, int] | None = None) -> None:
        self._have(name, where)
        self._raw[name].extend((word, (name,)) for word in words)

    def assimilate(
        self, name: str, others: Sequence[str], where: tuple[str, int] | None = None
    ) -> None:
        self._have(name, where)
        for other in others:
            self._have(other, where)
            self._raw[name].extend((word, (name, *chain)) for word, chain in self._raw[other])

    def remove(self, name: str, words: Sequence[str], where: tuple[str, int] | None = None) -> None:
        self._have(name, where)
        dropped = set(words)
        self._raw[name] = [item for item in self._raw[name] if item[0] not in dropped]

    def nuke(self, name: str, where: tuple[str, int] | None = None) -> None:
        self._have(name, where)
        self._known.remove(name)

    def end_of_file(self) -> None:
        """Hide private (``_``) names, as rumprun-bake does after reading each file."""
        self._known = [n for n in self._known if not n.startswith("_")]

    def names(self) -> tuple[str, ...]:
        return tuple(self._known)

    def get(self, name: str) -> BakeConfig:
        """The public config ``name`` (``-`` read as ``_``), or an error naming the known ones."""
        wanted = name.replace("-", "_")
        if wanted not in self._known or wanted.startswith("_"):
            raise InputError(
                f"unknown bake config {name!r}; known: {', '.join(self._known)}",
                hint=did_you_mean(wanted, self._known),
            )
        first: dict[str, tuple[str, ...]] = {}
        for word, chain in self._raw[wanted]:
            first.setdefault(word, chain)
        return BakeConfig(
            name=wanted,
            description=self._descr[wanted],
            platform=wanted.split("_", 1)[0],
            libs=tuple(first),
            origins=tuple(first.items()),
        )


def _l(*names: str) -> tuple[str, ...]:
    return tuple(flag_of(n) for n in names)


# The definitions of rumprun's shipped rumprun-bake.conf (master b04d422, version
# 20160209), in file order: (name, description, [(operation, words)]).
_STANDARD: tuple[tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    ("_foundation", "basic components for the Rumprun unikernel", (
        ("add", _l("rumpvfs", "rumpkern_bmktc", "rumpkern_mman", "rumpdev", "rumpfs_tmpfs",
                   "rumpnet_config", "rumpnet", "rumpdev_bpf", "rumpdev_vnd", "rumpdev_rnd",
                   "rumprunfs_base")),
    )),
    ("_virtio", "virtio drivers", (
        ("add", _l("rumpdev_virtio_if_vioif", "rumpdev_virtio_ld", "rumpdev_virtio_viornd",
                   "rumpdev_pci_virtio", "rumpdev_pci")),
    )),
    ("_audio", "audio subsystem and some PCI audio device drivers", (
        ("add", _l("rumpdev_audio", "rumpdev_audio_ac97", "rumpdev_pci_auich", "rumpdev_pci_eap",
                   "rumpdev_pci_hdaudio", "rumpdev_hdaudio_hdafg")),
    )),
    ("_netinet", "TCP/IP (v4)", (("add", _l("rumpnet_netinet", "rumpnet_net", "rumpnet")),)),
    ("_netinet6", "TCP/IP (v6)", (("add", _l("rumpnet_netinet6", "rumpnet_net", "rumpnet")),)),
    ("_netunix", "local domain sockets", (("add", _l("rumpnet_local", "rumpnet")),)),
    ("_stdfs", "selection of file system drivers", (
        ("add", _l("rumpfs_ffs", "rumpfs_cd9660", "rumpfs_ext2fs", "rumpdev_disk", "rumpvfs")),
    )),
    ("_pciether", "PCI Ethernet NIC drivers", (
        ("add", _l("rumpdev_pci_if_wm", "rumpdev_miiphy", "rumpdev_pci")),
    )),
    ("_usb", "USB stack incl. PCI USB host controllers", (
        ("add", _l("rumpdev_pci_usbhc", "rumpdev_usb", "rumpdev_umass", "rumpdev_scsipi",
                   "rumpdev_pci")),
    )),
    ("_sysproxy", "system call proxy support", (("add", _l("rumpkern_sysproxy")),)),
    ("_miconf", "general useful MI/pseudo driver set", (
        ("assimilate", ("_foundation", "_netinet", "_netinet6", "_netunix", "_stdfs",
                        "_sysproxy")),
    )),
    ("_virtio_scsi", "virtio SCSI", (
        ("add", _l("rumpdev_virtio_vioscsi")),
        ("add", _l("rumpdev_scsipi")),
    )),
    ("xen_pv", "Xen with paravirtualized I/O drivers", (
        ("assimilate", ("_miconf",)),
        ("add", _l("rumpfs_kernfs", "rumpnet_xenif", "rumpxen_xendev")),
    )),
    ("xen_pci", "Xen with paravirtualized and PCI I/O drivers", (
        ("assimilate", ("xen_pv", "_pciether")),
    )),
    ("hw_virtio", "virtio targets (e.g. QEMU/KVM)", (("assimilate", ("_miconf", "_virtio")),)),
    ("hw_virtio_scsi", "virtio targets with SCSI (e.g. QEMU/KVM)", (
        ("assimilate", ("_miconf", "_virtio", "_virtio_scsi")),
    )),
    ("hw_generic", "generic targets, includes (almost) all drivers", (
        ("assimilate", ("_miconf", "_virtio", "_virtio_scsi", "_audio", "_pciether", "_usb")),
    )),
)  # fmt: skip


def standard_book() -> ConfBook:
    """A ``ConfBook`` holding rumprun's five standard public configs."""
    book = ConfBook()
    for name, description, operations in _STANDARD:
        book.create(name, description)
        for operation, words in operations:
            if operation == "add":
                book.add(name, words)
            else:
                book.assimilate(name, words)
    book.end_of_file()
    return book
