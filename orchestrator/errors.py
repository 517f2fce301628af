"""The one error base of bakeplan and its kinds, each carrying its exit code.

Every failure the program can explain is a ``BakeplanError``; ``cli.py`` catches it in
one place and turns it into a message and an exit code.  The exit codes are part of the
contract:

* 1: a delegate failed (non-zero exit, time limit, malformed or invalid answer);
* 2: bad invocation or invalid input (config, registry, schema, legacy dialect);
* 3: inputs valid one by one that do not fit together (claims, devices, components);
* 130 / 143: interrupted by SIGINT / SIGTERM.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

DELEGATE_FAILED = 1
INVALID_INPUT = 2
CONFLICT = 3
INTERRUPTED = 130
TERMINATED = 143
INTERNAL = 70  # EX_SOFTWARE: a bug of bakeplan's own, never an input's or a delegate's


class BakeplanError(Exception):
    """A failure bakeplan can explain: what failed, where, and what would fix it.

    The fields say where a person looks first (``file``, ``line``, ``col``, ``pointer``),
    further lines (``detail``: an expected value, a context excerpt) and what to do
    (``hint``).  Only ``orchestrator.show`` turns them into text.
    """

    exit_code: ClassVar[int] = INVALID_INPUT
    kind: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        pointer: str | None = None,
        detail: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.pointer = pointer
        self.detail = tuple(detail)
        self.hint = hint

    def located(self, file: str, line: int | None, col: int | None) -> BakeplanError:
        """A copy of this error placed at ``file:line:col``; the raised one is left as it was."""
        # Not copy.copy: that calls the class with the message alone, which a kind whose
        # constructor takes more (a delegate's failure, an interrupt) refuses.
        placed = type(self).__new__(type(self), *self.args)
        placed.__dict__.update(self.__dict__)
        placed.file, placed.line, placed.col = file, line, col
        return placed

    def __str__(self) -> str:
        return self.message


class UsageError(BakeplanError):
    """The command line asks for something that cannot be done (exit 2)."""

    kind = "usage"


class InputError(BakeplanError):
    """A config, registry or bake config that is unreadable, malformed or invalid (exit 2)."""

    kind = "invalid input"


class LegacyDialectError(InputError):
    """A config in rumprun's 2015 master dialect: refused, never converted silently."""

    kind = "legacy config"


class ConflictError(BakeplanError):
    """Inputs valid one by one that do not fit together (exit 3)."""

    exit_code = CONFLICT
    kind = "conflict"


class DelegateError(BakeplanError):
    """A delegate failed: exit status, signal, time limit, malformed or invalid answer."""

    exit_code = DELEGATE_FAILED
    kind = "delegate failed"

    def __init__(
        self,
        message: str,
        *,
        delegate: str,
        pointer: str | None = None,
        command: Sequence[str] = (),
        status: str | None = None,
        stderr_tail: str = "",
        detail: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, pointer=pointer, detail=detail, hint=hint)
        self.delegate = delegate
        self.command = tuple(command)
        self.status = status
        self.stderr_tail = stderr_tail


class Interrupted(BakeplanError):
    """SIGINT or SIGTERM arrived: every delegate was stopped and nothing was written."""

    kind = "interrupted"

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(f"{signal_name} received; every delegate stopped, nothing written")
        self._exit_code = exit_code

    @property
    def code(self) -> int:
        return self._exit_code


class Problems(BakeplanError):
    """Several problems found together; all are reported, the exit code is the lowest."""

    def __init__(self, problems: Iterable[BakeplanError]) -> None:
        self.problems = tuple(problems)
        if not self.problems:
            raise ValueError("Problems needs at least one problem")
        super().__init__(f"{len(self.problems)} problems found")


class Trouble(Problems):
    """Whatever went wrong while comparing plans: ``bakeplan diff`` exits 2 on trouble,
    as ``diff`` does, because its 1 says that the plans differ."""

    exit_code = INVALID_INPUT


def exit_code_of(error: BakeplanError) -> int:
    """The exit code for an error; the lowest of its parts when it holds several."""
    if isinstance(error, Trouble):
        return error.exit_code
    if isinstance(error, Problems):
        return min(exit_code_of(p) for p in error.problems)
    if isinstance(error, Interrupted):
        return error.code
    return error.exit_code


def raise_all(problems: Sequence[BakeplanError]) -> None:
    """Raise nothing for no problems, the problem itself for one, ``Problems`` for more."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise Problems(problems)
