"""Lock files: ``plan --lock`` pins the delegates and bake config, ``--locked`` refuses a
plan whose delegates changed before any configures, ``lock check`` compares what is
installed.  The delegate is a real executable whose code the tests edit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core import lock
from orchestrator.schemas import explainer
from tests.helpers_cli import run_main
from tests.helpers_exec import write_python

DELEGATE = """
import json, sys
from pathlib import Path
request = json.loads(sys.stdin.read())
VERSION = "{version}"
if request["op"] == "describe":
    print(json.dumps({{"protocol": "bakeplan/1", "name": "envy", "version": VERSION,
                      "protocols": ["bakeplan/1"]}}))
else:
    with open({marker!r}, "a") as log:
        log.write("configure\\n")
    print(json.dumps({{"protocol": "bakeplan/1", "replace": request["fragment"]}}))
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A config, a registry whose delegate ``envy`` owns /env, and its configure log."""
    marker = tmp_path / "configured.log"
    write_python(tmp_path, "envy", DELEGATE.format(version="1.0", marker=str(marker)))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rc": [{"bin": "p"}], "env": {"A": "1"}}))
    registry = tmp_path / "registry.json"
    registry.write_text(
        json.dumps({"delegates": [{"name": "envy", "command": ["./envy"], "claims": ["/env"]}]})
    )
    return config, registry, marker


def plan(capsys: pytest.CaptureFixture[str], config: Path, registry: Path, *extra: str) -> int:
    code, _, _ = run_main(capsys, "plan", str(config), "-r", str(registry), *extra)
    return code


def test_the_lock_pins_each_delegate_and_the_bake_config(
    capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    config, registry, _ = setup
    locked = tmp_path / "bake.lock"
    assert plan(capsys, config, registry, "--lock", str(locked), "--no-cache") == 0
    document = json.loads(locked.read_text())
    assert explainer.violations("lock", document) == []
    assert document["bake"]["config"] == "hw_virtio"
    (pin,) = document["delegates"]
    assert pin["name"] == "envy"
    assert pin["command"] == [str(tmp_path / "envy")]
    assert (pin["version"], pin["protocols"], pin["fragment_schema_sha256"]) == (
        "1.0",
        ["bakeplan/1"],
        None,
    )
    first = locked.read_bytes()
    assert plan(capsys, config, registry, "--lock", str(locked)) == 0
    assert locked.read_bytes() == first  # deterministic, cache or not


def test_locked_holds_for_the_same_delegates(
    capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    config, registry, _ = setup
    locked = tmp_path / "bake.lock"
    assert plan(capsys, config, registry, "--lock", str(locked)) == 0
    assert plan(capsys, config, registry, "--locked", str(locked)) == 0
    code, out, err = run_main(capsys, "lock", "check", str(locked), "-r", str(registry))
    assert code == 0, err
    assert (
        out
        == f"{locked}: what is installed matches\n  1 delegate(s) and bake config hw_virtio match\n"
    )


def test_a_changed_delegate_fails_locked_before_it_configures(
    capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    config, registry, marker = setup
    locked = tmp_path / "bake.lock"
    assert plan(capsys, config, registry, "--lock", str(locked), "--no-cache") == 0
    marker.unlink()
    write_python(tmp_path, "envy", DELEGATE.format(version="2.0", marker=str(marker)))
    code, out, err = run_main(
        capsys, "plan", str(config), "-r", str(registry), "--locked", str(locked)
    )
    assert code == 3
    assert out == ""
    assert f"the plan's delegates or bake config differ from the lock {locked}" in err
    assert "delegate envy: its code (the content digest) changed" in err
    assert "delegate envy: its describe version changed (1.0 -> 2.0)" in err
    assert not marker.exists()  # refused before any configure ran
    code, out, _ = run_main(capsys, "lock", "check", str(locked), "-r", str(registry), "--json")
    assert code == 3
    assert json.loads(out)["matches"] is False


def test_another_bake_config_or_delegate_set_is_named(
    capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    config, registry, _ = setup
    locked = tmp_path / "bake.lock"
    assert plan(capsys, config, registry, "--lock", str(locked)) == 0
    code, _, err = run_main(
        capsys,
        "plan",
        str(config),
        "-r",
        str(registry),
        "-b",
        "hw_generic",
        "--locked",
        str(locked),
    )
    assert code == 3
    assert "bake config hw_generic, locked hw_virtio" in err
    empty = tmp_path / "empty.json"
    empty.write_text('{"delegates": []}')
    code, out, _ = run_main(capsys, "lock", "check", str(locked), "-r", str(empty))
    assert code == 3
    assert "delegate envy is locked but no registry names it" in out


def test_a_damaged_lock_is_refused_at_its_line(
    capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    config, registry, _ = setup
    bad = tmp_path / "bad.lock"
    bad.write_text(
        '{"lock": "bakeplan-lock/1",\n "bake": {"config": "hw_virtio"},\n "delegates": []}\n'
    )
    code, _, err = run_main(capsys, "plan", str(config), "-r", str(registry), "--locked", str(bad))
    assert code == 2
    assert f"{bad}:2:10: not a bakeplan lock file" in err


def test_differences_are_each_named() -> None:
    pin = lock.Pin("d", ("/bin/d",), "a" * 64, "1", ("bakeplan/1",), None)
    old = lock.Lock("hw_virtio", ("-la", "-lb"), (pin,))
    new = lock.Lock("hw_virtio", ("-la", "-lc"), (lock.Pin("e", ("/e",), "b" * 64, "1", (), None),))
    assert list(lock.differences(old, new)) == [
        "bake config hw_virtio links other libraries: no longer -lb, now -lc",
        "delegate d is locked but not used",
        "delegate e is used but not locked",
    ]


def test_lock_as_a_real_process(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    config, registry, _ = setup
    locked = tmp_path / "bake.lock"
    argv = [sys.executable, "-m", "orchestrator", "plan", str(config), "-r", str(registry)]
    done = subprocess.run([*argv, "--lock", str(locked)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    again = subprocess.run([*argv, "--locked", str(locked)], capture_output=True, check=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout == done.stdout


def test_a_lock_that_cannot_be_written_writes_no_plan(
    capsys: pytest.CaptureFixture[str], setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    config, registry, _ = setup
    out = tmp_path / "plan.json"
    lock_path = tmp_path / "no-such-folder" / "bake.lock"
    code, _, err = run_main(
        capsys, "plan", str(config), "-r", str(registry), "--lock", str(lock_path), "-o", str(out)
    )
    assert code == 2
    assert f"{lock_path}: cannot write lock file: No such file or directory" in err
    assert not out.exists()
