"""The pipeline's stages through its public functions, with real delegates: ``prepare``
loads, routes and checks (every problem together), ``validate`` starts nothing and
hears what it could not check through ``note``, ``carry_out`` describes, runs and
assembles, ``dry_run`` says what would run, and nothing of it writes to a stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_exec import modules_after, write_python
from helpers_protocol import write_registry

from orchestrator.core import cache, pipeline
from orchestrator.errors import BakeplanError, InputError, Problems

HYBRID = REPO / "examples" / "hybrid" / "config.json"


def talker(folder: Path, name: str = "talk") -> Path:
    """A delegate that logs each start (``NAME OP``), says something on stderr when
    configuring, and answers with its fragment."""
    return write_python(
        folder,
        name,
        f"""
        import json, os, sys
        op = "configure" if "BAKEPLAN_POINTER" in os.environ else "describe"
        with open({str(folder / "starts")!r}, "a") as log:
            log.write({name!r} + " " + op + "\\n")
        request = json.load(sys.stdin)
        if op == "describe":
            print(json.dumps({{"protocol": "bakeplan/1", "name": {name!r}, "version": "1",
                              "protocols": ["bakeplan/1"], "pure": True,
                              "fragment_schema": {{"type": "object"}}}}))
        else:
            print("working on", request["pointer"], file=sys.stderr)
            print(json.dumps({{"protocol": "bakeplan/1", "replace": request["fragment"]}}))
        """,
    )


def starts(folder: Path) -> list[str]:
    path = folder / "starts"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def options(tmp_path: Path) -> pipeline.Options:
    talker(tmp_path)
    registry = write_registry(
        tmp_path,
        {"name": "talk", "command": ["./talk"], "claims": ["/env"]},
        {"name": "talk-net", "command": ["./talk"], "claims": ["/net/interfaces"]},
    )
    return pipeline.Options(config=str(HYBRID), registries=(str(registry),), jobs=2, dialect="spec")


class Notes:
    """A ``note`` callback that keeps what it hears."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    def __call__(self, text: str) -> None:
        self.heard.append(text)


def test_prepare_routes_and_resolves_without_starting_anything(
    tmp_path: Path, options: pipeline.Options
) -> None:
    prepared = pipeline.prepare(options)
    assert [(r.delegate, r.pointer) for r in prepared.routing.runs] == [
        ("talk", "/env"),
        ("talk-net", "/net/interfaces"),
        ("rumprun", ""),
    ]
    assert prepared.commands["talk"] == (str(tmp_path / "talk"),)
    assert prepared.context.bake_config == prepared.bake.name
    assert starts(tmp_path) == []


def test_prepare_raises_every_problem_together(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"env": {"A": 1}, "rc": [{"bin": "www"}]}))
    registry = write_registry(tmp_path, {"name": "gone", "command": ["./gone"], "claims": ["/rc"]})
    with pytest.raises(Problems) as caught:
        pipeline.prepare(
            pipeline.Options(
                config=str(config), registries=(str(registry),), bake_config="no-such-config"
            )
        )
    said = [p.message for p in caught.value.problems]
    assert len(said) == 3, said  # the schema, the bake config, the command
    assert any("no-such-config" in s for s in said)
    assert all(isinstance(p, BakeplanError) for p in caught.value.problems)


def test_validate_starts_nothing_and_notes_what_it_could_not_check(
    tmp_path: Path, options: pipeline.Options, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = Notes()
    prepared = pipeline.validate(options, note=notes)
    assert prepared.routing.delegated() == ("/env", "/net/interfaces")
    assert notes.heard == [
        f"validate: delegate {name!r} has not been described yet, so its fragment schema "
        "was not applied (bakeplan plan asks it, then validate knows it)"
        for name in ("talk", "talk-net")
    ]
    assert starts(tmp_path) == []
    # Once planned, the describe answers are kept: nothing more to say.
    pipeline.make_plan(options)
    again = Notes()
    pipeline.validate(options, note=again)
    assert again.heard == []
    assert capsys.readouterr() == ("", "")


def test_validate_with_kept_describe_answers_loads_no_process_machinery(
    options: pipeline.Options,
) -> None:
    # It starts nothing, so it imports nothing that starts processes: the runner (with
    # subprocess and signal), the mapper and the scheduler cost every validate several
    # milliseconds otherwise.  (selectors may come all the same, with the package
    # metadata a Python delegate's code is first found through.)
    pipeline.make_plan(options)  # the describe answers are kept, in this test's cache
    loaded = modules_after(
        "from orchestrator.core import pipeline\n"
        f"options = pipeline.Options(config={options.config!r}, "
        f"registries={options.registries!r}, dialect='spec')\n"
        "assert pipeline.validate(options).routing.delegated()\n"
    )
    assert "orchestrator.core.describe" in loaded  # the kept answers were read
    machinery = {
        "subprocess",
        "orchestrator.core.runner",
        "orchestrator.core.mapper",
        "orchestrator.core.scheduler",
    }
    assert machinery & loaded == set()


def test_carry_out_describes_runs_and_assembles(
    tmp_path: Path, options: pipeline.Options, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = Notes()
    done = pipeline.carry_out(pipeline.prepare(options), options, note=notes)
    assert [(r.run.delegate, r.cached) for r in done.results] == [
        ("talk", False),
        ("talk-net", False),
        ("rumprun", False),
    ]
    assert done.lock is None
    # One describe for the one executable behind both names, then each configure.
    assert sorted(starts(tmp_path)) == ["talk configure", "talk configure", "talk describe"]
    assert [d.pointer for d in done.plan.delegations] == ["/env", "/net/interfaces", ""]
    # Without --verbose the note hears nothing; the core writes on no stream.
    assert notes.heard == []
    assert capsys.readouterr() == ("", "")
    # Pure: the next plan's answers come from the cache, and the plan is the same.
    states: list[tuple[str, str]] = []
    again = pipeline.carry_out(
        pipeline.prepare(options),
        options,
        on_state=lambda run, state: states.append((run.delegate, state)),
    )
    assert again.plan == done.plan
    assert ("talk", "cached") in states
    assert ("rumprun", "done") in states
    assert len(starts(tmp_path)) == 3


def test_verbose_notes_say_a_delegates_stderr_and_why_the_cache_was_not_used(
    options: pipeline.Options, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cache.MAX_BYTES_VAR, "lots")
    notes = Notes()
    verbose = pipeline.Options(**{**options.__dict__, "verbose": True, "jobs": 1})
    pipeline.make_plan(verbose, note=notes)
    assert notes.heard == [
        f"response cache: {cache.MAX_BYTES_VAR}='lots' is not a whole number of bytes; "
        f"using {cache.DEFAULT_MAX_BYTES} bytes",
        "talk at /env wrote on stderr:\n  | working on /env",
        "talk-net at /net/interfaces wrote on stderr:\n  | working on /net/interfaces",
    ]
    assert capsys.readouterr() == ("", "")


def test_make_plan_and_execute_give_carry_outs_plan(options: pipeline.Options) -> None:
    plan = pipeline.make_plan(options)
    results, same = pipeline.execute(pipeline.prepare(options), options)
    assert same == plan
    assert [r.run.pointer for r in results] == ["/env", "/net/interfaces", ""]


def test_a_pinned_plan_carries_its_lock(tmp_path: Path, options: pipeline.Options) -> None:
    pinned = pipeline.Options(**{**options.__dict__, "pin": True})
    done = pipeline.carry_out(pipeline.prepare(pinned), pinned)
    assert done.lock is not None
    assert [p.name for p in done.lock.pins] == ["talk", "talk-net"]
    assert pipeline.lock_check(done.lock, registry_files=pinned.registries) == []


def test_a_fragment_breaking_the_described_schema_is_refused_at_the_configs_line(
    tmp_path: Path, options: pipeline.Options
) -> None:
    config = tmp_path / "config.json"
    config.write_text('{\n  "env": [1],\n  "rc": [{"bin": "www"}]\n}\n')
    broken = pipeline.Options(**{**options.__dict__, "config": str(config)})
    with pytest.raises(InputError) as caught:
        pipeline.make_plan(broken)
    assert (caught.value.file, caught.value.line) == (str(config), 2)
    assert "the fragment schema of delegate 'talk'" in caught.value.message
    assert starts(tmp_path) == ["talk describe"]


def test_dry_run_says_what_would_run_and_starts_nothing(
    tmp_path: Path, options: pipeline.Options
) -> None:
    preview = pipeline.dry_run(options)
    assert starts(tmp_path) == []
    runs = {r["pointer"]: r for r in preview["runs"]}
    assert [r["wave"] for r in preview["runs"]] == [0, 0, 1]
    assert runs["/env"]["cache"] == "unknown"  # never described: whether pure is not known
    assert runs["/env"]["replay"].startswith("printf '%s\\n' ")
    # The built-in layer's request marks what inner answers fill.
    assert runs[""]["request"]["fragment"]["env"] == {
        "$inner": {"delegate": "talk", "pointer": "/env"}
    }
    assert runs[""]["request_sha256"] is None
    pipeline.make_plan(options)
    runs = {r["pointer"]: r for r in pipeline.dry_run(options)["runs"]}
    assert runs["/env"]["cache"] == "hit"


def test_without_removes_every_part_and_leaves_the_document(tmp_path: Path) -> None:
    document: dict[str, Any] = {
        "rc": [{"bin": "a"}, {"bin": "b"}, {"bin": "c"}],
        "net": {"interfaces": {"x": 1}, "gateways": []},
        "env": {},
    }
    pristine = json.loads(json.dumps(document))
    # Array indexes removed last to first: /rc/0 does not shift /rc/2 away.
    assert pipeline.without(document, ["/rc/0", "/rc/2", "/net/interfaces", "/env"]) == {
        "rc": [{"bin": "b"}],
        "net": {"gateways": []},
    }
    assert pipeline.without(document, []) == pristine
    assert document == pristine


def test_default_jobs_are_at_least_eight() -> None:
    assert pipeline.default_jobs() >= 8
