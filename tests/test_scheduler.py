"""The scheduler and the plan assembly, without the command line.

Runs are built by ``routing.route`` on real configs; delegates are real executables in
``tmp_path`` that log ``start NAME`` / ``end NAME`` lines, so order and overlap are
proven by what they wrote, never by how long something took.  Plans are assembled from
hand-made ``Result`` values.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from helpers_exec import process_gone, read_pid, this_process_children, wait_until, write_python
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core import plan, protocol
from orchestrator.core.protocol import Answer, Context, Device, Warning
from orchestrator.core.registry import Entry, Registry
from orchestrator.core.routing import Routing, Run, route
from orchestrator.core.scheduler import Result, Scheduler, Settings, fragment_for
from orchestrator.errors import ConflictError, DelegateError, Problems, exit_code_of
from orchestrator.pointers import tokens_of
from orchestrator.rumprun.bake import BakeConfig, standard_book
from orchestrator.rumprun.runtime import text as runtime_text
from orchestrator.schemas import explainer

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


# -- Scheduler.execute with real delegates -----------------------------------------------------

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

    def scheduler(self, config: dict[str, Any], **settings: Any) -> Scheduler:
        routing = routing_for(config, {p: n for n, (p, _) in self.specs.items()})
        return Scheduler(
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
            settings=Settings(**settings),
        )

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
    results = rig.scheduler(document, jobs=jobs).execute()

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
    results = rig.scheduler(copy.deepcopy(NESTED), jobs=2).execute()
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
    results = rig.scheduler(copy.deepcopy(NESTED), jobs=1).execute()
    assert rig.log() == ["start left", "end left", "start right", "end right"]
    assert [r.run.delegate for r in results] == ["left", "right", "rumprun"]


def test_the_first_failure_stops_the_siblings(rig: Rig) -> None:
    rig.add("slow", "/env/A", touch="slow.started", sleep=30)
    rig.add("bad", "/env/B", wait="slow.started", fail="no good")
    rig.add("outer", "/env")
    began = time.monotonic()
    with pytest.raises(DelegateError) as caught:
        rig.scheduler(copy.deepcopy(NESTED), jobs=4).execute()
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
        rig.scheduler(copy.deepcopy(NESTED), jobs=1).execute()
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
        rig.scheduler(config, jobs=jobs, keep_going=True).execute()
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


def run_of(delegate: str, pointer: str) -> Run:
    return Run(delegate=delegate, pointer=pointer, tokens=tokens_of(pointer))


def builtin(runtime: Any, **answer: Any) -> Result:
    return result(run_of("rumprun", ""), Answer(replaced=True, replace=runtime, **answer))


def test_directives_and_libs_follow_routing_order() -> None:
    results = [
        result(
            run_of("mirage", "/net"),
            Answer(
                replaced=False,
                remove=("rumpnet_netinet", "rumpnet_netinet6"),
                add=("rumpdev_bpf", "mirage_tcpip"),
            ),
        ),
        result(run_of("extra", "/env"), Answer(replaced=False, add=("rumpnet_netinet", "zz"))),
        builtin({}),
    ]
    built = plan.assemble(HW, results, dialect="spec").to_json()
    assert built["bake"]["directives"] == [
        {
            "op": "add",
            "args": ["-lrumpdev_bpf", "-lmirage_tcpip"],
            "by": "mirage",
            "pointer": "/net",
        },
        {
            "op": "remove",
            "args": ["-lrumpnet_netinet", "-lrumpnet_netinet6"],
            "by": "mirage",
            "pointer": "/net",
        },
        {"op": "add", "args": ["-lrumpnet_netinet", "-lzz"], "by": "extra", "pointer": "/env"},
    ]
    # rumprun-bake: add appends, remove drops every occurrence, then first occurrences kept.
    base = [lib for lib in HW.libs if lib not in ("-lrumpnet_netinet", "-lrumpnet_netinet6")]
    assert built["bake"]["libs"] == [*base, "-lmirage_tcpip", "-lrumpnet_netinet", "-lzz"]
    assert "-lrumpdev_bpf" in HW.libs
    assert built["bake"]["libs"].count("-lrumpdev_bpf") == 1
    assert (built["bake"]["config"], built["bake"]["platform"]) == ("hw_virtio", "hw")


def test_devices_carry_by_pointer_and_sorted_extra_fields() -> None:
    results = [
        result(
            run_of("mirage", "/net"),
            Answer(
                replaced=False,
                devices=(
                    Device(name="vioif0", kind="net", fields={"zeta": 1, "alpha": [2]}),
                    Device(name="vioif1", kind="net", pointer="/net/interfaces/vioif1"),
                ),
            ),
        ),
        builtin({}, devices=(Device(name="ld0", kind="block", pointer="/mount/~1data"),)),
    ]
    devices = plan.assemble(HW, results, dialect="spec").to_json()["devices"]
    assert devices == [
        {
            "name": "vioif0",
            "kind": "net",
            "by": "mirage",
            "pointer": "/net",
            "alpha": [2],
            "zeta": 1,
        },
        {"name": "vioif1", "kind": "net", "by": "mirage", "pointer": "/net/interfaces/vioif1"},
        {"name": "ld0", "kind": "block", "by": "rumprun", "pointer": "/mount/~1data"},
    ]
    assert list(devices[0]) == ["name", "kind", "by", "pointer", "alpha", "zeta"]


def test_a_device_field_cannot_override_by() -> None:
    with pytest.raises(protocol.ProtocolViolation, match="breaks the configure answer schema"):
        protocol.parse_configure(
            b'{"protocol": "bakeplan/1", "devices": [{"name": "tap0", "kind": "net", "by": 7}]}'
        )
    sneaky = Answer(replaced=False, devices=(Device(name="tap0", kind="net", fields={"by": 7}),))
    built = plan.assemble(
        HW, [result(run_of("sneaky", "/net"), sneaky), builtin({})], dialect="spec"
    ).to_json()
    assert built["devices"][0]["by"] == "sneaky"
    explainer.validator("plan").validate(built)


def test_duplicate_device_names_are_a_conflict_naming_both_delegates() -> None:
    results = [
        result(
            run_of("mirage", "/net"),
            Answer(replaced=False, devices=(Device(name="ld0", kind="net"),)),
        ),
        builtin({}, devices=(Device(name="ld0", kind="block", pointer="/mount/~1data"),)),
    ]
    with pytest.raises(ConflictError) as caught:
        plan.assemble(HW, results, dialect="spec")
    assert caught.value.message == "device name 'ld0' given by mirage (at /net) and by rumprun"
    assert caught.value.pointer == "/mount/~1data"
    assert exit_code_of(caught.value) == 3


def test_toolchains_concatenate_across_delegates_in_run_order() -> None:
    results = [
        result(
            run_of("first", "/net"),
            Answer(
                replaced=False,
                toolchain={"ocaml": {"packages": ("tcpip",), "boot": ("--ipv4=1",)}},
            ),
        ),
        result(
            run_of("second", "/env"),
            Answer(
                replaced=False,
                toolchain={"go": {"link": ("-s",)}, "ocaml": {"packages": ("mirage", "tcpip")}},
            ),
        ),
        builtin({}),
    ]
    toolchains = plan.assemble(HW, results, dialect="spec").to_json()["toolchains"]
    assert toolchains == {
        "go": {"link": ["-s"]},
        "ocaml": {"boot": ["--ipv4=1"], "packages": ["tcpip", "mirage", "tcpip"]},
    }
    assert list(toolchains) == ["go", "ocaml"]
    assert list(toolchains["ocaml"]) == ["boot", "packages"]


def test_warnings_carry_by_and_default_to_the_runs_pointer() -> None:
    results = [
        result(
            run_of("mirage", "/net"),
            Answer(
                replaced=False,
                warnings=(
                    Warning(message="no gateway"),
                    Warning(message="dhcp ignored", pointer="/net/interfaces/vioif0"),
                ),
            ),
        ),
        builtin({}, warnings=(Warning(message="whole", pointer=""),)),
    ]
    assert plan.assemble(HW, results, dialect="spec").to_json()["warnings"] == [
        {"by": "mirage", "pointer": "/net", "message": "no gateway"},
        {"by": "mirage", "pointer": "/net/interfaces/vioif0", "message": "dhcp ignored"},
        {"by": "rumprun", "pointer": "", "message": "whole"},
    ]


def runtime_of_size(size: int, char: str = "a") -> dict[str, Any]:
    """A runtime config whose compact UTF-8 encoding is exactly ``size`` bytes."""
    room = size - len(b'{"env":{"X":""}}')
    width = len(char.encode("utf-8"))
    assert room % width == 0
    runtime = {"env": {"X": char * (room // width)}}
    assert len(protocol.encode(runtime)) - 1 == size
    return runtime


def multiboot_warnings(bake: BakeConfig, runtime: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        w
        for w in plan.assemble(bake, [builtin(runtime)], dialect="spec").to_json()["warnings"]
        if w["by"] == "bakeplan"
    ]


def test_a_runtime_config_too_long_for_multiboot_warns_on_hw_only() -> None:
    runtime = runtime_of_size(4097)
    assert multiboot_warnings(HW, runtime) == [
        {
            "by": "bakeplan",
            "pointer": "",
            "message": "the runtime config is 4097 bytes in the spec dialect; rumprun on hw halts "
            "when the config reaches 4095 bytes as a multiboot module (4096 on the kernel "
            "command line)",
        }
    ]
    assert multiboot_warnings(XEN, runtime) == []
    assert multiboot_warnings(HW, runtime_of_size(4000)) == []


def test_the_multiboot_size_counts_the_bytes_rumprun_reads_not_characters() -> None:
    runtime = runtime_of_size(16 + 2 * 2041, char="é")  # 4098 bytes of UTF-8, 2057 characters
    # The spec parser reads ASCII, so each é is the six bytes of \u00e9 there.
    assert [w["message"].split(";")[0] for w in multiboot_warnings(HW, runtime)] == [
        f"the runtime config is {16 + 6 * 2041} bytes in the spec dialect"
    ]
    # Released rumprun takes the UTF-8 bytes as they are: two for each é.
    master = plan.assemble(
        HW, [builtin({"rc": [{"bin": "a"}], **runtime})], dialect="master"
    ).to_json()
    text = runtime_text(master["runtime"])
    assert text.count("é") == 2041
    assert [w["message"].split(";")[0] for w in master["warnings"]] == [
        f"the runtime config is {len(text) + 2041} bytes in the master dialect"
    ]


def test_the_warning_starts_where_a_multiboot_module_halts() -> None:
    assert len(multiboot_warnings(HW, runtime_of_size(4095))) == 1
    assert multiboot_warnings(HW, runtime_of_size(4094)) == []


def test_delegations_digest_the_exact_bytes() -> None:
    results = [
        result(run_of("mirage", "/net"), Answer(replaced=False), request=b"abc", answer_bytes=b""),
        result(
            run_of("rumprun", ""),
            Answer(replaced=True, replace={}),
            request=b"",
            answer_bytes=b"abc",
        ),
    ]
    assert plan.assemble(HW, results, dialect="spec").to_json()["delegations"] == [
        {
            "delegate": "mirage",
            "pointer": "/net",
            "command": ["mirage"],
            "builtin": False,
            "request_sha256": SHA_ABC,
            "answer_sha256": SHA_EMPTY,
        },
        {
            "delegate": "rumprun",
            "pointer": "",
            "command": [],
            "builtin": True,
            "request_sha256": SHA_EMPTY,
            "answer_sha256": SHA_ABC,
        },
    ]
    assert hashlib.sha256(b"abc").hexdigest() == SHA_ABC


# -- the assembly property -----------------------------------------------------------------------

component = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
word = st.text(alphabet="abcxyz-=/é", max_size=6)
field_name = st.text(alphabet="abcdefgh_", min_size=1, max_size=5)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), word)
device = st.builds(
    Device,
    name=st.sampled_from(["vioif0", "vioif1", "ld0", "ld1", "tap0", "xenif0"]),
    kind=st.sampled_from(["net", "block"]),
    pointer=st.one_of(st.none(), st.sampled_from(["/net", "/net/interfaces/vioif0", ""])),
    fields=st.dictionaries(field_name, json_leaf, max_size=3),
)
answers = st.builds(
    Answer,
    replaced=st.booleans(),
    replace=json_leaf,
    devices=st.lists(device, max_size=2).map(tuple),
    add=st.lists(component, max_size=3).map(tuple),
    remove=st.lists(
        st.one_of(component, st.sampled_from(["rumpnet_netinet", "rumpvfs"])), max_size=3
    ).map(tuple),
    toolchain=st.dictionaries(
        st.sampled_from(["ocaml", "go", "halvm"]),
        st.dictionaries(
            st.sampled_from(["packages", "link", "boot"]),
            st.lists(word, max_size=3).map(tuple),
            max_size=3,
        ),
        max_size=2,
    ),
    warnings=st.lists(
        st.builds(Warning, message=word, pointer=st.one_of(st.none(), st.just("/env"))),
        max_size=2,
    ).map(tuple),
)
runtimes = st.dictionaries(st.sampled_from(["env"]), st.dictionaries(st.sampled_from("XYZ"), word))
bakes = st.sampled_from([standard_book().get(n) for n in ("hw_virtio", "xen_pv", "hw_generic")])


def reordered(results: list[Result]) -> list[Result]:
    """The same results with every mapping built in the reverse insertion order."""

    def flip(mapping: Any) -> dict[str, Any]:
        return dict(reversed(list(mapping.items())))

    rebuilt = []
    for r in results:
        answer = r.answer
        devices = tuple(
            Device(name=d.name, kind=d.kind, pointer=d.pointer, fields=flip(d.fields))
            for d in answer.devices
        )
        toolchain = {c: flip(args) for c, args in flip(answer.toolchain).items()}
        rebuilt.append(
            Result(
                run=r.run,
                command=r.command,
                request=r.request,
                answer_bytes=r.answer_bytes,
                answer=Answer(
                    replaced=answer.replaced,
                    replace=answer.replace,
                    devices=devices,
                    add=answer.add,
                    remove=answer.remove,
                    toolchain=toolchain,
                    warnings=answer.warnings,
                ),
            )
        )
    return rebuilt


@settings(max_examples=60, deadline=None)
@given(
    bakes,
    st.lists(answers, max_size=4),
    runtimes,
    st.lists(st.binary(max_size=8), min_size=10, max_size=10),
)
def test_assembly_is_deterministic_and_valid(
    bake: BakeConfig, inner: list[Answer], runtime: dict[str, Any], blobs: list[bytes]
) -> None:
    pointers = ["/net", "/env/X", "/env/Y", "/blk"]
    results = [
        result(run_of(f"d{i}", pointers[i]), a, request=blobs[2 * i], answer_bytes=blobs[2 * i + 1])
        for i, a in enumerate(inner)
    ]
    results.append(builtin(runtime))
    names = [d.name for r in results for d in r.answer.devices]
    if len(set(names)) < len(names):
        with pytest.raises((ConflictError, Problems)) as caught:
            plan.assemble(bake, results, dialect="spec")
        assert exit_code_of(caught.value) == 3
        return
    first = plan.dumps(plan.assemble(bake, results, dialect="spec"))
    assert plan.dumps(plan.assemble(bake, results, dialect="spec")) == first
    assert plan.dumps(plan.assemble(bake, reordered(results), dialect="spec")) == first
    built = json.loads(first)
    explainer.validator("plan").validate(built)
    assert built["runtime"]["config"] == runtime
    assert [d["delegate"] for d in built["delegations"]] == [
        *(f"d{i}" for i in range(len(inner))),
        "rumprun",
    ]
