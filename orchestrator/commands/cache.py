"""``bakeplan cache clear``: remove the cached delegate answers and describe answers,
and say on stderr what was removed from where."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from orchestrator.commands.options import Parser
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    import argparse

    from orchestrator.commands.options import Subparsers


def register(commands: Subparsers) -> None:
    """Add ``cache`` and its verbs to the subcommands ``commands``."""
    cache = commands.add_parser("cache", help="manage bakeplan's caches")
    cache.set_defaults(func=_missing_verb)
    verbs = cache.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    clear = verbs.add_parser(
        "clear", help="remove the cached delegate answers and describe answers"
    )
    clear.set_defaults(func=_clear)


def _missing_verb(args: argparse.Namespace) -> int:
    del args
    raise UsageError("cache needs a verb: clear", hint="see bakeplan cache --help")


def _clear(args: argparse.Namespace) -> int:
    from orchestrator.core import cache  # noqa: PLC0415

    del args
    for cleared in cache.clear():
        if cleared.files:
            what = cleared.what if cleared.files > 1 else cleared.what.removesuffix("s")
            said = f"removed {cleared.files} {what} ({cleared.size} bytes) from"
        else:
            said = f"no {cleared.what} in"
        sys.stderr.write(f"bakeplan: cache clear: {said} {cleared.folder}\n")
    return 0
