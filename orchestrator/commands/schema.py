"""``bakeplan schema NAME``: print one of the JSON Schemas bakeplan publishes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from orchestrator.commands.options import Subparsers

# The schemas bakeplan publishes (orchestrator/schemas/*.json), in the order --help lists them.
SCHEMAS = ("config", "registry", "request", "response", "plan", "lock")


def register(commands: Subparsers) -> None:
    """Add ``schema`` to the subcommands ``commands``."""
    schema = commands.add_parser("schema", help="print one of bakeplan's JSON Schemas")
    schema.add_argument(
        "name", choices=SCHEMAS, metavar="NAME", help=f"one of: {', '.join(SCHEMAS)}"
    )
    schema.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """The schema on stdout, indented."""
    import json  # noqa: PLC0415

    from orchestrator import output  # noqa: PLC0415
    from orchestrator.schemas import explainer  # noqa: PLC0415

    output.deliver(json.dumps(explainer.load(args.name), indent=2) + "\n", None)
    return 0
