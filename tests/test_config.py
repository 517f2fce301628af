"""Loading a config, refusing the legacy dialect, and the specification dialect's schema."""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFORMANCE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import errors
from orchestrator.core.config import check, load, validate_dialect
from orchestrator.core.jsontext import JsonTextError
from orchestrator.errors import InputError, LegacyDialectError, Problems
from orchestrator.schemas import explainer
from orchestrator.show import messages

RUMPRUN = CONFORMANCE / "rumprun"
PROPERTY = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def specimens(kind: str) -> list[Path]:
    return sorted((RUMPRUN / kind).iterdir())


def write(tmp_path: Path, text: str | bytes, name: str = "config.json") -> str:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return str(path)


def pointers(data: Any, **kwargs: Any) -> list[tuple[str, str]]:
    return [(v.pointer, v.message) for v in validate_dialect(data, **kwargs)]


# --- the published specimens -------------------------------------------------------------


def test_every_specimen_folder_is_populated() -> None:
    assert [len(specimens(kind)) for kind in ("valid", "invalid", "legacy")] == [3, 2, 5]


@pytest.mark.parametrize("path", specimens("valid"), ids=lambda p: p.name)
def test_valid_specimens_load_and_validate_cleanly(path: Path) -> None:
    config = load(str(path))
    assert config.source == str(path)
    assert config.data == json.loads(path.read_text())
    assert validate_dialect(config.data) == []
    check(config)


@pytest.mark.parametrize(
    ("name", "line", "col", "message"),
    [
        # The key "gateways" lacks its opening quote on line 10.
        ("spec-doc-hw-mathopd.json", 10, 6, "expected a key in double quotes, found 'gateways'"),
        # The first break is the trailing comma after "addrs" on line 8; Python's json
        # module reports line 9, where it gave up.
        ("spec-doc-xen-wopr.json", 8, 10, "trailing comma before '}'"),
    ],
)
def test_invalid_specimens_fail_as_syntax_errors_on_the_right_line(
    name: str, line: int, col: int, message: str
) -> None:
    path = RUMPRUN / "invalid" / name
    with pytest.raises(JsonTextError) as caught:
        load(str(path))
    error = caught.value
    assert not isinstance(error, LegacyDialectError)
    assert (error.file, error.line, error.col, error.message) == (str(path), line, col, message)
    assert errors.exit_code_of(error) == 2


@pytest.mark.parametrize("path", specimens("legacy"), ids=lambda p: p.name)
def test_legacy_specimens_are_refused_naming_upgrade(path: Path) -> None:
    with pytest.raises(LegacyDialectError) as caught:
        load(str(path))
    error = caught.value
    assert error.file == str(path)
    assert error.hint is not None
    assert f"bakeplan upgrade {path}" in error.hint
    assert errors.exit_code_of(error) == 2
    assert error.detail, "the signs of the legacy dialect are listed"


def test_legacy_launcher_text_is_placed_at_its_first_sign() -> None:
    with pytest.raises(LegacyDialectError) as caught:
        load(str(RUMPRUN / "legacy" / "erlang-ec2.launcher-output.txt"))
    error = caught.value
    assert (error.line, error.col) == (1, 2)
    assert error.detail[0] == "1:2: the `{,` opener the old rumprun launcher wrote (not JSON)"
    text = "\n".join(error.detail)
    assert '8:2 at /env: `env` as a "NAME=VALUE" string' in text


def test_legacy_json_is_placed_at_its_first_legacy_key() -> None:
    with pytest.raises(LegacyDialectError) as caught:
        load(str(RUMPRUN / "legacy" / "nodejs-nodekick.json"))
    error = caught.value
    assert (error.line, error.col, error.pointer) == (1, 9, "/net")
    # Each sign is listed with its place: "1:9 at /net: a flat `net` object ...".
    assert [line.split(" ")[:3] for line in error.detail] == [
        ["1:9", "at", "/net:"],
        ["1:67", "at", "/blk:"],
        ["1:162", "at", "/cmdline:"],
    ]


# --- loading -------------------------------------------------------------------------------


def test_load_reads_stdin_as_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO('{"env": {"A": "é"}}'.encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    config = load("-")
    assert (config.source, config.data) == ("<stdin>", {"env": {"A": "é"}})


def test_stdin_errors_name_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"a": 1,}')))
    with pytest.raises(JsonTextError) as caught:
        load("-")
    assert messages.where(caught.value) == "<stdin>:1:8"


def test_a_missing_file_names_the_file_and_the_reason(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")
    with pytest.raises(InputError) as caught:
        load(missing)
    assert caught.value.file == missing
    assert caught.value.message == "cannot read the config: No such file or directory"


def test_a_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load(str(tmp_path))
    assert caught.value.message == "cannot read the config: Is a directory"


@pytest.mark.parametrize(
    ("text", "what", "where"),
    [("[]", "an array", (1, 1)), ('"x"', "a string", (1, 1)), ("\n  null", "null", (2, 3))],
)
def test_the_root_must_be_an_object(
    tmp_path: Path, text: str, what: str, where: tuple[int, int]
) -> None:
    with pytest.raises(InputError) as caught:
        load(write(tmp_path, text))
    error = caught.value
    assert error.message == f"the config must be a JSON object, not {what}"
    assert (error.line, error.col) == where


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xef\xbb\xbf{}", "byte-order mark at start of file"),
        (b'{"a": "\xff"}', "invalid UTF-8 byte 0xff"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a' (first at 1:2)"),
        (b"", "empty input: expected a JSON value"),
    ],
)
def test_malformed_text_is_an_input_error(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(JsonTextError) as caught:
        load(write(tmp_path, data))
    assert caught.value.message == message
    assert errors.exit_code_of(caught.value) == 2


@pytest.mark.parametrize(
    ("text", "pointer", "sign"),
    [
        ('{"cmdline": "app -v"}', "/cmdline", "`cmdline`"),
        ('{"rc_TESTING": [{"bin": "a"}]}', "/rc_TESTING", "`rc_TESTING`"),
        ('{"hostname": "box"}', "/hostname", "`hostname`"),
        ('{"env": "A=B"}', "/env", '`env` as a "NAME=VALUE" string'),
        ('{"net": {"if": "vioif0", "method": "dhcp"}}', "/net", "a flat `net` object"),
        ('{"blk": {"source": "dev", "path": "/dev/ld0a"}}', "/blk", "a `blk` object"),
    ],
)
def test_legacy_json_is_recognised_by_each_sign(
    tmp_path: Path, text: str, pointer: str, sign: str
) -> None:
    path = write(tmp_path, "\n" + text)
    with pytest.raises(LegacyDialectError) as caught:
        load(path)
    error = caught.value
    assert error.pointer == pointer
    assert error.line == 2
    assert sign in error.detail[0]


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ('{, "cmdline": "x", }', 1, 1),  # the launcher's opener
        ('{"net": {"if": "vioif0",, "type": "inet"}}', 1, 24),  # QEMU's doubled commas
        ('{"hostname": "a", "hostname": "b"}', 1, 2),  # a repeated key, and a legacy one
        ('{"env": "A=1", "env": "B=2"}', 1, 2),
    ],
)
def test_legacy_text_that_is_not_json_is_recognised(
    tmp_path: Path, text: str, line: int, col: int
) -> None:
    with pytest.raises(LegacyDialectError) as caught:
        load(write(tmp_path, text))
    assert (caught.value.line, caught.value.col) == (line, col)


def test_text_that_is_not_json_is_read_as_upgrade_reads_it(tmp_path: Path) -> None:
    # The loader looks for the signs with upgrade's own reader, as far as it can read.
    with pytest.raises(LegacyDialectError) as caught:
        load(write(tmp_path, '{, "cmdline": "x", \'q\'}'))
    assert [line.split(": ")[0] for line in caught.value.detail] == ["1:1", "1:4 at /cmdline"]
    with pytest.raises(JsonTextError) as caught:
        load(write(tmp_path, '{"a": \'q\', "cmdline": "x"}'))
    assert not isinstance(caught.value, LegacyDialectError)
    assert (caught.value.line, caught.value.col) == (1, 7)
    # Text before the first { is ignored, as rumprun ignores it: its comma is no sign
    # that the commas are not all doubled.
    with pytest.raises(LegacyDialectError) as caught:
        load(write(tmp_path, 'a, b {"env": {"A": "1",, "B": "2"}}'))
    assert caught.value.detail == ("1:23: doubled commas, as QEMU's -append needs them (not JSON)",)


def test_specification_configs_are_not_mistaken_for_legacy(tmp_path: Path) -> None:
    text = json.dumps(
        {
            "blk": {"source": {"type": "etfs", "path": "blkfront:xvda"}},
            "env": {"cmdline": "x", "hostname": "y"},
            "other": {"cmdline": "owned by another delegate"},
        }
    )
    assert load(write(tmp_path, text)).data["env"] == {"cmdline": "x", "hostname": "y"}
    # A syntax error inside a string that looks like legacy text is still a syntax error.
    with pytest.raises(JsonTextError) as caught:
        load(write(tmp_path, '{"env": {"A": "{,,"}, }'))
    assert not isinstance(caught.value, LegacyDialectError)
    assert caught.value.message == "trailing comma before '}'"
    # One doubled comma among single ones is a typo; QEMU's -append doubles every comma.
    with pytest.raises(JsonTextError) as caught:
        load(write(tmp_path, '{"env": {"A": "1",, "B": "2"}, "rc": []}'))
    assert not isinstance(caught.value, LegacyDialectError)
    assert (caught.value.line, caught.value.col) == (1, 19)


def test_config_is_frozen_and_places_pointers() -> None:
    config = load(str(RUMPRUN / "valid" / "spec-doc-hw-mathopd.fixed.json"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.source = "other"  # type: ignore[misc]
    assert config.position("/mount/~1data/path") == (16, 41)
    assert config.position("/mount/~1nope") is None
    error = config.error_at("/mount/~1data/options", "bad", detail=("d",), hint="h")
    # Absent: placed at the closest ancestor that exists, still naming the pointer.
    assert (error.file, error.line, error.col, error.pointer) == (
        config.source,
        16,
        14,
        "/mount/~1data/options",
    )
    assert (error.detail, error.hint) == (("d",), "h")


# --- the schema: accepted ------------------------------------------------------------------

ACCEPTED: list[dict[str, Any]] = [
    {},
    {"other": {"anything": [1, 2]}, "x-owned": 1},
    {"rc": []},
    {
        "rc": [
            {"bin": "a", "argv": ["a", "-v"], "runmode": "|", "workdir": "/srv"},
            {"bin": "./b.bin", "runmode": "&"},
            {"bin": "c", "runmode": ""},
        ]
    },
    {"rc": [{"bin": "a", "netbsd": {"sysctl": {"rlimit.nofile.soft": 1024}}}]},
    {"rc": [{"bin": "a", "netbsd": {"sysctl": {"rlimit.descriptors.hard": "unlimited"}}}]},
    {"rc": [{"bin": "a", "netbsd": {"sysctl": {"corename": "core", "stopexec": 1}}}]},
    {"env": {"PATH": "/bin", "EMPTY": "", "UNICODE_é": "ü"}},
    {"blk": {"vnd0": {"type": "vnd", "path": "images/app.iso"}}},
    {"blk": {"vnd12": {"type": "etfs", "path": "blkfront:sdb1"}}},
    {
        "blk": {
            "xbd0": {"type": "etfs", "path": "blkfront:xvda"},
            "d1": {"type": "etfs", "path": "blkfront:hdz9"},
        }
    },
    {"mount": {"/": {"source": "blk", "path": "/dev/ld0a"}}},
    {"mount": {"/kern": {"source": "kernfs"}}},
    {
        "mount": {
            "/tmp": {"source": "tmpfs"},
            "/t2": {"source": "tmpfs", "options": {"size": "512k"}},
        }
    },
    {
        "mount": {
            "/t": {"source": "tmpfs", "options": {"size": "1048576"}},
            "/u": {"source": "tmpfs", "options": {}},
        }
    },
    {"net": {}},
    {
        "net": {
            "interfaces": {
                "vioif0": {
                    "create": False,
                    "addrs": [
                        {"type": "inet", "method": "dhcp"},
                        {"type": "inet6", "method": "auto"},
                        {"type": "inet", "method": "static", "addr": "0.0.0.0/0"},
                        {"type": "inet", "method": "static", "addr": "255.255.255.255/32"},
                        {"type": "inet6", "method": "static", "addr": "2001:db8::1/64"},
                        {"type": "inet6", "method": "static", "addr": "::/0"},
                        {"type": "inet6", "method": "static", "addr": "::ffff:10.0.0.1/128"},
                    ],
                },
                "xenif12": {"create": True},
            },
            "gateways": [
                {"type": "inet", "addr": "10.0.0.1"},
                {"type": "inet6", "addr": "fe80::1"},
            ],
            "dns": {
                "nameservers": ["1.1.1.1", "2606:4700::1111", "9.9.9.9"],
                "search": ["example.org", "a", "x-y.example.", "a1.b2", "c", "d"],
            },
        }
    },
    {
        "netbsd": {
            "sysctl": {
                "kern.hostname": "box",
                "kern.domainname": "example.org",
                "kern.maxfiles": 4096,
                "net.inet.ip.forwarding": True,
                "net.inet6.ip6.accept_rtadv": "1",
                "proc.curproc.rlimit.descriptors.soft": 0,
                "proc.curproc.rlimit.stacksize.hard": "unlimited",
                "vfs.generic.*": 1,
            }
        }
    },
]


@pytest.mark.parametrize("data", ACCEPTED, ids=lambda d: ",".join(d) or "empty")
def test_the_schema_accepts(data: dict[str, Any]) -> None:
    assert validate_dialect(data) == []


# --- the schema: refused, each at its pointer ---------------------------------------------

ETFS_PATH = (
    "an etfs path is blkfront:xvd<letter>[<digits>], blkfront:sd... or blkfront:hd... "
    "(e.g. blkfront:xvda)"
)
NOT_IPV6 = (
    "not an IPv6 address (eight groups of hex digits, :: compression allowed, no prefix length)"
)
NOT_DOMAIN = (
    "a search domain must be a domain name (labels of letters, digits and '-', separated by dots)"
)
REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"rc": {"bin": "a"}}, "/rc", "must be an array, not an object"),
    ({"rc": [{}]}, "/rc/0", "missing required key 'bin'"),
    ({"rc": [{"bin": ""}]}, "/rc/0/bin", "bin must name a baked binary: a non-empty string"),
    ({"rc": [{"bin": 7}]}, "/rc/0/bin", "must be a string, not an integer"),
    (
        {"rc": [{"bin": "a", "args": ["a"]}]},
        "/rc/0/args",
        "unknown key 'args' (did you mean 'argv'?)",
    ),
    ({"rc": [{"bin": "a", "zzz": 1}]}, "/rc/0/zzz", "unknown key 'zzz'"),
    ({"rc": [{"bin": "a", "argv": []}]}, "/rc/0/argv", "must have at least 1 item"),
    ({"rc": [{"bin": "a", "argv": ["a", 1]}]}, "/rc/0/argv/1", "must be a string, not an integer"),
    (
        {"rc": [{"bin": "a", "runmode": "bg"}]},
        "/rc/0/runmode",
        'must be one of "", "&", "|", not "bg"',
    ),
    (
        {"rc": [{"bin": "a", "workdir": "srv"}]},
        "/rc/0/workdir",
        "workdir must be an absolute path (starting with /)",
    ),
    (
        {"rc": [{"bin": "a", "runmode": "|"}]},
        "/rc/0/runmode",
        'runmode "|" pipes into the next rc entry, but this is the last one',
    ),
    (
        {"rc": [{"bin": "a", "netbsd": {"sysctls": {}}}]},
        "/rc/0/netbsd/sysctls",
        "unknown key 'sysctls' (did you mean 'sysctl'?)",
    ),
    (
        {"rc": [{"bin": "a", "netbsd": {"sysctl": {"proc.curproc.rlimit.nofile.soft": 1}}}]},
        "/rc/0/netbsd/sysctl/proc.curproc.rlimit.nofile.soft",
        "per-process sysctl nodes are relative to proc.curproc: leave out the proc.curproc. prefix",
    ),
    (
        {"rc": [{"bin": "a", "netbsd": {"sysctl": {"rlimit.nofile.soft": -1}}}]},
        "/rc/0/netbsd/sysctl/rlimit.nofile.soft",
        'a resource limit is an integer >= 0 or "unlimited"',
    ),
    (
        {"rc": [{"bin": "a", "netbsd": {"sysctl": {"rlimit.nofile.soft": "lots"}}}]},
        "/rc/0/netbsd/sysctl/rlimit.nofile.soft",
        'a resource limit is an integer >= 0 or "unlimited"',
    ),
    (
        {"rc": [{"bin": "a", "netbsd": {"sysctl": {"rlimit.nofile": 1}}}]},
        "/rc/0/netbsd/sysctl/rlimit.nofile",
        "an rlimit node is rlimit.<resource>.<soft|hard>",
    ),
    ({"env": []}, "/env", "must be an object, not an array"),
    ({"env": {"": "x"}}, "/env/", "an environment variable name must not be empty"),
    ({"env": {"A=B": "x"}}, "/env/A=B", "an environment variable name must not contain '='"),
    ({"env": {"A": 1}}, "/env/A", "must be a string, not an integer"),
    ({"env": {"A": None}}, "/env/A", "must be a string, not null"),
    (
        {"blk": {"disk0": {"type": "vnd", "path": "a.img"}}},
        "/blk/disk0/type",
        'must be "etfs": only a device named vnd<unit> (vnd0, vnd1, ...) can be of type vnd',
    ),
    (
        {"blk": {"vnd": {"type": "vnd", "path": "a.img"}}},
        "/blk/vnd/type",
        'must be "etfs": only a device named vnd<unit> (vnd0, vnd1, ...) can be of type vnd',
    ),
    (
        {"blk": {"vnd0": {"type": "vnd", "path": ""}}},
        "/blk/vnd0/path",
        "a vnd device needs the path of the file to loop back over",
    ),
    (
        {"blk": {"vnd0": {"type": "loop", "path": "x"}}},
        "/blk/vnd0/type",
        'must be one of "vnd", "etfs", not "loop"',
    ),
    ({"blk": {"vnd0": {"type": "vnd"}}}, "/blk/vnd0", "missing required key 'path'"),
    ({"blk": {"xbd0": {"path": "blkfront:xvda"}}}, "/blk/xbd0", "missing required key 'type'"),
    (
        {"blk": {"xbd0": {"type": "etfs", "path": "/dev/xvda"}}},
        "/blk/xbd0/path",
        ETFS_PATH,
    ),
    (
        {"blk": {"vnd1": {"type": "etfs", "path": "blkfront:xvd"}}},
        "/blk/vnd1/path",
        ETFS_PATH,
    ),
    (
        {"blk": {"xbd0": {"type": "etfs", "path": "blkfront:xvda", "ro": True}}},
        "/blk/xbd0/ro",
        "unknown key 'ro'",
    ),
    (
        {"blk": {"a/b": {"type": "etfs", "path": "blkfront:xvda"}}},
        "/blk/a~1b",
        "a block device name must be non-empty and must not contain '/'",
    ),
    (
        {"mount": {"data": {"source": "kernfs"}}},
        "/mount/data",
        "a mount point must be an absolute path (starting with /)",
    ),
    (
        {"mount": {"/data": {"source": "blk"}}},
        "/mount/~1data",
        "a blk mount needs path, the block device (e.g. /dev/ld0a)",
    ),
    (
        {"mount": {"/data": {"source": "blk", "path": "ld0a"}}},
        "/mount/~1data/path",
        "a blk mount's path must be a block device under /dev/ (e.g. /dev/ld0a)",
    ),
    (
        {"mount": {"/data": {"source": "blk", "path": "/dev/ld0a", "options": {"size": "1M"}}}},
        "/mount/~1data/options",
        "options apply only to tmpfs mounts",
    ),
    (
        {"mount": {"/k": {"source": "kernfs", "path": "/dev/x"}}},
        "/mount/~1k/path",
        "path applies only to blk mounts",
    ),
    (
        {"mount": {"/t": {"source": "tmpfs", "path": "/dev/x"}}},
        "/mount/~1t/path",
        "path applies only to blk mounts",
    ),
    (
        {"mount": {"/m": {"source": "nfs"}}},
        "/mount/~1m/source",
        'must be one of "blk", "kernfs", "tmpfs", not "nfs"',
    ),
    ({"mount": {"/m": {"path": "/dev/ld0a"}}}, "/mount/~1m", "missing required key 'source'"),
    (
        {"mount": {"/m": {"source": "tmpfs", "fstype": "x"}}},
        "/mount/~1m/fstype",
        "unknown key 'fstype'",
    ),
    (
        {"mount": {"/t": {"source": "tmpfs", "options": {"size": "1MB"}}}},
        "/mount/~1t/options/size",
        "a tmpfs size is a number with an optional k, M or G suffix (1M, 512k, 1G)",
    ),
    (
        {"mount": {"/t": {"source": "tmpfs", "options": {"size": "1M\n"}}}},
        "/mount/~1t/options/size",
        "a tmpfs size is a number with an optional k, M or G suffix (1M, 512k, 1G)",
    ),
    (
        {"mount": {"/t": {"source": "tmpfs", "options": {"sise": "1M"}}}},
        "/mount/~1t/options/sise",
        "unknown key 'sise' (did you mean 'size'?)",
    ),
    (
        {"net": {"interface": {}}},
        "/net/interface",
        "unknown key 'interface' (did you mean 'interfaces'?)",
    ),
    (
        {"net": {"interfaces": {"eth-0": {}}}},
        "/net/interfaces/eth-0",
        "an interface name is a driver name and a unit number (vioif0, xenif0, ...)",
    ),
    (
        {"net": {"interfaces": {"vioif0": {"create": "yes"}}}},
        "/net/interfaces/vioif0/create",
        "must be a boolean, not a string",
    ),
    (
        {"net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "auto"}]}}}},
        "/net/interfaces/vioif0/addrs/0/method",
        'an inet address\'s method is "dhcp" or "static"',
    ),
    (
        {"net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet6", "method": "dhcp"}]}}}},
        "/net/interfaces/vioif0/addrs/0/method",
        'an inet6 address\'s method is "auto" or "static"',
    ),
    (
        {"net": {"interfaces": {"vioif0": {"addrs": [{"type": "ipx", "method": "dhcp"}]}}}},
        "/net/interfaces/vioif0/addrs/0/type",
        'must be one of "inet", "inet6", not "ipx"',
    ),
    (
        {"net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "static"}]}}}},
        "/net/interfaces/vioif0/addrs/0",
        "a static inet address needs addr (A.B.C.D/LEN)",
    ),
    (
        {"net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet6", "method": "static"}]}}}},
        "/net/interfaces/vioif0/addrs/0",
        "a static inet6 address needs addr (ADDR/PREFIXLEN)",
    ),
    (
        {
            "net": {
                "interfaces": {
                    "vioif0": {"addrs": [{"type": "inet", "method": "dhcp", "addr": "1.2.3.4/8"}]}
                }
            }
        },
        "/net/interfaces/vioif0/addrs/0/addr",
        'addr applies only to method "static"',
    ),
    *(
        (
            {
                "net": {
                    "interfaces": {
                        "vioif0": {"addrs": [{"type": "inet", "method": "static", "addr": bad}]}
                    }
                }
            },
            "/net/interfaces/vioif0/addrs/0/addr",
            "not an IPv4 address with prefix length (A.B.C.D/LEN, each part 0-255, LEN 0-32)",
        )
        for bad in ("10.0.0.1", "10.0.0.256/24", "10.0.0.1/33", "10.0.01.1/8", "10.0.0/8", "::1/64")
    ),
    *(
        (
            {
                "net": {
                    "interfaces": {
                        "vioif0": {"addrs": [{"type": "inet6", "method": "static", "addr": bad}]}
                    }
                }
            },
            "/net/interfaces/vioif0/addrs/0/addr",
            "not an IPv6 address with prefix length (ADDR/PREFIXLEN, PREFIXLEN 0-128)",
        )
        for bad in ("2001:db8::1", "2001:db8::1/129", "1::2::3/64", "10.0.0.1/8", "12345::/64")
    ),
    (
        {
            "net": {
                "gateways": [
                    {"type": "inet", "addr": "10.0.0.1"},
                    {"type": "inet", "addr": "10.0.0.2"},
                ]
            }
        },
        "/net/gateways",
        "more than one inet gateway: at most one gateway per address family",
    ),
    (
        {"net": {"gateways": [{"type": "inet6", "addr": "::1"}, {"type": "inet6", "addr": "::2"}]}},
        "/net/gateways",
        "more than one inet6 gateway: at most one gateway per address family",
    ),
    (
        {"net": {"gateways": [{"type": "inet", "addr": "10.0.0.1/24"}]}},
        "/net/gateways/0/addr",
        "not an IPv4 address (A.B.C.D, each 0-255, no prefix length)",
    ),
    (
        {"net": {"gateways": [{"type": "inet6", "addr": "fe80::1/64"}]}},
        "/net/gateways/0/addr",
        NOT_IPV6,
    ),
    ({"net": {"gateways": [{"type": "inet"}]}}, "/net/gateways/0", "missing required key 'addr'"),
    (
        {"net": {"dns": {"nameservers": ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"]}}},
        "/net/dns/nameservers",
        "at most 3 nameservers",
    ),
    (
        {"net": {"dns": {"nameservers": ["dns.example.org"]}}},
        "/net/dns/nameservers/0",
        "a nameserver must be an IPv4 or IPv6 address (no prefix length)",
    ),
    (
        {"net": {"dns": {"nameservers": [1]}}},
        "/net/dns/nameservers/0",
        "must be a string, not an integer",
    ),
    (
        {"net": {"dns": {"search": ["a", "b", "c", "d", "e", "f", "g"]}}},
        "/net/dns/search",
        "at most 6 search domains",
    ),
    (
        {"net": {"dns": {"search": ["a..b"]}}},
        "/net/dns/search/0",
        NOT_DOMAIN,
    ),
    (
        {"net": {"dns": {"search": ["-a.org"]}}},
        "/net/dns/search/0",
        NOT_DOMAIN,
    ),
    ({"net": {"dns": {"domain": "x"}}}, "/net/dns/domain", "unknown key 'domain'"),
    (
        {"netbsd": {"sysctls": {}}},
        "/netbsd/sysctls",
        "unknown key 'sysctls' (did you mean 'sysctl'?)",
    ),
    (
        {"netbsd": {"sysctl": {"hostname": "x"}}},
        "/netbsd/sysctl/hostname",
        "a sysctl node is dotted lowercase names (kern.hostname, net.inet.tcp.sendspace)",
    ),
    (
        {"netbsd": {"sysctl": {"Kern.Hostname": "x"}}},
        "/netbsd/sysctl/Kern.Hostname",
        "a sysctl node is dotted lowercase names (kern.hostname, net.inet.tcp.sendspace)",
    ),
    (
        {"netbsd": {"sysctl": {"kern.hostname": 1}}},
        "/netbsd/sysctl/kern.hostname",
        "must be a string, not an integer",
    ),
    (
        {"netbsd": {"sysctl": {"kern.domainname": True}}},
        "/netbsd/sysctl/kern.domainname",
        "must be a string, not a boolean",
    ),
    (
        {"netbsd": {"sysctl": {"kern.maxfiles": 1.5}}},
        "/netbsd/sysctl/kern.maxfiles",
        "must be an integer or a boolean or a string, not a number",
    ),
    (
        {"netbsd": {"sysctl": {"kern.maxfiles": None}}},
        "/netbsd/sysctl/kern.maxfiles",
        "must be an integer or a boolean or a string, not null",
    ),
    (
        {"netbsd": {"sysctl": {"proc.curproc.rlimit.nofile.soft": -5}}},
        "/netbsd/sysctl/proc.curproc.rlimit.nofile.soft",
        'a resource limit is an integer >= 0 or "unlimited"',
    ),
    (
        {"netbsd": {"sysctl": {"proc.curproc.rlimit.nofile": 5}}},
        "/netbsd/sysctl/proc.curproc.rlimit.nofile",
        "an rlimit node is proc.curproc.rlimit.<resource>.<soft|hard>",
    ),
]


@pytest.mark.parametrize(
    ("data", "pointer", "message"),
    REFUSED,
    ids=[f"{pointer}:{index}" for index, (_, pointer, _) in enumerate(REFUSED)],
)
def test_the_schema_refuses_at_the_pointer(
    data: dict[str, Any], pointer: str, message: str
) -> None:
    assert pointers(data) == [(pointer, message)]


def test_every_violation_is_reported_sorted_by_pointer() -> None:
    data: dict[str, Any] = {
        "rc": [{"bin": "a"}] * 10 + [{"bin": "", "runmode": "|"}],
        "env": {"A": 1},
        "blk": {"disk0": {"type": "vnd", "path": "x"}},
        "mount": {
            "/data": {"source": "blk", "path": "ld0a"},
            "/tmp": {"source": "tmpfs", "options": {"size": "x"}},
        },
    }
    data["rc"][2] = {"bin": "a", "argz": []}
    assert [pointer for pointer, _ in pointers(data)] == [
        "/blk/disk0/type",
        "/env/A",
        "/mount/~1data/path",
        "/mount/~1tmp/options/size",
        "/rc/2/argz",
        "/rc/10/bin",
        "/rc/10/runmode",
    ]


def test_several_missing_keys_are_each_reported() -> None:
    assert pointers({"blk": {"xbd0": {}}}) == [
        ("/blk/xbd0", "missing required key 'path'"),
        ("/blk/xbd0", "missing required key 'type'"),
    ]


def test_a_bad_key_and_its_bad_value_are_both_reported() -> None:
    assert pointers({"net": {"interfaces": {"eth-0": {"create": 1}}}}) == [
        (
            "/net/interfaces/eth-0",
            "an interface name is a driver name and a unit number (vioif0, xenif0, ...)",
        ),
        ("/net/interfaces/eth-0/create", "must be a boolean, not an integer"),
    ]


def test_violations_carry_value_and_expected() -> None:
    [violation] = validate_dialect({"rc": [{"bin": "a", "runmode": "bg"}]})
    assert violation.value == "bg"
    assert violation.expected == 'one of "", "&", "|"'
    [violation] = validate_dialect({"rc": [{"bin": "a", "args": ["x"]}]})
    assert violation.value == ["x"]
    assert violation.expected == "one of 'argv', 'bin', 'netbsd', 'runmode', 'workdir'"
    [violation] = validate_dialect({"env": {"A=B": "x"}})
    assert violation.value == "A=B"
    with pytest.raises(dataclasses.FrozenInstanceError):
        violation.pointer = "/x"  # type: ignore[misc]


def test_a_pipe_before_the_last_entry_is_fine() -> None:
    assert pointers({"rc": [{"bin": "a", "runmode": "|"}, {"bin": "b"}]}) == []
    assert pointers({"rc": [{"bin": "a"}, {"bin": "b", "runmode": "|"}]}) == [
        ("/rc/1/runmode", 'runmode "|" pipes into the next rc entry, but this is the last one')
    ]


def test_top_level_keys_are_left_to_routing() -> None:
    assert pointers({"cmdline": "x", "mirage": {"anything": True}}) == []
    assert explainer.load("config")["additionalProperties"] is True


# --- sections, base pointers and skipped subtrees --------------------------------------------


def test_one_section_with_its_base_pointer() -> None:
    net = {
        "interfaces": {
            "vioif0": {"addrs": [{"type": "inet", "method": "static", "addr": "1.2.3.4"}]}
        }
    }
    assert pointers(net, section="net", base_pointer="/net") == [
        (
            "/net/interfaces/vioif0/addrs/0/addr",
            "not an IPv4 address with prefix length (A.B.C.D/LEN, each part 0-255, LEN 0-32)",
        )
    ]
    assert pointers(
        {"/data": {"source": "kernfs", "path": "/x"}}, section="mount", base_pointer="/mount"
    ) == [("/mount/~1data/path", "path applies only to blk mounts")]
    assert pointers([{"bin": "a", "runmode": "|"}], section="rc", base_pointer="/rc") == [
        ("/rc/0/runmode", 'runmode "|" pipes into the next rc entry, but this is the last one')
    ]
    # A section is checked as that section, whatever it holds.
    assert pointers({"bin": "a"}, section="rc", base_pointer="/rc") == [
        ("/rc", "must be an array, not an object")
    ]


@pytest.mark.parametrize("section", ["rc", "env", "blk", "mount", "net", "netbsd"])
def test_every_section_has_its_own_definition(section: str) -> None:
    assert section in explainer.load("config")["$defs"]
    empty: Any = [] if section == "rc" else {}
    assert validate_dialect(empty, section=section, base_pointer="/" + section) == []


def test_an_unknown_section_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown section 'nett'"):
        validate_dialect({}, section="nett")


def test_skipped_subtrees_belong_to_other_delegates() -> None:
    data = {
        "net": {
            "interfaces": {
                "vioif0": {
                    "addrs": [{"type": "inet", "method": "ipam", "ipam": {"type": "host-local"}}]
                }
            },
            "dns": {"nameservers": ["x"]},
        },
        "net2": {},
        "rc": [{"bin": ""}],
    }
    everything = [pointer for pointer, _ in pointers(data)]
    assert everything == [
        "/net/dns/nameservers/0",
        "/net/interfaces/vioif0/addrs/0/ipam",
        "/net/interfaces/vioif0/addrs/0/method",
        "/rc/0/bin",
    ]
    skipped = [pointer for pointer, _ in pointers(data, skip=["/net/interfaces/vioif0/addrs/0"])]
    assert skipped == ["/net/dns/nameservers/0", "/rc/0/bin"]
    assert [pointer for pointer, _ in pointers(data, skip=["/net", "/rc/0/bin"])] == []
    # "/ne" is not an ancestor of "/net/...".
    assert [pointer for pointer, _ in pointers(data, skip=["/ne", "/r"])] == everything


# --- check: violations as errors at file:line:col ------------------------------------------


def test_check_raises_every_violation_with_its_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '{\n  "rc": [{"bin": "a", "args": ["a"]}],\n'
        '  "mount": {\n    "/data": {"source": "blk"}\n  }\n}\n',
    )
    with pytest.raises(Problems) as caught:
        check(load(path))
    found = [(p.file, p.line, p.col, p.pointer, p.message) for p in caught.value.problems]
    assert found == [
        (path, 4, 14, "/mount/~1data", "a blk mount needs path, the block device (e.g. /dev/ld0a)"),
        (path, 2, 31, "/rc/0/args", "unknown key 'args' (did you mean 'argv'?)"),
    ]
    assert all(isinstance(p, InputError) for p in caught.value.problems)
    assert errors.exit_code_of(caught.value) == 2
    assert caught.value.problems[0].detail == (
        'value: {"source": "blk"}',
        "expected: a path key",
    )


def test_check_raises_one_violation_as_itself(tmp_path: Path) -> None:
    config = load(write(tmp_path, '{"env": {"A": 1}}'))
    with pytest.raises(InputError) as caught:
        check(config)
    assert messages.plain(caught.value).splitlines() == [
        f"bakeplan: invalid input: {config.source}:1:15 at /env/A: "
        "must be a string, not an integer",
        "  value: 1",
        "  expected: a string",
    ]


def test_check_skips_what_others_own(tmp_path: Path) -> None:
    config = load(write(tmp_path, '{"net": {"mirage": true}}'))
    check(config, skip=["/net"])
    with pytest.raises(InputError):
        check(config)


# --- the schema file itself ----------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import (  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
        Draft202012Validator,  # imported here: the module's import must stay light
    )

    schema = explainer.load("config")
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://bakeplan.dev/schemas/config.json"
    assert schema["title"]
    assert {key: value["$ref"] for key, value in schema["properties"].items()} == {
        key: f"#/$defs/{key}" for key in ("rc", "env", "blk", "mount", "net", "netbsd")
    }


def _properties_without_description(node: Any, path: str = "") -> list[str]:
    """Every declared property lacking a description, outside conditional branches."""
    missing: list[str] = []
    if isinstance(node, dict):
        for key, child in node.items():
            if key in ("if", "then", "else", "contains", "not"):
                continue
            if key == "properties":
                missing.extend(
                    f"{path}/properties/{name}"
                    for name, sub in child.items()
                    if "description" not in sub
                )
            missing.extend(_properties_without_description(child, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            missing.extend(_properties_without_description(child, f"{path}/{index}"))
    return missing


def test_every_property_has_a_description_for_editors() -> None:
    schema = explainer.load("config")
    assert _properties_without_description(schema) == []
    assert all("description" in definition for definition in schema["$defs"].values())


def test_strict_inside_sections() -> None:
    defs = explainer.load("config")["$defs"]
    for name in (
        "rcEntry",
        "blkDevice",
        "blkEtfsDevice",
        "mountEntry",
        "net",
        "interface",
        "address",
        "gateway",
        "netbsd",
    ):
        assert defs[name]["additionalProperties"] is False, name


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(explainer.load("config")["$defs"][name]["pattern"])


@PROPERTY
@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_every_ipv6_address_matches_the_ipv6_pattern(number: int) -> None:
    address = ipaddress.IPv6Address(number)
    for text in (str(address), address.exploded, address.exploded.upper()):
        assert _pattern("ipv6").search(text), text


@PROPERTY
@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=0, max_value=32))
def test_every_ipv4_address_matches_the_ipv4_patterns(number: int, length: int) -> None:
    address = str(ipaddress.IPv4Address(number))
    assert _pattern("ipv4").search(address)
    assert _pattern("ipv4Prefix").search(f"{address}/{length}")


@PROPERTY
@given(st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45))
def test_the_ipv6_pattern_agrees_with_ipaddress(text: str) -> None:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        valid = False
    else:
        valid = True
    assert bool(_pattern("ipv6").search(text)) == valid


@PROPERTY
@given(st.text(alphabet="0123456789.", max_size=16))
def test_the_ipv4_pattern_agrees_with_ipaddress(text: str) -> None:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        valid = False
    else:
        valid = True
    assert bool(_pattern("ipv4").search(text)) == valid


@pytest.mark.parametrize(
    "text",
    [
        "::",
        "::1",
        "1::",
        "fe80::1:2",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "::ffff:1.2.3.4",
        "64:ff9b::192.0.2.33",
    ],
)
def test_ipv6_forms(text: str) -> None:
    assert _pattern("ipv6").search(text)
    assert _pattern("ipv6Prefix").search(text + "/128")
    assert not _pattern("ipv6Prefix").search(text + "/129")
    assert not _pattern("ipv6").search(text + "\n")


# --- the schemas package -------------------------------------------------------------------


def test_schema_helpers_are_generic_and_cached() -> None:
    assert "config" in explainer.names()
    first = explainer.load("config")
    first["title"] = "changed"
    assert explainer.load("config")["title"] != "changed"
    assert explainer.validator("config") is explainer.validator("config")
    assert explainer.validator("config", "#/$defs/net") is explainer.validator(
        "config", "#/$defs/net"
    )
    assert explainer.validator("config", "/$defs/env").is_valid({"A": "b"})
    assert not explainer.validator("config", "#/$defs/env").is_valid({"A": 1})
    with pytest.raises(KeyError):
        explainer.load("nope")


def test_violations_of_a_delegates_own_schema() -> None:
    own = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"net": {"$ref": "https://bakeplan.dev/schemas/config.json#/$defs/net"}},
    }
    found = explainer.violations_of(own, {"net": {"gateway": []}}, base_pointer="/x")
    assert [(v.pointer, v.message) for v in found] == [
        ("/x/net/gateway", "unknown key 'gateway' (did you mean 'gateways'?)")
    ]
    assert explainer.explain("config", {"env": {"A": 1}}) == (
        "/env/A: must be a string, not an integer",
    )
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        explainer.violations_of({"type": 5}, {})


def test_loading_a_config_does_not_import_jsonschema() -> None:
    # `bakeplan --version` and the plain loading path must not pay for jsonschema.
    code = (
        "import sys, orchestrator.core.config, orchestrator.core.jsontext;"
        "import orchestrator.schemas.explainer;"
        "heavy = sorted(m for m in sys.modules if m.startswith(('jsonschema', 'referencing')));"
        "sys.exit(str(heavy) if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")
