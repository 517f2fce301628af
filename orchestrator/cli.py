"""argv in, exit code out: builds the parser, dispatches, and maps errors to exit codes
in one place.

No logic lives here.  Each subcommand is a module of ``orchestrator.commands`` with its
parser and its handler; every ``BakeplanError`` a handler raises is caught in ``main``
and becomes a message on stderr and its exit code, as do an interrupt, a closed stdout
and a bug of bakeplan's own.  Only the subcommand run is imported, and its handler
imports what does the job, so that ``bakeplan --version`` stays as quick as Python.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestrator import __version__
from orchestrator.errors import (
    INTERNAL,
    INTERRUPTED,
    TERMINATED,
    BakeplanError,
    Interrupted,
    exit_code_of,
)

if TYPE_CHECKING:
    import argparse
    from types import FrameType

# 128 + SIGPIPE, as a shell reports a program its pipe's reader left; 1 would say that a
# delegate failed.
CLOSED_STDOUT = 141


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's (argparse builds every
    subparser's options eagerly, which costs more than a small plan)."""
    from orchestrator import commands  # noqa: PLC0415  (not on the --version path)
    from orchestrator.commands.options import Parser  # noqa: PLC0415

    parser = Parser(
        prog="bakeplan",
        description="Split a rumprun unikernel config among the toolchains that own its "
        "parts, run their delegates, and print one bake plan.",
    )
    parser.add_argument("--version", action="version", version=f"bakeplan {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in commands.SUBCOMMANDS:
        if only is None or name == only:
            commands.register(name, subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run bakeplan with ``argv`` (default: the process's) and return the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words == ["--version"]:
        # Build scripts ask this often; building every subcommand's parser (and the
        # help formatter argparse loads to print it) would double the answer's cost.
        return _flushed(0, f"bakeplan {__version__}\n")
    return _run(words)


def _run(argv: Sequence[str]) -> int:  # noqa: PLR0911  (one return per way out)
    from orchestrator.commands import SUBCOMMANDS  # noqa: PLC0415

    parser = build_parser(argv[0] if argv and argv[0] in SUBCOMMANDS else None)
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
        return _flushed(exit_.code if isinstance(exit_.code, int) else 0)
    except BrokenPipeError:
        return _closed_stdout()
    except Exception as error:
        return _internal(error)
    else:
        return _flushed(code)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise Interrupted("SIGTERM", TERMINATED)


def _can_handle_signals() -> bool:
    import threading  # noqa: PLC0415

    return threading.current_thread() is threading.main_thread()


def _flushed(code: int, text: str = "") -> int:
    """``code``, once ``text`` and what is left for stdout are written: a full disk or
    device there is exit 2 naming ``<stdout>`` (never a bug of ours), a reader gone 141."""
    from orchestrator import output  # noqa: PLC0415

    try:
        if text:
            output.write_stdout(text)
        output.flush_stdout()
    except BrokenPipeError:
        return _closed_stdout()
    except BakeplanError as error:
        return _fail(error)
    return code


def _closed_stdout() -> int:
    # The reader of stdout went away (| head).
    _discard_stdout()
    return CLOSED_STDOUT


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of what could
    not be written does not fail again (and turn the exit code into 120)."""
    import contextlib  # noqa: PLC0415
    import os  # noqa: PLC0415

    # No descriptor (a test's capture): nothing will be flushed to it.
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _internal(error: Exception) -> int:
    """A bug of bakeplan's own: one clear line, the traceback only when asked for."""
    import os  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    if os.environ.get("BAKEPLAN_TRACEBACK"):
        traceback.print_exception(error)
    sys.stderr.write(
        f"bakeplan: internal error: {type(error).__name__}: {error}\n"
        "  this is a bug in bakeplan; BAKEPLAN_TRACEBACK=1 shows where, please report it\n"
    )
    return INTERNAL


def _fail(error: BakeplanError) -> int:
    from orchestrator.show import report  # noqa: PLC0415

    if error.file == "<stdout>":
        _discard_stdout()
    report.show_error(error)
    return exit_code_of(error)
