"""``bakeplan delegates add|remove|list|show|check``: the command line of the noun.

Only argparse and the shared options are imported here, so that building the parser
stays quick; each handler imports the module that does its job (``tooling.entries`` for
entries, ``tooling.kit`` for the kit) and writes the result: the requested output on
stdout, everything else on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from orchestrator.commands import options
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.commands.options import Subparsers

# A registry entry's time limit: the registry schema allows at most a day.
_seconds = options.seconds_up_to(86400)


def _add_options() -> options.Parser:
    """The options of ``add``, parsed by ``_add`` from what follows NAME."""
    parsed = options.Parser(add_help=False, prog="bakeplan delegates add")
    options.repeatable(parsed, "--claim", metavar="PTR", text="a pointer it configures")
    parsed.add_argument("--timeout", type=_seconds, metavar="S", help="its time limit (default 30)")
    options.repeatable(parsed, "--env", metavar="VAR", text="a variable passed through")
    parsed.add_argument(
        "--cache", action="store_true", help="its answers may be reused for identical requests"
    )
    parsed.add_argument(
        "--sdk",
        metavar="FILE.py[:ATTRIBUTE]",
        help="a Python delegate written on orchestrator.sdk, run with bakeplan's own Python "
        "(ATTRIBUTE default: DELEGATE), instead of -- COMMAND",
    )
    options.repeatable(
        parsed,
        "--input",
        metavar="GLOB",
        text="a file (or glob) its answers depend on: its bytes enter the cache keys",
    )
    parsed.add_argument("--replace", action="store_true", help="replace an entry of the same name")
    return parsed


def register(commands: Subparsers) -> None:
    """Add ``delegates`` and its verbs to the subcommands ``commands``."""
    group = commands.add_parser("delegates", help="register, list, show and check delegates")
    verbs = group.add_subparsers(dest="verb", metavar="VERB", parser_class=options.Parser)
    group.set_defaults(func=_missing_verb)

    add_options = _add_options()
    add = verbs.add_parser(
        "add",
        parents=[add_options],
        help="register a delegate in the user registry",
        description="Register NAME in $XDG_CONFIG_HOME/bakeplan/registry.json. Without "
        "--claim, the claims the delegate suggests in describe are taken. Without a "
        "command, a delegate an installed package declares is registered.",
    )
    add.add_argument("name", metavar="NAME")
    # Everything after NAME: options, then "--" and the command.  argparse cannot mix a
    # trailing "*" positional with options after "--" in a sub-subcommand, so _add
    # parses this part itself with the same options.
    add.add_argument("rest", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS")
    add.set_defaults(options=add_options)
    add.set_defaults(func=_add)

    remove = verbs.add_parser("remove", help="remove a delegate from the user registry")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(func=_remove)

    listing = verbs.add_parser("list", help="every delegate known, and where it comes from")
    options.registry_option(listing)
    listing.add_argument("--json", action="store_true", help="JSON for programs")
    listing.set_defaults(func=_list)

    show = verbs.add_parser("show", help="a delegate's entry and its describe answer")
    show.add_argument("name", metavar="NAME")
    options.registry_option(show)
    show.set_defaults(func=_show)

    check = verbs.add_parser(
        "check", help="run a delegate through the protocol and judge each step"
    )
    check.add_argument("name", metavar="NAME")
    options.registry_option(check)
    check.add_argument("--timeout", type=_seconds, metavar="S", help="override its time limit")
    check.add_argument("--json", action="store_true", help="the results as JSON")
    check.set_defaults(func=_check)


def _missing_verb(args: argparse.Namespace) -> int:
    del args
    raise UsageError(
        "delegates needs a verb: add, remove, list, show or check",
        hint="see bakeplan delegates --help",
    )


def _registry(args: argparse.Namespace) -> Any:
    from orchestrator.core import registry  # noqa: PLC0415
    from orchestrator.show import report  # noqa: PLC0415

    found = registry.discover(args.registry, packages=True)
    for warning in found.warnings:
        report.note(f"warning: {warning}")
    return found


def _json(document: Any) -> str:
    import json  # noqa: PLC0415

    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _out(text: str) -> None:
    """The requested output on stdout; a full or closed stdout is reported, not a bug."""
    from orchestrator import output  # noqa: PLC0415

    output.write_stdout(text)


def _add(args: argparse.Namespace) -> int:
    from orchestrator.tooling import entries  # noqa: PLC0415

    rest = list(args.rest)
    if "--" in rest:
        cut = rest.index("--")
    else:
        # argparse drops a "--" right after NAME: then all of the rest is the command.
        cut = -1 if rest and not rest[0].startswith("-") else len(rest)
    args.options.parse_args(rest[: max(cut, 0)], namespace=args)
    command = rest[cut + 1 :]
    if args.sdk:
        if command:
            raise UsageError("give --sdk FILE.py or -- COMMAND, not both")
        command = list(entries.sdk_command(args.sdk))
    path, entry = entries.add(
        entries.NewEntry(
            name=args.name,
            command=tuple(command),
            claims=tuple(args.claim),
            timeout=args.timeout,
            env=tuple(args.env),
            cache=args.cache,
            inputs=tuple(args.input),
            replace=args.replace,
        )
    )
    claims = " ".join(entry["claims"])
    sys.stderr.write(f"bakeplan: {path}: added {args.name} claiming {claims}\n")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from orchestrator.tooling import entries  # noqa: PLC0415

    path = entries.remove(args.name)
    sys.stderr.write(f"bakeplan: {path}: removed {args.name}\n")
    return 0


def _list(args: argparse.Namespace) -> int:
    from orchestrator.show import tables  # noqa: PLC0415
    from orchestrator.tooling import entries  # noqa: PLC0415

    registry = _registry(args)
    if args.json:
        _out(_json([entries.entry_json(e) for e in registry.entries]))
        return 0
    columns, rows = entries.listing(registry)
    _out(tables.render("delegates", columns, rows, sys.stdout))
    return 0


def _show(args: argparse.Namespace) -> int:
    from orchestrator.tooling import entries  # noqa: PLC0415

    _out(_json(entries.show(entries.find(_registry(args), args.name))))
    return 0


def _check(args: argparse.Namespace) -> int:
    from orchestrator.core import registry  # noqa: PLC0415
    from orchestrator.show import tables  # noqa: PLC0415
    from orchestrator.tooling import entries, kit  # noqa: PLC0415

    entry = entries.find(_registry(args), args.name)
    argv = registry.resolve_command(entry)
    if sys.stderr.isatty():
        from orchestrator.show import preview  # noqa: PLC0415  (rich only for a person)

        with preview.CheckProgress(entry.name, sys.stderr) as progress:
            steps = kit.check(entry, argv, timeout=args.timeout, on_step=progress.on_step)
    else:
        steps = kit.check(entry, argv, timeout=args.timeout)
    passed = all(step.passed for step in steps)
    if args.json:
        document = {
            "delegate": entry.name,
            "passed": passed,
            "checks": [s.as_json() for s in steps],
        }
        _out(_json(document))
    else:
        rows = [(s.name, "PASS" if s.passed else "FAIL", s.detail) for s in steps]
        title = f"bakeplan delegates check {entry.name}"
        _out(tables.render(title, ("check", "result", "detail"), rows, sys.stdout))
    failed = sum(not s.passed for s in steps)
    sys.stderr.write(
        f"bakeplan: {entry.name}: every check passed\n"
        if passed
        else f"bakeplan: {entry.name}: {failed} of {len(steps)} checks failed\n"
    )
    return 0 if passed else 1
