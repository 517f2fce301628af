"""Orders the routed runs: inside out, independent ones side by side, up to ``-j``.

A run starts as soon as every run directly inside it has finished, and ``work`` (one
call per run, given the results so far and the cancel event) does everything else: the
scheduler neither builds requests nor reads answers.  The first failure cancels the
others (``work`` sees the event set, and the running process groups are killed) unless
``keep_going`` is set, in which case every independent run still runs and every
failure is reported; what waits on a failed run never runs.  With one job the runs go
one by one in the calling thread, as pre-commit's mapper degrades to ``map``.  An
interrupt (SIGINT, SIGTERM) or a bug stops everything: no delegate outlives bakeplan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator.core import runner
from orchestrator.core.mapper import Workers
from orchestrator.core.protocol import Answer
from orchestrator.core.routing import Routing, Run
from orchestrator.errors import BakeplanError, Interrupted, raise_all

__all__ = ["Cancelled", "Result", "Work", "execute"]


@dataclass(frozen=True, kw_only=True)
class Result:
    """One finished run: the exact bytes exchanged and the validated answer."""

    run: Run
    command: tuple[str, ...]  # as the registry gives it; () for the built-in layer
    request: bytes
    answer_bytes: bytes
    answer: Answer
    cached: bool = False  # the answer bytes came from the response cache, not a process


class Cancelled(Exception):
    """Raised by ``work`` for a run stopped because another failed (or never started)."""


# One run's work: the run, the results of the runs already finished (those inside it
# among them), and the event set when the runs are to stop.  Returns the run's result,
# raises a ``BakeplanError`` for its failure or ``Cancelled``.
Work = Callable[[Run, Mapping[str, Result], threading.Event], Result]


def execute(
    routing: Routing,
    work: Work,
    *,
    jobs: int = 8,
    keep_going: bool = False,
    on_state: Callable[[Run, str], None] | None = None,
) -> tuple[Result, ...]:
    """Every run's result in routing order, or the failures raised together.

    ``on_state`` hears each run ``waiting``, ``running``, then ``done``, ``cached``,
    ``failed`` or ``cancelled``.
    """
    return _Order(routing, work, jobs=jobs, keep_going=keep_going, on_state=on_state).run()


class _Order:
    """The state of one routing's runs: what waits on what, what finished, what failed."""

    def __init__(
        self,
        routing: Routing,
        work: Work,
        *,
        jobs: int,
        keep_going: bool,
        on_state: Callable[[Run, str], None] | None,
    ) -> None:
        self.runs = routing.runs
        self.work = work
        self.jobs = jobs
        self.keep_going = keep_going
        self.on_state = on_state or (lambda run, state: None)
        self.cancel = threading.Event()
        self.parent = {inner: run.pointer for run in self.runs for inner in run.inner}
        self.waiting = {run.pointer: set(run.inner) for run in self.runs}
        self.position = {run.pointer: index for index, run in enumerate(self.runs)}
        self.done: dict[str, Result] = {}
        # Failures by routing position: reported in that order, not in the order they
        # happened to finish, so the same failing inputs always read the same.
        self.failures: dict[int, BakeplanError] = {}
        # Failed runs, and the outer runs that wait on them and so can never run.
        self.settled: set[str] = set()

    def run(self) -> tuple[Result, ...]:
        for run in self.runs:
            self.on_state(run, "waiting")
        try:
            if self.jobs <= 1:
                self._serial()
            else:
                self._parallel()
        except BaseException:
            # Interrupts and bugs alike: no delegate outlives bakeplan.
            self._stop()
            raise
        raise_all([self.failures[index] for index in sorted(self.failures)])
        return tuple(self.done[r.pointer] for r in self.runs)

    def _stop(self) -> None:
        self.cancel.set()
        runner.terminate_all()

    def _ready(self) -> list[Run]:
        return [
            r
            for r in self.runs
            if not self.waiting[r.pointer]
            and r.pointer not in self.done
            and r.pointer not in self.settled
        ]

    def _one(self, run: Run) -> Result:
        """``work`` for ``run``, once nothing has cancelled it."""
        if self.cancel.is_set():
            raise Cancelled
        self.on_state(run, "running")
        result = self.work(run, self.done, self.cancel)
        self.on_state(run, "cached" if result.cached else "done")
        return result

    def _finish(self, run: Run, result: Result | None, error: BaseException | None) -> None:
        if error is None:
            assert result is not None
            self.done[run.pointer] = result
            outer = self.parent.get(run.pointer)
            if outer is not None:
                self.waiting[outer].discard(run.pointer)
            return
        self.settled.add(run.pointer)
        self.on_state(run, "cancelled" if isinstance(error, Cancelled) else "failed")
        if isinstance(error, BakeplanError):
            self.failures[self.position[run.pointer]] = error
        elif not isinstance(error, Cancelled):
            raise error
        # What waits on a failed run can never run.
        outer = self.parent.get(run.pointer)
        while outer is not None:
            self.settled.add(outer)
            outer = self.parent.get(outer)
        if not self.keep_going:
            self.cancel.set()

    def _serial(self) -> None:
        while not self.cancel.is_set() and (batch := self._ready()):
            for run in batch:
                try:
                    result = self._one(run)
                except Interrupted:
                    # SIGTERM's handler raises in this very thread, inside a run: that is
                    # the whole program stopping, not this delegate failing (with
                    # --keep-going it would otherwise start the next delegate and exit 1).
                    raise
                except (BakeplanError, Cancelled) as exc:
                    self._finish(run, None, exc)
                else:
                    self._finish(run, result, None)
                if self.cancel.is_set():
                    return

    def _parallel(self) -> None:
        started: set[str] = set()
        with Workers[Run, Result](self._one, self.jobs, self._stop) as workers:
            while True:
                if not self.cancel.is_set():
                    for run in self._ready():
                        if run.pointer not in started:
                            started.add(run.pointer)
                            workers.submit(run)
                if not workers.pending:
                    return
                self._finish(*workers.next_done())
