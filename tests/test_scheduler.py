"""The scheduler and the plan assembly, without the command line.

Runs are built by ``routing.route`` on real configs; delegates are real executables in
``tmp_path`` that log ``start NAME`` / ``end NAME`` lines, so order and overlap are
proven by what they wrote, never by how long something took.  Plans are assembled from
hand-made ``Result`` values.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from helpers_exec import process_gone, read_pid, this_process_children, wait_until, write_python

from orchestrator.core import scheduler
from orchestrator.core.configure import Configure, fragment_for
from orchestrator.core.protocol import Answer, Context, Device
from orchestrator.core.registry import Entry, Registry
from orchestrator.core.routing import Routing, Run, route
from orchestrator.core.scheduler import Result
from orchestrator.errors import DelegateError, Problems, exit_code_of
from orchestrator.rumprun.bake import standard_book

HW = standard_book().get("hw_virtio")
XEN = standard_book().get("xen_pv")
CONTEXT = Context(bake_config=HW.name, platform=HW.platform, components=HW.components)
SHA_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def routing_for(config: dict[str, Any], claims: dict[str, str]) -> Routing:
    """``claims`` maps pointer -> delegate name; each delegate claims one pointer."""
    entries = tuple(Entry(name=n, command=(n,), claims=(p,)) for p, n in claims.items())
    return route(config, Registry(entries=entries, files=()))


def result(run: Run, answer: Answer, request: bytes = b"", answer_bytes: bytes = b"") -> Result:
    return Result(
        run=run,
        command=() if run.builtin else (run.delegate,),
        request=request,
        answer_bytes=answer_bytes,
        answer=answer,
    )


# -- fragment_for ---------------------------------------------------------------------------

RC12: dict[str, Any] = {"rc": [{"bin": f"p{i}"} for i in range(12)]}


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        pytest.param(
            {"0": None, "2": {"bin": "two"}, "10": None},
            ["p1", "two", *(f"p{i}" for i in range(3, 10)), "p11"],
            id="0-consumed-2-replaced-10-consumed",
        ),
        pytest.param(
            {"0": {"bin": "zero"}, "2": None, "10": None},
            ["zero", "p1", *(f"p{i}" for i in range(3, 10)), "p11"],
            id="0-replaced-2-and-10-consumed",
        ),
        pytest.param(
            {"0": None, "2": None, "10": {"bin": "ten"}},
            ["p1", *(f"p{i}" for i in range(3, 10)), "ten", "p11"],
            id="0-and-2-consumed-10-replaced",
        ),
    ],
)
def test_several_inner_runs_in_one_array_land_at_their_indexes(
    answers: dict[str, Any], expected: list[str]
) -> None:
    document = copy.deepcopy(RC12)
    routing = routing_for(document, {"/rc": "outer", **{f"/rc/{i}": f"in{i}" for i in answers}})
    outer = routing.by_pointer["/rc"]
    assert sorted(outer.inner) == ["/rc/0", "/rc/10", "/rc/2"]
    done = {
        f"/rc/{i}": result(
            routing.by_pointer[f"/rc/{i}"],
            Answer(replaced=False) if value is None else Answer(replaced=True, replace=value),
        )
        for i, value in answers.items()
    }
    fragment = fragment_for(outer, document, done)
    assert [item["bin"] for item in fragment] == expected
    assert document == RC12


def test_inner_answers_in_an_object_replace_or_remove_keys() -> None:
    document: dict[str, Any] = {
        "net": {
            "interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "ipam"}]}},
            "gateways": [{"type": "inet", "addr": "10.0.0.1"}],
        },
        "env": {"A": "1", "B": "2"},
    }
    pristine = copy.deepcopy(document)
    routing = routing_for(
        document,
        {
            "/net": "mirage",
            "/net/interfaces/vioif0/addrs/0": "ipam",
            "/net/gateways": "gw",
            "/env/A": "nuller",
        },
    )
    static = {"type": "inet", "method": "static", "addr": "10.0.0.2/24"}
    done = {
        "/net/interfaces/vioif0/addrs/0": result(
            routing.by_pointer["/net/interfaces/vioif0/addrs/0"],
            Answer(replaced=True, replace=static),
        ),
        "/net/gateways": result(routing.by_pointer["/net/gateways"], Answer(replaced=False)),
        "/env/A": result(routing.by_pointer["/env/A"], Answer(replaced=True, replace=None)),
    }
    net = fragment_for(routing.by_pointer["/net"], document, done)
    assert net == {"interfaces": {"vioif0": {"addrs": [static]}}}
    whole = fragment_for(
        routing.by_pointer[""],
        document,
        {**done, "/net": result(routing.by_pointer["/net"], Answer(replaced=False))},
    )
    assert whole == {"env": {"A": None, "B": "2"}}
    assert document == pristine
    # The fragment owns its values: changing it changes neither the answer nor the config.
    net["interfaces"]["vioif0"]["addrs"][0]["addr"] = "changed"
    assert static["addr"] == "10.0.0.2/24"
    assert document == pristine


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


class Rig:
    """Delegates in ``tmp_path``: each claims one pointer and behaves as its spec says."""

    def __init__(self, tmp_path: Path) -> None:
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.script = write_python(tmp_path, "delegate.py", DELEGATE)
        self.specs: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(self, name: str, pointer: str, **spec: Any) -> None:
        self.specs[name] = (pointer, spec)

    def execute(self, config: dict[str, Any], **settings: Any) -> tuple[Result, ...]:
        """The scheduler's results for ``config``, each run configured by the rig's
        delegates; ``settings`` are ``scheduler.execute``'s."""
        routing = routing_for(config, {p: n for n, (p, _) in self.specs.items()})
        work = Configure(
            routing=routing,
            document=config,
            context=CONTEXT,
            entries={
                n: Entry(name=n, command=(n,), claims=(p,), timeout=60.0)
                for n, (p, _) in self.specs.items()
            },
            commands={
                n: (str(self.script), n, json.dumps(spec), str(self.work))
                for n, (_, spec) in self.specs.items()
            },
        )
        return scheduler.execute(routing, work, **settings)

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


# -- plan.assemble -----------------------------------------------------------------------------
