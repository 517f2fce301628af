"""The scheduler, without the command line: the order runs start and end in, what runs
at once, and what stops when one fails.

Runs are built by ``routing.route`` on real configs; delegates are real executables in
``tmp_path`` that log ``start NAME`` / ``end NAME`` lines, so order and overlap are
proven by what they wrote, never by how long something took.  What one run does is
test_configure's.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import helpers_rig
import pytest
from helpers_exec import process_gone, read_pid, this_process_children, wait_until

from orchestrator.core import scheduler
from orchestrator.core.protocol import Context, Device
from orchestrator.core.scheduler import Result
from orchestrator.errors import DelegateError, Problems, exit_code_of
from orchestrator.rumprun.bake import standard_book

HW = standard_book().get("hw_virtio")
CONTEXT = Context(bake_config=HW.name, platform=HW.platform, components=HW.components)


# -- scheduler.execute with real delegates -----------------------------------------------------

DELEGATE = """
import json, os, sys, time
from pathlib import Path

name, spec, work = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
request = json.load(sys.stdin)


def log(line):
    fd = os.open(work / "log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)


log("start " + name)
(work / (name + ".pid")).write_text(str(os.getpid()))
(work / (name + ".fragment")).write_text(json.dumps(request["fragment"]))
if "touch" in spec:
    (work / spec["touch"]).write_text("")
if "wait" in spec:
    deadline = time.monotonic() + 15
    while not (work / spec["wait"]).exists():
        if time.monotonic() > deadline:
            log("gave up " + name)
            sys.exit(3)
        time.sleep(0.01)
if "sleep" in spec:
    time.sleep(spec["sleep"])
if "fail" in spec:
    log("fail " + name)
    print("boom from " + name, file=sys.stderr)
    if spec["fail"]:
        error = {"code": "bad", "message": spec["fail"], "pointer": request["pointer"]}
        print(json.dumps({"protocol": "bakeplan/1", "error": error}))
    sys.exit(1)
log("end " + name)
answer = {"protocol": "bakeplan/1", **spec.get("answer", {})}
if spec.get("upper"):
    answer["replace"] = {k: v.upper() for k, v in request["fragment"].items()}
print(json.dumps(answer))
"""


class Rig(helpers_rig.Rig):
    """The rig's delegates, run by the scheduler; they log ``start NAME`` / ``end NAME``."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path, DELEGATE)

    def execute(self, config: dict[str, Any], **settings: Any) -> tuple[Result, ...]:
        """The scheduler's results for ``config``, each run configured by the rig's
        delegates; ``settings`` are ``scheduler.execute``'s."""
        work = self.make(config, CONTEXT)
        return scheduler.execute(work.routing, work, **settings)

    def log(self) -> list[str]:
        path = self.work / "log"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def fragment(self, name: str) -> Any:
        return json.loads((self.work / f"{name}.fragment").read_text(encoding="utf-8"))


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


@pytest.fixture(autouse=True)
def _no_delegate_left() -> Any:
    yield
    assert wait_until(lambda: not this_process_children()), this_process_children()


NESTED: dict[str, Any] = {
    "net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}}},
    "env": {"A": "a", "B": "b"},
    "rc": [{"bin": "www"}],
}
STATIC = {"type": "inet", "method": "static", "addr": "10.0.0.2/24"}


@pytest.mark.parametrize("jobs", [1, 4])
def test_inner_runs_finish_before_outer_runs_start(rig: Rig, jobs: int) -> None:
    rig.add("ipam", "/net/interfaces/vioif0/addrs/0", answer={"replace": STATIC})
    rig.add("mirage", "/net", answer={"devices": [{"name": "vioif0", "kind": "net"}]})
    rig.add("envy", "/env", upper=True)
    document = copy.deepcopy(NESTED)
    results = rig.execute(document, jobs=jobs)

    log = rig.log()
    assert sorted(log) == sorted(
        f"{s} {n}" for n in ("ipam", "mirage", "envy") for s in ("start", "end")
    )
    assert log.index("end ipam") < log.index("start mirage")
    assert rig.fragment("mirage") == {"interfaces": {"vioif0": {"addrs": [STATIC]}}}
    assert [(r.run.delegate, r.run.pointer) for r in results] == [
        ("envy", "/env"),
        ("ipam", "/net/interfaces/vioif0/addrs/0"),
        ("mirage", "/net"),
        ("rumprun", ""),
    ]
    builtin = results[-1]
    assert builtin.answer.replace == {"env": {"A": "A", "B": "B"}, "rc": [{"bin": "www"}]}
    assert results[2].answer.devices == (Device(name="vioif0", kind="net"),)
    assert results[2].command == ("mirage",)
    assert json.loads(results[2].request)["fragment"] == rig.fragment("mirage")
    assert results[2].answer_bytes == b'{"protocol": "bakeplan/1", "devices": ' + (
        b'[{"name": "vioif0", "kind": "net"}]}\n'
    )
    assert document == NESTED
    if jobs == 1:
        # One job: one by one, in routing order.
        assert log == [
            "start envy",
            "end envy",
            "start ipam",
            "end ipam",
            "start mirage",
            "end mirage",
        ]


def test_independent_runs_overlap_with_several_jobs(rig: Rig) -> None:
    # Each waits for the other to have started: this succeeds only if both run at once.
    rig.add("left", "/env/A", touch="left.started", wait="right.started")
    rig.add("right", "/env/B", touch="right.started", wait="left.started")
    results = rig.execute(copy.deepcopy(NESTED), jobs=2)
    assert "gave up left" not in rig.log()
    assert set(rig.log()) == {"start left", "end left", "start right", "end right"}
    assert results[-1].answer.replace == {
        "net": NESTED["net"],
        "env": {},
        "rc": [{"bin": "www"}],
    }


def test_one_job_runs_the_same_routing_one_by_one(rig: Rig) -> None:
    rig.add("left", "/env/A", touch="left.started")
    rig.add("right", "/env/B", touch="right.started")
    results = rig.execute(copy.deepcopy(NESTED), jobs=1)
    assert rig.log() == ["start left", "end left", "start right", "end right"]
    assert [r.run.delegate for r in results] == ["left", "right", "rumprun"]


def test_the_first_failure_stops_the_siblings(rig: Rig) -> None:
    rig.add("slow", "/env/A", touch="slow.started", sleep=30)
    rig.add("bad", "/env/B", wait="slow.started", fail="no good")
    rig.add("outer", "/env")
    began = time.monotonic()
    with pytest.raises(DelegateError) as caught:
        rig.execute(copy.deepcopy(NESTED), jobs=4)
    elapsed = time.monotonic() - began
    error = caught.value
    assert (error.delegate, error.message, error.pointer) == ("bad", "no good", "/env/B")
    assert error.status == "exit status 1"
    assert error.stderr_tail == "boom from bad"
    assert exit_code_of(error) == 1
    slow_pid = read_pid(rig.work / "slow.pid")
    assert wait_until(lambda: process_gone(slow_pid))
    log = rig.log()
    assert "start slow" in log
    assert "fail bad" in log
    assert "end slow" not in log
    assert "start outer" not in log
    assert elapsed < 25, "the sleeping sibling was waited for, not stopped"


def test_fail_fast_with_one_job_starts_nothing_more(rig: Rig) -> None:
    rig.add("first", "/env/A", fail="")
    rig.add("second", "/env/B")
    with pytest.raises(DelegateError) as caught:
        rig.execute(copy.deepcopy(NESTED), jobs=1)
    assert caught.value.delegate == "first"
    assert caught.value.message == "failed: exit status 1"
    assert rig.log() == ["start first", "fail first"]


@pytest.mark.parametrize("jobs", [1, 4])
def test_keep_going_reports_every_failure_and_skips_what_depends_on_them(
    rig: Rig, jobs: int
) -> None:
    rig.add("bad-a", "/rc/0", fail="")
    rig.add("bad-b", "/rc/1", fail="b says no")
    rig.add("outer", "/rc")
    rig.add("fine", "/env/A")
    config = {**copy.deepcopy(NESTED), "rc": [{"bin": "x"}, {"bin": "y"}]}
    with pytest.raises(Problems) as caught:
        rig.execute(config, jobs=jobs, keep_going=True)
    failures = [p for p in caught.value.problems if isinstance(p, DelegateError)]
    assert len(failures) == len(caught.value.problems)
    assert sorted((p.delegate, p.message, p.pointer) for p in failures) == [
        ("bad-a", "failed: exit status 1", "/rc/0"),
        ("bad-b", "b says no", "/rc/1"),
    ]
    assert exit_code_of(caught.value) == 1
    log = rig.log()
    assert {"fail bad-a", "fail bad-b", "start fine", "end fine"} <= set(log)
    assert "start outer" not in log
