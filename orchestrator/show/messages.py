"""An error's fields as the words a person reads: where, the headline, the lines under it.

Errors carry their fields (``orchestrator.errors``); this module and the rich renderer
in ``preview`` are the only places that turn them into text.
"""

from __future__ import annotations

from orchestrator.errors import BakeplanError, DelegateError, Problems
from orchestrator.pointers import pointer_text


def problems_of(error: BakeplanError) -> tuple[BakeplanError, ...]:
    """The problems an error stands for: its parts when it holds several, else itself."""
    return error.problems if isinstance(error, Problems) else (error,)


def where(error: BakeplanError) -> str:
    """Where a person looks first: ``file:line:col``, a JSON pointer, or both
    (``config.json:4:7 at /net``); ``""`` when the error has no place."""
    parts: list[str] = []
    if error.file is not None:
        place = error.file
        if error.line is not None:
            place += f":{error.line}"
            if error.col is not None:
                place += f":{error.col}"
        parts.append(place)
    if error.pointer is not None:
        parts.append(f"at {pointer_text(error.pointer)}")
    return " ".join(parts)


def headline(error: BakeplanError) -> str:
    """``where: message`` as one line; a delegate's failure names the delegate first."""
    if isinstance(error, DelegateError):
        place = f"delegate {error.delegate!r}"
        if error.pointer is not None:
            place += f" at {pointer_text(error.pointer)}"
        return f"{place}: {error.message}"
    place = where(error)
    return f"{place}: {error.message}" if place else error.message


def details(error: BakeplanError) -> list[str]:
    """The lines under the headline: the error's own detail, then for a delegate the
    command, its exit status and the tail of its stderr."""
    lines = list(error.detail)
    if isinstance(error, DelegateError):
        if error.command:
            import shlex  # noqa: PLC0415  (only on this error path)

            lines.append(f"command: {shlex.join(error.command)}")
        if error.status:
            lines.append(f"status: {error.status}")
        if error.stderr_tail:
            lines.append("stderr (last lines):")
            lines.extend(f"  | {line}" for line in error.stderr_tail.splitlines())
    return lines


def plain(error: BakeplanError) -> str:
    """Every problem in ``error`` as plain text, for logs, pipes and tests."""
    blocks = []
    for problem in problems_of(error):
        lines = [f"bakeplan: {problem.kind}: {headline(problem)}"]
        lines.extend(f"  {line}" for line in details(problem))
        if problem.hint:
            lines.append(f"  hint: {problem.hint}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
