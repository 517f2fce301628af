"""The whole job through the real command: ``main(argv)`` and real processes.

Delegates here are real executables written to ``tmp_path``; the reference delegates
are the installed commands.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import SPEC, run_main
from helpers_protocol import write_delegate, write_identity, write_py_delegate
from jsonschema import Draft202012Validator

from orchestrator.cli import main
from orchestrator.core import pipeline
from orchestrator.rumprun.bake import standard_book
from orchestrator.schemas import explainer

HYBRID = REPO / "examples" / "hybrid"
RUMPRUN_ONLY = REPO / "examples" / "rumprun-only"
# The hybrid example planned for the specification's parser, whose residual is the config.
HYBRID_SPEC = (
    *SPEC,
    str(HYBRID / "config.json"),
    "-r",
    str(HYBRID / "registry.json"),
)


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def registry_file(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    return write_json(tmp_path / "registry.json", {"delegates": list(entries)})


# -- the flagship: a hybrid Mirage/rumprun unikernel ---------------------------------------


def test_hybrid_example_plan(capsys: pytest.CaptureFixture[str]) -> None:
    # The default target is released rumprun (master), as a real image would boot it.
    code, out, err = run_main(
        capsys, "plan", str(HYBRID / "config.json"), "-r", str(HYBRID / "registry.json")
    )
    assert code == 0, err
    plan = json.loads(out)
    explainer.validator("plan").validate(plan)
    base = standard_book().get("hw_virtio").libs
    # Mirage drops rumprun's IPv4 stack; IPv6 stays so that rumpnet_config boots.
    assert plan["bake"]["libs"] == [lib for lib in base if lib != "-lrumpnet_netinet"]
    assert "-lrumpnet_netinet6" in plan["bake"]["libs"]
    assert plan["bake"]["directives"] == [
        {"op": op, "args": [lib], "by": "mirage-net-config", "pointer": "/net"}
        for op, lib in (("add", "-lrumpdev_bpf"), ("remove", "-lrumpnet_netinet"))
    ]
    assert plan["runtime"] == {
        "dialect": "master",
        "config": [
            ["rc_TESTING", [{"bin": "www", "argv": ["--logs=*:info"]}]],
            ["env", "TZ=UTC"],
            ["hostname", "mirage-www"],
            [
                "blk",
                {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/data"},
            ],
        ],
    }
    assert [(d["name"], d["kind"], d["by"]) for d in plan["devices"]] == [
        ("vioif0", "net", "mirage-net-config"),
        ("ld0", "block", "rumprun"),
    ]
    assert plan["toolchains"]["ocaml"]["boot"] == [
        "--ipv4=10.0.120.10/24",
        "--ipv4-gateway=10.0.120.1",
        "--ipv4-only=true",
    ]
    assert "tcpip" in plan["toolchains"]["ocaml"]["packages"]
    assert [(d["delegate"], d["pointer"]) for d in plan["delegations"]] == [
        ("mirage-net-config", "/net"),
        ("rumprun", ""),
    ]
    assert plan["delegations"][0]["command"] == ["mirage-net-config"]
    assert plan["warnings"] == []


def test_hybrid_example_plan_for_the_specification_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(capsys, "plan", *HYBRID_SPEC)
    assert code == 0, err
    plan = json.loads(out)
    explainer.validator("plan").validate(plan)
    assert plan["runtime"]["dialect"] == "spec"
    runtime = plan["runtime"]["config"]
    config = json.loads((HYBRID / "config.json").read_text())
    assert runtime == {k: v for k, v in config.items() if k != "net"}


def test_rumprun_only_example_keeps_everything(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(
        capsys,
        "plan",
        *SPEC,
        str(RUMPRUN_ONLY / "config.json"),
        "-r",
        str(RUMPRUN_ONLY / "registry.json"),
    )
    assert code == 0, err
    plan = json.loads(out)
    assert plan["bake"]["libs"] == list(standard_book().get("hw_virtio").libs)
    assert plan["runtime"]["config"] == json.loads((RUMPRUN_ONLY / "config.json").read_text())
    assert [d["name"] for d in plan["devices"]] == ["vioif0", "ld0", "ld1"]


def test_plan_is_byte_identical_across_processes_and_job_counts(tmp_path: Path) -> None:
    outputs = []
    for argv in (
        [sys.executable, "-m", "orchestrator"],
        [str(Path(sys.executable).parent / "bakeplan")],
    ):
        for jobs in ("1", "4"):
            done = subprocess.run(
                [
                    *argv,
                    "plan",
                    str(HYBRID / "config.json"),
                    "-r",
                    str(HYBRID / "registry.json"),
                    "-j",
                    jobs,
                    # Fresh answers every time: a cache hit would say "cached": true.
                    "--no-cache",
                ],
                capture_output=True,
                check=False,
                cwd=tmp_path,
            )
            assert done.returncode == 0, done.stderr.decode()
            assert done.stderr == b""
            outputs.append(done.stdout)
    assert len(set(outputs)) == 1


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--version")
    assert code == 0
    assert out.startswith("bakeplan ")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys)
    assert code == 2
    assert "usage" in err


def test_bad_option_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "plan", *SPEC, "x.json", "-j", "0")
    assert code == 2
    assert "-j/--jobs" in err


# -- output files ----------------------------------------------------------------------------


def test_output_file_is_written_and_failure_leaves_it_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "plan.json"
    code, out, _ = run_main(
        capsys,
        "plan",
        *SPEC,
        str(HYBRID / "config.json"),
        "-r",
        str(HYBRID / "registry.json"),
        "-o",
        str(out_file),
    )
    assert code == 0
    assert out == ""
    good = out_file.read_bytes()
    assert json.loads(good)["plan"] == "bakeplan/1"
    bad = write_json(tmp_path / "bad.json", {"mount": {"/x": {"source": "kernfs"}}})
    code, _, _ = run_main(
        capsys,
        "plan",
        *SPEC,
        str(bad),
        "-r",
        str(HYBRID / "registry.json"),
        "-o",
        str(out_file),
    )
    assert code == 3
    assert out_file.read_bytes() == good
    # Nothing else written; xdg-cache holds cached answers (by design).
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != "xdg-cache")
    assert written == ["bad.json", "plan.json"]


def test_failure_creates_no_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "plan.json"
    code, _, _ = run_main(
        capsys, "plan", *SPEC, str(tmp_path / "missing.json"), "-o", str(out_file)
    )
    assert code == 2
    assert not out_file.exists()


# -- nesting ---------------------------------------------------------------------------------


def test_inner_answer_is_substituted_into_the_outer_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "outer-request.json"
    write_py_delegate(
        tmp_path,
        "static-addr",
        """
        import json, sys
        json.load(sys.stdin)
        print(json.dumps({"protocol": "bakeplan/1",
                          "replace": {"type": "inet", "method": "static", "addr": "192.0.2.7/24"}}))
    """,
    )
    write_py_delegate(
        tmp_path,
        "outer",
        f"""
        import json, sys
        raw = sys.stdin.read()
        open({str(log)!r}, "w").write(raw)
        print(json.dumps({{"protocol": "bakeplan/1", "replace": json.loads(raw)["fragment"]}}))
    """,
    )
    config = write_json(
        tmp_path / "config.json",
        {
            "net": {
                "interfaces": {
                    "vioif0": {
                        "addrs": [
                            {"type": "inet", "method": "dhcp"},
                            {"type": "inet6", "method": "auto"},
                        ]
                    }
                }
            }
        },
    )
    reg = registry_file(
        tmp_path,
        {
            "name": "addr",
            "command": ["./static-addr"],
            "claims": ["/net/interfaces/vioif0/addrs/0"],
        },
        {"name": "outer", "command": ["./outer"], "claims": ["/net"]},
    )
    code, out, err = run_main(capsys, "plan", *SPEC, str(config), "-r", str(reg))
    assert code == 0, err
    request = json.loads(log.read_text())
    assert request["pointer"] == "/net"
    assert request["fragment"]["interfaces"]["vioif0"]["addrs"] == [
        {"type": "inet", "method": "static", "addr": "192.0.2.7/24"},
        {"type": "inet6", "method": "auto"},
    ]
    plan = json.loads(out)
    assert plan["runtime"]["config"]["net"] == request["fragment"]
    assert [d["delegate"] for d in plan["delegations"]] == ["addr", "outer", "rumprun"]


def test_consumed_inner_part_leaves_its_array(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_py_delegate(
        tmp_path,
        "consume",
        """
        import json, sys
        json.load(sys.stdin)
        print(json.dumps({"protocol": "bakeplan/1"}))
    """,
    )
    config = write_json(
        tmp_path / "config.json", {"rc": [{"bin": "a"}, {"bin": "b"}, {"bin": "c"}]}
    )
    reg = registry_file(
        tmp_path,
        {"name": "one", "command": ["./consume"], "claims": ["/rc/0"]},
        {"name": "two", "command": ["./consume"], "claims": ["/rc/1"]},
    )
    code, out, err = run_main(capsys, "plan", *SPEC, str(config), "-r", str(reg))
    assert code == 0, err
    assert json.loads(out)["runtime"]["config"] == {"rc": [{"bin": "c"}]}


# -- failures and their exit codes -----------------------------------------------------------


# The fault matrix (misbehaving delegates, commands that cannot run) lives in
# tests/test_faults.py, trust and isolation in tests/test_isolation.py.


def test_overlapping_claims_are_exit_3_and_delegate_settles_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_identity(tmp_path)
    reg = registry_file(
        tmp_path,
        {"name": "one", "command": ["./identity"], "claims": ["/net"]},
        {"name": "two", "command": ["./identity"], "claims": ["/net"]},
    )
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert code == 3
    assert "--delegate /net=one" in err
    code, out, err = run_main(
        capsys,
        "plan",
        *SPEC,
        str(HYBRID / "config.json"),
        "-r",
        str(reg),
        "--delegate",
        "/net=two",
    )
    assert code == 0, err
    assert json.loads(out)["delegations"][0]["delegate"] == "two"


def test_duplicate_device_names_are_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_py_delegate(
        tmp_path,
        "dev",
        """
        import json, sys
        json.load(sys.stdin)
        print(json.dumps({"protocol": "bakeplan/1", "devices": [{"name": "ld0", "kind": "block"}]}))
    """,
    )
    reg = registry_file(tmp_path, {"name": "dev", "command": ["./dev"], "claims": ["/net"]})
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert code == 3
    assert "device name 'ld0' given by dev" in err


# -- component gating --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "bake", "pointer", "component"),
    [
        ({"mount": {"/kern": {"source": "kernfs"}}}, "hw_virtio", "/mount/~1kern", "rumpfs_kernfs"),
        (
            {"blk": {"xbd0": {"type": "etfs", "path": "blkfront:xvda"}}},
            "hw_virtio",
            "/blk/xbd0",
            "xen platform",
        ),
    ],
)
def test_config_needing_what_the_bake_lacks_is_exit_3(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    config: dict[str, Any],
    bake: str,
    pointer: str,
    component: str,
) -> None:
    path = write_json(tmp_path / "config.json", config)
    reg = registry_file(tmp_path)
    code, _, err = run_main(capsys, "plan", *SPEC, str(path), "-r", str(reg), "-b", bake)
    assert code == 3
    assert f"at {pointer}" in err
    assert component in err
    assert bake in err


def test_kernfs_is_fine_on_xen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_json(tmp_path / "config.json", {"mount": {"/kern": {"source": "kernfs"}}})
    code, _, err = run_main(
        capsys,
        "plan",
        *SPEC,
        str(path),
        "-r",
        str(registry_file(tmp_path)),
        "-b",
        "xen-pv",
    )
    assert code == 0, err


def test_delegate_removing_a_needed_component_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_py_delegate(
        tmp_path,
        "strip",
        """
        import json, sys
        r = json.load(sys.stdin)
        print(json.dumps({"protocol": "bakeplan/1", "replace": r["fragment"],
                          "components": {"remove": ["rumpnet_netinet"]}}))
    """,
    )
    reg = registry_file(tmp_path, {"name": "stripper", "command": ["./strip"], "claims": ["/env"]})
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID / "config.json"), "-r", str(reg))
    assert code == 3
    assert "at /net/interfaces/vioif0/addrs/0" in err
    assert "rumpnet_netinet" in err
    assert "removed by stripper" in err


# -- validate, schema, inputs ------------------------------------------------------------------


def test_validate_runs_no_delegate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls = tmp_path / "calls"
    write_delegate(tmp_path, "record", f"echo called >> {calls}; cat")
    reg = registry_file(tmp_path, {"name": "rec", "command": ["./record"], "claims": ["/net"]})
    code, out, err = run_main(
        capsys, "validate", *SPEC, str(HYBRID / "config.json"), "-r", str(reg)
    )
    assert code == 0, err
    assert out == ""
    assert "valid for hw_virtio" in err
    assert not calls.exists()


def test_validate_reports_schema_errors_with_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "rc": [\n    {"bin": "x", "runmode": "?"}\n  ]\n}\n')
    code, _, err = run_main(
        capsys, "validate", *SPEC, str(path), "-r", str(registry_file(tmp_path))
    )
    assert code == 2
    assert "config.json:3:" in err
    assert "/rc/0/runmode" in err


def test_unknown_key_gets_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_json(tmp_path / "config.json", {"mounts": {}})
    code, _, err = run_main(
        capsys, "validate", *SPEC, str(path), "-r", str(registry_file(tmp_path))
    )
    assert code == 2
    assert "did you mean 'mount'?" in err


@pytest.mark.parametrize("name", ["config", "registry", "request", "response", "plan"])
def test_schema_command_prints_valid_schemas(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, _ = run_main(capsys, "schema", name)
    assert code == 0
    document = json.loads(out)
    Draft202012Validator.check_schema(document)
    assert document["$id"].endswith(f"/{name}.json")
    assert document["title"]


def test_legacy_specimens_are_refused_naming_upgrade(
    conformance: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    specimens = sorted((conformance / "rumprun" / "legacy").iterdir())
    assert specimens
    reg = str(registry_file(tmp_path))
    for specimen in specimens:
        code, _, err = run_main(capsys, "validate", *SPEC, str(specimen), "-r", reg)
        assert code == 2, specimen
        assert "bakeplan upgrade" in err, specimen


def test_valid_specimens_plan_on_their_platform(
    conformance: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reg = str(registry_file(tmp_path))
    for specimen, bake in [
        ("runner-mathopd.json", "hw_virtio"),
        ("spec-doc-hw-mathopd.fixed.json", "hw_virtio"),
        ("spec-doc-xen-wopr.fixed.json", "xen_pv"),
    ]:
        code, out, err = run_main(
            capsys,
            "plan",
            *SPEC,
            str(conformance / "rumprun" / "valid" / specimen),
            "-r",
            reg,
            "-b",
            bake,
        )
        assert code == 0, (specimen, err)
        plan = json.loads(out)
        config = json.loads((conformance / "rumprun" / "valid" / specimen).read_text())
        if specimen == "spec-doc-xen-wopr.fixed.json":
            # The spec parser matches rc[].bin whole against the baked names: the plan
            # names the binary, the program keeps its argv[0].
            config["rc"] = [{"bin": "wopr.bin", "argv": ["./wopr.bin"]}]
            assert "rc[0].bin './wopr.bin' written as 'wopr.bin'" in err
        assert plan["runtime"]["config"] == config


def test_invalid_specimens_fail_with_their_line(
    conformance: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for specimen, line in [("spec-doc-hw-mathopd.json", 10), ("spec-doc-xen-wopr.json", 8)]:
        code, _, err = run_main(
            capsys,
            "validate",
            *SPEC,
            str(conformance / "rumprun" / "invalid" / specimen),
        )
        assert code == 2
        assert f"{specimen}:{line}:" in err


def test_a_bug_of_ours_is_one_line_and_exit_70(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(pipeline, "carry_out", broken)
    code, out, err = run_main(capsys, "plan", *HYBRID_SPEC)
    assert (code, out) == (70, "")
    assert "bakeplan: internal error: IndexError: list index out of range" in err
    monkeypatch.setenv("BAKEPLAN_TRACEBACK", "1")
    assert (
        main(
            [
                "plan",
                *SPEC,
                str(HYBRID / "config.json"),
                "-r",
                str(HYBRID / "registry.json"),
            ]
        )
        == 70
    )
    assert "Traceback" in capsys.readouterr().err


def test_a_non_ascii_digit_key_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_json(tmp_path / "config.json", {"env": {"²": 5}})
    code, _, err = run_main(
        capsys, "validate", *SPEC, str(path), "-r", str(registry_file(tmp_path))
    )
    assert code == 2
    assert "at /env/²: must be a string" in err


def test_a_part_given_back_to_rumprun_is_checked_as_rumprun_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_identity(tmp_path)
    path = write_json(tmp_path / "config.json", {"env": {"A": 5}})
    reg = registry_file(tmp_path, {"name": "id", "command": ["./identity"], "claims": ["/env"]})
    code, _, err = run_main(
        capsys,
        "validate",
        *SPEC,
        str(path),
        "-r",
        str(reg),
        "--delegate",
        "/env=rumprun",
    )
    assert code == 2
    assert "config.json:3:10 at /env/A: must be a string" in err


def test_a_closed_stdout_is_exit_141_without_noise() -> None:
    read, write = os.pipe()
    os.close(read)  # the reader (| head) is gone before bakeplan writes
    try:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "schema", "config"],
            stdout=write,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == b""


def test_timings_and_verbose_go_to_stderr_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_delegate(
        tmp_path,
        "talk",
        """
        cat >/dev/null
        echo "resolving the interfaces" >&2
        echo '{"protocol":"bakeplan/1"}'
        """,
    )
    reg = registry_file(tmp_path, {"name": "talk", "command": ["./talk"], "claims": ["/net"]})
    argv = ["plan", str(HYBRID / "config.json"), "-r", str(reg), "--no-cache"]
    code, quiet, err = run_main(capsys, *argv)
    assert (code, err) == (0, "")
    code, out, err = run_main(capsys, *argv, "--timings")
    assert out == quiet
    assert re.search(r"bakeplan: talk at /net: done in [0-9.]+s", err)
    assert "running" not in err
    assert "resolving the interfaces" not in err
    code, out, err = run_main(capsys, *argv, "--verbose")
    assert out == quiet
    assert "bakeplan: talk at /net: running" in err
    assert "bakeplan: talk at /net wrote on stderr:\n  | resolving the interfaces" in err


def test_validate_does_not_guess_devices_a_delegate_may_bring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_identity(tmp_path)
    path = write_json(
        tmp_path / "config.json",
        {
            "blk": {"xbd0": {"type": "etfs", "path": "blkfront:xvda"}},
            "mount": {"/data": {"source": "blk", "path": "/dev/xbd0"}},
        },
    )
    reg = registry_file(tmp_path, {"name": "id", "command": ["./identity"], "claims": ["/blk"]})
    code, _, err = run_main(capsys, "validate", *SPEC, str(path), "-r", str(reg), "-b", "xen_pv")
    assert code == 0, err
    code, out, err = run_main(capsys, "plan", *SPEC, str(path), "-r", str(reg), "-b", "xen_pv")
    assert code == 0, err
    assert [d["name"] for d in json.loads(out)["devices"]] == ["xbd0"]
    # With the device nowhere at all, plan (which knows every answer) still refuses.
    bare = write_json(
        tmp_path / "bare.json", {"mount": {"/data": {"source": "blk", "path": "/dev/xbd0"}}}
    )
    code, _, err = run_main(capsys, "plan", *SPEC, str(bare), "-r", str(reg), "-b", "xen_pv")
    assert code == 3
    assert "nothing provides the device /dev/xbd0" in err


def test_validate_with_delegates_still_counts_rumprun_s_own_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_identity(tmp_path)
    blk = {f"xbd{i}": {"type": "etfs", "path": f"blkfront:xvd{chr(97 + i)}"} for i in range(11)}
    path = write_json(tmp_path / "config.json", {"blk": blk, "net": {}})
    reg = registry_file(tmp_path, {"name": "id", "command": ["./identity"], "claims": ["/net"]})
    code, _, err = run_main(capsys, "validate", *SPEC, str(path), "-r", str(reg), "-b", "xen_pv")
    assert code == 3
    assert "11 block devices" in err
