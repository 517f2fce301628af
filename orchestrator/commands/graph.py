"""``bakeplan graph``: run the plan and print a Graphviz DOT picture of who contributes
what."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.commands import options

if TYPE_CHECKING:
    import argparse

    from orchestrator.commands.options import Subparsers


def register(commands: Subparsers) -> None:
    """Add ``graph`` to the subcommands ``commands``."""
    graph = commands.add_parser(
        "graph", help="run the plan and print a Graphviz DOT picture of who contributes what"
    )
    options.routing_options(graph)
    options.run_options(graph)
    graph.add_argument("-o", "--output", metavar="OUT", help="write the DOT text to OUT")
    graph.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """The DOT text of the plan run, on stdout or in ``--output``."""
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.core import pipeline  # noqa: PLC0415
    from orchestrator.emit import graph  # noqa: PLC0415
    from orchestrator.show import report  # noqa: PLC0415

    planning = options.pipeline_options(args)
    prepared = pipeline.prepare(planning, note=report.note)
    results, plan = pipeline.execute(prepared, planning, note=report.note)
    output.deliver(graph.dot(prepared, results, plan), args.output)
    return 0
