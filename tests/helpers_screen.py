"""A stream that says it is a terminal, for what draws with rich only for a person."""

from __future__ import annotations

import io
import re

import pytest
from helpers_exec import modules_after

# An SGR escape sequence: what colour and weight leave in the text.
ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class Terminal(io.StringIO):
    """A stream whose ``isatty`` is true, as a person's terminal's is."""

    def isatty(self) -> bool:
        return True


def colour_terminal(monkeypatch: pytest.MonkeyPatch, columns: int = 200) -> Terminal:
    """A ``Terminal`` that rich draws on in colour, ``columns`` wide."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return Terminal()


def rich_after(code: str) -> set[str]:
    """The modules of rich a fresh interpreter holds after running ``code``."""
    return {m for m in modules_after(code) if m.split(".")[0] == "rich"}
