"""An error's fields turned into the words a person reads (``orchestrator.show.messages``)."""

from __future__ import annotations

import pytest

from orchestrator.errors import (
    ConflictError,
    DelegateError,
    InputError,
    Problems,
    UsageError,
)
from orchestrator.show import messages


def test_where_names_file_line_col_and_pointer() -> None:
    error = InputError("bad", file="config.json", line=4, col=7, pointer="/net")
    assert messages.where(error) == "config.json:4:7 at /net"
    assert messages.where(InputError("bad", file="c.json", line=4)) == "c.json:4"
    assert messages.where(InputError("bad", file="c.json")) == "c.json"
    assert messages.where(ConflictError("bad", pointer="")) == "at (the whole config)"
    assert messages.where(UsageError("bad")) == ""


def test_the_headline_puts_the_place_first() -> None:
    assert messages.headline(InputError("bad", file="c.json", line=1, col=2)) == "c.json:1:2: bad"
    assert messages.headline(UsageError("bad")) == "bad"


def test_a_delegate_failure_names_the_delegate_and_its_run() -> None:
    error = DelegateError(
        "exited with status 3",
        delegate="mirage-net-config",
        pointer="/net",
        command=("mirage-net-config", "--flag", "a b"),
        status="exit status 3",
        stderr_tail="first\nlast",
        detail=("during the describe handshake",),
        hint="run it by hand",
    )
    assert messages.headline(error) == "delegate 'mirage-net-config' at /net: exited with status 3"
    assert messages.details(error) == [
        "during the describe handshake",
        "command: mirage-net-config --flag 'a b'",
        "status: exit status 3",
        "stderr (last lines):",
        "  | first",
        "  | last",
    ]
    assert messages.plain(error).splitlines() == [
        "bakeplan: delegate failed: delegate 'mirage-net-config' at /net: exited with status 3",
        "  during the describe handshake",
        "  command: mirage-net-config --flag 'a b'",
        "  status: exit status 3",
        "  stderr (last lines):",
        "    | first",
        "    | last",
        "  hint: run it by hand",
    ]
    # The fields stay fields: nothing rendered is written back into the error.
    assert error.detail == ("during the describe handshake",)


def test_several_problems_are_one_block_each() -> None:
    error = Problems([UsageError("one"), ConflictError("two", pointer="/rc")])
    assert messages.problems_of(error) == error.problems
    assert messages.plain(error).splitlines() == [
        "bakeplan: usage: one",
        "bakeplan: conflict: at /rc: two",
    ]


@pytest.mark.parametrize("length", [119, 120, 121, 10_000])
def test_a_long_pointer_is_shortened_when_shown(length: int) -> None:
    pointer = "/" + "a" * (length - 1)
    shown = messages.where(ConflictError("x", pointer=pointer))
    assert len(shown) < 160
    assert (f"({length} characters)" in shown) == (length > 120)
