"""What ``why`` and ``diff`` share: their options, the planning of a config given among
their files, and the way they answer (JSON, rich in a terminal, else plain text)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestrator.commands import options

if TYPE_CHECKING:
    import argparse

    from orchestrator.core.planmodel import Plan


def reads_plans(parser: argparse.ArgumentParser, json_help: str) -> None:
    """The options of a command that reads plans: a config among its files is planned
    with these."""
    options.planning_options(parser)
    options.run_options(parser)
    parser.add_argument("--json", action="store_true", help=json_help)


def plans_configs(args: argparse.Namespace) -> Callable[[str], Plan]:
    """Plan a config given to why or diff, with the command's planning options."""
    import dataclasses  # noqa: PLC0415

    def plan_config(path: str) -> Plan:
        from orchestrator.core import pipeline  # noqa: PLC0415
        from orchestrator.show import report  # noqa: PLC0415

        return pipeline.make_plan(
            dataclasses.replace(options.pipeline_options(args), config=path), note=report.note
        )

    return plan_config


def tell(args: argparse.Namespace, document: Any, text: Callable[[Any], str]) -> None:
    """An answer of why or diff: JSON with --json, rich in a terminal, else plain text."""
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.show import answers, report  # noqa: PLC0415

    if args.json:
        output.deliver(answers.as_json(document), None)
    elif report.is_terminal(sys.stdout):
        text(sys.stdout)
    else:
        output.deliver(text(None), None)
