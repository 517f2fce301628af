"""What ``bakeplan why`` and ``bakeplan diff`` say to a person: coloured with rich in a
terminal, plain text in a pipe (the same words either way), JSON with ``--json``."""

from __future__ import annotations

import json
from typing import Any, TextIO

from rich.text import Text

from orchestrator.review.compare import Difference
from orchestrator.review.explain import Answer
from orchestrator.show.preview import console_for

_SIGN_STYLES = {"+": "green", "-": "red", "~": "yellow"}
_PART_TITLES = {
    "bake": "bake config",
    "libs": "libraries",
    "devices": "devices",
    "toolchains": "toolchain arguments",
    "runtime": "runtime config",
    "delegations": "delegations",
    "warnings": "warnings",
}


def as_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _render(lines: list[Text], stream: TextIO | None) -> str:
    """``lines`` printed on ``stream`` (a terminal), or returned as plain text: one line
    each, never wrapped, so that a pipe can grep them."""
    if stream is None:
        return "".join(line.plain + "\n" for line in lines)
    console = console_for(stream)
    for line in lines:
        console.print(line)
    return ""


def why_text(answer: Answer, stream: TextIO | None = None) -> str:
    """The answer, for a terminal (``stream``) or as plain text."""
    head, *steps = answer.lines()
    style = "bold" if answer.present else "bold red"
    return _render([Text(head, style=style), *(Text(step) for step in steps)], stream)


def diff_text(difference: Difference, old: str, new: str, stream: TextIO | None = None) -> str:
    """The difference, part by part, for a terminal (``stream``) or as plain text."""
    if difference.same:
        return _render([Text(f"{old} and {new} are the same plan")], stream)
    lines = [Text(f"--- {old}\n+++ {new}", style="bold")]
    part = None
    for change in difference.changes:
        if change.part != part:
            part = change.part
            lines.append(Text(_PART_TITLES[part], style="bold"))
        lines.append(Text(f"  {change.sign} {change.text}", style=_SIGN_STYLES[change.sign]))
    return _render(lines, stream)
