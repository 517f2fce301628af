"""``show/tables``: the rows of ``delegates list`` and ``delegates check``.

In a pipe, aligned plain text that loses nothing of any cell; on a terminal, a rich
table printed straight to it, PASS and FAIL in colour and every other cell shown as it
is (never read as rich markup).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from helpers_cli import run_main
from helpers_exec import write_sh
from helpers_protocol import write_registry
from helpers_screen import ESCAPE, colour_terminal, rich_after

from orchestrator.show import tables

COLUMNS = ("check", "result", "detail")
ROWS = [
    ("describe", "PASS", "mirage-net-config 0.1"),
    ("same request, same answer", "FAIL", "no answer to compare: exit status 1"),
]


def test_columns_are_aligned_two_spaces_apart_under_the_title() -> None:
    assert tables.plain("bakeplan delegates check d", COLUMNS, ROWS) == (
        "bakeplan delegates check d\n"
        "check                      result  detail\n"
        "describe                   PASS    mirage-net-config 0.1\n"
        "same request, same answer  FAIL    no answer to compare: exit status 1\n"
    )


def test_no_title_no_title_line_and_no_trailing_spaces() -> None:
    text = tables.plain("", ("name", "claims"), [("a", ""), ("long-name", "/env")])
    assert text == "name       claims\na\nlong-name  /env\n"


def test_a_cells_further_lines_are_kept_below_it_in_its_column() -> None:
    rows = [("two-lines", "sh -c echo 1\nrm -rf x", "r.json"), ("d", "d", "multi\nline")]
    assert tables.plain("", ("name", "command", "from"), rows) == (
        "name       command       from\n"
        "two-lines  sh -c echo 1  r.json\n"
        "           rm -rf x\n"
        "d          d             multi\n"
        "                         line\n"
    )


def test_delegates_list_in_a_pipe_shows_a_whole_multi_line_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = write_sh(tmp_path, "tool", "exit 0\n")
    registry = write_registry(
        tmp_path,
        {"name": "two-lines", "command": [str(tool), "-c", "echo 1\nrm -rf x"], "claims": ["/env"]},
    )
    code, out, err = run_main(capsys, "delegates", "list", "-r", str(registry))
    assert code == 0, err
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("two-lines "))
    assert lines[at].endswith(str(registry))
    assert lines[:2] == ["delegates", lines[1]]
    column = lines[1].index("command")
    assert lines[at + 1] == " " * column + "rm -rf x"


def test_in_a_pipe_the_text_is_returned_and_nothing_is_written() -> None:
    stream = io.StringIO()
    assert tables.render("t", COLUMNS, ROWS, stream) == tables.plain("t", COLUMNS, ROWS)
    assert stream.getvalue() == ""


def test_a_pipe_never_imports_rich() -> None:
    assert (
        rich_after(
            "import io\n"
            "from orchestrator.show import tables\n"
            "tables.render('t', ('a', 'b'), [('PASS', 'x')], io.StringIO())\n"
        )
        == set()
    )


def test_on_a_terminal_the_table_is_printed_with_pass_and_fail_in_colour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = colour_terminal(monkeypatch, 120)
    assert tables.render("bakeplan delegates check d", COLUMNS, ROWS, stream) == ""
    shown = stream.getvalue()
    assert re.search(r"\x1b\[1;32mPASS", shown)  # bold green
    assert re.search(r"\x1b\[1;31mFAIL", shown)  # bold red
    words = ESCAPE.sub("", shown)
    assert words.splitlines()[0].rstrip() == "bakeplan delegates check d"
    for row in ROWS:
        assert re.search(r"\s+│\s+".join(map(re.escape, row)), words), row


def test_on_a_terminal_a_cell_is_never_read_as_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = colour_terminal(monkeypatch, 120)
    tables.render("", ("name", "command"), [("odd", "[red]run[/red] --x=[1]")], stream)
    words = ESCAPE.sub("", stream.getvalue())
    assert "[red]run[/red] --x=[1]" in words
    assert "\x1b[31m" not in stream.getvalue()
