"""One configure run (``core.configure``), without the scheduler or the command line.

``Configure`` is called as the scheduler would call it, once per run, with delegates that
are real executables in ``tmp_path``: each records the request bytes and variables it got
and how often it ran, writes on stderr and answers as its spec says.  Proven here: the
request it builds (the fragment with inner answers in place), the fragment check coming
first, the built-in rumprun layer answering in this process and naming who left what it
refuses, the response cache (a kept answer replayed and checked again against the run's
claim, only fit answers kept), how a failure becomes a ``DelegateError``, and the notes of
a successful delegate's stderr.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import helpers_rig
import pytest

from orchestrator.core import cache, protocol
from orchestrator.core.configure import Configure, fragment_for
from orchestrator.core.protocol import Answer, Context, Device, Request, Warning
from orchestrator.core.routing import Run
from orchestrator.core.scheduler import Cancelled, Result
from orchestrator.errors import DelegateError, InputError, exit_code_of

# Every delegate a test starts is gone when it ends, its private folder removed.
pytestmark = pytest.mark.usefixtures("no_leftovers")

CONTEXT = Context(bake_config="hw_virtio", platform="hw", components=("rumpnet_config",))
STATIC = {"type": "inet", "method": "static", "addr": "10.0.0.2/24"}
CONFIG: dict[str, Any] = {
    "net": {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}}},
    "env": {"A": "a", "B": "b"},
    "rc": [{"bin": "www"}],
}

DELEGATE = """
import json, os, sys, time
from pathlib import Path

name, spec, work = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
raw = sys.stdin.buffer.read()
with open(work / (name + ".runs"), "a") as runs:
    runs.write("x")
(work / (name + ".stdin")).write_bytes(raw)
(work / (name + ".env")).write_text(json.dumps(
    {k: v for k, v in os.environ.items() if k.startswith("BAKEPLAN_")}
))
if "stderr" in spec:
    sys.stderr.write(spec["stderr"])
if "sleep" in spec:
    time.sleep(spec["sleep"])
answer = spec.get("answer", {"replace": json.loads(raw)["fragment"]})
print(json.dumps({"protocol": "bakeplan/1", **answer}))
sys.exit(spec.get("exit", 0))
"""


def result(run: Run, answer: Answer) -> Result:
    return Result(run=run, command=(run.delegate,), request=b"", answer_bytes=b"", answer=answer)


class Rig(helpers_rig.Rig):
    """The rig's delegates, each run called directly."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path, DELEGATE)

    def configure(self, config: dict[str, Any] = CONFIG, **settings: Any) -> Configure:
        return self.make(config, CONTEXT, **settings)

    def run(
        self,
        work: Configure,
        pointer: str,
        done: dict[str, Result] | None = None,
        cancel: threading.Event | None = None,
    ) -> Result:
        return work(work.routing.by_pointer[pointer], done or {}, cancel or threading.Event())

    def runs(self, name: str) -> int:
        path = self.work / f"{name}.runs"
        return len(path.read_text()) if path.exists() else 0

    def stdin(self, name: str) -> bytes:
        return (self.work / f"{name}.stdin").read_bytes()


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


# -- the fragment ----------------------------------------------------------------------------

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
    routing = helpers_rig.routing_for(
        document, {"/rc": "outer", **{f"/rc/{i}": f"in{i}" for i in answers}}
    )
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
    routing = helpers_rig.routing_for(
        document,
        {
            "/net": "mirage",
            "/net/interfaces/vioif0/addrs/0": "ipam",
            "/net/gateways": "gw",
            "/env/A": "nuller",
        },
    )
    done = {
        "/net/interfaces/vioif0/addrs/0": result(
            routing.by_pointer["/net/interfaces/vioif0/addrs/0"],
            Answer(replaced=True, replace=STATIC),
        ),
        "/net/gateways": result(routing.by_pointer["/net/gateways"], Answer(replaced=False)),
        "/env/A": result(routing.by_pointer["/env/A"], Answer(replaced=True, replace=None)),
    }
    net = fragment_for(routing.by_pointer["/net"], document, done)
    assert net == {"interfaces": {"vioif0": {"addrs": [STATIC]}}}
    whole = fragment_for(
        routing.by_pointer[""],
        document,
        {**done, "/net": result(routing.by_pointer["/net"], Answer(replaced=False))},
    )
    assert whole == {"env": {"A": None, "B": "2"}}
    assert document == pristine
    # The fragment owns its values: changing it changes neither the answer nor the config.
    net["interfaces"]["vioif0"]["addrs"][0]["addr"] = "changed"
    assert STATIC["addr"] == "10.0.0.2/24"
    assert document == pristine


# -- the request and the result ----------------------------------------------------------------


def test_the_delegate_gets_its_fragment_with_inner_answers_and_the_context(rig: Rig) -> None:
    rig.add("ipam", "/net/interfaces/vioif0/addrs/0")
    rig.add("mirage", "/net", answer={"devices": [{"name": "vioif0", "kind": "net"}]})
    work = rig.configure()
    inner = work.routing.by_pointer["/net/interfaces/vioif0/addrs/0"]
    done = {inner.pointer: result(inner, Answer(replaced=True, replace=STATIC))}
    got = rig.run(work, "/net", done)
    sent = rig.stdin("mirage")
    assert got.request == sent
    assert json.loads(sent) == {
        "protocol": "bakeplan/1",
        "op": "configure",
        "delegate": "mirage",
        "pointer": "/net",
        "fragment": {"interfaces": {"vioif0": {"addrs": [STATIC]}}},
        "context": {
            "bake_config": "hw_virtio",
            "platform": "hw",
            "components": ["rumpnet_config"],
        },
    }
    env = json.loads((rig.work / "mirage.env").read_text())
    assert env == {
        "BAKEPLAN_PROTOCOL": "bakeplan/1",
        "BAKEPLAN_DELEGATE": "mirage",
        "BAKEPLAN_POINTER": "/net",
    }
    assert got.run is work.routing.by_pointer["/net"]
    # The command as registered, not as resolved on this machine.
    assert got.command == ("mirage",) != rig.argv("mirage")
    assert got.answer_bytes == (
        b'{"protocol": "bakeplan/1", "devices": [{"name": "vioif0", "kind": "net"}]}\n'
    )
    assert got.answer == Answer(replaced=False, devices=(Device(name="vioif0", kind="net"),))
    assert got.cached is False
    assert work.document == CONFIG  # the config itself is never changed


def test_the_fragment_check_comes_first_and_a_refusal_starts_nothing(rig: Rig) -> None:
    rig.add("envy", "/env")
    seen: list[tuple[str, Any]] = []

    def check(run: Run, fragment: Any) -> None:
        seen.append((run.pointer, fragment))
        raise InputError("not what envy takes", pointer=run.pointer)

    work = rig.configure(check=check)
    with pytest.raises(InputError, match="not what envy takes"):
        rig.run(work, "/env")
    assert seen == [("/env", {"A": "a", "B": "b"})]
    assert rig.runs("envy") == 0
    # The built-in layer has no fragment schema: no check for it.
    rig.run(work, "", {"/env": result(work.routing.by_pointer["/env"], Answer(replaced=False))})
    assert len(seen) == 1


# -- the built-in rumprun layer ------------------------------------------------------------------


def test_the_builtin_layer_answers_in_this_process(rig: Rig) -> None:
    rig.add("envy", "/env")
    work = rig.configure()
    done = {"/env": result(work.routing.by_pointer["/env"], Answer(replaced=False))}
    got = rig.run(work, "", done)
    residual = {"net": CONFIG["net"], "rc": CONFIG["rc"]}
    assert got.command == ()
    assert (
        got.request
        == Request(delegate="rumprun", pointer="", fragment=residual, context=CONTEXT).encode()
    )
    assert got.answer.replace == residual
    assert got.answer.devices == (
        Device(name="vioif0", kind="net", pointer="/net/interfaces/vioif0"),
    )
    # Its answer bytes are its answer's own encoding, as an external one would be read.
    assert protocol.parse_configure(got.answer_bytes, "") == got.answer
    assert got.answer_bytes == protocol.encode(got.answer.as_json())
    assert rig.runs("envy") == 0


def test_what_rumprun_cannot_read_names_the_delegate_that_left_it(rig: Rig) -> None:
    rig.add("setter", "/env/A")
    config = {**CONFIG, "rc": 3}
    work = rig.configure(config)
    done = {"/env/A": result(work.routing.by_pointer["/env/A"], Answer(replaced=True, replace=5))}
    with pytest.raises(DelegateError) as caught:
        rig.run(work, "", done)
    error = caught.value
    assert (error.delegate, error.pointer) == ("rumprun", "")
    assert error.message == "the runtime config left for rumprun is not valid rumprun config"
    assert error.detail == (
        "/env/A: must be a string, not an integer (left there by setter)",
        "/rc: must be an array, not an integer",
    )
    assert exit_code_of(error) == 1


# -- the response cache ------------------------------------------------------------------------


def responses(tmp_path: Path, *delegates: str) -> cache.Space:
    return cache.Store(folder=tmp_path / "store").space(cache.RESPONSES, delegates)


def kept(space: cache.Space) -> list[Path]:
    return sorted(space.store.folder.glob(f"*{cache.SUFFIX}"))


def test_a_kept_answer_is_replayed_without_running_the_delegate(rig: Rig, tmp_path: Path) -> None:
    rig.add("envy", "/env", stderr="working\n", answer={"replace": {"A": "x"}})
    space = responses(tmp_path, "envy")
    notes: list[str] = []
    work = rig.configure(responses=space, note=notes.append)
    cold = rig.run(work, "/env")
    assert (cold.cached, rig.runs("envy"), len(kept(space))) == (False, 1, 1)
    warm = rig.run(work, "/env")
    assert rig.runs("envy") == 1
    assert warm.cached is True
    assert (warm.request, warm.answer_bytes, warm.answer, warm.command) == (
        cold.request,
        cold.answer_bytes,
        cold.answer,
        cold.command,
    )
    assert len(notes) == 1  # a replayed answer wrote nothing on stderr
    # Another fragment is another key.
    other = rig.configure({**CONFIG, "env": {"A": "changed"}}, responses=space)
    assert rig.run(other, "/env").cached is False
    assert (rig.runs("envy"), len(kept(space))) == (2, 2)


def test_a_delegate_the_cache_does_not_keep_runs_every_time(rig: Rig, tmp_path: Path) -> None:
    rig.add("envy", "/env")
    space = responses(tmp_path, "someone-else")
    work = rig.configure(responses=space)
    assert [rig.run(work, "/env").cached for _ in range(2)] == [False, False]
    assert rig.runs("envy") == 2
    assert kept(space) == []


def test_a_kept_answer_is_read_against_this_runs_claim(rig: Rig, tmp_path: Path) -> None:
    rig.add("envy", "/env")
    space = responses(tmp_path, "envy")
    work = rig.configure(responses=space)
    fresh = rig.run(work, "/env").answer_bytes
    (entry,) = kept(space)
    key = entry.name.removesuffix(cache.SUFFIX)
    # A warning it kept pointing elsewhere is moved to the claim, as a fresh one would be.
    warned = b'{"protocol":"bakeplan/1","warnings":[{"message":"hm","pointer":"/net"}]}\n'
    space.put(key, warned)
    replayed = rig.run(work, "/env")
    assert replayed.cached and replayed.answer_bytes == warned
    assert replayed.answer.warnings == (
        Warning(
            message="hm [the delegate pointed at /net, outside its claim /env]", pointer="/env"
        ),
    )
    # A device outside the claim is no answer for this run: a miss, and the fresh answer
    # takes the entry's place.
    space.put(
        key, b'{"protocol":"bakeplan/1","devices":[{"name":"x","kind":"net","pointer":"/net"}]}\n'
    )
    again = rig.run(work, "/env")
    assert (again.cached, rig.runs("envy")) == (False, 2)
    assert space.get(key) == fresh


def test_an_answer_that_fails_is_never_kept(rig: Rig, tmp_path: Path) -> None:
    outside = {"devices": [{"name": "x", "kind": "net", "pointer": "/net"}]}
    rig.add("envy", "/env", answer=outside)
    space = responses(tmp_path, "envy")
    work = rig.configure(responses=space)
    for _ in range(2):
        with pytest.raises(DelegateError, match="outside its claim"):
            rig.run(work, "/env")
    assert rig.runs("envy") == 2
    assert kept(space) == []


def test_an_executable_that_cannot_be_read_is_reported_by_running_it(
    rig: Rig, tmp_path: Path
) -> None:
    rig.add("envy", "/env")
    missing = str(tmp_path / "missing")
    work = rig.configure(responses=responses(tmp_path, "envy"))
    work = dataclasses.replace(work, commands={"envy": (missing,)})
    with pytest.raises(DelegateError) as caught:
        rig.run(work, "/env")
    assert (caught.value.delegate, caught.value.pointer) == ("envy", "/env")
    assert caught.value.command == (missing,)  # what failed to start, as resolved
    assert missing in caught.value.message
    assert exit_code_of(caught.value) == 1


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "pointer", "detail"),
    [
        pytest.param(
            {"code": "nope", "message": "m", "pointer": "/env/A"},
            "/env/A",
            ("error code: nope",),
            id="inside-the-claim",
        ),
        pytest.param(
            {"message": "m", "pointer": "/net"},
            "/env",
            ("the delegate pointed at /net, outside its claim /env",),
            id="outside-the-claim",
        ),
        pytest.param(
            {"code": "c", "message": "m", "pointer": ""},
            "/env",
            ("error code: c", "the delegate pointed at (the whole config), outside its claim /env"),
            id="at-the-whole-config",
        ),
        pytest.param({"message": "m"}, "/env", (), id="no-pointer"),
    ],
)
def test_an_error_object_is_shown_where_the_delegate_may_point(
    rig: Rig, error: dict[str, str], pointer: str, detail: tuple[str, ...]
) -> None:
    rig.add("envy", "/env", answer={"error": error}, exit=4, stderr="first\nlast\n")
    with pytest.raises(DelegateError) as caught:
        rig.run(rig.configure(), "/env")
    failed = caught.value
    assert (failed.message, failed.pointer, failed.detail) == ("m", pointer, detail)
    assert (failed.status, failed.stderr_tail) == ("exit status 4", "first\nlast")
    assert failed.command == rig.argv("envy")


def test_a_failure_without_an_error_object_says_how_the_run_ended(rig: Rig) -> None:
    rig.add("envy", "/env", exit=3, stderr="oops\n")
    with pytest.raises(DelegateError) as caught:
        rig.run(rig.configure(), "/env")
    failed = caught.value
    assert (failed.message, failed.pointer, failed.detail) == ("failed: exit status 3", "/env", ())
    assert (failed.status, failed.stderr_tail) == ("exit status 3", "oops")


def test_a_malformed_answer_keeps_what_was_wrong_in_its_detail(rig: Rig) -> None:
    rig.add("envy", "/env", answer={"devices": 3})
    with pytest.raises(DelegateError) as caught:
        rig.run(rig.configure(), "/env")
    failed = caught.value
    assert failed.message == "malformed answer: the answer breaks the configure answer schema"
    assert failed.detail and all(isinstance(line, str) for line in failed.detail)
    assert failed.status == "exit status 0"


def test_an_answer_outside_its_claim_says_only_that(rig: Rig) -> None:
    outside = {"devices": [{"name": "x", "kind": "net", "pointer": "/net"}]}
    rig.add("envy", "/env", answer=outside, stderr="noise\n")
    with pytest.raises(DelegateError) as caught:
        rig.run(rig.configure(), "/env")
    failed = caught.value
    assert failed.message == "device 'x' points at /net, outside its claim"
    assert (failed.pointer, failed.command) == ("/env", rig.argv("envy"))
    # The answer was whole and valid: how the run ended is no news.
    assert (failed.status, failed.stderr_tail, failed.detail) == (None, "", ())


def test_a_cancelled_run_is_cancelled_not_failed(rig: Rig) -> None:
    rig.add("slow", "/env", sleep=30)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        rig.run(rig.configure(), "/env", cancel=cancel)


@pytest.mark.parametrize(("ours", "registered"), [(0.3, 60.0), (None, 0.3)])
def test_the_time_limit_given_wins_over_the_registered_one(
    rig: Rig, ours: float | None, registered: float
) -> None:
    rig.add("slow", "/env", sleep=30)
    work = rig.configure(timeout=ours)
    entry = dataclasses.replace(work.entries["slow"], timeout=registered)
    work = dataclasses.replace(work, entries={"slow": entry})
    with pytest.raises(DelegateError) as caught:
        rig.run(work, "/env")
    assert caught.value.status is not None
    assert caught.value.status.startswith("time limit of 0.3s exceeded")


# -- stderr notes --------------------------------------------------------------------------------


def test_a_successful_delegates_stderr_is_a_note_and_only_then(rig: Rig) -> None:
    rig.add("talk", "/env", stderr="one\ntwo\n")
    rig.add("quiet", "/rc")
    rig.add("bad", "/net", stderr="dying\n", exit=1)
    notes: list[str] = []
    work = rig.configure(note=notes.append)
    rig.run(work, "/env")
    rig.run(work, "/rc")
    with pytest.raises(DelegateError):
        rig.run(work, "/net")
    assert notes == ["talk at /env wrote on stderr:\n  | one\n  | two"]
    # Without a listener the same run goes on quietly.
    assert rig.run(rig.configure(), "/env").answer.replaced
