"""``protocol.judge`` and the answer readers: how a run ended and what it wrote become
the parsed, checked answer or a ``Failure`` of each kind (cancelled, failed, unreadable,
invalid, unspoken, outside, schema), first from outcomes as data, then from real
executables run through the runner."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from helpers_exec import write_sh

from orchestrator.core import describe, protocol, runner
from orchestrator.core.protocol import Answer, Description, ErrorObject, Failure, Warning

LIMITS = runner.Limits(timeout=5.0)


def outcome(
    stdout: bytes = b"",
    *,
    returncode: int | None = 0,
    signal_number: int | None = None,
    timed_out: bool = False,
    truncated: bool = False,
    cancelled: bool = False,
    stderr: bytes = b"",
) -> runner.Outcome:
    """An outcome as ``runner.run`` would return it."""
    return runner.Outcome(
        argv=("./d",),
        returncode=returncode,
        signal=signal_number,
        timed_out=timed_out,
        stdout=stdout,
        stdout_truncated=truncated,
        stderr_tail=stderr,
        stderr_bytes=len(stderr),
        cancelled=cancelled,
        limits=LIMITS,
        elapsed=0.01,
    )


def line(document: Any) -> bytes:
    return (json.dumps(document) + "\n").encode()


ERROR = line({"protocol": "bakeplan/1", "error": {"message": "no", "code": "E1", "pointer": "/x"}})
DESCRIBED = {"protocol": "bakeplan/1", "name": "d", "version": "1", "protocols": ["bakeplan/1"]}


def failure(judged: object) -> Failure:
    assert isinstance(judged, Failure), judged
    return judged


# -- answers ------------------------------------------------------------------------------------


def test_an_answer_of_a_run_that_exited_0_is_read() -> None:
    raw = line({"protocol": "bakeplan/1", "replace": {"a": 1}})
    answer = protocol.judge(outcome(raw), protocol.parse_configure)
    assert answer == Answer(replaced=True, replace={"a": 1})
    assert protocol.judge(outcome(line(DESCRIBED)), protocol.parse_describe) == Description(
        name="d", version="1", protocols=("bakeplan/1",)
    )


def test_replace_null_is_not_no_replace() -> None:
    assert protocol.parse_configure(line({"protocol": "bakeplan/1", "replace": None})).replaced
    assert not protocol.parse_configure(line({"protocol": "bakeplan/1"})).replaced


def test_a_claim_keeps_warnings_inside_it_and_moves_the_others_to_it() -> None:
    raw = line(
        {
            "protocol": "bakeplan/1",
            "devices": [{"name": "n0", "kind": "net", "pointer": "/net/a"}],
            "warnings": [
                {"message": "inside", "pointer": "/net/a"},
                {"message": "nowhere"},
                {"message": "elsewhere", "pointer": "/env"},
            ],
        }
    )
    answer = protocol.parse_configure(raw, "/net")
    assert answer.warnings == (
        Warning(message="inside", pointer="/net/a"),
        Warning(message="nowhere"),
        Warning(
            message="elsewhere [the delegate pointed at /env, outside its claim /net]",
            pointer="/net",
        ),
    )
    # Without a claim, the answer is read as written.
    assert protocol.parse_configure(raw).warnings[2] == Warning(message="elsewhere", pointer="/env")


# -- every kind of failure ----------------------------------------------------------------------


def test_cancelled() -> None:
    found = failure(
        protocol.judge(
            outcome(returncode=None, signal_number=signal.SIGTERM, cancelled=True),
            protocol.parse_configure,
        )
    )
    assert (found.kind, found.message) == ("cancelled", "failed: cancelled (killed SIGTERM)")
    assert found.error is None


@pytest.mark.parametrize(
    ("ending", "status"),
    [
        ({"returncode": 3}, "exit status 3"),
        ({"returncode": None, "signal_number": signal.SIGSEGV}, "killed by SIGSEGV"),
        (
            {"returncode": None, "signal_number": signal.SIGTERM, "timed_out": True},
            "time limit of 5s exceeded (killed SIGTERM)",
        ),
        ({"returncode": None, "signal_number": 9, "truncated": True}, "stdout exceeded the"),
    ],
    ids=["exit status", "signal", "time limit", "stdout cap"],
)
def test_failed_says_how_the_run_ended(ending: dict[str, Any], status: str) -> None:
    done = outcome(line({"protocol": "bakeplan/1"}), stderr=b"one\ntwo\n", **ending)
    found = failure(protocol.judge(done, protocol.parse_configure))
    assert found.kind == "failed"
    assert found.status.startswith(status)
    assert found.message == f"failed: {found.status}"
    assert found.stderr == "one\ntwo"
    assert not found.malformed


def test_failed_keeps_the_error_object_of_a_non_zero_exit() -> None:
    found = failure(protocol.judge(outcome(ERROR, returncode=1), protocol.parse_configure))
    assert (found.kind, found.message, found.status) == ("failed", "no", "exit status 1")
    assert found.error == ErrorObject(message="no", code="E1", pointer="/x")


def test_an_error_object_counts_only_from_a_non_zero_exit() -> None:
    # Written before a time limit or a signal: how the run ended is what it says.
    late = outcome(ERROR, returncode=None, signal_number=signal.SIGTERM, timed_out=True)
    assert failure(protocol.judge(late, protocol.parse_configure)).error is None
    # Not a valid error object: the exit status is all there is.
    bad = outcome(line({"protocol": "bakeplan/1", "error": {"code": "x"}}), returncode=2)
    found = failure(protocol.judge(bad, protocol.parse_configure))
    assert (found.message, found.error) == ("failed: exit status 2", None)
    # Exit 0 with an error object is an answer breaking the configure schema.
    assert failure(protocol.judge(outcome(ERROR), protocol.parse_configure)).kind == "invalid"


@pytest.mark.parametrize(
    ("stdout", "said"),
    [
        (b"", "the delegate wrote nothing on stdout; one JSON object expected"),
        (b"  \n", "the delegate wrote nothing on stdout"),
        (b"{nope", "stdout is not one strict JSON value: stdout:1:2"),
        (b'{"protocol":"bakeplan/1"} {}', "stdout is not one strict JSON value"),
        (b'{"a":1,"a":2}', "stdout is not one strict JSON value"),
    ],
    ids=["empty", "blank", "not JSON", "two values", "duplicate key"],
)
def test_unreadable(stdout: bytes, said: str) -> None:
    found = failure(protocol.judge(outcome(stdout, stderr=b"why"), protocol.parse_configure))
    assert found.kind == "unreadable"
    assert found.malformed
    assert found.message.startswith(f"malformed answer: {said}")
    assert (found.status, found.stderr) == ("exit status 0", "why")


@pytest.mark.parametrize(
    ("document", "said"),
    [
        (
            {"protocol": "bakeplan/1", "devices": "none"},
            "the answer breaks the configure answer schema",
        ),
        (
            {"protocol": "bakeplan/2"},
            "the answer speaks protocol 'bakeplan/2'; bakeplan speaks 'bakeplan/1'",
        ),
        ({"replace": 1}, "the answer has no \"protocol\": 'bakeplan/1' expected"),
        ([1, 2], "the answer breaks the configure answer schema"),
    ],
    ids=["schema", "other protocol", "no protocol", "not an object"],
)
def test_invalid(document: Any, said: str) -> None:
    found = failure(protocol.judge(outcome(line(document)), protocol.parse_configure))
    assert found.kind == "invalid"
    assert found.message == f"malformed answer: {said}"


def test_invalid_says_every_violation() -> None:
    document = {"protocol": "bakeplan/1", "devices": [{"name": 1}], "warnings": "x"}
    found = failure(protocol.judge(outcome(line(document)), protocol.parse_configure))
    assert len(found.detail) >= 2
    assert any("/warnings" in d for d in found.detail)


@pytest.mark.parametrize(("spoken", "said"), [(["other/1"], "other/1"), ([], "none")])
def test_unspoken(spoken: list[str], said: str) -> None:
    document = {**DESCRIBED, "protocols": spoken}
    found = failure(protocol.judge(outcome(line(document)), protocol.parse_describe))
    assert (found.kind, found.message) == ("unspoken", f"speaks {said}, not bakeplan/1")
    assert not found.malformed


def test_outside() -> None:
    document = {"protocol": "bakeplan/1", "devices": [{"name": "d", "kind": "k", "pointer": "/e"}]}
    found = failure(
        protocol.judge(outcome(line(document)), lambda raw: protocol.parse_configure(raw, "/net"))
    )
    assert found.kind == "outside"
    assert found.message == "device 'd' points at /e, outside its claim"
    # Inside the claim, or with no pointer at all, a device is fine.
    for pointer in ("/net", "/net/x"):
        inside = {
            "protocol": "bakeplan/1",
            "devices": [{"name": "d", "kind": "k", "pointer": pointer}],
        }
        assert isinstance(protocol.parse_configure(line(inside), "/net"), Answer)


def test_schema() -> None:
    document = {**DESCRIBED, "fragment_schema": {"type": "no such type"}}
    found = failure(protocol.judge(outcome(line(document)), describe.read))
    assert found.kind == "schema"
    assert found.message.startswith("its fragment_schema is not a valid JSON Schema: ")
    # Filed answers had their schema checked before they were filed.
    assert describe.read(line(document), filed=True).fragment_schema == {"type": "no such type"}


def test_the_error_object_reader() -> None:
    assert protocol.parse_error(ERROR) == ErrorObject(message="no", code="E1", pointer="/x")
    assert protocol.parse_error(b"") is None
    assert protocol.parse_error(line({"protocol": "bakeplan/1"})) is None


# -- real runs ----------------------------------------------------------------------------------


def judged_run(tmp_path: Path, body: str, **limits: Any) -> Answer | Failure:
    script = write_sh(tmp_path, "d", body)
    done = runner.run(
        [str(script)],
        protocol.encode({"protocol": "bakeplan/1"}),
        env=protocol.delegate_env(),
        limits=runner.Limits(**{"timeout": 5.0, "grace": 0.2, **limits}),
    )
    return protocol.judge(done, protocol.parse_configure)


def test_real_runs_of_each_ending(tmp_path: Path) -> None:
    answer = judged_run(tmp_path, 'cat >/dev/null\necho \'{"protocol":"bakeplan/1"}\'\n')
    assert answer == Answer(replaced=False)
    failed = failure(
        judged_run(
            tmp_path,
            "cat >/dev/null\necho 'going' >&2\n"
            'echo \'{"protocol":"bakeplan/1","error":{"message":"no","pointer":"/p"}}\'\nexit 4\n',
        )
    )
    assert (failed.kind, failed.message, failed.status, failed.stderr) == (
        "failed",
        "no",
        "exit status 4",
        "going",
    )
    late = failure(judged_run(tmp_path, "exec sleep 30\n", timeout=0.3))
    assert late.kind == "failed"
    assert late.status.startswith("time limit of 0.3s exceeded")
    crashed = failure(judged_run(tmp_path, "kill -SEGV $$\n"))
    assert (crashed.kind, crashed.status) == ("failed", "killed by SIGSEGV")
    unreadable = failure(judged_run(tmp_path, "cat >/dev/null\necho 'hello'\n"))
    assert unreadable.kind == "unreadable"


def test_a_device_field_cannot_claim_to_be_by() -> None:
    # "by" is bakeplan's to fill in (the delegate that answered); a delegate cannot set it.
    with pytest.raises(protocol.ProtocolViolation, match="breaks the configure answer schema"):
        protocol.parse_configure(
            b'{"protocol": "bakeplan/1", "devices": [{"name": "tap0", "kind": "net", "by": 7}]}'
        )


# -- the environment a delegate gets ------------------------------------------------------


def test_delegate_env_defaults_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET", "hunter2")
    monkeypatch.setenv("LC_CTYPE", "C.UTF-8")
    monkeypatch.setenv("WANTED", "yes")
    made = protocol.delegate_env(passthrough=["WANTED"])
    assert "SECRET" not in made
    assert "HOME" not in made
    assert made["LC_CTYPE"] == "C.UTF-8"
    assert made["WANTED"] == "yes"
    assert made.get("PATH") == os.environ.get("PATH")
