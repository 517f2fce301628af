"""The subcommands package: one module per subcommand, the shared option parsers and
their messages, and what building a parser costs (nothing heavy, nothing for --version).
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable

import pytest
from conftest import REPO
from helpers_exec import modules_after

from orchestrator import commands
from orchestrator.cli import build_parser
from orchestrator.commands import options
from orchestrator.errors import UsageError

PACKAGE = REPO / "orchestrator"


def subcommands_of(parser: argparse.ArgumentParser) -> list[str]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(action.choices)


def imported_by(path: str) -> set[str]:
    """The modules a source file imports, at the top or inside a function."""
    tree = ast.parse((PACKAGE / path).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# -- the package -----------------------------------------------------------------------------


def test_help_lists_the_subcommands_in_the_packages_order() -> None:
    assert subcommands_of(build_parser()) == list(commands.SUBCOMMANDS)


@pytest.mark.parametrize("name", commands.SUBCOMMANDS)
def test_each_subcommand_is_a_module_that_registers_itself_alone(name: str) -> None:
    assert (PACKAGE / "commands" / f"{name}.py").is_file()
    assert subcommands_of(build_parser(name)) == [name]


def test_nothing_under_commands_imports_the_cli() -> None:
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        imports = imported_by(f"commands/{path.name}")
        assert not {"orchestrator.cli", "orchestrator.cli.main"} & imports, path.name


def test_the_emit_formats_cost_no_import() -> None:
    # The command line offers them to --emit and --help without loading an emitter.
    assert imported_by("emit/__init__.py") == set()


def test_version_builds_no_parser() -> None:
    loaded = modules_after("from orchestrator.cli import main\nmain(['--version'])")
    assert not {"argparse", "orchestrator.commands"} & loaded


def test_building_every_parser_imports_nothing_heavy() -> None:
    loaded = modules_after("from orchestrator.cli import build_parser\nbuild_parser()")
    heavy = {
        "orchestrator.core.pipeline",
        "orchestrator.emit.formats",
        "orchestrator.show.preview",
        "orchestrator.schemas.explainer",
        "rich",
        "jsonschema",
    }
    assert heavy & loaded == set()
    assert {f"orchestrator.commands.{name}" for name in commands.SUBCOMMANDS} <= loaded


def test_a_subcommand_run_imports_no_other_subcommand() -> None:
    loaded = modules_after("from orchestrator.cli import build_parser\nbuild_parser('schema')")
    assert {m for m in loaded if m.startswith("orchestrator.commands.")} == {
        "orchestrator.commands.options",
        "orchestrator.commands.schema",
    }


# -- the shared option parsers ---------------------------------------------------------------


def refusal(parse: Callable[[str], object], text: str) -> str:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse(text)
    return str(caught.value)


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("64", 64), (" 3 ", 3)])
def test_positive_int_takes_whole_numbers_from_1(text: str, value: int) -> None:
    assert options.positive_int(text) == value


@pytest.mark.parametrize(
    ("text", "said"),
    [("0", "must be 1 or more"), ("-2", "must be 1 or more"), ("x", "'x' is not a whole number")],
)
def test_positive_int_refusals(text: str, said: str) -> None:
    assert refusal(options.positive_int, text) == said


@pytest.mark.parametrize(("text", "value"), [("0.5", 0.5), ("30", 30.0), ("1e6", 1e6)])
def test_seconds_take_any_finite_time_more_than_0(text: str, value: float) -> None:
    assert options.seconds(text) == value


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("0", "must be more than 0 seconds"),
        ("-1", "must be more than 0 seconds"),
        ("inf", "must be more than 0 seconds"),
        ("nan", "must be more than 0 seconds"),
        ("soon", "'soon' is not a number of seconds"),
    ],
)
def test_seconds_refusals(text: str, said: str) -> None:
    assert refusal(options.seconds, text) == said


def test_seconds_up_to_a_bound_take_the_bound_and_say_it() -> None:
    a_day = options.seconds_up_to(86400)
    assert a_day("86400") == 86400.0
    for text in ("0", "86400.5", "inf", "nan"):
        assert refusal(a_day, text) == "must be more than 0 and at most 86400 seconds"
    assert refusal(a_day, "x") == "'x' is not a number of seconds"


def test_the_parser_raises_a_usage_error_naming_its_help() -> None:
    with pytest.raises(UsageError) as caught:
        build_parser("plan").parse_args(["plan", "c.json", "-j", "0"])
    assert caught.value.message == "argument -j/--jobs: must be 1 or more"
    assert caught.value.hint == "see bakeplan plan --help"


# -- a subject that looks like an option -----------------------------------------------------


@pytest.mark.parametrize("subject", ["-lrumpnet_netinet", "--ipv4=10.0.120.10/24", "/net"])
def test_why_takes_one_unknown_word_as_its_subject(subject: str) -> None:
    args = build_parser("why").parse_args(["why", "plan.json", subject])
    assert (args.file, args.subject) == ("plan.json", subject)


@pytest.mark.parametrize(
    "argv",
    [
        ["why", "plan.json", "-lone", "-ltwo"],
        ["why", "plan.json", "sub", "-lx"],
        ["--x", "why", "plan.json"],
    ],
)
def test_why_leaves_more_unknown_words_to_the_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError, match="unrecognized arguments"):
        build_parser().parse_args(argv)


def test_other_commands_take_no_unknown_word() -> None:
    with pytest.raises(UsageError, match="unrecognized arguments: -lx"):
        build_parser("validate").parse_args(["validate", "c.json", "-lx"])
