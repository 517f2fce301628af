"""``bakeplan upgrade``: every legacy specimen, field by field, and the reader's habits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.cli import main
from orchestrator.core import config as dialect
from orchestrator.errors import InputError
from orchestrator.rumprun.upgrade import split_args, upgrade_file, upgrade_text

GHOST = {
    "rc": [{"bin": "node", "argv": ["node", "--code-range-size=64"]}],
    "env": {"GHOST_CONFIG": "/ghost_data/config.js"},
    "mount": {"/ghost_data": {"source": "blk", "path": "/dev/ld0a"}},
    "net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}}},
}


def upgraded(conformance: Path, name: str) -> dict[str, Any]:
    result = upgrade_file(str(conformance / "rumprun" / "legacy" / name))
    assert dialect.validate_dialect(result.config) == []
    return result.config


def test_every_legacy_specimen_upgrades_to_a_valid_config(conformance: Path) -> None:
    specimens = sorted((conformance / "rumprun" / "legacy").iterdir())
    assert len(specimens) == 5
    for path in specimens:
        result = upgrade_file(str(path))
        assert dialect.validate_dialect(result.config) == [], path.name
        assert result.notes, path.name


def test_nodejs_ghost_field_by_field(conformance: Path) -> None:
    config = upgraded(conformance, "nodejs-ghost.json")
    assert config["rc"] == GHOST["rc"]
    assert config["env"] == GHOST["env"]
    assert config["mount"] == GHOST["mount"]
    assert config["net"] == GHOST["net"]
    assert set(config) == {"rc", "env", "mount", "net"}


def test_qemu_append_text_upgrades_to_the_same_config(conformance: Path) -> None:
    result = upgrade_file(str(conformance / "rumprun" / "legacy" / "nodejs-ghost.qemu-append.txt"))
    assert result.config == GHOST
    assert any("doubled" in note for note in result.notes)


def test_nodejs_nodekick_bin_is_the_basename_of_argv0(conformance: Path) -> None:
    config = upgraded(conformance, "nodejs-nodekick.json")
    assert config["rc"] == [{"bin": "node", "argv": ["/nodekick/node", "/nodekick/server.js"]}]
    assert config["mount"] == {"/nodekick": {"source": "blk", "path": "/dev/ld0a"}}
    assert "env" not in config


def test_tor_launcher_output_static_net_with_gateway(conformance: Path) -> None:
    config = upgraded(conformance, "tor.launcher-output.txt")
    assert config["rc"] == [{"bin": "tor.bin", "argv": ["tor.bin", "-f", "/tor/conf/torrc"]}]
    assert config["mount"] == {"/tor": {"source": "blk", "path": "/dev/ld0a"}}
    assert config["net"]["interfaces"] == {
        "vioif0": {"addrs": [{"type": "inet", "method": "static", "addr": "10.10.10.10/24"}]}
    }
    assert config["net"]["gateways"] == [{"type": "inet", "addr": "10.10.10.1"}]


def test_erlang_ec2_repeated_blk_become_numbered_vnd_devices(conformance: Path) -> None:
    config = upgraded(conformance, "erlang-ec2.launcher-output.txt")
    assert config["blk"] == {
        "vnd0": {"type": "vnd", "path": "images/erlang.iso"},
        "vnd1": {"type": "vnd", "path": "images/app.iso"},
    }
    assert config["mount"] == {
        "/opt/erlang": {"source": "blk", "path": "/dev/vnd0d"},
        "/apps/erlang": {"source": "blk", "path": "/dev/vnd1d"},
    }
    assert config["net"] == {
        "interfaces": {"xenif0": {"create": True, "addrs": [{"type": "inet", "method": "dhcp"}]}}
    }
    assert config["env"] == {"ERL_INETRC": "/opt/erlang/erl_inetrc"}
    assert config["netbsd"] == {"sysctl": {"kern.hostname": "rumprun-bin_beam.xen_pv.bin.ec2dir"}}
    assert config["rc"][0]["bin"] == "beam.xen_pv.bin"
    assert config["rc"][0]["argv"][:4] == ["bin/beam.xen_pv.bin", "--", "-no_epmd", "-root"]
    assert config["rc"][0]["argv"][-2:] == ["echoserver", "start"]
    assert len(config["rc"][0]["argv"]) == 16


def test_every_decision_names_its_line(conformance: Path) -> None:
    result = upgrade_file(
        str(conformance / "rumprun" / "legacy" / "erlang-ec2.launcher-output.txt")
    )
    assert "line 21: cmdline -> rc[0] (bin 'beam.xen_pv.bin', argv of 16)" in result.notes[-2]
    assert any(n.startswith("line 4: cloner") for n in result.notes)
    assert any(n.startswith("line 22: hostname") for n in result.notes)


def test_launcher_kernfs_entry_rc_testing_repeated_env_and_ipv6() -> None:
    text = """{,
    "rc_TESTING": [{"bin": "a", "argv": ["-x"], "runmode": "&"}, {"bin": "b", "argv": []}],
    "env": "A=1",
    "env": "B=x=y",
    "env": "A=2",
    "blk": {"source": "dev", "path": "virtual", "fstype": "kernfs", "mountpoint": "/kern",},
    "blk": {"source": "etfs", "path": "xvda", "fstype": "blk", "mountpoint": "/data"},
    "net": {"if": "xenif0", "cloner": "false", "type": "inet6", "method": "static",
            "addr": "2001:db8::2", "mask": "64", "gw": "2001:db8::1"},
    "net": {"if": "xenif0", "type": "inet", "method": "dhcp", "gw": "10.0.0.1"},
},"""
    result = upgrade_text(text, "x.cfg")
    config = result.config
    assert config["rc"] == [
        {"bin": "a", "argv": ["a", "-x"], "runmode": "&"},
        {"bin": "b", "argv": ["b"]},
    ]
    assert config["env"] == {"A": "2", "B": "x=y"}
    assert config["blk"] == {"xvda": {"type": "etfs", "path": "blkfront:xvda"}}
    assert config["mount"] == {
        "/kern": {"source": "kernfs"},
        "/data": {"source": "blk", "path": "/dev/xvda"},
    }
    assert config["net"] == {
        "interfaces": {
            "xenif0": {
                "create": True,
                "addrs": [
                    {"type": "inet6", "method": "static", "addr": "2001:db8::2/64"},
                    {"type": "inet", "method": "dhcp"},
                ],
            }
        },
        "gateways": [{"type": "inet6", "addr": "2001:db8::1"}],
    }
    assert dialect.validate_dialect(config) == []
    notes = "\n".join(result.notes)
    assert "line 5: env A set again" in notes
    assert "cloner 'false' -> net.interfaces.xenif0.create true (master created" in notes
    assert "line 10: gw ignored with method dhcp" in notes


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{"cmdline": "x",\n "bogus": 1}', 2, "unknown key 'bogus'"),
        ('{"cmdline": "x",\n "rc": []}', 2, "specification dialect"),
        ('{"env": "A=1"}', 1, "no cmdline or rc_TESTING"),
        ('{"cmdline": "x",\n "env": "NOEQUALS"}', 2, 'not "NAME=VALUE"'),
        (
            '{"cmdline": "x",\n "net": {"if": "vioif0", "type": "inet",\n "method": "auto"}}',
            3,
            "method 'auto' for inet",
        ),
        (
            '{"cmdline": "x", "net": {"if": "v0", "type": "inet", "method": "static",\n'
            ' "addr": "10.0.0.1", "mask": "255.255.255.0"}}',
            2,
            "not a prefix length",
        ),
        ('{"cmdline": "x",\n "blk": {"source": "nfs", "path": "/x"}}', 2, "unsupported blk source"),
        (
            '{"cmdline": "x",\n "blk": {"source": "dev", "path": "/dev/ld0a", "mountpoint": "/d"}}',
            2,
            "no fstype",
        ),
        ('{"cmdline": "x"\n "env": "A=1"}', 2, "a comma is missing"),
        (
            '{"cmdline": "x",\n "net": {"if": "v0", "type": "inet", "method": "dhcp", "mtu": "9"}}',
            2,
            "unexpected key 'mtu' in net",
        ),
        ('{"cmdline": "",\n}', 1, "cmdline is empty"),
        (
            '{"cmdline": "x",\n "net": {"if": "v0", "type": "inet", "method": "static",\n'
            ' "addr": "10.0.0.300", "mask": "24"}}',
            3,
            "not an address",
        ),
        ('{"cmdline": "x",\n "hostname": 7}', 2, "hostname must be a string"),
        ('{"cmdline": "x"', 1, "never closed"),
        ('{"cmdline": "x"} tail', 1, "text after"),
    ],
)
def test_what_cannot_be_mapped_is_an_error_at_its_line(text: str, line: int, message: str) -> None:
    with pytest.raises(InputError) as caught:
        upgrade_text(text, "legacy.json")
    assert caught.value.file == "legacy.json"
    assert caught.value.line == line
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        ("a b  c", ["a", "b", "c"]),
        ("a 'b c' \"d e\"", ["a", "b c", "d e"]),
        ("a\\ b c", ["a b", "c"]),
        ("say 'it''s'", ["say", "its"]),
        ('x "a\\"b"', ["x", 'a"b']),
        ("  lead\ttab\nnl ", ["lead", "tab", "nl"]),
        ("e ''", ["e", ""]),
    ],
)
def test_cmdline_splits_as_rumprun_parseargs(text: str, argv: list[str]) -> None:
    assert split_args(text) == argv


@given(st.lists(st.text(alphabet="ab c'\"\\", max_size=6), min_size=1, max_size=5))
def test_quoted_arguments_survive_a_split(args: list[str]) -> None:
    quoted = " ".join("'" + a.replace("\\", "\\\\").replace("'", "'\\''") + "'" for a in args)
    assert split_args(quoted) == args


def test_cli_upgrade_writes_atomically_and_reports_on_stderr(
    conformance: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "spec.json"
    code = main(
        [
            "upgrade",
            str(conformance / "rumprun" / "legacy" / "tor.launcher-output.txt"),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    assert json.loads(out.read_text())["rc"][0]["bin"] == "tor.bin"
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "upgrade: line 1: cmdline -> rc[0] (bin 'tor.bin'" in captured.err
    # The upgraded file is accepted by plan-time loading.
    assert dialect.load(str(out)).data["net"]["gateways"][0]["addr"] == "10.10.10.1"


def test_cli_upgrade_failure_is_exit_2_with_the_line_and_no_file(tmp_path: Path) -> None:
    legacy = tmp_path / "old.json"
    legacy.write_text('{"cmdline": "x",\n "blk": {"source": "nfs", "path": "/x"}}')
    out = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "upgrade", str(legacy), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert f"{legacy}:2: unsupported blk source 'nfs'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_the_legacy_refusal_names_the_upgrade_command(conformance: Path) -> None:
    path = str(conformance / "rumprun" / "legacy" / "nodejs-ghost.json")
    with pytest.raises(InputError) as caught:
        dialect.load(path)
    assert caught.value.hint is not None
    assert f"bakeplan upgrade {path}" in caught.value.hint
