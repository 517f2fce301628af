"""``bakeplan upgrade``: convert a legacy (2015 master) config to the specification
dialect; what the conversion changed is said on stderr."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from orchestrator.commands.options import Subparsers


def register(commands: Subparsers) -> None:
    """Add ``upgrade`` to the subcommands ``commands``."""
    upgrade = commands.add_parser(
        "upgrade", help="convert a legacy (2015 master) config to the specification dialect"
    )
    upgrade.add_argument("legacy", metavar="LEGACY", help="the legacy config (- for stdin)")
    upgrade.add_argument("-o", "--output", metavar="OUT", help="write the config to OUT atomically")
    upgrade.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """The upgraded config on stdout or in ``--output``, the notes on stderr."""
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.rumprun import upgrade  # noqa: PLC0415

    result = upgrade.upgrade_file(args.legacy)
    for line in upgrade.notes_for_humans(result):
        sys.stderr.write(line + "\n")
    output.deliver(result.text(), args.output)
    return 0
