"""rumprun master's dialect: the conversion a plan makes, its exact bytes, and the table
shared with ``bakeplan upgrade`` (converting and upgrading give the config back)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import BakeplanError, Problems, exit_code_of
from orchestrator.rumprun import master
from orchestrator.rumprun.upgrade import upgrade_text
from tests.helpers_cli import SPEC, run_main

REPO = Path(__file__).resolve().parents[1]
HYBRID = REPO / "examples" / "hybrid"


def refusals(config: dict[str, Any], binaries: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Every (pointer, message) master cannot say of ``config``; each is exit 3."""
    with pytest.raises(BakeplanError) as caught:
        master.to_master(config, binaries)
    problems = caught.value.problems if isinstance(caught.value, Problems) else (caught.value,)
    assert {exit_code_of(p) for p in problems} == {3}
    assert all(p.hint and "--rumprun spec" in p.hint for p in problems)
    return [(p.pointer or "", p.message) for p in problems]


def pointers(config: dict[str, Any], binaries: tuple[str, ...] = ()) -> list[str]:
    return [pointer for pointer, _ in refusals(config, binaries)]


def members(config: dict[str, Any], binaries: tuple[str, ...] = ()) -> list[list[Any]]:
    return master.to_master(config, binaries).as_json()


# --- programs ----------------------------------------------------------------------------


def test_rc_becomes_rc_testing_whose_bin_is_argv0_and_argv_the_rest() -> None:
    config = {"rc": [{"bin": "www", "argv": ["www", "-v"]}, {"bin": "db", "runmode": "&"}]}
    assert members(config, ("out/www", "db")) == [
        [
            "rc_TESTING",
            [{"bin": "www", "argv": ["-v"]}, {"bin": "db", "argv": [], "runmode": "&"}],
        ]
    ]


def test_argv0_other_than_bin_is_what_master_passes_as_argv0() -> None:
    # master's bin is only argv[0]; the binary is chosen by position.
    assert members({"rc": [{"bin": "www", "argv": ["httpd", "-f"]}]}) == [
        ["rc_TESTING", [{"bin": "httpd", "argv": ["-f"]}]]
    ]


def test_programs_must_follow_the_bake_order_master_runs_them_in() -> None:
    found = refusals({"rc": [{"bin": "b"}, {"bin": "a"}]}, ("a", "b"))
    assert [p for p, _ in found] == ["/rc/0/bin", "/rc/1/bin"]
    assert "position 1 bakes 'a'" in found[0][1]


def test_more_programs_than_baked_binaries_is_refused() -> None:
    assert pointers({"rc": [{"bin": "a"}, {"bin": "a"}]}, ("a",)) == ["/rc/1"]


def test_a_binary_run_twice_is_refused_without_bin_too() -> None:
    assert pointers({"rc": [{"bin": "a"}, {"bin": "a"}]}) == ["/rc/1/bin"]


def test_without_rc_each_baked_binary_runs_in_order() -> None:
    assert members({}, ("x/one", "two")) == [
        ["rc_TESTING", [{"bin": "one", "argv": []}, {"bin": "two", "argv": []}]]
    ]


def test_without_rc_or_binaries_master_would_halt_on_no_bins() -> None:
    assert pointers({"env": {"A": "1"}}) == [""]


def test_several_programs_without_bin_warn_of_the_bake_order() -> None:
    notes = master.to_master({"rc": [{"bin": "a"}, {"bin": "b"}]}).notes
    assert notes == (
        "rumprun master runs the baked binaries by position: bake them in this order: a, b "
        "(give --bin to have it checked)",
    )
    assert master.to_master({"rc": [{"bin": "a"}]}).notes == ()


def test_workdir_and_per_program_sysctls_are_refused() -> None:
    config = {
        "rc": [
            {"bin": "a", "workdir": "/data", "netbsd": {"sysctl": {"rlimit.nofile.soft": 9}}},
            {"bin": "b", "workdir": "/"},
        ]
    }
    assert pointers(config) == ["/rc/0/workdir", "/rc/0/netbsd"]


# --- env, host name, sysctl -----------------------------------------------------------------


def test_env_becomes_repeated_keys_in_the_exact_bytes() -> None:
    got = members({"rc": [{"bin": "a"}], "env": {"TZ": "UTC", "LANG": "C.UTF-8"}})
    assert got[1:] == [["env", "TZ=UTC"], ["env", "LANG=C.UTF-8"]]
    assert master.encode(got) == (
        '{"rc_TESTING":[{"bin":"a","argv":[]}],"env":"TZ=UTC","env":"LANG=C.UTF-8"}'
    )


def test_the_host_name_is_the_only_sysctl_master_sets() -> None:
    config = {"rc": [{"bin": "a"}], "netbsd": {"sysctl": {"kern.hostname": "h", "kern.x": 1}}}
    assert pointers(config) == ["/netbsd/sysctl/kern.x"]
    assert members({"rc": [{"bin": "a"}], "netbsd": {"sysctl": {"kern.hostname": "h"}}})[1] == [
        "hostname",
        "h",
    ]


@pytest.mark.parametrize("text", ['say "hi"', "back\\slash", "tab\there", "new\nline"])
def test_strings_master_would_read_escaped_are_refused(text: str) -> None:
    assert pointers({"rc": [{"bin": "a"}], "env": {"V": text}}) == ["/env/V"]


def test_utf8_passes_as_it_is() -> None:
    got = members({"rc": [{"bin": "a"}], "env": {"NAME": "Grüße"}})
    assert master.encode(got).endswith('"env":"NAME=Grüße"}')


def test_a_key_master_does_not_know_is_refused_it_would_halt_the_boot() -> None:
    found = refusals({"rc": [{"bin": "a"}], "mirage": {}})
    assert found[0][0] == "/mirage"
    assert "no match for key 'mirage'" in found[0][1]


# --- disks and mounts -----------------------------------------------------------------------


def test_mounts_become_blk_entries_in_mount_order() -> None:
    config = {
        "rc": [{"bin": "a"}],
        "mount": {
            "/etc": {"source": "blk", "path": "/dev/ld0a"},
            "/kern": {"source": "kernfs"},
            "/tmp": {"source": "tmpfs", "options": {"size": "1024k"}},
        },
    }
    assert members(config)[1:] == [
        ["blk", {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/etc"}],
        ["blk", {"source": "dev", "path": "virtual", "fstype": "kernfs", "mountpoint": "/kern"}],
    ]


def test_tmpfs_other_than_masters_own_is_refused() -> None:
    config = {
        "rc": [{"bin": "a"}],
        "mount": {
            "/tmp": {"source": "tmpfs", "options": {"size": "4M"}},
            "/scratch": {"source": "tmpfs"},
        },
    }
    assert pointers(config) == ["/mount/~1tmp/options/size", "/mount/~1scratch"]


def test_vnd_devices_mount_through_their_raw_partition_in_unit_order() -> None:
    # Devices without a mount are set up first, as the specification sets up blk before
    # mount; master numbers vnd devices in the order it meets them.
    config = {
        "rc": [{"bin": "a"}],
        "blk": {"vnd0": {"type": "vnd", "path": "/a"}, "vnd1": {"type": "vnd", "path": "/b"}},
        "mount": {"/b": {"source": "blk", "path": "/dev/vnd1a"}},
    }
    assert members(config)[1:] == [
        ["blk", {"source": "vnd", "path": "/a"}],
        ["blk", {"source": "vnd", "path": "/b", "fstype": "blk", "mountpoint": "/b"}],
    ]
    # vnd1 unmounted is set up before the mounted vnd0: master would number it vnd0.
    swapped = {**config, "mount": {"/a": {"source": "blk", "path": "/dev/vnd0a"}}}
    assert pointers(swapped) == ["/blk/vnd1", "/blk/vnd0"]


def test_vnd_units_in_order_convert() -> None:
    config = {
        "rc": [{"bin": "a"}],
        "blk": {"vnd0": {"type": "vnd", "path": "/a.img"}},
        "mount": {"/a": {"source": "blk", "path": "/dev/vnd0d"}},
    }
    assert members(config)[1] == [
        "blk",
        {"source": "vnd", "path": "/a.img", "fstype": "blk", "mountpoint": "/a"},
    ]


def test_a_device_mounted_twice_is_refused() -> None:
    config = {
        "rc": [{"bin": "a"}],
        "blk": {"vnd0": {"type": "vnd", "path": "/a.img"}},
        "mount": {
            "/a": {"source": "blk", "path": "/dev/vnd0a"},
            "/b": {"source": "blk", "path": "/dev/vnd0d"},
        },
    }
    assert pointers(config) == ["/mount/~1b"]


def test_etfs_disks_are_named_after_their_xen_disk() -> None:
    good = {
        "rc": [{"bin": "a"}],
        "blk": {"xvda": {"type": "etfs", "path": "blkfront:xvda"}},
        "mount": {"/test": {"source": "blk", "path": "/dev/xvda"}},
    }
    assert members(good)[1] == [
        "blk",
        {"source": "etfs", "path": "xvda", "fstype": "blk", "mountpoint": "/test"},
    ]
    renamed = {**good, "blk": {"xbd0": {"type": "etfs", "path": "blkfront:xvda"}}}
    renamed["mount"] = {"/test": {"source": "blk", "path": "/dev/xbd0"}}
    assert pointers(renamed) == ["/blk/xbd0"]


# --- network --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "flat"),
    [
        ({"type": "inet", "method": "dhcp"}, {"type": "inet", "method": "dhcp"}),
        ({"type": "inet6", "method": "auto"}, {"type": "inet6", "method": "auto"}),
        (
            {"type": "inet", "method": "static", "addr": "10.0.0.2/24"},
            {"type": "inet", "method": "static", "addr": "10.0.0.2", "mask": "24"},
        ),
        (
            {"type": "inet6", "method": "static", "addr": "fd00::2/64"},
            {"type": "inet6", "method": "static", "addr": "fd00::2", "mask": "64"},
        ),
    ],
)
def test_one_interface_becomes_the_flat_net(address: dict[str, str], flat: dict[str, str]) -> None:
    config = {"rc": [{"bin": "a"}], "net": {"interfaces": {"vioif0": {"addrs": [address]}}}}
    assert members(config)[1] == ["net", {"if": "vioif0", **flat}]


def test_create_and_gateway_join_the_flat_net() -> None:
    config = {
        "rc": [{"bin": "a"}],
        "net": {
            "interfaces": {
                "xenif0": {
                    "create": True,
                    "addrs": [{"type": "inet", "method": "static", "addr": "10.0.0.2/8"}],
                }
            },
            "gateways": [{"type": "inet", "addr": "10.0.0.1"}],
        },
    }
    assert members(config)[1] == [
        "net",
        {
            "if": "xenif0",
            "cloner": "true",
            "type": "inet",
            "method": "static",
            "addr": "10.0.0.2",
            "mask": "8",
            "gw": "10.0.0.1",
        },
    ]


def test_what_the_flat_net_cannot_hold_is_refused_at_its_pointer() -> None:
    dhcp = {"type": "inet", "method": "dhcp"}
    config = {
        "rc": [{"bin": "a"}],
        "net": {
            "interfaces": {
                "vioif0": {"addrs": [dhcp, {"type": "inet6", "method": "auto"}]},
                "vioif1": {"addrs": [dhcp]},
            },
            "gateways": [{"type": "inet", "addr": "10.0.0.1"}],
            "dns": {"nameservers": ["10.0.0.53"]},
        },
    }
    assert pointers(config) == [
        "/net/dns",
        "/net/interfaces/vioif1",
        "/net/interfaces/vioif0/addrs/1",
        "/net/gateways/0",  # a gateway beside DHCP
    ]


def test_an_interface_created_without_an_address_is_refused() -> None:
    config = {"rc": [{"bin": "a"}], "net": {"interfaces": {"xenif0": {"create": True}}}}
    assert pointers(config) == ["/net/interfaces/xenif0/create"]


# --- the table read both ways ------------------------------------------------------------------

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-=.:/_", min_size=1, max_size=8)


@st.composite
def expressible(draw: st.DrawFn) -> dict[str, Any]:
    """Specification configs that master can say, in the form ``upgrade`` writes them."""
    config: dict[str, Any] = {}
    bins = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    config["rc"] = [
        {"bin": b, "argv": [b, *draw(st.lists(words, max_size=3))]}
        | ({"runmode": "&"} if draw(st.booleans()) and i < len(bins) - 1 else {})
        for i, b in enumerate(bins)
    ]
    env = draw(st.dictionaries(names.map(str.upper), words, max_size=3))
    if env:
        config["env"] = env
    mounts: dict[str, Any] = {}
    blk: dict[str, Any] = {}
    vnds = draw(st.integers(0, 2))
    for unit in range(vnds):
        blk[f"vnd{unit}"] = {"type": "vnd", "path": f"/img{unit}"}
        mounts[f"/v{unit}"] = {"source": "blk", "path": master.vnd_node(unit)}
    for unit in range(draw(st.integers(0, 2))):
        mounts[f"/d{unit}"] = {"source": "blk", "path": f"/dev/ld{unit}a"}
    if draw(st.booleans()):
        mounts["/kern"] = {"source": "kernfs"}
    if blk:
        config["blk"] = blk
    if mounts:
        config["mount"] = mounts
    address = draw(
        st.sampled_from(
            [
                None,
                {"type": "inet", "method": "dhcp"},
                {"type": "inet6", "method": "auto"},
                {"type": "inet", "method": "static", "addr": "10.1.2.3/16"},
            ]
        )
    )
    if address is not None:
        config["net"] = {"interfaces": {"vioif0": {"addrs": [address]}}}
        if address["method"] == "static" and draw(st.booleans()):
            config["net"]["gateways"] = [{"type": "inet", "addr": "10.1.0.1"}]
    if draw(st.booleans()):
        config["netbsd"] = {"sysctl": {"kern.hostname": draw(names)}}
    return config


@settings(max_examples=150, deadline=None)
@given(expressible())
def test_upgrading_what_a_plan_gives_master_gives_the_config_back(config: dict[str, Any]) -> None:
    # The two directions of one table: spec -> master (plans) -> spec (upgrade).
    text = master.encode(master.to_master(config).as_json())
    assert upgrade_text(text, "<master>").config == config


# --- through the real command ------------------------------------------------------------------


def test_emit_rumprun_json_gives_masters_bytes_with_repeated_keys(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rc": [{"bin": "p"}], "env": {"A": "1", "B": "2"}}))
    registry = tmp_path / "registry.json"
    registry.write_text('{"delegates": []}')
    code, out, err = run_main(
        capsys, "plan", str(config), "-r", str(registry), "--emit", "rumprun-json"
    )
    assert code == 0, err
    assert out == '{"rc_TESTING":[{"bin":"p","argv":[]}],"env":"A=1","env":"B=2"}'
    code, out, err = run_main(
        capsys, "plan", str(config), "-r", str(registry), "--emit", "qemu-append"
    )
    assert out == '{"rc_TESTING":[{"bin":"p","argv":[]}],"env":"A=1","env":"B=2"}'


def test_validate_refuses_what_master_cannot_say_before_any_delegate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"rc": [{"bin": "p", "workdir": "/data"}],\n "net": {"dns": {}}}')
    registry = tmp_path / "registry.json"
    registry.write_text('{"delegates": []}')
    code, _, err = run_main(capsys, "validate", str(config), "-r", str(registry))
    assert code == 3
    assert "config.json:1:33 at /rc/0/workdir: rumprun master cannot say this" in err
    assert "hint: --rumprun spec" in err
    code, _, err = run_main(capsys, "validate", *SPEC, str(config), "-r", str(registry))
    assert code == 0, err


def test_the_plan_names_its_dialect_as_a_real_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "plan",
            str(HYBRID / "config.json"),
            "-r",
            str(HYBRID / "registry.json"),
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    runtime = json.loads(done.stdout)["runtime"]
    assert runtime["dialect"] == "master"
    assert [key for key, _ in runtime["config"]] == ["rc_TESTING", "env", "hostname", "blk"]


# --- what booting showed, for both dialects ---------------------------------------------------


def test_a_parent_mount_is_put_before_its_children() -> None:
    # rumprun mounts in the text's order; /data mounted after /data/inner hides it.
    config = {
        "rc": [{"bin": "a"}],
        "mount": {
            "/data/inner": {"source": "blk", "path": "/dev/ld1a"},
            "/etc": {"source": "blk", "path": "/dev/ld2a"},
            "/data": {"source": "blk", "path": "/dev/ld0a"},
        },
    }
    assert [value["mountpoint"] for key, value in members(config) if key == "blk"] == [
        "/data",
        "/data/inner",
        "/etc",
    ]


def test_a_vnd_over_a_file_of_a_mounted_disk_is_set_up_after_that_mount() -> None:
    config = {
        "rc": [{"bin": "a"}],
        "blk": {"vnd0": {"type": "vnd", "path": "/disk/inner.img"}},
        "mount": {"/disk": {"source": "blk", "path": "/dev/ld0a"}},
    }
    assert [value for key, value in members(config) if key == "blk"] == [
        {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/disk"},
        {"source": "vnd", "path": "/disk/inner.img"},
    ]
