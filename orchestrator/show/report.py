"""What a person reads on stderr: errors and warnings.

In a terminal they are rendered with rich (imported only then, and only when there is
something to say); anywhere else, plain text with no escape codes, one problem per
block, so logs and pipes stay readable and greppable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from orchestrator.errors import BakeplanError
from orchestrator.pointers import pointer_text
from orchestrator.show.messages import plain

if TYPE_CHECKING:
    from orchestrator.core.planmodel import PlanWarning


def is_terminal(stream: TextIO) -> bool:
    """Whether a person is looking: ``stream`` is a terminal (not closed, not a pipe)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def show_error(error: BakeplanError, stream: TextIO | None = None) -> None:
    """Every problem in ``error``, rich in a terminal, plain elsewhere."""
    stream = stream or sys.stderr
    if not is_terminal(stream):
        stream.write(plain(error) + "\n")
        stream.flush()
        return
    from orchestrator.show import preview  # noqa: PLC0415  (rich only for a person at a terminal)

    preview.render_error(error, preview.console_for(stream))


def note(text: str, stream: TextIO | None = None) -> None:
    """A note from the core (``--verbose``, what validate could not check), one line."""
    stream = stream or sys.stderr
    stream.write(f"bakeplan: {text}\n")
    stream.flush()


def show_warnings(warnings: Iterable[PlanWarning], stream: TextIO | None = None) -> None:
    """The plan's warnings, one line each."""
    stream = stream or sys.stderr
    for warning in warnings:
        where = pointer_text(warning.pointer)
        stream.write(f"bakeplan: warning: {warning.by} at {where}: {warning.message}\n")
    stream.flush()
