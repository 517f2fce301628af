"""``bakeplan why FILE SUBJECT``: say which delegate and config part put a library, a
device, a pointer or a toolchain argument in a plan, or kept it out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.commands import review
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    import argparse

    from orchestrator.commands.options import Subparsers


def register(commands: Subparsers) -> None:
    """Add ``why`` to the subcommands ``commands``."""
    why = commands.add_parser(
        "why",
        help="say which delegate and config part put a library, device, pointer or "
        "toolchain argument in a plan, or kept it out",
    )
    why.add_argument("file", metavar="FILE", help="a bake plan (- for stdin), or a config")
    why.add_argument(
        "subject",
        nargs="?",
        metavar="SUBJECT",
        help="a library (-lrumpnet_netinet), a device (ld0), a config pointer (/net) or a "
        "toolchain argument (--ipv4=10.0.120.10/24)",
    )
    review.reads_plans(why, "the answer as JSON for programs")
    why.takes_unknown = _subject_among
    why.set_defaults(func=handle)


def _subject_among(args: argparse.Namespace, unknown: list[str]) -> list[str]:
    """The subject may look like an option (``-lrumpnet_netinet``, ``--ipv4=...``): one
    word argparse does not know, where the subject belongs, is taken as it."""
    if args.subject is None and len(unknown) == 1:
        args.subject = unknown[0]
        return []
    return unknown


def handle(args: argparse.Namespace) -> int:
    """The answer on stdout: as JSON, rich in a terminal, else plain text."""
    from orchestrator.review import explain, planfile  # noqa: PLC0415
    from orchestrator.show import answers  # noqa: PLC0415

    if args.subject is None:
        raise UsageError("why needs a SUBJECT after the FILE", hint="see bakeplan why --help")
    answer = explain.why(planfile.obtain(args.file, review.plans_configs(args)), args.subject)
    review.tell(args, answer.as_json(), lambda stream: answers.why_text(answer, stream))
    return 0
