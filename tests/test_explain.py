"""``bakeplan why``: every kind of subject of the hybrid example, present and absent,
through ``main(argv)`` and as a real process, from a plan file, stdin or a config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core.planmodel import Plan
from orchestrator.errors import UsageError
from orchestrator.review import explain
from orchestrator.rumprun.bake import standard_book
from tests.helpers_cli import SPEC, run_main
from tests.helpers_plan import plan_of_parts

REPO = Path(__file__).resolve().parents[1]
HYBRID = REPO / "examples" / "hybrid"
HYBRID_ARGS = (str(HYBRID / "config.json"), "-r", str(HYBRID / "registry.json"))


@pytest.fixture
def hybrid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[Path, Plan]:
    """The hybrid example's plan, written to a file, and read back."""
    path = tmp_path / "plan.json"
    code, _, err = run_main(capsys, "plan", *HYBRID_ARGS, "-o", str(path))
    assert code == 0, err
    return path, Plan.from_json(json.loads(path.read_text()))


def test_every_library_of_hw_virtio_is_answered_present_or_absent(
    hybrid: tuple[Path, Plan],
) -> None:
    _, plan = hybrid
    for lib in standard_book().get("hw_virtio").libs:
        answer = explain.why(plan, lib)
        assert answer.kind == "library"
        assert answer.present == (lib != "-lrumpnet_netinet"), lib
        assert answer.summary.startswith(f"{lib} is {'' if answer.present else 'not '}linked: ")
        assert "hw_virtio brings it" in answer.summary
        assert answer.chain[0].what.startswith("bake config hw_virtio brings it")


def test_the_removed_stack_names_the_delegate_and_its_pointer(
    hybrid: tuple[Path, Plan],
) -> None:
    _, plan = hybrid
    answer = explain.why(plan, "rumpnet_netinet")  # a component name works too
    assert answer.summary == (
        "-lrumpnet_netinet is not linked: hw_virtio brings it (through _miconf, _netinet), "
        "mirage-net-config removed it for /net"
    )
    assert [s.as_json() for s in answer.chain] == [
        {"what": "bake config hw_virtio brings it (through _miconf, _netinet)"},
        {"what": "removed it for /net", "by": "mirage-net-config", "pointer": "/net"},
    ]


def test_a_library_nobody_brings_is_absent_with_a_suggestion(
    hybrid: tuple[Path, Plan],
) -> None:
    answer = explain.why(hybrid[1], "-lrumpfs_ffsx")
    assert not answer.present
    assert answer.summary == (
        "-lrumpfs_ffsx is not linked: neither hw_virtio nor any delegate brings it, "
        "did you mean -lrumpfs_ffs?"
    )


def test_each_device_names_its_delegate_pointer_and_fields(
    hybrid: tuple[Path, Plan],
) -> None:
    _, plan = hybrid
    assert explain.why(plan, "vioif0").summary == (
        "vioif0 is a net device: mirage-net-config gives it for /net/interfaces/vioif0 (driver bpf)"
    )
    assert explain.why(plan, "ld0").summary == (
        "ld0 is a block device: rumprun gives it for /mount/~1data (path /dev/ld0)"
    )


def test_each_toolchain_argument_names_its_delegate(hybrid: tuple[Path, Plan]) -> None:
    _, plan = hybrid
    for key, values in plan.toolchains["ocaml"].items():
        for value in values:
            answer = explain.why(plan, value)
            assert answer.kind == "argument"
            assert f"ocaml toolchain's {key} arguments: mirage-net-config gives it for /net" in (
                answer.summary
            )


@pytest.mark.parametrize(
    ("pointer", "owner", "reads"),
    [
        ("/net", "mirage-net-config (its claim)", None),
        ("/mount", "the built-in rumprun layer (what no delegate claims)", "'blk' (member 3)"),
        ("/env", "the built-in rumprun layer (what no delegate claims)", "'env' (member 1)"),
        ("/rc", "the built-in rumprun layer (what no delegate claims)", "'rc_TESTING' (member 0)"),
        ("/netbsd", "the built-in rumprun layer (what no delegate claims)", "'hostname'"),
    ],
)
def test_each_top_level_pointer_has_an_owner_and_contributions(
    hybrid: tuple[Path, Plan], pointer: str, owner: str, reads: str | None
) -> None:
    answer = explain.why(hybrid[1], pointer)
    assert answer.summary == f"{pointer} belongs to {owner}"
    lines = answer.lines()
    if reads is None:
        assert "  - mirage-net-config: consumed it: the runtime config does not carry it" in lines
        assert "  - mirage-net-config: removed -lrumpnet_netinet" in lines
        assert "  - mirage-net-config: answered net device vioif0" in lines
        assert "  - mirage-net-config: gave ocaml boot --ipv4=10.0.120.10/24" in lines
    else:
        assert any(reads in line for line in lines), lines


def test_an_inner_delegate_that_filled_a_part_is_named() -> None:
    # An inner run's answer fills part of an outer request: why says who filled it.
    digests = {"request_sha256": "0" * 64, "answer_sha256": "0" * 64}
    plan = plan_of_parts(
        runtime={"dialect": "spec", "config": {"env": {"A": "1"}}},
        provenance={"libs": [], "runtime": [{"path": "/env", "from": "/env"}], "toolchains": []},
        delegations=[
            {"delegate": "ipam", "pointer": "/env/A", "command": [], "builtin": False, **digests},
            {"delegate": "rumprun", "pointer": "", "command": [], "builtin": True, **digests},
        ],
    )
    answer = explain.why(plan, "/env")
    assert answer.summary.endswith("; filled first by ipam")
    assert "  - ipam: configured /env/A inside it first" in answer.lines()


def test_unknown_subjects_get_did_you_mean(hybrid: tuple[Path, Plan]) -> None:
    _, plan = hybrid
    with pytest.raises(UsageError) as caught:
        explain.why(plan, "/nett")
    assert caught.value.hint == "did you mean '/net'?"
    with pytest.raises(UsageError) as caught:
        explain.why(plan, "vioif1")
    assert caught.value.hint == "did you mean 'vioif0'?"


def test_why_through_main_text_and_json(
    capsys: pytest.CaptureFixture[str], hybrid: tuple[Path, Plan]
) -> None:
    path, _ = hybrid
    code, out, err = run_main(capsys, "why", str(path), "-lrumpnet_netinet")
    assert code == 0, err
    assert out.splitlines()[0].startswith("-lrumpnet_netinet is not linked: hw_virtio brings it")
    assert "\x1b[" not in out  # plain when piped
    code, out, _ = run_main(capsys, "why", str(path), "--json", "ld0")
    assert json.loads(out)["kind"] == "device"
    code, _, err = run_main(capsys, "why", str(path), "/nett")
    assert code == 2
    assert "did you mean '/net'?" in err


def test_why_plans_a_config_first_with_the_planning_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(capsys, "why", *HYBRID_ARGS[:1], "/mount", *HYBRID_ARGS[1:])
    assert code == 0, err
    assert "reads it at boot as master's 'blk' (member 3)" in out
    code, out, err = run_main(capsys, "why", *SPEC, *HYBRID_ARGS[:1], "/mount", *HYBRID_ARGS[1:])
    assert code == 0, err
    assert "reads it at boot as runtime.config /mount" in out


def test_why_reads_a_plan_on_stdin_as_a_real_process(
    hybrid: tuple[Path, Plan], tmp_path: Path
) -> None:
    path, _ = hybrid
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "why", "-", "--", "--ipv4-only=true"],
        input=path.read_bytes(),
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith("--ipv4-only=true is one of the ocaml toolchain's")
    config = subprocess.run(
        [sys.executable, "-m", "orchestrator", "why", "-", "/net"],
        input=(HYBRID / "config.json").read_bytes(),
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assert config.returncode == 2
    assert b"standard input holds no bake plan" in config.stderr


def test_a_damaged_plan_is_refused_at_its_line(
    capsys: pytest.CaptureFixture[str], hybrid: tuple[Path, Plan], tmp_path: Path
) -> None:
    document = hybrid[1].to_json()
    del document["provenance"]
    damaged = tmp_path / "old.json"
    damaged.write_text(json.dumps(document, indent=2))
    code, _, err = run_main(capsys, "why", str(damaged), "ld0")
    assert code == 2
    assert f"{damaged}:1:1: not a valid bake plan" in err
