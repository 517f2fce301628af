"""``bakeplan diff``: two plans compared in their own terms, exit 0 same, 1 different,
2 trouble; the hybrid and rumprun-only examples differ in exactly what they should."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.planmodel import Plan
from orchestrator.review import compare
from orchestrator.rumprun.runtime import Runtime
from tests.helpers_cli import run_main

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DEV = '{"source":"dev","path":"%s","fstype":"blk","mountpoint":"%s"}'


def plan_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, example: str) -> Path:
    path = tmp_path / f"{example}.plan.json"
    config, registry = EXAMPLES / example / "config.json", EXAMPLES / example / "registry.json"
    code, _, err = run_main(capsys, "plan", str(config), "-r", str(registry), "-o", str(path))
    assert code == 0, err
    return path


@pytest.fixture
def plans(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[Path, Path]:
    return plan_file(capsys, tmp_path, "hybrid"), plan_file(capsys, tmp_path, "rumprun-only")


def document_of(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def load(path: Path) -> Plan:
    return Plan.from_json(document_of(path))


def test_hybrid_against_rumprun_only_lists_exactly_the_differences(
    plans: tuple[Path, Path],
) -> None:
    old, new = (load(p) for p in plans)
    got = [(c.part, c.sign, c.text) for c in compare.diff(old, new).changes]
    assert got == [
        ("libs", "+", "-lrumpnet_netinet: hw_virtio brings it (through _miconf, _netinet)"),
        ("devices", "+", "ld1 (block) by rumprun for /mount/~1data"),
        ("devices", "~", "vioif0: by 'mirage-net-config' -> 'rumprun', driver 'bpf' -> None"),
        ("devices", "~", "ld0: pointer '/mount/~1data' -> '/mount/~1etc'"),
        ("toolchains", "-", "ocaml boot --ipv4=10.0.120.10/24 by mirage-net-config for /net"),
        ("toolchains", "-", "ocaml boot --ipv4-gateway=10.0.120.1 by mirage-net-config for /net"),
        ("toolchains", "-", "ocaml boot --ipv4-only=true by mirage-net-config for /net"),
        ("toolchains", "-", "ocaml packages tcpip by mirage-net-config for /net"),
        ("toolchains", "-", "ocaml packages ethernet by mirage-net-config for /net"),
        ("toolchains", "-", "ocaml packages arp by mirage-net-config for /net"),
        ("runtime", "~", 'rc_TESTING (member 0) /0/bin: "www" -> "mathopd"'),
        ("runtime", "~", 'rc_TESTING (member 0) /0/argv/0: "--logs=*:info" -> "-n"'),
        ("runtime", "+", 'rc_TESTING (member 0) /0/argv/1: "-t"'),
        ("runtime", "+", 'rc_TESTING (member 0) /0/argv/2: "-f"'),
        ("runtime", "+", 'rc_TESTING (member 0) /0/argv/3: "/data/mathopd.conf"'),
        ("runtime", "~", 'env (member 1): "TZ=UTC" -> "FOO=BAR"'),
        ("runtime", "-", 'hostname "mirage-www"'),
        ("runtime", "-", "blk " + DEV % ("/dev/ld0a", "/data")),
        ("runtime", "+", "blk " + DEV % ("/dev/ld0a", "/etc")),
        ("runtime", "+", "blk " + DEV % ("/dev/ld1a", "/data")),
        ("runtime", "+", 'net {"if":"vioif0","type":"inet","method":"dhcp"}'),
        ("delegations", "~", "rumprun for the whole config: another request, answer"),
        ("delegations", "-", "mirage-net-config for /net no longer runs"),
    ]  # fmt: skip


def test_the_way_back_names_the_delegate_that_removes(plans: tuple[Path, Path]) -> None:
    old, new = (load(p) for p in plans)
    libs = [c for c in compare.diff(new, old).changes if c.part == "libs"]
    assert [(c.sign, c.text) for c in libs] == [
        (
            "-",
            "-lrumpnet_netinet: hw_virtio brings it (through _miconf, _netinet), "
            "mirage-net-config removed it for /net",
        )
    ]


def test_a_plan_is_the_same_as_itself_and_each_part_is_seen(plans: tuple[Path, Path]) -> None:
    document = document_of(plans[0])
    plan = Plan.from_json(document)
    assert compare.diff(plan, Plan.from_json(copy.deepcopy(document))).same
    changed = copy.deepcopy(document)
    changed["bake"]["config"] = "hw_generic"
    changed["warnings"].append({"by": "x", "pointer": "/env", "message": "look"})
    changed["runtime"]["dialect"] = "spec"
    changed["runtime"]["config"] = {"env": {"TZ": "UTC"}}
    parts = {(c.part, c.sign) for c in compare.diff(plan, Plan.from_json(changed)).changes}
    assert {("bake", "~"), ("warnings", "+"), ("runtime", "~")} <= parts


def test_spec_runtime_changes_are_by_json_pointer() -> None:
    changes = list(
        compare._runtime(
            Runtime("spec", {"env": {"A": "1"}, "mount": {"/d": {}}}),
            Runtime("spec", {"env": {"A": "2", "B": "3"}}),
        )
    )
    assert [c.as_json() for c in changes] == [
        {"part": "runtime", "change": "changed", "pointer": "/env/A", "old": "1", "new": "2"},
        {"part": "runtime", "change": "added", "pointer": "/env/B", "new": "3"},
        {"part": "runtime", "change": "removed", "pointer": "/mount/~1d", "old": {}},
    ]


def test_diff_exit_codes_through_main(
    capsys: pytest.CaptureFixture[str], plans: tuple[Path, Path], tmp_path: Path
) -> None:
    old, new = (str(p) for p in plans)
    code, out, _ = run_main(capsys, "diff", old, old)
    assert (code, out) == (0, f"{old} and {old} are the same plan\n")
    code, out, _ = run_main(capsys, "diff", old, new)
    assert code == 1
    assert out.startswith(f"--- {old}\n+++ {new}\nlibraries\n  + -lrumpnet_netinet: ")
    code, out, _ = run_main(capsys, "diff", old, new, "--json")
    assert code == 1
    assert json.loads(out)["same"] is False
    code, _, err = run_main(capsys, "diff", old, str(tmp_path / "missing.json"))
    assert code == 2
    assert "missing.json: cannot read a plan or a config: No such file or directory" in err


def test_a_config_is_planned_with_the_same_options_and_compared(
    capsys: pytest.CaptureFixture[str], plans: tuple[Path, Path]
) -> None:
    config = str(EXAMPLES / "hybrid" / "config.json")
    registry = str(EXAMPLES / "hybrid" / "registry.json")
    code, out, err = run_main(capsys, "diff", str(plans[0]), config, "-r", registry)
    assert (code, out) == (0, f"{plans[0]} and {config} are the same plan\n"), err
    code, out, _ = run_main(
        capsys, "diff", str(plans[0]), config, "-r", registry, "--rumprun", "spec"
    )
    assert code == 1
    assert "  ~ dialect master -> spec" in out


def test_a_delegate_failing_while_planning_is_trouble_not_difference(
    capsys: pytest.CaptureFixture[str], plans: tuple[Path, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\nexit 9\n")
    broken.chmod(0o755)
    registry = tmp_path / "registry.json"
    registry.write_text(
        json.dumps(
            {"delegates": [{"name": "broken", "command": [str(broken)], "claims": ["/net"]}]}
        )
    )
    config = str(EXAMPLES / "hybrid" / "config.json")
    code, _, err = run_main(capsys, "diff", str(plans[0]), config, "-r", str(registry))
    assert code == 2  # 1 would say the plans differ
    assert "delegate 'broken'" in err


def test_diff_as_a_real_process_reads_old_from_stdin(
    plans: tuple[Path, Path], tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "diff", "-", str(plans[1])],
        input=plans[0].read_bytes(),
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    assert b"\x1b[" not in done.stdout
    assert b"  - mirage-net-config for /net no longer runs\n" in done.stdout
