"""The runtime config for the specification's parser as it really reads it: ASCII text,
baked names in rc, parents mounted first, and what it cannot set up refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.rumprun import spec as specparser
from orchestrator.rumprun.runtime import convert, text
from tests.helpers_cli import run_main


def to_spec(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    document, notes, problems = specparser.to_spec(config)
    assert problems == []
    return document, notes


def test_the_text_is_ascii_with_escapes_and_means_the_same() -> None:
    config = {"env": {"GREETING": "grüße ✓"}, "netbsd": {"sysctl": {"kern.hostname": "hôte"}}}
    runtime = convert(config, "spec")
    assert not isinstance(runtime, list)
    written = text(runtime.as_json())
    assert written.isascii()
    assert '"GREETING":"gr\\u00fc\\u00dfe \\u2713"' in written
    assert json.loads(written) == config


def test_a_character_beyond_the_basic_plane_is_refused_at_its_pointer() -> None:
    found = convert({"env": {"SMILE": "\U0001f600"}}, "spec")
    assert isinstance(found, list)
    assert [(p.pointer, p.exit_code) for p in found] == [("/env/SMILE", 3)]
    assert "two halves" in found[0].message


def test_rc_bin_is_the_baked_name_and_argv0_stays() -> None:
    document, notes = to_spec(
        {"rc": [{"bin": "./wopr.bin"}, {"bin": "out/x", "argv": ["x", "-v"]}]}
    )
    assert document["rc"] == [
        {"bin": "wopr.bin", "argv": ["./wopr.bin"]},
        {"bin": "x", "argv": ["x", "-v"]},
    ]
    assert notes[0] == (
        "rc[0].bin './wopr.bin' written as 'wopr.bin': the specification's parser matches "
        "the baked name whole"
    )


def test_mounts_are_put_parents_first_and_nothing_else_moves() -> None:
    mounts = {
        "/b": {"source": "kernfs"},
        "/data/inner": {"source": "blk", "path": "/dev/ld1a"},
        "/a": {"source": "kernfs"},
        "/data": {"source": "blk", "path": "/dev/ld0a"},
    }
    document, notes = to_spec({"mount": mounts})
    assert list(document["mount"]) == ["/b", "/data", "/data/inner", "/a"]
    assert notes == [
        "mounts put parents first (/b, /data, /data/inner, /a): rumprun mounts in order"
    ]
    assert to_spec({"mount": {"/a": {"source": "kernfs"}}})[1] == []


def test_a_vnd_over_a_file_of_a_mounted_disk_is_refused() -> None:
    config = {
        "blk": {"vnd0": {"type": "vnd", "path": "/disk/inner.iso"}},
        "mount": {"/disk": {"source": "blk", "path": "/dev/ld0a"}},
    }
    _, _, problems = specparser.to_spec(config)
    assert [(p.pointer, p.exit_code) for p in problems] == [("/blk/vnd0", 3)]
    assert "sets up blk devices before it mounts" in problems[0].message
    config["blk"]["vnd0"]["path"] = "/inner.iso"  # on the root file system: fine
    assert specparser.to_spec(config)[2] == []


@pytest.mark.parametrize("dialect", ["master", "spec"])
def test_creating_a_hw_nic_is_refused_on_hw_in_either_dialect(
    dialect: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A hw NIC exists already; both rumpruns stop at boot on ifcreate (EINVAL).
    address = {"type": "inet", "method": "static", "addr": "10.0.0.2/24"}
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "rc": [{"bin": "a"}],
                "net": {"interfaces": {"vioif0": {"create": True, "addrs": [address]}}},
            }
        )
    )
    registry = tmp_path / "registry.json"
    registry.write_text('{"delegates": []}')
    argv = ["plan", str(config), "-r", str(registry), "--rumprun", dialect]
    code, _, err = run_main(capsys, *argv)
    assert code == 3
    assert "at /net/interfaces/vioif0/create: creating an interface" in err
    assert "needs the xen platform" in err
    code, _, err = run_main(capsys, *argv, "-b", "xen_pv")
    assert code == 0, err
