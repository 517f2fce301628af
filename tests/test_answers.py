"""``show/answers``: how ``bakeplan why`` and ``bakeplan diff`` say what they found.

Plain text in a pipe, one line per fact and never wrapped; on a terminal the same words
in rich's colours (an absent subject in red, each change by its sign); JSON with
``--json``, as written here.  The answers themselves (``review/explain``,
``review/compare``) are proven in ``test_explain.py`` and ``test_compare.py``.
"""

from __future__ import annotations

import copy
import json
import os
import pty
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import BAKEPLAN, run_main
from helpers_exec import read_terminal
from helpers_screen import ESCAPE, Terminal, colour_terminal
from helpers_snapshot import SNAPSHOTS

from orchestrator.core.planmodel import Plan
from orchestrator.review import compare, explain
from orchestrator.show import answers

HYBRID_PLAN = SNAPSHOTS / "plans" / "hybrid-master.json"
RUMPRUN_ONLY_PLAN = SNAPSHOTS / "plans" / "rumprun-only-master.json"


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    return colour_terminal(monkeypatch)


def document(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


HYBRID = Plan.from_json(document(HYBRID_PLAN))


def every_part_changed() -> compare.Difference:
    """From the hybrid plan to one that differs in each of its seven parts."""
    changed = document(RUMPRUN_ONLY_PLAN)
    changed["bake"]["config"] = "hw_generic"
    changed["warnings"] = [{"by": "d", "pointer": "/env", "message": "look"}]
    return compare.diff(HYBRID, Plan.from_json(changed))


# -- why ----------------------------------------------------------------------------------------


def test_why_in_a_pipe_is_the_answer_one_line_each() -> None:
    answer = explain.why(HYBRID, "/net")
    assert answers.why_text(answer) == "".join(line + "\n" for line in answer.lines())
    assert len(answer.lines()) > 2


def test_why_on_a_terminal_says_the_same_words_absent_in_red(terminal: Terminal) -> None:
    absent = explain.why(HYBRID, "-lrumpnet_netinet")
    assert answers.why_text(absent, terminal) == ""
    shown = terminal.getvalue()
    assert shown.startswith("\x1b[1;31m-lrumpnet_netinet is not linked")  # bold red
    assert ESCAPE.sub("", shown) == answers.why_text(absent)
    present = Terminal()
    answers.why_text(explain.why(HYBRID, "ld0"), present)
    assert present.getvalue().startswith("\x1b[1mld0 is a block device")  # bold, not red


def test_a_long_answer_is_never_wrapped_in_a_pipe() -> None:
    answer = explain.why(HYBRID, "-lrumpnet_netinet")
    assert len(answer.summary) > 80
    assert answers.why_text(answer).splitlines()[0] == answer.summary


# -- diff ---------------------------------------------------------------------------------------


def test_same_plans_are_one_line() -> None:
    same = compare.diff(HYBRID, copy.deepcopy(HYBRID))
    assert answers.diff_text(same, "a.json", "b.json") == "a.json and b.json are the same plan\n"


def test_each_part_is_titled_once_in_plan_order_before_its_changes() -> None:
    difference = every_part_changed()
    lines = answers.diff_text(difference, "old.json", "new.json").splitlines()
    assert lines[:2] == ["--- old.json", "+++ new.json"]
    titles = [line for line in lines[2:] if not line.startswith("  ")]
    assert titles == [
        "bake config",
        "libraries",
        "devices",
        "toolchain arguments",
        "runtime config",
        "delegations",
        "warnings",
    ]
    changes = [line for line in lines[2:] if line.startswith("  ")]
    assert changes == [f"  {c.sign} {c.text}" for c in difference.changes]
    # Under each title, the changes of its part and no other.
    part = None
    for line in lines[2:]:
        if not line.startswith("  "):
            part = line
            continue
        (change,) = [c for c in difference.changes if f"  {c.sign} {c.text}" == line]
        assert answers._PART_TITLES[change.part] == part


def test_diff_on_a_terminal_colours_each_change_by_its_sign(terminal: Terminal) -> None:
    difference = every_part_changed()
    assert answers.diff_text(difference, "old.json", "new.json", terminal) == ""
    shown = terminal.getvalue()
    assert ESCAPE.sub("", shown) == answers.diff_text(difference, "old.json", "new.json")
    colours = {"+": "32", "-": "31", "~": "33"}
    for line in shown.splitlines():
        plain = ESCAPE.sub("", line)
        if plain.startswith("  "):
            assert line.startswith(f"\x1b[{colours[plain[2]]}m"), line
        else:
            assert line.startswith("\x1b[1m"), line  # the file names and the titles: bold


# -- JSON -----------------------------------------------------------------------------------------


def test_json_is_indented_keeps_non_ascii_and_ends_with_a_newline() -> None:
    text = answers.as_json({"summary": "hôte é", "chain": [{"what": "x"}]})
    assert (
        text == '{\n  "summary": "hôte é",\n  "chain": [\n    {\n      "what": "x"\n    }\n  ]\n}\n'
    )


def test_why_and_diff_json_through_main_are_the_answers_documents(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_main(capsys, "why", str(HYBRID_PLAN), "--json", "/net")
    assert code == 0
    assert out == answers.as_json(explain.why(HYBRID, "/net").as_json())
    code, out, _ = run_main(capsys, "diff", str(HYBRID_PLAN), str(RUMPRUN_ONLY_PLAN), "--json")
    assert code == 1
    expected = compare.diff(HYBRID, Plan.from_json(document(RUMPRUN_ONLY_PLAN)))
    assert out == answers.as_json(expected.as_json())


# -- through the commands, on a real terminal ----------------------------------------------


def on_a_terminal(*argv: str) -> tuple[int, str]:
    """Exit code and screen of ``bakeplan ARGV`` with stdout on a pseudo-terminal."""
    environ = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"}
    environ.pop("NO_COLOR", None)
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [*BAKEPLAN, *argv], stdout=follower, stderr=subprocess.DEVNULL, env=environ
    ) as process:
        os.close(follower)
        screen = read_terminal(leader)
        return process.wait(timeout=60), screen


def test_why_and_diff_on_a_real_terminal_are_coloured_with_the_piped_words() -> None:
    for argv, expected in [
        (("why", str(HYBRID_PLAN), "-lrumpnet_netinet"), 0),
        (("diff", str(HYBRID_PLAN), str(RUMPRUN_ONLY_PLAN)), 1),
    ]:
        code, screen = on_a_terminal(*argv)
        piped = subprocess.run([*BAKEPLAN, *argv], capture_output=True, text=True, check=False)
        assert (code, piped.returncode) == (expected, expected), piped.stderr
        assert ESCAPE.search(screen)
        assert not ESCAPE.search(piped.stdout)
        assert ESCAPE.sub("", screen) == piped.stdout
