"""``bakeplan validate``: check config, registry and routing without running any
delegate, and say on stderr who would configure what."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from orchestrator.commands import options
from orchestrator.pointers import pointer_text

if TYPE_CHECKING:
    import argparse

    from orchestrator.commands.options import Subparsers


def register(commands: Subparsers) -> None:
    """Add ``validate`` to the subcommands ``commands``."""
    validate = commands.add_parser(
        "validate", help="check config, registry and routing without running any delegate"
    )
    options.routing_options(validate)
    validate.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Exit 0 with one line on stderr when the config is valid; an error otherwise."""
    from orchestrator.core import pipeline  # noqa: PLC0415
    from orchestrator.show import report  # noqa: PLC0415

    planning = options.pipeline_options(args)
    prepared = pipeline.validate(planning, note=report.note)
    runs = ", ".join(f"{r.delegate} at {pointer_text(r.pointer)}" for r in prepared.routing.runs)
    sys.stderr.write(
        f"bakeplan: {planning.config}: valid for {prepared.bake.name} and rumprun "
        f"{planning.dialect} ({runs})\n"
    )
    return 0
