"""``bakeplan upgrade``: rumprun's 2015 master config dialect to the specification dialect.

The legacy dialect is what rumprun's master branch parsed (``lib/librumprun_base/
config.c``) and what its ``rumprun`` launcher wrote: not JSON.  The launcher opened
objects with ``{,``, left trailing commas and repeated keys (``blk`` once per device, and
``env`` once per variable), and for QEMU's ``-append`` it doubled every comma.  So the text
is read by ``legacytext.read_legacy``, which keeps each value's line, tolerates exactly
those habits, and undoes the comma doubling (inside strings too) when every comma is
doubled; the loader recognises the dialect by the same module's ``signs`` of them.

The mapping follows what master's parser did with each key, so the upgraded config boots
the same unikernel the same way:

* ``cmdline`` and ``rc_TESTING`` become ``rc`` entries in the order they appear (master
  ran its execs in that order, each on the baked binary at its position); a ``cmdline``
  is split as master's ``rumprun_parseargs`` split it, and ``bin`` is the basename of its
  argv[0]; an ``rc_TESTING`` argv excludes argv[0], the specification's includes it;
* each ``env`` ``NAME=VALUE`` becomes ``env[NAME]`` (a later one wins, as ``putenv``);
* ``hostname`` becomes ``netbsd.sysctl."kern.hostname"``;
* each flat ``net`` becomes an interface in ``net.interfaces`` (``cloner`` -> ``create``,
  ``addr``+``mask`` -> CIDR, ``gw`` -> ``net.gateways``);
* each ``blk`` becomes ``blk`` devices and ``mount`` entries: ``dev`` mounts the device
  node it names; ``vnd`` becomes ``vnd<unit>``, numbered in order as master numbered them;
  ``etfs`` becomes a device of the same name over ``blkfront:<path>``; ``fstype kernfs``
  becomes a ``kernfs`` mount.

Every decision is returned as a note with its line; what cannot be mapped is an error at
its line.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core import config as dialect
from orchestrator.core import jsontext
from orchestrator.errors import BakeplanError, InputError, raise_all
from orchestrator.pointers import nearest, pointer_of
from orchestrator.rumprun import master
from orchestrator.rumprun.legacytext import LegacyNode, read_legacy

_SPEC_ONLY_KEYS = ("rc", "mount", "netbsd")


# --- the mapping -----------------------------------------------------------------------


@dataclass(frozen=True)
class Upgrade:
    """The specification-dialect config and every decision taken to get it."""

    config: dict[str, Any]
    notes: tuple[str, ...]
    # A config already in the specification dialect is given back as it came, byte for
    # byte, not re-indented: there was nothing to upgrade.
    copied: str | None = None

    def text(self) -> str:
        if self.copied is not None:
            return self.copied
        return json.dumps(self.config, indent=2, ensure_ascii=False) + "\n"


@dataclass
class _Builder:
    source: str
    notes: list[str] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # pointer -> legacy line
    rc: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    blk: dict[str, dict[str, str]] = field(default_factory=dict)
    mount: dict[str, dict[str, Any]] = field(default_factory=dict)
    interfaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    gateways: list[dict[str, str]] = field(default_factory=list)
    sysctl: dict[str, Any] = field(default_factory=dict)
    vnd_units: int = 0

    def note(self, line: int, text: str) -> None:
        self.notes.append(f"line {line}: {text}")

    def fail(self, line: int, message: str, hint: str | None = None) -> InputError:
        return InputError(message, file=self.source, line=line, hint=hint)

    def at(self, tokens: list[str], line: int) -> None:
        self.lines.setdefault(pointer_of(tokens), line)

    def result(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.rc:
            config["rc"] = self.rc
        if self.env:
            config["env"] = self.env
        if self.blk:
            config["blk"] = self.blk
        if self.mount:
            config["mount"] = self.mount
        if self.interfaces or self.gateways:
            net: dict[str, Any] = {"interfaces": self.interfaces}
            if self.gateways:
                net["gateways"] = self.gateways
            config["net"] = net
        if self.sysctl:
            config["netbsd"] = {"sysctl": self.sysctl}
        return config


def _already_specified(text: str, source: str) -> dict[str, Any] | None:
    """The config when ``text`` is already in the specification dialect (strict JSON
    with no sign of the legacy one), else None.  Whether it is valid is ``validate``'s
    and ``plan``'s to say: a delegate may own a part the schema alone would refuse."""
    try:
        document = jsontext.parse(text, source=source)
    except BakeplanError:
        return None  # not strict JSON: the launcher's text, or broken
    if not isinstance(document, dict) or not document:
        return None
    # The loader's own signs of the legacy dialect (its keys, a "K=V" env, a flat net or
    # blk): what plan refuses as legacy is what upgrade converts, nothing else.
    marks = dialect._legacy_data_marks(dialect.Config(source=source, text=text, data=document))
    return None if marks else document


def upgrade_text(text: str, source: str) -> Upgrade:
    """Upgrade the legacy config ``text``.  Every part that cannot be mapped is an
    ``InputError`` at its line, all of them raised together, by line; a config already
    in the specification dialect is given back as it is."""
    specified = _already_specified(text, source)
    if specified is not None:
        said = "already in the specification dialect: nothing to upgrade"
        return Upgrade(config=specified, notes=(said,), copied=text)
    top, notes = read_legacy(text, source)
    builder = _Builder(source, notes=notes)
    assert top.members is not None
    problems: list[InputError] = []
    for key, line, node in top.members:
        try:
            if key in _SPEC_ONLY_KEYS:
                raise builder.fail(
                    line,
                    f"{key!r} is a key of the specification dialect: this config is not (only) "
                    "legacy, so there is nothing bakeplan can upgrade safely",
                    hint="a config in the specification dialect needs no upgrade",
                )
            handler = _HANDLERS.get(key)
            if handler is None:
                raise builder.fail(
                    line,
                    f"unknown key {key!r}: rumprun master would stop at boot (no match for key)",
                    hint=f"legacy keys: {', '.join(master.KEYS)}",
                )
            handler(builder, line, node)
        except InputError as error:
            problems.append(error)  # and on to the next key: every problem in one run
    if not any(key in ("cmdline", "rc_TESTING") for key, _, _ in top.members):
        problems.append(
            builder.fail(
                top.line,
                "no cmdline or rc_TESTING: rumprun master refuses to boot without one "
                "(rumprun_config: no bins)",
            )
        )
    config = builder.result()
    if not problems:
        # Only a whole mapping is judged as a config: a partial one would blame parts
        # that are missing because of the problems above.
        problems = _check(builder, config)
    raise_all(sorted(problems, key=lambda error: error.line or 0))
    return Upgrade(config=config, notes=tuple(builder.notes))


def _check(builder: _Builder, config: dict[str, Any]) -> list[InputError]:
    """Where the upgraded config is not valid in the specification dialect, if anywhere."""
    return [
        builder.fail(
            nearest(v.pointer, builder.lines.get) or 1,
            f"cannot be mapped to a valid config: {v.pointer}: {v.message}",
            hint=f"expected {v.expected}" if v.expected else None,
        )
        for v in dialect.validate_dialect(config)
    ]


def _string(builder: _Builder, key: str, line: int, node: LegacyNode) -> str:
    if not isinstance(node.value, str) or node.is_object:
        raise builder.fail(line, f"{key} must be a string (rumprun master checks its type)")
    return node.value


def split_args(text: str) -> list[str]:
    """A command line split as rumprun master's ``rumprun_parseargs`` splits it.

    Space, tab and newline separate arguments; ``'...'`` and ``"..."`` quote (the quotes
    are dropped); a backslash takes the next character as it is, anywhere.
    """
    args: list[str] = []
    current: list[str] | None = None
    quote = ""
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 == len(text):
            break  # master reads the NUL after a final backslash: the line ends there
        escaped = char == "\\"
        if escaped:
            pos += 1
            char = text[pos]
        pos += 1
        if not escaped and not quote and char in " \t\n":
            if current is not None:
                args.append("".join(current))
                current = None
            continue
        if current is None:
            current = []
        if not escaped and quote and char == quote:
            quote = ""
            continue
        if not escaped and not quote and char in "'\"":
            quote = char
            continue
        current.append(char)
    if current is not None:
        args.append("".join(current))
    return args


def _cmdline(builder: _Builder, line: int, node: LegacyNode) -> None:
    argv = split_args(_string(builder, "cmdline", line, node))
    if not argv:
        raise builder.fail(line, "cmdline is empty: there is no program to run")
    index = len(builder.rc)
    binary = posixpath.basename(argv[0]) or argv[0]
    builder.rc.append({"bin": binary, "argv": argv})  # cmdline's argv includes argv[0]
    builder.at(["rc", str(index)], line)
    builder.note(
        line,
        f"cmdline -> rc[{index}] (bin {binary!r}, argv of {len(argv)}); it runs the "
        f"binary baked in position {index + 1}, as before",
    )


def _rc_testing(builder: _Builder, line: int, node: LegacyNode) -> None:
    if not isinstance(node.value, list):
        raise builder.fail(line, "rc_TESTING must be an array of {bin, argv, runmode}")
    for item in node.value:
        index = len(builder.rc)
        if item.members is None:
            raise builder.fail(item.line, "an rc_TESTING entry must be an object")
        entry: dict[str, Any] = {}
        argv: list[str] | None = None
        for key, key_line, value in item.members:
            if key == "bin":
                entry["bin"] = _string(builder, "rc_TESTING bin", key_line, value)
            elif key == "argv":
                if not isinstance(value.value, list) or not all(
                    isinstance(a.value, str) for a in value.value
                ):
                    raise builder.fail(key_line, "rc_TESTING argv must be an array of strings")
                argv = [a.value for a in value.value]
            elif key == "runmode":
                mode = _string(builder, "rc_TESTING runmode", key_line, value)
                if mode not in master.RUNMODES:
                    raise builder.fail(key_line, f'invalid runmode {mode!r}: "&" or "|"')
                entry["runmode"] = mode
            else:
                raise builder.fail(key_line, f"unexpected key {key!r} in an rc_TESTING entry")
        if "bin" not in entry:
            raise builder.fail(item.line, 'missing "bin" for an rc_TESTING entry')
        entry["argv"] = master.argv_to_spec(entry["bin"], argv or [])
        builder.rc.append(dict(sorted(entry.items(), key=lambda kv: _RC_ORDER.index(kv[0]))))
        builder.at(["rc", str(index)], item.line)
        builder.note(
            item.line,
            f"rc_TESTING entry -> rc[{index}] (bin {entry['bin']!r}; argv gains argv[0], "
            "which the specification includes)",
        )


_RC_ORDER = ("bin", "argv", "runmode")


def _env(builder: _Builder, line: int, node: LegacyNode) -> None:
    text = _string(builder, "env", line, node)
    pair = master.env_to_spec(text)
    if pair is None:
        raise builder.fail(line, f'env {text!r} is not "NAME=VALUE" (putenv refuses it)')
    name, value = pair
    if name in builder.env:
        builder.note(line, f"env {name} set again: the later value wins, as with putenv")
    builder.env[name] = value
    builder.at(["env", name], line)
    builder.note(line, f"env -> env.{name}")


def _hostname(builder: _Builder, line: int, node: LegacyNode) -> None:
    name = _string(builder, "hostname", line, node)
    if master.HOSTNAME_SYSCTL in builder.sysctl:
        builder.note(line, "hostname set again: the later value wins")
    builder.sysctl[master.HOSTNAME_SYSCTL] = name
    builder.at(["netbsd", "sysctl", master.HOSTNAME_SYSCTL], line)
    builder.note(line, f'hostname -> netbsd.sysctl."kern.hostname" ({name!r})')


def _flat(
    builder: _Builder, what: str, node: LegacyNode, allowed: tuple[str, ...]
) -> dict[str, str]:
    """A legacy flat object: string values only, known keys only (as master checks)."""
    if node.members is None:
        raise builder.fail(node.line, f"{what} must be an object")
    fields: dict[str, str] = {}
    for key, key_line, value in node.members:
        if key not in allowed:
            raise builder.fail(
                key_line,
                f"unexpected key {key!r} in {what}",
                hint=f"legacy {what} keys: {', '.join(allowed)}",
            )
        fields[key] = _string(builder, f"{what}.{key}", key_line, value)
    return fields


def _lines_of(node: LegacyNode) -> dict[str, int]:
    return {key: line for key, line, _ in node.members or ()}


def _net(builder: _Builder, line: int, node: LegacyNode) -> None:
    net = _flat(builder, "net", node, master.NET_FIELDS)
    where = _lines_of(node)
    missing = [k for k in ("if", "type", "method") if k not in net]
    if missing:
        raise builder.fail(line, f"net lacks {', '.join(missing)} (net cfg missing vital data)")
    name, family, method = net["if"], net["type"], net["method"]
    interface = builder.interfaces.setdefault(name, {})
    tokens = ["net", "interfaces", name]
    builder.at(tokens, line)
    if "cloner" in net:
        interface["create"] = master.create_to_spec(net["cloner"])
        builder.note(
            where["cloner"],
            f"cloner {net['cloner']!r} -> net.interfaces.{name}.create true"
            + (
                " (master created the interface whenever cloner was present)"
                if net["cloner"] != "true"
                else ""
            ),
        )
    addrs = interface.setdefault("addrs", [])
    index = len(addrs)
    builder.at([*tokens, "addrs", str(index)], where["method"])
    methods = master.NET_METHODS
    if family not in methods:
        raise builder.fail(where["type"], f'network type {family!r}: "inet" or "inet6"')
    if method not in methods[family]:
        raise builder.fail(
            where["method"],
            f"method {method!r} for {family}: {' or '.join(methods[family])}",
        )
    if method == "static":
        _net_static(builder, net, where, addrs)
    else:
        addrs.append(master.address_to_spec(family, method, "", ""))
        builder.note(where["method"], f"{family} {method} -> net.interfaces.{name}.addrs[{index}]")
        for unused in ("addr", "mask", "gw"):
            if unused in net:
                builder.note(where[unused], f"{unused} ignored with method {method}, as master did")


def _net_static(
    builder: _Builder, net: dict[str, str], where: dict[str, int], addrs: list[dict[str, str]]
) -> None:
    """A static address: addr and mask as CIDR, and gw as the family's gateway."""
    name, family, line = net["if"], net["type"], where["method"]
    index = len(addrs)
    if "addr" not in net or "mask" not in net:
        raise builder.fail(line, "a static net needs addr and mask")
    try:
        master.prefix_length(family, net["mask"])
    except ValueError as exc:
        raise builder.fail(where["mask"], f"{exc} (master read it with atoi)") from None
    try:
        address = master.address_to_spec(family, "static", net["addr"], net["mask"])
    except ValueError:
        raise builder.fail(where["addr"], f"addr {net['addr']!r} is not an address") from None
    cidr = address["addr"]
    addrs.append(address)
    builder.note(where["addr"], f"addr+mask -> net.interfaces.{name}.addrs[{index}] {cidr}")
    if "gw" in net:
        if any(g["type"] == family for g in builder.gateways):
            raise builder.fail(
                where["gw"], f"a second {family} gateway: at most one per address family"
            )
        builder.at(["net", "gateways", str(len(builder.gateways))], where["gw"])
        builder.gateways.append({"type": family, "addr": net["gw"]})
        builder.note(where["gw"], f"gw -> net.gateways ({family} {net['gw']})")


def _blk(builder: _Builder, line: int, node: LegacyNode) -> None:
    blk = _flat(builder, "blk", node, master.BLK_FIELDS)
    where = _lines_of(node)
    if "source" not in blk or "path" not in blk:
        raise builder.fail(line, "blk lacks source or path (blk cfg missing vital data)")
    source, path = blk["source"], blk["path"]
    mountpoint = blk.get("mountpoint")
    fstype = blk.get("fstype")
    if mountpoint is not None and fstype is None:
        raise builder.fail(line, f"no fstype for mountpoint {mountpoint!r}")
    if fstype is not None and fstype not in master.FSTYPES:
        raise builder.fail(where["fstype"], f'unknown fstype {fstype!r}: "blk" or "kernfs"')
    device = _blk_device(builder, line, blk, where)
    if mountpoint is None:
        if source == "dev":
            builder.note(line, f"blk dev {path!r} without a mountpoint: nothing to do")
        return
    tokens = ["mount", mountpoint]
    if mountpoint in builder.mount:
        raise builder.fail(where["mountpoint"], f"{mountpoint!r} is mounted twice")
    builder.at(tokens, line)
    if fstype == "kernfs":
        builder.mount[mountpoint] = {"source": "kernfs"}
        builder.note(line, f"blk fstype kernfs -> mount.{mountpoint} kernfs (path {path!r} unused)")
    else:
        builder.mount[mountpoint] = {"source": "blk", "path": device}
        builder.note(line, f"blk mountpoint -> mount.{mountpoint} from {device}")


def _blk_device(builder: _Builder, line: int, blk: dict[str, str], where: dict[str, int]) -> str:
    """The blk entry a legacy blk makes, if any, and the device node it mounts."""
    source, path = blk["source"], blk["path"]
    if source == "dev":
        device = path
    elif source == "vnd":
        unit = builder.vnd_units
        builder.vnd_units += 1
        name = f"vnd{unit}"
        builder.blk[name] = {"type": "vnd", "path": path}
        builder.at(["blk", name], line)
        device = master.vnd_node(unit)
        builder.note(
            line,
            f"blk vnd {path!r} -> blk.{name} (unit {unit}: master numbered vnd devices in order)",
        )
    elif source == "etfs":
        name = path.removeprefix("/dev/")
        if "/" in name or not name:
            raise builder.fail(where["path"], f"etfs path {path!r} is not a Xen disk name")
        builder.blk[name] = {"type": "etfs", "path": master.etfs_to_spec(name)}
        builder.at(["blk", name], line)
        device = f"/dev/{name}"
        builder.note(line, f"blk etfs {path!r} -> blk.{name} over blkfront:{name}")
    else:
        raise builder.fail(
            where["source"], f'unsupported blk source {source!r}: "dev", "vnd" or "etfs"'
        )
    return device


_HANDLERS = {
    "cmdline": _cmdline,
    "rc_TESTING": _rc_testing,
    "env": _env,
    "hostname": _hostname,
    "blk": _blk,
    "net": _net,
}


def notes_for_humans(result: Upgrade) -> Iterator[str]:
    """Each decision as a plain stderr line."""
    for note in result.notes:
        yield f"upgrade: {note}"


def upgrade_file(path: str) -> Upgrade:
    """Upgrade the legacy config at ``path`` (``-``: stdin)."""
    source = "<stdin>" if path == "-" else path
    # The bound a config has: a larger file, an endless pipe or /dev/zero is refused
    # before it is read whole.
    raw = dialect._read(path, source)  # the config loader's own bounded read
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 text ({exc.reason})", file=source, line=line) from None
    return upgrade_text(text, source)
