"""The fault matrix of docs/RELIABILITY.md: misbehaving delegates through the real command.

Each case is a real executable in ``tmp_path`` run by ``bakeplan plan`` (``main(argv)``,
or a real process where memory is measured), with the outcome the table documents.
Every test asks for ``no_leftovers``: nothing a delegate starts may outlive the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import BAKEPLAN, SPEC, run_main
from helpers_exec import process_gone, read_pid, wait_until
from helpers_protocol import write_delegate, write_identity

pytestmark = pytest.mark.usefixtures("no_leftovers")

HYBRID = REPO / "examples" / "hybrid" / "config.json"
MIB = 1024 * 1024


def registry_file(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"delegates": list(entries)}), encoding="utf-8")
    path.chmod(0o644)
    return path


def plan_with(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, script: str, *options: str
) -> tuple[int, str, str]:
    """``bakeplan plan`` of the hybrid example with ``script`` as the /net delegate."""
    write_delegate(tmp_path, "net", script)
    reg = registry_file(tmp_path, {"name": "net", "command": ["./net"], "claims": ["/net"]})
    return run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg), *options)


# -- time limit ------------------------------------------------------------------------------


@pytest.mark.parametrize("ignores_sigterm", [False, True], ids=["obeys-term", "ignores-term"])
def test_never_answers_with_grandchild_holding_the_pipes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ignores_sigterm: bool
) -> None:
    # The grandchild inherits stdout and stderr: waiting for EOF would wait 60 s.  With
    # SIGTERM ignored (inherited by the grandchild too) only the SIGKILL 2 s later works.
    trap = "trap '' TERM\n" if ignores_sigterm else ""
    script = f'{trap}sleep 60 &\necho $! > "{tmp_path}/grandchild"\necho $$ > "{tmp_path}/child"\n'
    script += "while :; do sleep 1; done\n"
    start = time.monotonic()
    code, out, err = plan_with(capsys, tmp_path, script, "--timeout", "0.5")
    elapsed = time.monotonic() - start
    assert (code, out) == (1, "")
    assert "delegate 'net' at /net: failed: time limit of 0.5s exceeded" in err
    assert ("killed SIGKILL" if ignores_sigterm else "killed SIGTERM") in err
    # The limit plus the 2 s grace, with generous room for a loaded machine.
    assert 0.5 <= elapsed < 0.5 + 2 + 8
    for name in ("child", "grandchild"):
        pid = read_pid(tmp_path / name)
        assert wait_until(lambda pid=pid: process_gone(pid)), f"{name} {pid} still runs"


def test_slow_but_inside_the_limit_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = plan_with(
        capsys,
        tmp_path,
        'cat >/dev/null\nsleep 1\necho \'{"protocol":"bakeplan/1"}\'\n',
        "--timeout",
        "10",
    )
    assert (code, err) == (0, "")
    assert "net" not in json.loads(out)["runtime"]["config"]


# -- output floods --------------------------------------------------------------------------

_MEASURE = (
    "import resource, sys\n"
    "from orchestrator.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stderr.write(f'maxrss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n')\n"
    "sys.exit(code)\n"
)


def _measured_plan(tmp_path: Path, flood_bytes: int) -> tuple[int, bytes, int]:
    """A real bakeplan process planning with a delegate that floods stderr, then answers;
    its exit code, stdout and peak resident memory in KiB."""
    write_delegate(
        tmp_path,
        "flood",
        f"cat >/dev/null\nyes 'a line of noise on stderr' | head -c {flood_bytes} >&2\n"
        'echo \'{"protocol":"bakeplan/1"}\'\n',
    )
    reg = registry_file(tmp_path, {"name": "flood", "command": ["./flood"], "claims": ["/net"]})
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, "plan", str(HYBRID), "-r", str(reg)],
        capture_output=True,
        env=os.environ.copy(),
        timeout=60,
        check=False,
    )
    err = done.stderr.decode()
    assert "Traceback" not in err
    rss = int(err.rsplit("maxrss_kib=", 1)[1])
    return done.returncode, done.stdout, rss


def test_stderr_flood_then_answer_succeeds_in_bounded_memory(tmp_path: Path) -> None:
    base_code, base_plan, base_rss = _measured_plan(tmp_path, 0)
    code, plan, rss = _measured_plan(tmp_path, 50 * MIB)
    assert (base_code, code) == (0, 0)
    assert plan == base_plan
    # Keeping 50 MB would show as 50 MB more; bakeplan keeps a 64 KiB tail (at most twice
    # that between trims), so the bound is generous for allocator noise.
    assert rss - base_rss < 16 * 1024, f"peak RSS grew from {base_rss} KiB to {rss} KiB"


def test_stderr_flood_keeps_the_tail_when_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = plan_with(
        capsys,
        tmp_path,
        "cat >/dev/null\nyes 'noise' | head -c 52428800 >&2\necho 'the real reason' >&2\nexit 3\n",
    )
    assert code == 1
    assert "status: exit status 3" in err
    assert "the real reason\n" in err
    omitted = int(err.split(", and ", 1)[1].split(" earlier bytes of stderr not kept]", 1)[0])
    assert 50 * MIB - 64 * 1024 <= omitted < 50 * MIB


def test_stdout_flood_is_cut_at_the_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    code, out, err = plan_with(
        capsys,
        tmp_path,
        f'echo $$ > "{tmp_path}/child"\ncat >/dev/null\nhead -c 209715200 /dev/zero\n',
    )
    assert (code, out) == (1, "")
    assert "stdout exceeded the 16 MiB cap" in err
    # Cut at the cap, not read to the end: far quicker than the 200 MB.
    assert time.monotonic() - start < 20
    assert wait_until(lambda: process_gone(read_pid(tmp_path / "child")))


# -- malformed answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo 'not json'", "malformed answer: stdout is not one strict JSON value"),
        ('echo \'{"protocol":"bakeplan/1"} {}\'', "extra data after the JSON value"),
        (":", "the delegate wrote nothing on stdout"),
        ('printf \'{"protocol":"\\377"}\'', "invalid UTF-8 byte 0xff"),
        ('echo \'{"protocol":"bakeplan/2"}\'', "speaks protocol 'bakeplan/2'"),
        (
            'echo \'{"protocol":"bakeplan/1","devices":[{"name":"x"}]}\'',
            "breaks the configure answer schema",
        ),
        ('echo \'["protocol", "bakeplan/1"]\'', "breaks the configure answer schema"),
    ],
    ids=["not-json", "two-values", "empty-exit-0", "non-utf8", "protocol-2", "schema", "array"],
)
def test_malformed_answer_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], script: str, expected: str
) -> None:
    code, out, err = plan_with(capsys, tmp_path, f"cat >/dev/null\n{script}\n")
    assert (code, out) == (1, "")
    assert "delegate 'net' at /net: malformed answer" in err
    assert expected in err
    assert "status: exit status 0" in err


@pytest.mark.parametrize(
    ("script", "status"),
    [
        ("kill -SEGV $$", "killed by SIGSEGV"),
        ("kill -KILL $$", "killed by SIGKILL"),
        ("exit 9", "exit status 9"),
        # An answer that looks fine does not rescue a non-zero exit.
        ('echo \'{"protocol":"bakeplan/1"}\'; exit 1', "exit status 1"),
    ],
)
def test_failing_without_an_error_object_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], script: str, status: str
) -> None:
    code, out, err = plan_with(capsys, tmp_path, f"cat >/dev/null\necho oops >&2\n{script}\n")
    assert (code, out) == (1, "")
    assert f"delegate 'net' at /net: failed: {status}" in err
    assert "| oops" in err


def test_failing_with_an_error_object_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = plan_with(
        capsys,
        tmp_path,
        """
        cat >/dev/null
        echo "looking at the interfaces" >&2
        printf '%s%s\\n' '{"protocol":"bakeplan/1","error":{"code":"nope",' \\
          '"message":"no such bridge","pointer":"/net/interfaces/vioif0"}}'
        exit 4
        """,
    )
    assert (code, out) == (1, "")
    assert "delegate 'net' at /net/interfaces/vioif0: no such bridge" in err
    assert "status: exit status 4" in err
    assert "| looking at the interfaces" in err
    assert "error code: nope" in err


def test_answer_without_reading_a_large_request_is_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 3 MB of request: far more than a pipe holds, so bakeplan is still writing when the
    # delegate exits.  EPIPE is not a failure; the answer decides.
    config = json.loads(HYBRID.read_text())
    config["net"] = {"blob": "x" * (3 * MIB)}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    write_delegate(tmp_path, "net", 'echo \'{"protocol":"bakeplan/1"}\'\n')
    reg = registry_file(tmp_path, {"name": "net", "command": ["./net"], "claims": ["/net"]})
    code, out, err = run_main(capsys, "plan", *SPEC, str(path), "-r", str(reg))
    assert code == 0, err
    plan = json.loads(out)
    assert "net" not in plan["runtime"]["config"]
    assert [d["delegate"] for d in plan["delegations"]] == ["net", "rumprun"]


# -- commands that cannot run ----------------------------------------------------------------


def test_missing_command_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = registry_file(
        tmp_path, {"name": "ghost", "command": ["no-such-delegate-anywhere"], "claims": ["/net"]}
    )
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert code == 2
    assert "delegate 'ghost'" in err
    assert "command 'no-such-delegate-anywhere' not found" in err


def test_command_without_run_bit_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_identity(tmp_path).chmod(0o644)
    reg = registry_file(tmp_path, {"name": "id", "command": ["./identity"], "claims": ["/net"]})
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert code == 2
    assert "delegate 'id'" in err
    assert "is not an executable file" in err


# -- fail fast and --keep-going --------------------------------------------------------------


def test_first_failure_stops_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    write_delegate(
        tmp_path,
        "slow",
        f'sleep 60 & echo $! > "{pids}/grandchild"\necho $$ > "{pids}/slow"\nwait\n',
    )
    # Fails only once the slow sibling is surely running, so the cancel has work to do.
    write_delegate(
        tmp_path,
        "fail",
        f'cat >/dev/null\nwhile [ ! -s "{pids}/slow" ]; do sleep 0.01; done\n'
        "echo 'env is broken' >&2\nexit 1\n",
    )
    reg = registry_file(
        tmp_path,
        {"name": "net-slow", "command": ["./slow"], "claims": ["/net"]},
        {"name": "env-fail", "command": ["./fail"], "claims": ["/env"]},
    )
    start = time.monotonic()
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg), "-j", "2")
    assert (code, out) == (1, "")
    assert time.monotonic() - start < 20  # not the sibling's 60 s
    assert "delegate 'env-fail' at /env: failed: exit status 1" in err
    # The cancelled sibling is stopped, not reported as a failure of its own.
    assert "net-slow" not in err
    for name in ("slow", "grandchild"):
        pid = read_pid(pids / name)
        assert wait_until(lambda pid=pid: process_gone(pid)), f"{name} {pid} still runs"


@pytest.mark.parametrize("jobs", ["1", "4"])
def test_keep_going_runs_every_independent_delegate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    write_delegate(
        tmp_path, "fail", f'touch "{marks}/$BAKEPLAN_DELEGATE"\ncat >/dev/null\nexit 5\n'
    )
    write_delegate(
        tmp_path,
        "ok",
        f'touch "{marks}/$BAKEPLAN_DELEGATE"\ncat >/dev/null\nsleep 0.3\n'
        'echo \'{"protocol":"bakeplan/1"}\'\n',
    )
    reg = registry_file(
        tmp_path,
        # The inner failure means the outer /net delegate can never run.
        {"name": "addr-fail", "command": ["./fail"], "claims": ["/net/interfaces/vioif0"]},
        {"name": "net-outer", "command": ["./ok"], "claims": ["/net"]},
        {"name": "env-fail", "command": ["./fail"], "claims": ["/env"]},
        {"name": "mount-ok", "command": ["./ok"], "claims": ["/mount"]},
    )
    code, out, err = run_main(
        capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg), "--keep-going", "-j", jobs
    )
    assert (code, out) == (1, "")
    assert "delegate 'addr-fail' at /net/interfaces/vioif0: failed: exit status 5" in err
    assert "delegate 'env-fail' at /env: failed: exit status 5" in err
    assert sorted(p.name for p in marks.iterdir()) == ["addr-fail", "env-fail", "mount-ok"]


def test_without_keep_going_one_job_stops_at_the_first_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    write_delegate(
        tmp_path, "fail", f'touch "{marks}/$BAKEPLAN_DELEGATE"\ncat >/dev/null\nexit 5\n'
    )
    reg = registry_file(
        tmp_path,
        {"name": "env-fail", "command": ["./fail"], "claims": ["/env"]},
        {"name": "net-fail", "command": ["./fail"], "claims": ["/net"]},
    )
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg), "-j", "1")
    assert code == 1
    # Routing order puts /env first; /net never starts.
    assert [p.name for p in marks.iterdir()] == ["env-fail"]
    assert "net-fail" not in err


def test_a_failure_and_a_success_finishing_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both delegates wait for the same starting gun, so their ends race each other in
    # the scheduler.  Whatever the order, the result is the one failure, exit 1.
    gun = tmp_path / "gun"
    wait = f'cat >/dev/null\nwhile [ ! -e "{gun}" ]; do sleep 0.005; done\n'
    write_delegate(tmp_path, "ok", wait + 'echo \'{"protocol":"bakeplan/1"}\'\n')
    write_delegate(tmp_path, "fail", wait + "exit 7\n")
    reg = registry_file(
        tmp_path,
        {"name": "net-ok", "command": ["./ok"], "claims": ["/net"]},
        {"name": "env-fail", "command": ["./fail"], "claims": ["/env"]},
    )
    for keep_going in ((), ("--keep-going",), (), ("--keep-going",)):
        gun.unlink(missing_ok=True)
        gun.touch()
        code, out, err = run_main(
            capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg), "-j", "2", *keep_going
        )
        assert (code, out) == (1, "")
        assert err.count("bakeplan: delegate failed:") == 1, err
        assert "delegate 'env-fail' at /env: failed: exit status 7" in err


SIGNAL_DEADLINE = 60.0


def test_sigterm_with_keep_going_stops_everything(tmp_path: Path) -> None:
    # Serial runs go in the main thread, where the SIGTERM handler raises: that must stop
    # the whole plan (143), not count as one delegate failing and start the next.
    marks = tmp_path / "marks"
    marks.mkdir()
    write_delegate(tmp_path, "slow", f'echo $$ > "{marks}/$BAKEPLAN_DELEGATE"\nexec sleep 60\n')
    reg = registry_file(
        tmp_path,
        {"name": "env-slow", "command": ["./slow"], "claims": ["/env"]},
        {"name": "net-slow", "command": ["./slow"], "claims": ["/net"]},
    )
    argv = [
        *BAKEPLAN,
        "plan",
        *SPEC,
        str(HYBRID),
        "-r",
        str(reg),
    ]
    process = subprocess.Popen(
        [*argv, "--keep-going", "-j", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        # Waits on the event itself (the pid file the delegate writes once it runs), with
        # a deadline no loaded machine reaches: the signal must come during configure.
        first = read_pid(marks / "env-slow", timeout=SIGNAL_DEADLINE)
        process.terminate()
        stdout, stderr = process.communicate(timeout=SIGNAL_DEADLINE)
    finally:
        process.kill()
    assert process.returncode == 143, stderr.decode()
    assert stdout == b""
    assert b"Traceback" not in stderr
    assert wait_until(lambda: process_gone(first), timeout=SIGNAL_DEADLINE)
    assert [p.name for p in marks.iterdir()] == ["env-slow"]
