"""Runs the routed delegates inside out, independent ones side by side, up to ``-j``.

A run starts as soon as every run directly inside it has answered; its fragment is the
config's value at its pointer with each inner answer's ``replace`` put in place (or the
inner part removed when the inner delegate consumed it).  The first failure cancels the
others (their process groups are killed) unless ``keep_going`` is set, in which case
every independent run still runs and every failure is reported.  With one job the
runs go one by one in the calling thread, as pre-commit's mapper degrades to ``map``.

An answer speaks only of its own subtree: a device pointing outside the run's claim is a
failure, and a warning or an error object pointing outside it is shown as such (the
plan's warning stays at the claim and says where the delegate pointed), so a delegate
can never make a message look as if it came from a part it does not own.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.core import protocol, runner
from orchestrator.core.mapper import Workers
from orchestrator.core.protocol import Answer, Context, ErrorObject, Request, Warning
from orchestrator.core.registry import Entry
from orchestrator.core.routing import Routing, Run, filled
from orchestrator.errors import BakeplanError, DelegateError, Interrupted, raise_all
from orchestrator.pointers import pointer_text, tokens_of, within
from orchestrator.rumprun import layer

if TYPE_CHECKING:  # imported by the pipeline only when a delegate's answers may be reused
    from orchestrator.core.cache import Responses


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How to run: parallel jobs, a time limit overriding the registry's, fail-fast or not."""

    jobs: int = 8
    timeout: float | None = None
    keep_going: bool = False
    # The response cache to consult and fill (issue 7); None with --no-cache.
    responses: Responses | None = None
    # Where --verbose lines go (a successful delegate's stderr); None: nowhere.
    log: Callable[[str], None] | None = None


@dataclass(frozen=True, kw_only=True)
class Result:
    """One finished run: the exact bytes exchanged and the validated answer."""

    run: Run
    command: tuple[str, ...]  # as the registry gives it; () for the built-in layer
    request: bytes
    answer_bytes: bytes
    answer: Answer
    cached: bool = False  # the answer bytes came from the response cache, not a process


class _Cancelled(Exception):
    pass


def fragment_for(run: Run, document: Any, done: Mapping[str, Result]) -> Any:
    """The fragment ``run`` receives: its subtree with inner answers in place (or the
    inner part removed when its delegate consumed it)."""
    return filled(
        run,
        document,
        {done[p].run: (done[p].answer.replaced, done[p].answer.replace) for p in run.inner},
    )


def _outside(run: Run, pointer: str) -> str:
    """Why ``pointer`` is outside ``run``'s claim, for a person."""
    return f"the delegate pointed at {pointer_text(pointer)}, outside its claim " + (
        pointer_text(run.pointer)
    )


def _claimed_pointer(run: Run, error: ErrorObject) -> tuple[str, str | None]:
    """Where to show a delegate's error: its own pointer when inside the claim, else the
    claim, with a line saying where the delegate pointed."""
    if error.pointer is None:
        return run.pointer, None
    if within(tokens_of(error.pointer), run.tokens):
        return error.pointer, None
    return run.pointer, _outside(run, error.pointer)


def _bounded_warning(run: Run, warning: Warning) -> Warning:
    """A warning kept at its pointer when inside the claim; else moved to the claim and
    saying where the delegate pointed, so no delegate speaks for another's part."""
    if warning.pointer is None or within(tokens_of(warning.pointer), run.tokens):
        return warning
    return Warning(
        message=f"{warning.message} [{_outside(run, warning.pointer)}]", pointer=run.pointer
    )


class Scheduler:
    """Executes one routing; ``commands`` maps delegate names to resolved argv."""

    def __init__(
        self,
        *,
        routing: Routing,
        document: Any,
        context: Context,
        entries: Mapping[str, Entry],
        commands: Mapping[str, Sequence[str]],
        settings: Settings,
        on_state: Callable[[Run, str], None] | None = None,
        check: Callable[[Run, Any], None] | None = None,
    ) -> None:
        self.routing = routing
        self.document = document
        self.context = context
        self.entries = entries
        self.commands = commands
        self.settings = settings
        self.cancel = threading.Event()
        self._on_state = on_state or (lambda run, state: None)
        # Checks an external run's fragment before its delegate sees it (the fragment
        # schema from describe, issue 6); raises a BakeplanError to refuse it.
        self._check_fragment = check

    # -- one run ---------------------------------------------------------------------

    def _builtin(self, run: Run, request: Request) -> tuple[bytes, Answer]:
        try:
            answer = layer.configure(request.fragment, run.pointer, self.context)
        except layer.LayerError as exc:
            lines = []
            for v in exc.violations:
                owner = self.routing.owner(v.pointer).delegate
                source = "" if owner == layer.NAME else f" (left there by {owner})"
                lines.append(f"{pointer_text(v.pointer)}: {v.message}{source}")
            raise DelegateError(
                "the runtime config left for rumprun is not valid rumprun config",
                delegate=layer.NAME,
                pointer=run.pointer,
                detail=lines,
            ) from None
        return protocol.encode(answer.as_json()), answer

    def _external(self, run: Run, request: bytes) -> tuple[bytes, Answer, bool]:
        """The answer bytes, the checked answer, and whether it came from the cache."""
        entry = self.entries[run.delegate]
        argv = tuple(self.commands[run.delegate])
        limits = runner.Limits(timeout=self.settings.timeout or entry.timeout)
        env = runner.delegate_env(entry.env, protocol.environment(run.delegate, run.pointer))
        responses = self.settings.responses
        key: str | None = None
        if responses is not None and responses.wants(run.delegate):
            try:
                key = responses.key(entry, argv, request, env)
            except OSError:
                key = None  # unreadable executable: running it reports why
            stored = responses.get(key) if key is not None else None
            if stored is not None:
                try:
                    # Checked again as if just received: a stored answer is never trusted
                    # more than a fresh one (and this bakeplan may check more than the last).
                    replayed = self._check_bounds(run, protocol.parse_configure(stored), argv)
                except (protocol.ProtocolViolation, DelegateError):
                    pass  # a miss: the fresh answer below replaces the entry
                else:
                    return stored, replayed, True
        try:
            outcome = runner.run(argv, request, env=env, limits=limits, cancel=self.cancel)
        except runner.SpawnError as exc:
            raise DelegateError(
                str(exc), delegate=run.delegate, pointer=run.pointer, command=argv
            ) from None
        if outcome.cancelled:
            raise _Cancelled
        stderr = outcome.stderr_lines()
        if not outcome.ok():
            error = protocol.parse_error(outcome.stdout) if outcome.returncode else None
            if error is not None:
                pointer, outside = _claimed_pointer(run, error)
                detail = (f"error code: {error.code}",) if error.code else ()
                if outside:
                    detail = (*detail, outside)
                raise DelegateError(
                    error.message,
                    delegate=run.delegate,
                    pointer=pointer,
                    command=argv,
                    status=outcome.status(),
                    stderr_tail=stderr,
                    detail=detail,
                )
            raise DelegateError(
                f"failed: {outcome.status()}",
                delegate=run.delegate,
                pointer=run.pointer,
                command=argv,
                status=outcome.status(),
                stderr_tail=stderr,
            )
        try:
            answer = protocol.parse_configure(outcome.stdout)
        except protocol.ProtocolViolation as exc:
            raise DelegateError(
                f"malformed answer: {exc.message}",
                delegate=run.delegate,
                pointer=run.pointer,
                command=argv,
                detail=exc.detail,
                status=outcome.status(),
                stderr_tail=stderr,
            ) from None
        checked = self._check_bounds(run, answer, argv)
        self._log_stderr(run, stderr)
        if responses is not None and key is not None:
            # Only now: an answer that failed any check above is never filed.
            responses.put(key, outcome.stdout)
        return outcome.stdout, checked, False

    def _log_stderr(self, run: Run, stderr: str) -> None:
        """A successful delegate's stderr, for --verbose (a failure shows it anyway)."""
        if self.settings.log is not None and stderr:
            said = "\n".join(f"  | {line}" for line in stderr.splitlines())
            self.settings.log(
                f"bakeplan: {run.delegate} at {pointer_text(run.pointer)} wrote on stderr:\n"
                f"{said}\n"
            )

    def _check_bounds(self, run: Run, answer: Answer, argv: Sequence[str]) -> Answer:
        """The answer, speaking only of its own subtree (see the module docstring)."""
        for device in answer.devices:
            if device.pointer is not None and not within(tokens_of(device.pointer), run.tokens):
                raise DelegateError(
                    f"device {device.name!r} points at {device.pointer}, outside its claim",
                    delegate=run.delegate,
                    pointer=run.pointer,
                    command=argv,
                )
        warnings = tuple(_bounded_warning(run, w) for w in answer.warnings)
        if warnings == answer.warnings:
            return answer
        return dataclasses.replace(answer, warnings=warnings)

    def _execute(self, run: Run, done: Mapping[str, Result]) -> Result:
        if self.cancel.is_set():
            raise _Cancelled
        self._on_state(run, "running")
        request = Request(
            delegate=run.delegate,
            pointer=run.pointer,
            fragment=fragment_for(run, self.document, done),
            context=self.context,
        )
        if self._check_fragment is not None and not run.builtin:
            self._check_fragment(run, request.fragment)
        encoded = request.encode()
        cached = False
        if run.builtin:
            answer_bytes, answer = self._builtin(run, request)
            command: tuple[str, ...] = ()
        else:
            answer_bytes, answer, cached = self._external(run, encoded)
            # As registered, not as resolved: the plan must not depend on this machine's paths.
            command = self.entries[run.delegate].portable_command
        self._on_state(run, "cached" if cached else "done")
        return Result(
            run=run,
            command=command,
            request=encoded,
            answer_bytes=answer_bytes,
            answer=answer,
            cached=cached,
        )

    # -- the whole routing -------------------------------------------------------------

    def execute(self) -> tuple[Result, ...]:
        """Every run's result in routing order, or the failures raised together."""
        runs = self.routing.runs
        parent = {inner: run.pointer for run in runs for inner in run.inner}
        waiting = {run.pointer: set(run.inner) for run in runs}
        done: dict[str, Result] = {}
        # Failures by routing position: reported in that order, not in the order they
        # happened to finish, so the same failing inputs always read the same.
        failures: dict[int, BakeplanError] = {}
        position = {run.pointer: index for index, run in enumerate(runs)}
        # Failed runs, and the outer runs that wait on them and so can never run.
        settled: set[str] = set()

        def ready() -> list[Run]:
            return [
                r
                for r in runs
                if not waiting[r.pointer] and r.pointer not in done and r.pointer not in settled
            ]

        def finish(run: Run, result: Result | None, error: BaseException | None) -> None:
            if error is not None:
                settled.add(run.pointer)
                self._on_state(run, "failed" if not isinstance(error, _Cancelled) else "cancelled")
                if isinstance(error, BakeplanError):
                    failures[position[run.pointer]] = error
                elif not isinstance(error, _Cancelled):
                    raise error
                # What waits on a failed run can never run.
                outer = parent.get(run.pointer)
                while outer is not None:
                    settled.add(outer)
                    outer = parent.get(outer)
                if not self.settings.keep_going:
                    self.cancel.set()
                return
            assert result is not None
            done[run.pointer] = result
            outer = parent.get(run.pointer)
            if outer is not None:
                waiting[outer].discard(run.pointer)

        for run in runs:
            self._on_state(run, "waiting")
        try:
            if self.settings.jobs <= 1:
                self._serial(ready, finish, done)
            else:
                self._parallel(ready, finish, done)
        except BaseException:
            # Interrupts and bugs alike: no delegate outlives bakeplan.
            self.cancel.set()
            runner.terminate_all()
            raise
        raise_all([failures[index] for index in sorted(failures)])
        return tuple(done[r.pointer] for r in runs)

    def _serial(
        self,
        ready: Callable[[], list[Run]],
        finish: Callable[[Run, Result | None, BaseException | None], None],
        done: Mapping[str, Result],
    ) -> None:
        while not self.cancel.is_set() and (batch := ready()):
            for run in batch:
                try:
                    result = self._execute(run, done)
                except Interrupted:
                    # SIGTERM's handler raises in this very thread, inside a run: that is
                    # the whole program stopping, not this delegate failing (with
                    # --keep-going it would otherwise start the next delegate and exit 1).
                    raise
                except (BakeplanError, _Cancelled) as exc:
                    finish(run, None, exc)
                else:
                    finish(run, result, None)
                if self.cancel.is_set():
                    return

    def _parallel(
        self,
        ready: Callable[[], list[Run]],
        finish: Callable[[Run, Result | None, BaseException | None], None],
        done: Mapping[str, Result],
    ) -> None:
        def stop() -> None:
            self.cancel.set()
            runner.terminate_all()

        started: set[str] = set()
        with Workers[Run, Result](
            lambda run: self._execute(run, done), self.settings.jobs, stop
        ) as workers:
            while True:
                if not self.cancel.is_set():
                    for run in ready():
                        if run.pointer not in started:
                            started.add(run.pointer)
                            workers.submit(run)
                if not workers.pending:
                    return
                finish(*workers.next_done())


# -- what a run would do, for --dry-run --------------------------------------------------------


def replay_command(entry: Entry, argv: Sequence[str], pointer: str, request: bytes) -> str:
    """A shell line that gives ``argv`` exactly what bakeplan would: the request bytes on
    stdin and only the variables a delegate gets (``env -i``).  The variables are named,
    never their values, so a dry run prints no secret the entry passes through."""
    import shlex  # noqa: PLC0415

    names = sorted(runner.delegate_env(entry.env))
    own = protocol.environment(entry.name, pointer)
    assignments = [f'{name}="${name}"' for name in names if name not in own]
    assignments += [f"{name}={shlex.quote(value)}" for name, value in sorted(own.items())]
    text = request.decode("utf-8").removesuffix("\n")
    return f"printf '%s\\n' {shlex.quote(text)} | env -i {' '.join(assignments)} {shlex.join(argv)}"


def cache_state(
    entry: Entry, argv: Sequence[str], request: bytes | None, env: Mapping[str, str], *, use: bool
) -> str:
    """Whether a run's answer would come from the response cache, without running it:
    ``hit``, ``miss``, ``pending`` (inner answers complete the request, so its key is not
    known yet), ``unknown`` (a delegate never described: whether it is pure is not
    known), ``never`` (neither ``cache`` nor ``pure``) or ``off`` (``--no-cache``)."""
    if not use:
        return "off"
    from orchestrator.core import cache, describe  # noqa: PLC0415

    if not entry.cache:
        try:
            described = describe.cached(entry, argv)
        except BakeplanError:
            described = None
        if described is None:
            return "unknown"
        if not described.description.pure:
            return "never"
    if request is None:
        return "pending"
    try:
        key = cache.entry_key(entry, argv, request, env)
    except OSError:
        return "miss"
    return "hit" if cache.responses(()).get(key, touch=False) is not None else "miss"
