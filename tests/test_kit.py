"""``bakeplan delegates check`` judges answers, not silences: a delegate that only sleeps
(or exits without a word) fails every row that needs an answer, ``same request, same
answer`` included; in a terminal the rows appear on stderr as they are judged, under a
spinner naming the step, while the table still goes to stdout."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_cli import run_main
from helpers_exec import write_sh
from helpers_protocol import description, write_registry


def check_args(registry: Path) -> list[str]:
    return ["-r", str(registry), "--timeout", "1"]


DESCRIBE = json.dumps(description("quiet", examples=["x"]), separators=(",", ":"))


def quiet_delegate(folder: Path, configure: str) -> Path:
    """Answers describe (with an example), then runs ``configure`` for every configure."""
    write_sh(
        folder,
        "quiet",
        f"""
        cat >/dev/null
        if [ -z "${{BAKEPLAN_POINTER-}}" ]; then echo '{DESCRIBE}'; exit 0; fi
        {configure}
        """,
    )
    return write_registry(folder, {"name": "quiet", "command": ["./quiet"], "claims": ["/env"]})


def rows(capsys: pytest.CaptureFixture[str], registry: Path, *more: str) -> dict[str, dict]:  # type: ignore[type-arg]
    code, out, err = run_main(
        capsys, "delegates", "check", "quiet", "-r", str(registry), "--json", *more
    )
    assert code == 1, err
    return {row["check"]: row for row in json.loads(out)["checks"]}


@pytest.mark.parametrize(
    ("configure", "said"),
    [("sleep 30", "time limit of 0.5s exceeded"), ("exit 0", "no JSON object on stdout")],
    ids=["sleeps", "says nothing"],
)
def test_a_delegate_that_does_not_answer_fails_every_row_that_needs_one(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_leftovers: Path,
    configure: str,
    said: str,
) -> None:
    registry = quiet_delegate(tmp_path, configure)
    found = rows(capsys, registry, "--timeout", "0.5")
    assert found["describe"]["passed"] is True
    for name in ("example 0", "refuses a wrong fragment", "same request, same answer"):
        assert found[name]["passed"] is False, found[name]
    assert found["same request, same answer"]["detail"].startswith(f"no answer to compare: {said}")
    if configure.startswith("sleep"):
        assert found["within the time limit"]["passed"] is False
        assert found["without a terminal"]["passed"] is False


def plain(data: bytes) -> bytes:
    """Terminal output without its escape sequences."""
    return re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", data)


def test_rows_appear_live_on_a_terminal(tmp_path: Path) -> None:
    registry = quiet_delegate(tmp_path, "sleep 30")
    leader, follower = pty.openpty()
    environ = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "delegates",
            "check",
            "quiet",
            *check_args(registry),
        ],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=environ,
    ) as process:
        os.close(follower)
        seen = b""
        # The describe row is judged long before the run ends (three runs of 1 s follow).
        deadline = time.monotonic() + 30
        while b"PASS describe" not in plain(seen) and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
        assert process.poll() is None, "the rows were not shown while the check ran"
        assert b"PASS describe" in plain(seen)
        assert b"checking quiet:" in plain(seen)
        out, _ = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 1
    assert b"same request, same answer  FAIL" in out  # the table, on stdout, piped


def test_no_progress_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = quiet_delegate(tmp_path, "exit 0")
    code, _, err = run_main(capsys, "delegates", "check", "quiet", "-r", str(registry))
    assert code == 1
    assert err.splitlines() == ["bakeplan: quiet: 3 of 6 checks failed"]
