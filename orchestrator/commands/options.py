"""What the subcommands share: the parser class, the option groups, and the parsing of
counts and seconds, so that an option reads and fails the same everywhere.

Only argparse and the error base are imported here: the parser of any command is built
without the pipeline, rich or jsonschema, which ``pipeline_options`` imports only when a
handler turns the parsed options into the pipeline's ``Options``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from orchestrator.emit import FORMATS
from orchestrator.errors import UsageError
from orchestrator.rumprun import DEFAULT_DIALECT, DIALECTS

if TYPE_CHECKING:
    from typing import TypeAlias

    from orchestrator.core.pipeline import Options

    Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"

INFINITY = float("inf")


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``cli.main`` maps every error itself.

    ``takes_unknown``, when a command sets it, may take the words argparse did not know
    (``why``'s subject looks like an option): it returns the words it left.
    """

    takes_unknown: Callable[[argparse.Namespace, list[str]], list[str]] | None = None

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"see {self.prog} --help")

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if extra and self.takes_unknown is not None:
            extra = self.takes_unknown(parsed, extra)
        return parsed, extra


def positive_int(text: str) -> int:
    """A count, such as ``--jobs``: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def seconds_up_to(most: float) -> Callable[[str], float]:
    """A parser of time limits: a number of seconds more than 0, at most ``most``
    (``INFINITY``: any finite number)."""
    bound = "" if most == INFINITY else f" and at most {most:g}"

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        # NaN fails every comparison, so it is refused with the rest.
        if not (0 < value <= most and value < INFINITY):
            raise argparse.ArgumentTypeError(f"must be more than 0{bound} seconds")
        return value

    return seconds


# A time limit for this run (--timeout): any number of seconds more than 0.
seconds = seconds_up_to(INFINITY)


def repeatable(parser: argparse.ArgumentParser, *flags: str, metavar: str, text: str) -> None:
    """An option given any number of times: its values in the order given, [] for none."""
    parser.add_argument(*flags, action="append", default=[], metavar=metavar, help=text)


def registry_option(parser: argparse.ArgumentParser) -> None:
    """``-r/--registry FILE``, for every command that reads registries."""
    repeatable(
        parser,
        "-r",
        "--registry",
        metavar="FILE",
        text="a registry file (repeatable); default: $BAKEPLAN_REGISTRY, "
        "else ./bakeplan-registry.json and the user registry",
    )


def bake_conf_option(parser: argparse.ArgumentParser) -> None:
    """``--bake-conf FILE``, for every command that reads the bake configs."""
    repeatable(
        parser,
        "--bake-conf",
        metavar="FILE",
        text="a rumprun-bake.conf read after the standard configs (repeatable, in order)",
    )


def routing_options(parser: argparse.ArgumentParser) -> None:
    """The config to plan and how it is planned."""
    parser.add_argument("config", metavar="CONFIG", help="the unikernel config (- for stdin)")
    planning_options(parser)


def planning_options(parser: argparse.ArgumentParser) -> None:
    """How a config is planned: registries, bake config, routing, binaries, dialect."""
    registry_option(parser)
    parser.add_argument(
        "-b",
        "--bake-config",
        default="hw_virtio",
        metavar="NAME",
        help="the rumprun-bake config (default: hw_virtio)",
    )
    repeatable(
        parser,
        "--delegate",
        metavar="POINTER=NAME",
        text="give POINTER to delegate NAME, settling competing claims",
    )
    bake_conf_option(parser)
    repeatable(
        parser,
        "--bin",
        metavar="NAME",
        text="a binary rumprun-bake will bake (repeatable, in order): rc[].bin is checked "
        "against them",
    )
    parser.add_argument(
        "--rumprun",
        choices=DIALECTS,
        default=DEFAULT_DIALECT,
        help="which rumprun reads the runtime config at boot: master, the released one "
        "(default), or spec, the configuration specification's parser",
    )


def run_options(parser: argparse.ArgumentParser) -> None:
    """How the delegates run: at once, in time, past a failure, from the cache."""
    parser.add_argument(
        "-j",
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help="delegates run at once (default: 8, or twice the cores if more)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="S",
        help="time limit per delegate in seconds (default: the registry's, 30)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every independent delegate and report every failure",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="neither reuse nor keep delegates' answers (the response cache)",
    )


def emit_options(parser: argparse.ArgumentParser) -> None:
    """What the plan is rendered as, and the host's values the renderings need."""
    parser.add_argument(
        "--emit",
        choices=FORMATS,
        default="plan",
        metavar="FORMAT",
        help=f"what to print: {', '.join(FORMATS)} (default: plan)",
    )
    repeatable(
        parser,
        "--host",
        metavar="KEY=VALUE",
        text="a host-only value for an emitter (kernel, config, memory, name, "
        "disk.DEV, tap.DEV, bridge.DEV); unset ones stay <host:KEY> placeholders",
    )


def pipeline_options(args: argparse.Namespace) -> Options:
    """The pipeline's ``Options`` from a command's parsed options; what the command has
    no option for keeps its default."""
    from orchestrator.core.pipeline import Options, default_jobs  # noqa: PLC0415

    return Options(
        config=getattr(args, "config", "-"),
        registries=tuple(args.registry),
        bake_config=args.bake_config,
        overrides=tuple(args.delegate),
        jobs=getattr(args, "jobs", None) or default_jobs(),
        timeout=getattr(args, "timeout", None),
        keep_going=getattr(args, "keep_going", False),
        bake_confs=tuple(args.bake_conf),
        binaries=tuple(args.bin),
        use_cache=not getattr(args, "no_cache", False),
        verbose=getattr(args, "verbose", False),
        dialect=args.rumprun,
        locked=getattr(args, "locked", None),
        pin=getattr(args, "lock", None) is not None,
    )
