"""Tables for people and for pipes: rich in a terminal, aligned plain text elsewhere.

``delegates list`` and ``delegates check`` print rows; this module decides how, so
neither imports rich unless a person is looking at a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from orchestrator.show.report import is_terminal

STYLES = {"PASS": "bold green", "FAIL": "bold red"}


def render(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], stream: TextIO
) -> str:
    """Plain text to write to ``stream``; in a terminal the rich table is printed to it
    right away and ``""`` is returned."""
    if not is_terminal(stream):
        return plain(title, columns, rows)
    from rich.console import Console  # noqa: PLC0415  (rich only for a person at a terminal)
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(f"[{STYLES[c]}]{c}[/]" if c in STYLES else _escape(c) for c in row))
    Console(file=stream, highlight=False).print(table)
    return ""


def _escape(text: str) -> str:
    from rich.markup import escape  # noqa: PLC0415

    return escape(text)


def plain(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns, two spaces apart; a cell's further lines are indented below it."""
    widths = [len(c) for c in columns]
    for row in rows:
        for index, cell in enumerate(row[:-1]):
            widths[index] = max([widths[index], *(len(line) for line in cell.splitlines())])
    lines = [title] if title else []
    for row in (list(columns), *rows):
        cells = [cell.splitlines() or [""] for cell in row]
        for depth in range(max(len(cell) for cell in cells)):
            parts = [cell[depth] if depth < len(cell) else "" for cell in cells]
            text = "  ".join(
                part.ljust(widths[i]) if i < len(row) - 1 else part for i, part in enumerate(parts)
            )
            lines.append(text.rstrip())
    return "\n".join(lines) + "\n"
