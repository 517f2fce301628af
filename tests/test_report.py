"""``show/report``: what a person reads on stderr, errors, notes and warnings.

Plain text wherever no person looks (a pipe, a file, a closed or odd stream), with rich
neither drawn nor even imported; rich only on a terminal, saying the same words.
"""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
from pathlib import Path

import pytest
from helpers_cli import BAKEPLAN
from helpers_exec import read_terminal
from helpers_screen import Terminal, colour_terminal, rich_after

from orchestrator.core.planmodel import PlanWarning
from orchestrator.errors import DelegateError, InputError, Problems, UsageError
from orchestrator.show import messages, report

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Closed(io.StringIO):
    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


class Bare:
    """A stream with nothing but ``write`` and ``flush``: no ``isatty`` at all."""

    def __init__(self) -> None:
        self.written = ""

    def write(self, text: str) -> int:
        self.written += text
        return len(text)

    def flush(self) -> None:
        pass


ERROR = Problems(
    [
        InputError("expected a value", file="config.json", line=1, col=9, hint="remove the comma"),
        UsageError("no such bake config 'hw_virtioo'", hint="did you mean 'hw_virtio'?"),
    ]
)


def test_only_a_terminal_is_a_terminal(tmp_path: Path) -> None:
    assert report.is_terminal(Terminal())
    assert not report.is_terminal(io.StringIO())
    assert not report.is_terminal(Closed())  # a closed stream: isatty raises ValueError
    assert not report.is_terminal(Bare())  # type: ignore[arg-type]
    with (tmp_path / "log").open("w") as file:
        assert not report.is_terminal(file)
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as stream:
        assert report.is_terminal(stream)
    os.close(leader)


def test_an_error_in_a_pipe_is_its_plain_text_one_block_per_problem() -> None:
    stream = io.StringIO()
    report.show_error(ERROR, stream)
    assert stream.getvalue() == messages.plain(ERROR) + "\n"
    assert stream.getvalue().splitlines() == [
        "bakeplan: invalid input: config.json:1:9: expected a value",
        "  hint: remove the comma",
        "bakeplan: usage: no such bake config 'hw_virtioo'",
        "  hint: did you mean 'hw_virtio'?",
    ]
    odd = Bare()
    report.show_error(ERROR, odd)  # type: ignore[arg-type]
    assert odd.written == stream.getvalue()


def test_an_error_goes_to_stderr_unless_told(capsys: pytest.CaptureFixture[str]) -> None:
    report.show_error(UsageError("bad"))
    report.note("said")
    report.show_warnings([PlanWarning("d", "/env", "look")])
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "bakeplan: usage: bad\nbakeplan: said\nbakeplan: warning: d at /env: look\n"


def test_a_pipe_never_imports_rich() -> None:
    assert (
        rich_after(
            "import io\n"
            "from orchestrator.errors import UsageError\n"
            "from orchestrator.show import report\n"
            "report.show_error(UsageError('bad'), io.StringIO())\n"
            "report.note('said', io.StringIO())\n"
        )
        == set()
    )


def test_an_error_on_a_terminal_is_rich_with_the_same_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = colour_terminal(monkeypatch, 200)
    report.show_error(ERROR, stream)
    shown = stream.getvalue()
    assert ESCAPE.search(shown)
    words = ESCAPE.sub("", shown)
    assert words.splitlines() == [
        "invalid input: config.json:1:9: expected a value",
        "  hint: remove the comma",
        "usage: no such bake config 'hw_virtioo'",
        "  hint: did you mean 'hw_virtio'?",
    ]


def test_a_delegate_failure_on_a_terminal_is_a_panel_naming_the_delegate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = colour_terminal(monkeypatch, 120)
    error = DelegateError(
        "exited with status 3", delegate="broken-net", pointer="/net", command=("./broken",)
    )
    report.show_error(error, stream)
    words = ESCAPE.sub("", stream.getvalue())
    assert "broken-net" in words and "exited with status 3" in words
    assert "╭" in words  # a panel, not the plain block
    piped = io.StringIO()
    report.show_error(error, piped)
    assert "╭" not in piped.getvalue()
    assert piped.getvalue().startswith("bakeplan: ")


def test_a_real_terminal_gets_colour_and_a_pipe_the_plain_words(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"rc": [}')
    argv = [*BAKEPLAN, "validate", str(broken)]
    environ = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"}
    environ.pop("NO_COLOR", None)
    piped = subprocess.run(argv, capture_output=True, text=True, check=False, env=environ)
    assert piped.returncode == 2
    assert not ESCAPE.search(piped.stderr)
    leader, follower = pty.openpty()
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=follower, env=environ) as run:
        os.close(follower)
        shown = read_terminal(leader)
        assert run.wait(timeout=60) == 2
    assert ESCAPE.search(shown)
    # The same words: the plain block less its "bakeplan: " prefix.
    assert ESCAPE.sub("", shown).splitlines()[0] == piped.stderr.splitlines()[0].removeprefix(
        "bakeplan: "
    )


def test_a_note_is_one_line() -> None:
    stream = io.StringIO()
    report.note("response cache: not caching answers", stream)
    report.note("second", stream)
    assert stream.getvalue() == "bakeplan: response cache: not caching answers\nbakeplan: second\n"


def test_each_warning_is_one_line_naming_who_and_where() -> None:
    stream = io.StringIO()
    long = "/env/" + "k" * 400
    report.show_warnings(
        [
            PlanWarning("mirage-net-config", "/net/interfaces/vioif0", "no gateway"),
            PlanWarning("bakeplan", "", "the runtime config is 9000 bytes"),
            PlanWarning("d", long, "look"),
        ],
        stream,
    )
    lines = stream.getvalue().splitlines()
    assert lines[:2] == [
        "bakeplan: warning: mirage-net-config at /net/interfaces/vioif0: no gateway",
        "bakeplan: warning: bakeplan at (the whole config): the runtime config is 9000 bytes",
    ]
    assert lines[2].startswith("bakeplan: warning: d at /env/kkk")
    assert lines[2].endswith(f"… ({len(long)} characters): look")
    assert len(lines) == 3
    quiet = io.StringIO()
    report.show_warnings([], quiet)
    assert quiet.getvalue() == ""
