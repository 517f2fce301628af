"""Tests for orchestrator.core.runner with real executables written into tmp_path.

Nothing here asserts how long something took beyond bounds far above the expected time:
the assertions are on outcomes (timed_out, signal, cancelled, files, /proc), so a slow
machine makes the tests slower, not red.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers_exec import (
    process_gone,
    read_pid,
    this_process_children,
    wait_until,
    write_exec,
    write_python,
    write_sh,
)

from orchestrator.core import runner
from orchestrator.core.protocol import delegate_env
from orchestrator.core.runner import (
    Limits,
    Outcome,
    SpawnError,
    run,
    terminate_all,
)

# A time limit no test reaches unless the behaviour under test is broken.
NEVER = Limits(timeout=60.0)


@pytest.fixture(autouse=True)
def _private_tmp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make run() create its private directories under tmp_path and check they go.

    Also checks, after every test, that the test process has no child left (running or
    unreaped) and that the registry of live groups is empty.
    """
    root = tmp_path / "tmproot"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    assert list(root.iterdir()) == [], "run() left its private directory behind"
    assert wait_until(lambda: not this_process_children()), this_process_children()
    assert runner._live == {}


def env() -> dict[str, str]:
    return delegate_env(base={"PATH": os.environ.get("PATH", os.defpath)})


# --- answers and exit statuses ---------------------------------------------------------


def test_normal_answer(tmp_path: Path) -> None:
    echo = write_python(
        tmp_path,
        "echo-delegate",
        """
        import json, sys
        request = json.load(sys.stdin)
        print("configuring", request["pointer"], file=sys.stderr)
        json.dump({"protocol": "bakeplan/1", "replace": request["fragment"]}, sys.stdout)
        """,
    )
    request = json.dumps({"pointer": "/net", "fragment": {"a": 1}}).encode()

    outcome = run([str(echo)], request, env=env(), limits=NEVER)

    assert outcome.ok()
    assert outcome.status() == "exit status 0"
    assert json.loads(outcome.stdout) == {"protocol": "bakeplan/1", "replace": {"a": 1}}
    assert outcome.stderr_tail == b"configuring /net\n"
    assert outcome.stderr_bytes == len(b"configuring /net\n")
    assert outcome.argv == (str(echo),)
    assert (outcome.returncode, outcome.signal) == (0, None)
    assert not (outcome.timed_out or outcome.stdout_truncated or outcome.cancelled)


def test_big_request_and_answer_flow_concurrently(tmp_path: Path) -> None:
    # cat answers while it reads: if the runner wrote all of stdin before reading
    # stdout, both sides would block on full pipes.
    request = os.urandom(4 * 1024 * 1024)
    outcome = run(["cat"], request, env=env(), limits=NEVER)
    assert outcome.ok()
    assert outcome.stdout == request


def test_empty_request_closes_stdin(tmp_path: Path) -> None:
    outcome = run(["cat"], b"", env=env(), limits=NEVER)
    assert outcome.ok()
    assert outcome.stdout == b""


def test_exit_status(tmp_path: Path) -> None:
    failing = write_sh(
        tmp_path,
        "failing",
        """
        echo '{"error": {"code": "bad", "message": "no", "pointer": "/net"}}'
        echo 'it went wrong' >&2
        exit 3
        """,
    )
    outcome = run([str(failing)], b"{}", env=env(), limits=NEVER)
    assert not outcome.ok()
    assert (outcome.returncode, outcome.signal) == (3, None)
    assert outcome.status() == "exit status 3"
    assert b'"pointer": "/net"' in outcome.stdout
    assert outcome.stderr_text() == "it went wrong\n"


def test_killed_by_signal(tmp_path: Path) -> None:
    crashing = write_sh(
        tmp_path,
        "crashing",
        """
        ulimit -c 0
        kill -SEGV $$
        """,
    )
    outcome = run([str(crashing)], b"{}", env=env(), limits=NEVER)
    assert not outcome.ok()
    assert outcome.returncode is None
    assert outcome.signal == signal.SIGSEGV
    assert outcome.status() == "killed by SIGSEGV"
    assert not outcome.timed_out


# --- time limits and grandchildren -----------------------------------------------------


def test_time_limit_kills_the_group_and_a_grandchild_holding_the_pipes(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # The grandchild ignores SIGTERM and keeps stdout and stderr open: the runner must
    # not wait for its EOF, and the SIGKILL must reach it through the process group.
    stuck = write_sh(
        tmp_path,
        "stuck",
        f"""
        (trap '' TERM; exec sleep 1000) &
        echo $! > '{pidfile}'
        echo partial
        exec sleep 1000
        """,
    )
    outcome = run(
        [str(stuck)], b"{}", env=env(), limits=Limits(timeout=1.0, grace=60.0, exit_grace=0.1)
    )

    assert outcome.timed_out
    assert not outcome.ok()
    # The direct child died of the SIGTERM; the grandchild's SIGKILL came from the
    # exit_grace path, long before the 60 s grace would have sent one.
    assert outcome.signal == signal.SIGTERM
    assert outcome.status() == "time limit of 1s exceeded (killed SIGTERM)"
    assert outcome.elapsed < 60.0
    assert outcome.stdout == b"partial\n"
    grandchild = read_pid(pidfile)
    assert wait_until(lambda: process_gone(grandchild)), f"grandchild {grandchild} survived"


def test_time_limit_escalates_to_sigkill(tmp_path: Path) -> None:
    deaf = write_sh(
        tmp_path,
        "deaf",
        """
        trap '' TERM
        while :; do sleep 1; done
        """,
    )
    outcome = run([str(deaf)], b"{}", env=env(), limits=Limits(timeout=0.5, grace=0.2))
    assert outcome.timed_out
    assert outcome.signal == signal.SIGKILL
    assert outcome.status() == "time limit of 0.5s exceeded (killed SIGKILL)"


def test_timed_out_delegate_that_exits_on_sigterm_is_still_a_time_limit(
    tmp_path: Path,
) -> None:
    polite = write_sh(
        tmp_path,
        "polite",
        """
        trap 'echo stopping >&2; exit 0' TERM
        while :; do sleep 0.05; done
        """,
    )
    outcome = run([str(polite)], b"{}", env=env(), limits=Limits(timeout=0.5, grace=30.0))
    assert outcome.timed_out
    assert not outcome.ok()
    assert outcome.returncode == 0
    assert outcome.status() == "time limit of 0.5s exceeded (exit status 0)"
    assert b"stopping" in outcome.stderr_tail


def test_answer_then_exit_with_a_background_grandchild_returns_promptly(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    leaky = write_sh(
        tmp_path,
        "leaky",
        f"""
        sleep 1000 &
        echo $! > '{pidfile}'
        echo '{{"protocol": "bakeplan/1"}}'
        exit 0
        """,
    )
    outcome = run([str(leaky)], b"{}", env=env(), limits=NEVER)

    # Returned long before the time limit although the grandchild holds both pipes.
    assert not outcome.timed_out
    assert outcome.ok()
    assert json.loads(outcome.stdout) == {"protocol": "bakeplan/1"}
    # Killing the leftover grandchild does not count against the delegate.
    assert outcome.signal is None
    grandchild = read_pid(pidfile)
    assert wait_until(lambda: process_gone(grandchild)), f"grandchild {grandchild} survived"


def test_time_limit_does_not_apply_after_the_delegate_exited(tmp_path: Path) -> None:
    # The delegate answers at once; a grandchild keeps the pipes open past the time
    # limit but within exit_grace.  The delegate was on time: not a time limit failure.
    lingering = write_sh(
        tmp_path,
        "lingering",
        """
        sleep 2 &
        echo '{}'
        """,
    )
    outcome = run([str(lingering)], b"", env=env(), limits=Limits(timeout=1.0, exit_grace=30.0))
    assert not outcome.timed_out
    assert outcome.ok()
    assert outcome.stdout == b"{}\n"


def test_answer_written_just_before_exit_survives_zero_exit_grace(tmp_path: Path) -> None:
    quick = write_sh(
        tmp_path,
        "quick",
        """
        sleep 1000 &
        head -c 50000 /dev/zero
        """,
    )
    outcome = run([str(quick)], b"", env=env(), limits=Limits(timeout=60.0, exit_grace=0.0))
    assert outcome.ok()
    assert outcome.stdout == bytes(50000)


# --- bounded output --------------------------------------------------------------------


def test_stderr_flood_keeps_a_bounded_tail_and_the_answer(tmp_path: Path) -> None:
    noisy = write_sh(
        tmp_path,
        "noisy",
        """
        cat > /dev/null
        head -c 20000000 /dev/zero >&2
        printf 'last words' >&2
        echo '{"protocol": "bakeplan/1"}'
        """,
    )
    outcome = run([str(noisy)], b"{}", env=env(), limits=NEVER)
    assert outcome.ok()
    assert json.loads(outcome.stdout) == {"protocol": "bakeplan/1"}
    assert outcome.stderr_bytes == 20_000_000 + len(b"last words")
    assert len(outcome.stderr_tail) == Limits().stderr_tail
    assert outcome.stderr_tail.endswith(b"\0last words")
    assert outcome.stderr_text().startswith(
        f"[... {outcome.stderr_bytes - Limits().stderr_tail} earlier bytes"
    )


def test_stdout_over_the_cap_is_truncated_and_the_group_killed(tmp_path: Path) -> None:
    chatty = write_sh(
        tmp_path,
        "chatty",
        """
        head -c 100000 /dev/zero
        exec sleep 1000
        """,
    )
    outcome = run([str(chatty)], b"{}", env=env(), limits=Limits(timeout=60.0, stdout_cap=1024))
    assert outcome.stdout_truncated
    assert not outcome.timed_out
    assert not outcome.ok()
    assert outcome.stdout == bytes(1024)
    assert outcome.signal == signal.SIGKILL
    assert outcome.status() == "stdout exceeded the 1 KiB cap"


def test_stdout_exactly_at_the_cap_is_not_truncated(tmp_path: Path) -> None:
    exact = write_sh(tmp_path, "exact", "head -c 1024 /dev/zero\n")
    outcome = run([str(exact)], b"", env=env(), limits=Limits(stdout_cap=1024))
    assert outcome.ok()
    assert len(outcome.stdout) == 1024


@pytest.mark.parametrize(
    "body",
    [
        'echo \'{"protocol": "bakeplan/1"}\'\n',
        'exec 0<&-\nsleep 0.2\necho \'{"protocol": "bakeplan/1"}\'\n',
        'head -c 10 > /dev/null\necho \'{"protocol": "bakeplan/1"}\'\n',
    ],
    ids=["exits-without-reading", "closes-stdin-then-answers", "reads-ten-bytes"],
)
def test_delegate_that_does_not_read_the_request(tmp_path: Path, body: str) -> None:
    deaf = write_sh(tmp_path, "unread", body)
    outcome = run([str(deaf)], b"x" * (4 * 1024 * 1024), env=env(), limits=NEVER)
    assert outcome.ok()
    assert json.loads(outcome.stdout) == {"protocol": "bakeplan/1"}


# --- environment, working directory, session -------------------------------------------

INSPECT = """
import json, os, sys
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
    tty = True
except OSError:
    tty = False
with open("scratch.txt", "w") as scratch:
    scratch.write("left behind")
os.mkdir("locked")
os.chmod("locked", 0)
json.dump(
    {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "session_leader": os.getsid(0) == os.getpid(),
        "group_leader": os.getpgid(0) == os.getpid(),
        "tty": tty,
        "stdin": sys.stdin.read(),
    },
    sys.stdout,
)
"""


def test_environment_is_scrubbed_and_the_workdir_private(tmp_path: Path) -> None:
    inspect = write_python(tmp_path, "inspect", INSPECT)
    parent = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HOME": "/home/someone",
        "SECRET": "hunter2",
        "AWS_SECRET_ACCESS_KEY": "also-secret",
        "CNI_PATH": "/opt/cni/bin",
        "TMPDIR": "/parent/tmp",
    }
    child_env = delegate_env(
        passthrough=["CNI_PATH", "NOT_SET_ANYWHERE"],
        extra={"BAKEPLAN_DELEGATE": "cni-ipam"},
        base=parent,
    )

    outcome = run([str(inspect)], b"request", env=child_env, limits=NEVER)

    assert outcome.ok(), outcome.stderr_text()
    seen: dict[str, Any] = json.loads(outcome.stdout)
    workdir = seen["cwd"]
    assert seen["env"] == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "CNI_PATH": "/opt/cni/bin",
        "BAKEPLAN_DELEGATE": "cni-ipam",
        "TMPDIR": workdir,
    }
    assert Path(workdir).name.startswith("bakeplan-")
    assert seen["stdin"] == "request"
    # Removed afterwards, with the file and the unreadable directory the delegate made.
    assert not Path(workdir).exists()


def test_delegate_runs_in_its_own_session_without_a_terminal(tmp_path: Path) -> None:
    inspect = write_python(tmp_path, "inspect", INSPECT)
    outcome = run([str(inspect)], b"", env=env(), limits=NEVER)
    assert outcome.ok(), outcome.stderr_text()
    seen = json.loads(outcome.stdout)
    assert seen["session_leader"]
    assert seen["group_leader"]
    assert not seen["tty"]


def test_extra_wins_and_tmpdir_is_always_the_private_dir(tmp_path: Path) -> None:
    show = write_sh(tmp_path, "show", 'printf "%s %s" "$BAKEPLAN_X" "$TMPDIR"\n')
    made = delegate_env(
        extra={"BAKEPLAN_X": "from-extra", "TMPDIR": "/nope"},
        base={"PATH": "/bin:/usr/bin", "BAKEPLAN_X": "parent"},
    )
    outcome = run([str(show)], b"", env=made, limits=NEVER)
    value, tmpdir = outcome.stdout.decode().split(" ")
    assert value == "from-extra"
    assert Path(tmpdir).name.startswith("bakeplan-")


def test_relative_command_is_found_from_the_callers_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bin").mkdir()
    write_sh(tmp_path / "bin", "answer", "echo found\n")
    monkeypatch.chdir(tmp_path)
    outcome = run(["bin/answer"], b"", env=env(), limits=NEVER)
    assert outcome.ok()
    assert outcome.stdout == b"found\n"
    assert outcome.argv == ("bin/answer",)


def test_bare_name_is_looked_up_on_the_delegates_path(tmp_path: Path) -> None:
    write_sh(tmp_path, "only-here", "echo here\n")
    outcome = run(["only-here"], b"", env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, limits=NEVER)
    assert outcome.stdout == b"here\n"


# --- cancellation ----------------------------------------------------------------------


def _set_when_started(pidfile: Path, event: threading.Event) -> threading.Thread:
    def wait_then_set() -> None:
        read_pid(pidfile)
        event.set()

    thread = threading.Thread(target=wait_then_set)
    thread.start()
    return thread


def test_cancel_event_from_another_thread_stops_a_sleeping_delegate(tmp_path: Path) -> None:
    pidfile = tmp_path / "delegate.pid"
    sleepy = write_sh(tmp_path, "sleepy", f"echo $$ > '{pidfile}'\nexec sleep 1000\n")
    cancel = threading.Event()
    setter = _set_when_started(pidfile, cancel)

    outcome = run([str(sleepy)], b"{}", env=env(), limits=NEVER, cancel=cancel)
    setter.join()

    assert outcome.cancelled
    assert not outcome.timed_out
    assert not outcome.ok()
    # Cancel is the graceful path: SIGTERM first.
    assert outcome.signal == signal.SIGTERM
    assert outcome.status() == "cancelled (killed SIGTERM)"


def test_cancel_escalates_to_sigkill_after_grace(tmp_path: Path) -> None:
    pidfile = tmp_path / "delegate.pid"
    deaf = write_sh(
        tmp_path, "deaf", f"trap '' TERM\necho $$ > '{pidfile}'\nwhile :; do sleep 1; done\n"
    )
    cancel = threading.Event()
    setter = _set_when_started(pidfile, cancel)
    outcome = run(
        [str(deaf)], b"{}", env=env(), limits=Limits(timeout=60.0, grace=0.2), cancel=cancel
    )
    setter.join()
    assert outcome.cancelled
    assert not outcome.timed_out
    assert outcome.signal == signal.SIGKILL


def test_cancel_already_set_stops_the_delegate_at_once(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    outcome = run(["sleep", "1000"], b"", env=env(), limits=NEVER, cancel=cancel)
    assert outcome.cancelled
    assert not outcome.timed_out


def test_terminate_all_kills_every_live_group(tmp_path: Path) -> None:
    scripts = []
    for name in ("one", "two"):
        pidfile = tmp_path / f"{name}.grandchild.pid"
        script = write_sh(
            tmp_path,
            name,
            f"""
            (trap '' TERM; exec sleep 1000) &
            echo $! > '{pidfile}'
            exec sleep 1000
            """,
        )
        scripts.append((script, pidfile))

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(run, [str(script)], b"{}", env=env(), limits=NEVER) for script, _ in scripts
        ]
        grandchildren = [read_pid(pidfile) for _, pidfile in scripts]
        assert wait_until(lambda: len(runner._live) == 2)
        terminate_all()
        outcomes = [future.result(timeout=60) for future in futures]

    for outcome in outcomes:
        assert outcome.cancelled
        assert not outcome.timed_out
        assert outcome.signal == signal.SIGKILL
    for pid in grandchildren:
        assert wait_until(partial(process_gone, pid)), f"grandchild {pid} survived"


def test_terminate_all_with_nothing_running_is_harmless() -> None:
    assert not runner._live
    terminate_all()
    # It leaves nothing behind that would cancel the next run.
    outcome = run(["cat"], b"{}", env=env(), limits=NEVER)
    assert outcome.ok()
    assert not outcome.cancelled
    assert outcome.stdout == b"{}"
    assert not runner._live


# --- commands that cannot start --------------------------------------------------------


def test_missing_command_raises_spawn_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-delegate"
    with pytest.raises(SpawnError) as caught:
        run([str(missing)], b"{}", env=env())
    assert caught.value.command == str(missing)
    assert caught.value.reason.startswith("No such file or directory")
    assert str(missing) in str(caught.value)


def test_bare_name_not_on_path_raises_spawn_error(tmp_path: Path) -> None:
    with pytest.raises(SpawnError, match="not found on PATH"):
        run(["bakeplan-no-such-delegate"], b"{}", env={"PATH": str(tmp_path)})


def test_file_without_execute_bit_raises_spawn_error(tmp_path: Path) -> None:
    plain = write_exec(tmp_path, "plain", "#!/bin/sh\necho hi\n", mode=0o644)
    with pytest.raises(SpawnError, match="not executable") as caught:
        run([str(plain)], b"{}", env=env())
    assert caught.value.reason.startswith("Permission denied")


def test_directory_raises_spawn_error(tmp_path: Path) -> None:
    with pytest.raises(SpawnError, match="it is a directory"):
        run([str(tmp_path)], b"{}", env=env())


def test_missing_interpreter_raises_spawn_error(tmp_path: Path) -> None:
    orphan = write_exec(tmp_path, "orphan", "#!/nonexistent/interpreter\n")
    with pytest.raises(SpawnError, match="interpreter"):
        run([str(orphan)], b"{}", env=env())


def test_nul_in_argv_raises_spawn_error() -> None:
    with pytest.raises(SpawnError, match="NUL"):
        run(["cat", "a\0b"], b"", env=env())


def test_empty_argv_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="argv is empty"):
        run([], b"", env=env())


# --- Outcome and Limits as values ------------------------------------------------------


def _outcome(**changes: Any) -> Outcome:
    values: dict[str, Any] = {
        "argv": ("d",),
        "returncode": 0,
        "signal": None,
        "timed_out": False,
        "stdout": b"{}",
        "stdout_truncated": False,
        "stderr_tail": b"",
        "stderr_bytes": 0,
        "cancelled": False,
        "limits": Limits(timeout=2.0),
        "elapsed": 0.1,
    }
    values.update(changes)
    return Outcome(**values)


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, "exit status 0"),
        ({"returncode": 3}, "exit status 3"),
        ({"returncode": None, "signal": 11}, "killed by SIGSEGV"),
        ({"returncode": None, "signal": 99}, "killed by signal 99"),
        (
            {"returncode": None, "signal": 15, "timed_out": True},
            "time limit of 2s exceeded (killed SIGTERM)",
        ),
        (
            {"returncode": None, "signal": 9, "stdout_truncated": True, "limits": Limits()},
            "stdout exceeded the 16 MiB cap",
        ),
        (
            {
                "returncode": None,
                "signal": 9,
                "stdout_truncated": True,
                "limits": Limits(stdout_cap=1000),
            },
            "stdout exceeded the 1000 bytes cap",
        ),
        ({"returncode": None, "signal": 15, "cancelled": True}, "cancelled (killed SIGTERM)"),
    ],
)
def test_status_text(changes: dict[str, Any], status: str) -> None:
    outcome = _outcome(**changes)
    assert outcome.status() == status
    assert outcome.ok() is (status == "exit status 0")


def test_outcome_repr_leaves_out_the_bytes() -> None:
    text = repr(_outcome(stdout=b"x" * 100_000))
    assert "xxxx" not in text
    assert len(text) < 1000


@pytest.mark.parametrize(
    "bad",
    [{"timeout": 0}, {"grace": -1}, {"exit_grace": -0.1}, {"stdout_cap": -1}, {"stderr_tail": -1}],
)
def test_limits_reject_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        Limits(**bad)
