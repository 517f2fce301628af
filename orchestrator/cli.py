"""argv in, exit code out: parses, dispatches, and maps errors to exit codes in one place.

No logic lives here.  Each subcommand hands its options to the module that owns the
job and writes the result; every ``BakeplanError`` is caught in ``main`` and becomes a
message on stderr and its exit code.  Heavy modules are imported inside the
subcommands so that ``bakeplan --version`` stays as quick as Python itself.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from orchestrator import __version__
from orchestrator.errors import (
    INTERRUPTED,
    TERMINATED,
    BakeplanError,
    Interrupted,
    UsageError,
    exit_code_of,
)

if TYPE_CHECKING:
    from orchestrator.pipeline import Options
    from orchestrator.routing import Run

SCHEMAS = ("config", "registry", "request", "response", "plan")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` maps every error itself."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"see {self.prog} --help")


def _routing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="the unikernel config (- for stdin)")
    parser.add_argument(
        "-r",
        "--registry",
        action="append",
        default=[],
        metavar="FILE",
        help="a registry file (repeatable); default: $BAKEPLAN_REGISTRY, "
        "else ./bakeplan-registry.json and the user registry",
    )
    parser.add_argument(
        "-b",
        "--bake-config",
        default="hw_virtio",
        metavar="NAME",
        help="the rumprun-bake config (default: hw_virtio)",
    )
    parser.add_argument(
        "--delegate",
        action="append",
        default=[],
        metavar="POINTER=NAME",
        help="give POINTER to delegate NAME, settling competing claims",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bakeplan",
        description="Split a rumprun unikernel config among the toolchains that own its "
        "parts, run their delegates, and print one bake plan.",
    )
    parser.add_argument("--version", action="version", version=f"bakeplan {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    plan = commands.add_parser("plan", help="run the delegates and print the bake plan")
    _routing_options(plan)
    plan.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="delegates run at once (default: 8, or twice the cores if more)",
    )
    plan.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        metavar="S",
        help="time limit per delegate in seconds (default: the registry's, 30)",
    )
    plan.add_argument(
        "--keep-going",
        action="store_true",
        help="run every independent delegate and report every failure",
    )
    plan.add_argument(
        "-o", "--output", metavar="OUT", help="write the plan to OUT atomically instead of stdout"
    )
    plan.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each delegate's start, end and duration on stderr",
    )
    plan.set_defaults(func=_plan)

    validate = commands.add_parser(
        "validate", help="check config, registry and routing without running any delegate"
    )
    _routing_options(validate)
    validate.set_defaults(func=_validate)

    schema = commands.add_parser("schema", help="print one of bakeplan's JSON Schemas")
    schema.add_argument(
        "name", choices=SCHEMAS, metavar="NAME", help=f"one of: {', '.join(SCHEMAS)}"
    )
    schema.set_defaults(func=_schema)
    return parser


def _options(args: argparse.Namespace) -> Options:
    from orchestrator.pipeline import Options, default_jobs  # noqa: PLC0415

    return Options(
        config=args.config,
        registries=tuple(args.registry),
        bake_config=args.bake_config,
        overrides=tuple(args.delegate),
        jobs=getattr(args, "jobs", None) or default_jobs(),
        timeout=getattr(args, "timeout", None),
        keep_going=getattr(args, "keep_going", False),
    )


def _verbose_log() -> Callable[[Run, str], None]:
    started: dict[str, float] = {}

    def log(run: Run, state: str) -> None:
        name = f"{run.delegate} at {run.pointer or '/'}"
        if state == "running":
            started[run.pointer] = time.monotonic()
            sys.stderr.write(f"bakeplan: {name}: running\n")
        elif state in ("done", "failed", "cancelled"):
            took = time.monotonic() - started.get(run.pointer, time.monotonic())
            sys.stderr.write(f"bakeplan: {name}: {state} in {took:.3f}s\n")

    return log


def _plan(args: argparse.Namespace) -> int:
    from orchestrator import output, pipeline, report  # noqa: PLC0415
    from orchestrator.plan import dumps  # noqa: PLC0415

    options = _options(args)
    plan = pipeline.make_plan(options, on_state=_verbose_log() if args.verbose else None)
    report.show_warnings(plan["warnings"])
    output.emit(dumps(plan), args.output)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from orchestrator import pipeline  # noqa: PLC0415

    options = _options(args)
    prepared = pipeline.validate(options)
    runs = ", ".join(f"{r.delegate} at {r.pointer or '/'}" for r in prepared.routing.runs)
    sys.stderr.write(f"bakeplan: {options.config}: valid for {prepared.bake.name} ({runs})\n")
    return 0


def _schema(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from orchestrator import schemas  # noqa: PLC0415

    sys.stdout.write(json.dumps(schemas.load(args.name), indent=2) + "\n")
    return 0


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise Interrupted("SIGTERM", TERMINATED)


def main(argv: Sequence[str] | None = None) -> int:
    """Run bakeplan with ``argv`` (default: the process's) and return the exit code."""
    parser = build_parser()
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = _can_handle_signals()
    if in_main_thread:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        code: int = args.func(args)
    except BakeplanError as error:
        return _fail(error)
    except KeyboardInterrupt:
        return _fail(Interrupted("SIGINT", INTERRUPTED))
    except SystemExit as exit_:  # --help and --version
        return exit_.code if isinstance(exit_.code, int) else 0
    except BrokenPipeError:
        # The reader of stdout went away (| head). Point stdout at /dev/null so the
        # interpreter's final flush does not complain about the closed pipe as well.
        import os  # noqa: PLC0415

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    else:
        return code
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _can_handle_signals() -> bool:
    import threading  # noqa: PLC0415

    return threading.current_thread() is threading.main_thread()


def _fail(error: BakeplanError) -> int:
    from orchestrator import report  # noqa: PLC0415

    report.show_error(error)
    return exit_code_of(error)
