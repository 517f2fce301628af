"""``bakeplan lock check FILE``: whether the delegates and bake config a lock file pins
still match what is installed (exit 0), or not (exit 3, with the differences)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.commands import options
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    import argparse

    from orchestrator.commands.options import Subparsers


def register(commands: Subparsers) -> None:
    """Add ``lock`` and its verbs to the subcommands ``commands``."""
    lock = commands.add_parser("lock", help="check a lock file against what is installed")
    lock.set_defaults(func=_missing_verb)
    verbs = lock.add_subparsers(dest="verb", metavar="VERB", parser_class=options.Parser)
    check = verbs.add_parser(
        "check",
        help="whether the locked delegates and bake config still match (exit 0), or not (3)",
    )
    check.add_argument("file", metavar="FILE", help="a lock file written by plan --lock")
    options.registry_option(check)
    options.bake_conf_option(check)
    check.add_argument("--timeout", type=options.seconds, default=None, metavar="S",
                       help="time limit per describe in seconds")  # fmt: skip
    check.add_argument("--json", action="store_true", help="the result as JSON")
    check.set_defaults(func=_check)


def _missing_verb(args: argparse.Namespace) -> int:
    del args
    raise UsageError("lock needs a verb: check", hint="see bakeplan lock --help")


def _check(args: argparse.Namespace) -> int:
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.core import lock, pipeline  # noqa: PLC0415
    from orchestrator.show import answers, report  # noqa: PLC0415

    locked = lock.read(args.file)
    found = pipeline.lock_check(
        locked,
        registry_files=tuple(args.registry),
        bake_confs=tuple(args.bake_conf),
        timeout=args.timeout,
        note=report.note,
    )
    if args.json:
        output.deliver(answers.as_json({"matches": not found, "differences": found}), None)
    else:
        said = [f"  {line}" for line in found] or [
            f"  {len(locked.pins)} delegate(s) and bake config {locked.bake_config} match"
        ]
        verdict = "does not match" if found else "matches"
        output.deliver("\n".join([f"{args.file}: what is installed {verdict}", *said]) + "\n", None)
    return 3 if found else 0
