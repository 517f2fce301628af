"""``bakeplan delegates check``: a conformance kit for delegate authors.

It speaks ``bakeplan/1`` to one delegate through the real runner (own session, no
controlling terminal, stdin closed after the request, the entry's time limit) and
judges each step:

* ``describe``: the answer is valid, lists ``bakeplan/1``, its schema is a schema;
* ``example N``: each fragment ``describe`` lists is configured, and the answer is valid;
* ``refuses a wrong fragment``: a fragment that breaks the delegate's own schema (or,
  without one, ``{"$bakeplan-check": "not a valid fragment"}``) gets a non-zero exit
  and an error object with a pointer inside the claim;
* ``same request, same answer``: two identical requests get identical bytes, each an
  answer (or an error object) from a run that ended by itself;
* ``within the time limit``: no run reached the limit;
* ``without a terminal``: every run ended by itself, none reaching for /dev/tty.

A delegate that does not answer (it sleeps to its time limit, or is killed) fails
every row that needs an answer: two silences are not "the same answer".  Exit 0 only
when every step passes.  ``on_step`` hears what the kit is about to do and each row as
it is judged, for live progress.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.core import protocol, runner
from orchestrator.core.protocol import Context, Description, Failure, Request
from orchestrator.core.registry import Entry
from orchestrator.pointers import tokens_of, within

SENTINEL: dict[str, Any] = {"$bakeplan-check": "not a valid fragment"}
# Values of every JSON type: the first that breaks a delegate's schema is the wrong one.
_WRONG_CANDIDATES: tuple[Any, ...] = (
    SENTINEL,
    "$bakeplan-check: not a valid fragment",
    -7.5,
    ["$bakeplan-check"],
    None,
    True,
)
# The default pointer to configure examples at, when neither the registry nor describe
# names a claim.
_FALLBACK_POINTER = "/bakeplan-check"


@dataclass(frozen=True, kw_only=True)
class Step:
    """One line of the table: a check, whether it passed, and what was seen."""

    name: str
    passed: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True, kw_only=True)
class _Run:
    request: bytes
    outcome: runner.Outcome


def _quiet(what: str, step: Step | None) -> None:
    del what, step


class _Kit:
    def __init__(
        self,
        entry: Entry,
        argv: Sequence[str],
        timeout: float,
        on_step: Callable[[str, Step | None], None],
    ) -> None:
        self.entry = entry
        self.argv = tuple(argv)
        self.timeout = timeout
        self.runs: list[_Run] = []
        self.on_step = on_step

    def doing(self, what: str) -> None:
        self.on_step(what, None)

    def run(self, request: bytes, pointer: str = "") -> runner.Outcome:
        # "" is a describe request here: no part of the config.
        env = protocol.delegate_env(
            self.entry.env, protocol.environment(self.entry.name, pointer or None)
        )
        outcome = runner.run(
            self.argv, request, env=env, limits=runner.Limits(timeout=self.timeout)
        )
        self.runs.append(_Run(request=request, outcome=outcome))
        return outcome


def _context() -> Context:
    from orchestrator.rumprun.bake import DEFAULT_CONFIG, standard_book  # noqa: PLC0415

    bake = standard_book().get(DEFAULT_CONFIG)
    return Context(bake_config=bake.name, platform=bake.platform, components=bake.components)


def _ended(outcome: runner.Outcome) -> str:
    """How a run ended, the error object it wrote, and its last line on stderr."""
    judged = protocol.judge(outcome, protocol.decode)
    error = judged.error if isinstance(judged, Failure) else None
    said = f": {error.message}" if error else ""
    tail = outcome.stderr_text().strip().splitlines()[-1:] if outcome.stderr_bytes else []
    return f"{outcome.status()}{said}" + (f" (stderr: {tail[0]})" if tail else "")


def _said(outcome: runner.Outcome, failure: Failure) -> str:
    """A row's detail for a run that gave no answer: how it ended when it did not exit 0
    on its own, else what is wrong with what it wrote."""
    if failure.kind in ("failed", "cancelled"):
        return _ended(outcome)
    return "; ".join((failure.message, *failure.detail))


def _answered(outcome: runner.Outcome) -> bool:
    """The run ended by itself and wrote one JSON object: an answer or an error object."""
    if outcome.timed_out or outcome.cancelled or outcome.signal is not None:
        return False
    try:
        protocol.decode(outcome.stdout)
    except protocol.ProtocolViolation:
        return False
    return True


def _describe(kit: _Kit) -> tuple[Step, Description | None]:
    from orchestrator.core import describe  # noqa: PLC0415

    kit.doing("asking describe")
    outcome = kit.run(protocol.describe_request())
    description = protocol.judge(outcome, describe.read)
    if isinstance(description, Failure):
        return Step(name="describe", passed=False, detail=_said(outcome, description)), None
    said = f"{description.name} {description.version}, speaks {', '.join(description.protocols)}"
    if description.claims:
        said += f", suggests {' '.join(description.claims)}"
    return Step(name="describe", passed=True, detail=said), description


def _configure(kit: _Kit, pointer: str, fragment: Any) -> runner.Outcome:
    request = Request(
        delegate=kit.entry.name, pointer=pointer, fragment=fragment, context=_context()
    )
    return kit.run(request.encode(), pointer)


def _examples(kit: _Kit, description: Description, pointer: str) -> list[Step]:
    from orchestrator.schemas import explainer  # noqa: PLC0415

    if not description.examples:
        return [
            Step(
                name="examples",
                passed=False,
                detail="describe lists no examples: list at least one fragment you accept",
            )
        ]
    steps = []
    for index, example in enumerate(description.examples):
        name = f"example {index}"
        if description.fragment_schema is not None:
            broken = explainer.violations_of(
                description.fragment_schema, example, base_pointer=pointer
            )
            if broken:
                detail = f"breaks its own fragment_schema: {broken[0].line()}"
                steps.append(Step(name=name, passed=False, detail=detail))
                continue
        kit.doing(f"configuring example {index} at {pointer}")
        outcome = _configure(kit, pointer, example)
        answer = protocol.judge(outcome, protocol.parse_configure)
        if isinstance(answer, Failure):
            steps.append(Step(name=name, passed=False, detail=_said(outcome, answer)))
            continue
        what = "consumed" if not answer.replaced else "replaced"
        detail = f"valid answer at {pointer} ({what}, {len(answer.devices)} device(s))"
        steps.append(Step(name=name, passed=True, detail=detail))
    return steps


def wrong_fragment(schema: Any) -> Any:
    """A fragment ``schema`` refuses (a value of another type), or the sentinel object."""
    if schema is None:
        return SENTINEL
    from orchestrator.schemas import explainer  # noqa: PLC0415

    for candidate in _WRONG_CANDIDATES:
        if explainer.violations_of(schema, candidate):
            return candidate
    return SENTINEL


def _refusal(kit: _Kit, description: Description, pointer: str) -> Step:
    name = "refuses a wrong fragment"
    wrong = wrong_fragment(description.fragment_schema)
    shown = protocol.encode(wrong).decode().strip()
    kit.doing(f"sending a wrong fragment, {shown}")
    outcome = _configure(kit, pointer, wrong)
    if outcome.timed_out or outcome.cancelled:
        return Step(name=name, passed=False, detail=f"sent {shown}: {outcome.status()}")
    if outcome.returncode == 0:
        return Step(name=name, passed=False, detail=f"sent {shown}: accepted it (exit status 0)")
    error = protocol.parse_error(outcome.stdout)
    if error is None:
        return Step(
            name=name,
            passed=False,
            detail=f"sent {shown}: {outcome.status()} but no error object on stdout",
        )
    if error.pointer is None:
        return Step(name=name, passed=False, detail=f"sent {shown}: its error has no pointer")
    if not within(tokens_of(error.pointer), tokens_of(pointer)):
        return Step(
            name=name,
            passed=False,
            detail=f"sent {shown}: its error points at {error.pointer}, outside {pointer}",
        )
    return Step(
        name=name,
        passed=True,
        detail=f"sent {shown}: {outcome.status()}, {error.pointer}: {error.message}",
    )


def _same(kit: _Kit, description: Description, pointer: str) -> Step:
    name = "same request, same answer"
    fragment = description.examples[0] if description.examples else SENTINEL
    kit.doing("sending the same request twice")
    first = _configure(kit, pointer, fragment)
    second = _configure(kit, pointer, fragment)
    silent = [o for o in (first, second) if not _answered(o)]
    if silent:
        # Two runs that never answered wrote the same nothing: that is no answer at all.
        said = "no JSON object on stdout" if silent[0].ok() else silent[0].status()
        return Step(name=name, passed=False, detail=f"no answer to compare: {said}")
    if (first.stdout, first.returncode) == (second.stdout, second.returncode):
        return Step(name=name, passed=True, detail=f"{len(first.stdout)} identical bytes twice")
    if first.returncode != second.returncode:
        detail = f"exit status {first.returncode}, then {second.returncode}"
    else:
        at = next(
            (
                i
                for i, (a, b) in enumerate(zip(first.stdout, second.stdout, strict=False))
                if a != b
            ),
            min(len(first.stdout), len(second.stdout)),
        )
        detail = f"the answers differ from byte {at}"
    return Step(name=name, passed=False, detail=detail)


def _limits(kit: _Kit) -> list[Step]:
    late = [r for r in kit.runs if r.outcome.timed_out]
    timing = Step(
        name="within the time limit",
        passed=not late,
        detail=f"{len(late)} of {len(kit.runs)} runs reached the {kit.timeout:g}s limit"
        if late
        else f"{len(kit.runs)} runs, each under the {kit.timeout:g}s limit",
    )
    tty = [r for r in kit.runs if "/dev/tty" in r.outcome.stderr_text()]
    stuck = [r for r in kit.runs if r.outcome.timed_out or r.outcome.cancelled]
    if tty:
        detail = f"{len(tty)} run(s) reached for /dev/tty: {_ended(tty[0].outcome)}"
    elif stuck:
        detail = f"{len(stuck)} run(s) never answered with stdin closed and no terminal"
    else:
        detail = "answered every time in its own session, no terminal, stdin closed"
    return [timing, Step(name="without a terminal", passed=not (tty or stuck), detail=detail)]


def check(
    entry: Entry,
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    on_step: Callable[[str, Step | None], None] | None = None,
) -> list[Step]:
    """Every step of the kit for ``entry`` run as the resolved ``argv``.

    ``on_step(what, None)`` is called before each run with what it is about to do, and
    ``on_step(name, step)`` with each row once judged.
    """
    heard = on_step or _quiet
    kit = _Kit(entry, argv, timeout or entry.timeout, heard)
    steps: list[Step] = []

    def judged(*found: Step) -> None:
        for step in found:
            steps.append(step)
            heard(step.name, step)

    try:
        step, description = _describe(kit)
    except runner.SpawnError as exc:
        judged(Step(name="describe", passed=False, detail=str(exc)))
        return steps
    judged(step)
    if description is None:
        skipped = "not run: describe failed"
        for later in ("examples", "refuses a wrong fragment", "same request, same answer"):
            judged(Step(name=later, passed=False, detail=skipped))
    else:
        pointer = next(iter((*entry.claims, *description.claims)), _FALLBACK_POINTER)
        judged(*_examples(kit, description, pointer))
        judged(_refusal(kit, description, pointer))
        judged(_same(kit, description, pointer))
    judged(*_limits(kit))
    return steps
