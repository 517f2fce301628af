"""``bakeplan diff OLD NEW``: compare two plans (or configs, planned alike) in the plan's
own terms; exit 0 when they are the same, 1 when they differ, 2 on trouble."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.commands import review
from orchestrator.errors import BakeplanError, Trouble

if TYPE_CHECKING:
    import argparse

    from orchestrator.commands.options import Subparsers


def register(commands: Subparsers) -> None:
    """Add ``diff`` to the subcommands ``commands``."""
    diff = commands.add_parser(
        "diff",
        help="compare two plans (or configs, planned alike) in the plan's own terms; "
        "exit 0 same, 1 different, 2 trouble",
    )
    diff.add_argument("old", metavar="OLD", help="a bake plan (- for stdin), or a config")
    diff.add_argument("new", metavar="NEW", help="a bake plan, or a config")
    review.reads_plans(diff, "the differences as JSON")
    diff.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """The differences on stdout; a plan or config that cannot be read is trouble (2),
    not a difference."""
    from orchestrator.review import compare, planfile  # noqa: PLC0415
    from orchestrator.show import answers  # noqa: PLC0415

    try:
        old = planfile.obtain(args.old, review.plans_configs(args))
        new = planfile.obtain(args.new, review.plans_configs(args))
    except BakeplanError as error:
        raise Trouble([error]) from None
    difference = compare.diff(old, new)
    review.tell(
        args,
        difference.as_json(),
        lambda stream: answers.diff_text(difference, args.old, args.new, stream),
    )
    return 0 if difference.same else 1
