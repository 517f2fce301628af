"""One ``configure`` run, start to end: the work the scheduler calls once per run.

A run's fragment is the config's value at its pointer with each inner answer's
``replace`` put in place (or the inner part removed when the inner delegate consumed
it); the delegate's ``fragment_schema`` checks it first.  The built-in rumprun layer
answers in this process.  An external delegate's answer comes from the cache's
``responses`` namespace when the delegate's answers may be reused and one is kept
(checked again as if just received), else from running it (``runner``), judged
(``protocol.judge``) and only then filed.

An answer speaks only of its own subtree (``protocol.parse_configure`` with the claim):
a device pointing outside the run's claim is a failure, and a warning or an error object
pointing outside it is shown as such, so a delegate can never make a message look as if
it came from a part it does not own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.core import protocol, runner
from orchestrator.core.protocol import Answer, Context, ErrorObject, Failure, Request
from orchestrator.core.registry import Entry
from orchestrator.core.routing import Routing, Run, filled
from orchestrator.core.scheduler import Cancelled, Result
from orchestrator.errors import BakeplanError, DelegateError
from orchestrator.pointers import pointer_text, tokens_of, within
from orchestrator.rumprun import layer

if TYPE_CHECKING:  # imported by the pipeline only when a delegate's answers may be reused
    from orchestrator.core.cache import Space

__all__ = ["Configure", "cache_state", "fragment_for", "replay_command"]


def fragment_for(run: Run, document: Any, done: Mapping[str, Result]) -> Any:
    """The fragment ``run`` receives: its subtree with inner answers in place (or the
    inner part removed when its delegate consumed it)."""
    return filled(
        run,
        document,
        {done[p].run: (done[p].answer.replaced, done[p].answer.replace) for p in run.inner},
    )


@dataclass(frozen=True, kw_only=True)
class Configure:
    """Everything a configure run needs; called as the scheduler's ``work``.

    ``commands`` maps delegate names to resolved argv; ``timeout`` overrides the
    registry's; ``responses`` is the cache namespace to consult and fill (None with
    ``--no-cache``); ``check`` refuses a fragment before its delegate sees it (the
    fragment schema from describe) by raising a ``BakeplanError``; ``note`` hears what
    ``--verbose`` shows (a successful delegate's stderr).
    """

    routing: Routing
    document: Any
    context: Context
    entries: Mapping[str, Entry]
    commands: Mapping[str, Sequence[str]]
    timeout: float | None = None
    responses: Space | None = None
    check: Callable[[Run, Any], None] | None = None
    note: Callable[[str], None] | None = None

    def __call__(self, run: Run, done: Mapping[str, Result], cancel: threading.Event) -> Result:
        request = Request(
            delegate=run.delegate,
            pointer=run.pointer,
            fragment=fragment_for(run, self.document, done),
            context=self.context,
        )
        if run.builtin:
            answer = self._builtin(run, request)
            encoded = request.encode()
            return Result(
                run=run,
                command=(),
                request=encoded,
                answer_bytes=protocol.encode(answer.as_json()),
                answer=answer,
            )
        if self.check is not None:
            self.check(run, request.fragment)
        encoded = request.encode()
        answer_bytes, answer, cached = self._external(run, encoded, cancel)
        return Result(
            run=run,
            # As registered, not as resolved: the plan must not depend on this machine's paths.
            command=self.entries[run.delegate].portable_command,
            request=encoded,
            answer_bytes=answer_bytes,
            answer=answer,
            cached=cached,
        )

    def _builtin(self, run: Run, request: Request) -> Answer:
        try:
            return layer.configure(request.fragment, run.pointer, self.context)
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

    def _external(
        self, run: Run, request: bytes, cancel: threading.Event
    ) -> tuple[bytes, Answer, bool]:
        """The answer bytes, the checked answer, and whether it came from the cache."""
        entry = self.entries[run.delegate]
        argv = tuple(self.commands[run.delegate])
        env = protocol.delegate_env(entry.env, protocol.environment(run.delegate, run.pointer))
        key = self._key(run, entry, argv, request, env)
        if key is not None:
            kept = self._replayed(run, key)
            if kept is not None:
                return (*kept, True)
        limits = runner.Limits(timeout=self.timeout or entry.timeout)
        try:
            outcome = runner.run(argv, request, env=env, limits=limits, cancel=cancel)
        except runner.SpawnError as exc:
            raise DelegateError(
                str(exc), delegate=run.delegate, pointer=run.pointer, command=argv
            ) from None
        answer = protocol.judge(outcome, lambda raw: protocol.parse_configure(raw, run.pointer))
        if isinstance(answer, Failure):
            if answer.kind == "cancelled":
                raise Cancelled
            raise _error(run, argv, answer)
        self._log_stderr(run, outcome.stderr_lines())
        if self.responses is not None and key is not None:
            # Only now: an answer that failed any check above is never filed.
            self.responses.put(key, outcome.stdout)
        return outcome.stdout, answer, False

    def _key(
        self,
        run: Run,
        entry: Entry,
        argv: Sequence[str],
        request: bytes,
        env: Mapping[str, str],
    ) -> str | None:
        """The cache key of this run, when its delegate's answers may be reused."""
        if self.responses is None or not self.responses.wants(run.delegate):
            return None
        try:
            return self.responses.key(entry, argv, request, env)
        except OSError:
            return None  # unreadable executable: running it reports why

    def _replayed(self, run: Run, key: str) -> tuple[bytes, Answer] | None:
        """The kept answer, checked again as if just received: a stored answer is never
        trusted more than a fresh one (and this bakeplan may check more than the last)."""
        assert self.responses is not None
        stored = self.responses.get(key)
        if stored is None:
            return None
        try:
            return stored, protocol.parse_configure(stored, run.pointer)
        except protocol.ProtocolViolation:
            return None  # a miss: the fresh answer replaces the entry

    def _log_stderr(self, run: Run, stderr: str) -> None:
        """A successful delegate's stderr, for --verbose (a failure shows it anyway)."""
        if self.note is not None and stderr:
            said = "\n".join(f"  | {line}" for line in stderr.splitlines())
            self.note(f"{run.delegate} at {pointer_text(run.pointer)} wrote on stderr:\n{said}")


def _error(run: Run, argv: Sequence[str], failure: Failure) -> DelegateError:
    """The ``DelegateError`` a configure run's failure is."""
    if failure.kind == "outside":
        # About the answer's content, whole and valid: how the run ended is no news.
        return DelegateError(
            failure.message, delegate=run.delegate, pointer=run.pointer, command=argv
        )
    pointer, detail = run.pointer, failure.detail
    if failure.error is not None:
        pointer, outside = _claimed_pointer(run, failure.error)
        detail = (f"error code: {failure.error.code}",) if failure.error.code else ()
        if outside:
            detail = (*detail, outside)
    return DelegateError(
        failure.message,
        delegate=run.delegate,
        pointer=pointer,
        command=argv,
        status=failure.status,
        stderr_tail=failure.stderr,
        detail=detail,
    )


def _claimed_pointer(run: Run, error: ErrorObject) -> tuple[str, str | None]:
    """Where to show a delegate's error: its own pointer when inside the claim, else the
    claim, with a line saying where the delegate pointed."""
    if error.pointer is None:
        return run.pointer, None
    if within(tokens_of(error.pointer), run.tokens):
        return error.pointer, None
    return run.pointer, protocol.outside_claim(run.pointer, error.pointer)


# -- what a run would do, for --dry-run --------------------------------------------------------


def replay_command(entry: Entry, argv: Sequence[str], pointer: str, request: bytes) -> str:
    """A shell line that gives ``argv`` exactly what bakeplan would: the request bytes on
    stdin and only the variables a delegate gets (``env -i``).  The variables are named,
    never their values, so a dry run prints no secret the entry passes through."""
    import shlex  # noqa: PLC0415

    names = sorted(protocol.delegate_env(entry.env))
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
    kept = cache.store().space(cache.RESPONSES).get(key, touch=False)
    return "hit" if kept is not None else "miss"
