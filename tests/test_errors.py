"""The error kinds and their exit codes (``orchestrator.errors``): the codes are part of
the contract, so each kind's is pinned here, with how several problems, diff's trouble
and an interrupt turn into one code."""

from __future__ import annotations

import pytest

from orchestrator.errors import (
    CONFLICT,
    DELEGATE_FAILED,
    INTERRUPTED,
    INVALID_INPUT,
    TERMINATED,
    BakeplanError,
    ConflictError,
    DelegateError,
    InputError,
    Interrupted,
    LegacyDialectError,
    Problems,
    Trouble,
    UsageError,
    exit_code_of,
    raise_all,
)


@pytest.mark.parametrize(
    ("error", "code", "kind"),
    [
        (BakeplanError("x"), 2, "error"),
        (UsageError("x"), 2, "usage"),
        (InputError("x"), 2, "invalid input"),
        (LegacyDialectError("x"), 2, "legacy config"),
        (ConflictError("x"), 3, "conflict"),
        (DelegateError("x", delegate="d"), 1, "delegate failed"),
        (Interrupted("SIGINT", INTERRUPTED), 130, "interrupted"),
        (Interrupted("SIGTERM", TERMINATED), 143, "interrupted"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BakeplanError) else str(v),
)
def test_each_kind_has_its_exit_code(error: BakeplanError, code: int, kind: str) -> None:
    assert exit_code_of(error) == code
    assert error.kind == kind
    assert isinstance(error, BakeplanError)


def test_the_codes_are_the_documented_numbers() -> None:
    assert (DELEGATE_FAILED, INVALID_INPUT, CONFLICT, INTERRUPTED, TERMINATED) == (
        1,
        2,
        3,
        130,
        143,
    )


def test_an_interrupt_says_which_signal_and_that_nothing_was_written() -> None:
    error = Interrupted("SIGTERM", TERMINATED)
    assert str(error) == "SIGTERM received; every delegate stopped, nothing written"
    assert error.code == 143
    # The class's own code is not the one it exits with.
    assert Interrupted.exit_code == INVALID_INPUT


def test_several_problems_exit_with_the_lowest_code_of_their_parts() -> None:
    conflict, usage, failed = ConflictError("c"), UsageError("u"), DelegateError("d", delegate="x")
    assert exit_code_of(Problems([conflict, usage])) == 2
    assert exit_code_of(Problems([conflict, usage, failed])) == 1
    assert exit_code_of(Problems([conflict])) == 3
    # Nested problems are looked into, an interrupt counts by its signal's code.
    assert exit_code_of(Problems([Problems([conflict]), Interrupted("SIGINT", 130)])) == 3
    both = Problems([conflict, failed])
    assert both.problems == (conflict, failed)
    assert both.message == "2 problems found"


def test_diffs_trouble_exits_2_whatever_its_parts_say() -> None:
    # bakeplan diff exits 1 when the plans differ: a failure must not look like that.
    trouble = Trouble([DelegateError("d", delegate="x"), ConflictError("c")])
    assert exit_code_of(trouble) == 2
    assert isinstance(trouble, Problems)


@pytest.mark.parametrize("kind", [Problems, Trouble])
def test_problems_need_at_least_one_problem(kind: type[Problems]) -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        kind([])
    with pytest.raises(ValueError, match="at least one problem"):
        kind(iter(()))


def test_raise_all_raises_nothing_the_one_or_all_together() -> None:
    raise_all([])
    one = ConflictError("one")
    with pytest.raises(ConflictError) as caught:
        raise_all([one])
    assert caught.value is one
    two = [one, UsageError("two")]
    with pytest.raises(Problems) as together:
        raise_all(two)
    assert type(together.value) is Problems
    assert together.value.problems == tuple(two)


def test_a_placed_copy_leaves_the_raised_error_alone() -> None:
    raised = ConflictError("two owners", pointer="/net", detail=("d",), hint="h")
    placed = raised.located("config.json", 3, 5)
    assert placed is not raised
    assert type(placed) is ConflictError
    assert (placed.file, placed.line, placed.col) == ("config.json", 3, 5)
    assert (raised.file, raised.line, raised.col) == (None, None, None)
    assert (placed.message, placed.pointer, placed.detail, placed.hint) == (
        "two owners",
        "/net",
        ("d",),
        "h",
    )
    assert exit_code_of(placed) == 3
    # A delegate's failure keeps its own fields when placed.
    failed = DelegateError("x", delegate="d", command=("d", "-v"), status="exit status 1")
    moved = failed.located("registry.json", None, None)
    assert isinstance(moved, DelegateError)
    assert (moved.delegate, moved.command, moved.status) == ("d", ("d", "-v"), "exit status 1")
    assert (moved.file, moved.line) == ("registry.json", None)
    stopped = Interrupted("SIGTERM", TERMINATED).located("c.json", 1, 1)
    assert (exit_code_of(stopped), str(stopped)) == (
        143,
        "SIGTERM received; every delegate stopped, nothing written",
    )
    several = Problems([one := UsageError("u"), ConflictError("c")]).located("c.json", 2, None)
    assert several.problems[0] is one and exit_code_of(several) == 2


def test_an_error_reads_as_its_message_and_keeps_its_fields() -> None:
    error = InputError("bad value", pointer="/env", detail=["one", "two"], hint="fix it")
    assert str(error) == "bad value"
    assert error.detail == ("one", "two")  # a tuple, whatever sequence was given
    failed = DelegateError("x", delegate="d", command=["a", "b"])
    assert failed.command == ("a", "b")
    assert (failed.stderr_tail, failed.status, failed.pointer) == ("", None, None)
