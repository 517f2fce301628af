"""The subcommands of ``bakeplan``: one module each, holding its parser and its handler.

``SUBCOMMANDS`` lists them in the order ``bakeplan --help`` shows them.  Each module's
``register(commands)`` adds its parser to the main parser's subcommands and sets its
handler as the ``func`` default: ``func(args)`` does the job and returns the exit code.
Shared option groups are in ``options``, what ``why`` and ``diff`` share in ``review``.

A module imports only argparse and ``options`` at the top, and the modules that do the
job inside its handler, so that building a parser stays cheap; ``cli`` imports only the
module of the subcommand it runs (every one only for the full ``--help``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.commands.options import Subparsers

SUBCOMMANDS = (
    "plan",
    "graph",
    "validate",
    "why",
    "diff",
    "upgrade",
    "schema",
    "lock",
    "delegates",
    "cache",
)


def register(name: str, commands: Subparsers) -> None:
    """Add the subcommand ``name`` (one of ``SUBCOMMANDS``) to ``commands``."""
    module = importlib.import_module(f"{__name__}.{name}")
    module.register(commands)
