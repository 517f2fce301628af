"""``bakeplan plan``: run the delegates and print the bake plan, or render it with
``--emit``; ``--dry-run`` shows what would run without running it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestrator.commands import options
from orchestrator.errors import UsageError
from orchestrator.pointers import pointer_text

if TYPE_CHECKING:
    import argparse

    from orchestrator.commands.options import Subparsers
    from orchestrator.core.pipeline import Execution, Options
    from orchestrator.core.routing import Run


def register(commands: Subparsers) -> None:
    """Add ``plan`` to the subcommands ``commands``."""
    plan = commands.add_parser("plan", help="run the delegates and print the bake plan")
    options.routing_options(plan)
    options.run_options(plan)
    options.emit_options(plan)
    plan.add_argument(
        "-o", "--output", metavar="OUT", help="write the plan to OUT atomically instead of stdout"
    )
    plan.add_argument(
        "--dry-run",
        action="store_true",
        help="run no delegate: show who owns what, the order, each command and request",
    )
    plan.add_argument(
        "--json", action="store_true", help="with --dry-run: the preview as JSON for programs"
    )
    plan.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each delegate's start, end, duration and stderr on stderr; "
        "with --dry-run, show requests and the config tree whole",
    )
    plan.add_argument(
        "--lock",
        metavar="FILE",
        help="write a lock of the delegates and bake config the plan used to FILE",
    )
    plan.add_argument(
        "--locked",
        metavar="FILE",
        help="refuse (exit 3) to plan when the delegates or bake config differ from FILE",
    )
    plan.add_argument(
        "--timings",
        action="store_true",
        help="print each delegate's duration on stderr (never in the plan)",
    )
    plan.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """The plan (or its preview, or its rendering) on stdout or in ``--output``."""
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.core import pipeline  # noqa: PLC0415
    from orchestrator.core.plan import dumps  # noqa: PLC0415
    from orchestrator.show import report  # noqa: PLC0415

    if args.json and not args.dry_run:
        raise UsageError("--json goes with --dry-run (the plan itself is always JSON)")
    planning = options.pipeline_options(args)
    if args.dry_run:
        output.deliver(
            _dry_run_text(pipeline.dry_run(planning, note=report.note), args), args.output
        )
        return 0
    done = _with_progress(planning, args.verbose, args.timings)
    plan = done.plan
    report.show_warnings(plan.warnings)
    # The lock first: a lock file that cannot be written must not follow a plan written.
    if args.lock is not None and done.lock is not None:
        output.deliver(done.lock.text(), args.lock, what="lock file")
    if args.emit == "plan":
        output.deliver(dumps(plan), args.output)
    else:
        from orchestrator.emit import formats  # noqa: PLC0415

        emitted = formats.render(plan, args.emit, formats.parse_host(args.host))
        for note in emitted.notes:
            sys.stderr.write(f"bakeplan: emit {args.emit}: {note}\n")
        output.deliver(emitted.text, args.output)
    return 0


def _dry_run_text(preview: dict[str, Any], args: argparse.Namespace) -> str:
    """The preview as JSON, as rich text for a terminal, or as plain text for a pipe."""
    import io  # noqa: PLC0415
    import json  # noqa: PLC0415

    if args.json:
        return json.dumps(preview, indent=2, ensure_ascii=False) + "\n"
    from orchestrator.show import preview as render  # noqa: PLC0415

    if args.output is None and sys.stdout.isatty():
        render.render_dry_run(preview, render.console_for(sys.stdout), verbose=args.verbose)
        return ""
    buffer = io.StringIO()
    render.render_dry_run(preview, render.console_for(buffer), verbose=args.verbose)
    return buffer.getvalue()


def _with_progress(planning: Options, verbose: bool, timings: bool) -> Execution:
    """Run the plan with live progress in a terminal (its summary has the durations),
    line logs with --verbose or --timings elsewhere."""
    from orchestrator.core import pipeline  # noqa: PLC0415
    from orchestrator.show import report  # noqa: PLC0415

    prepared = pipeline.prepare(planning, note=report.note)
    if not sys.stderr.isatty():
        log = _verbose_log(starts=verbose) if verbose or timings else None
        return pipeline.carry_out(prepared, planning, on_state=log, note=report.note)
    from orchestrator.show import preview  # noqa: PLC0415

    with preview.LiveProgress(prepared.routing.runs, sys.stderr) as progress:
        return pipeline.carry_out(prepared, planning, on_state=progress.on_state, note=report.note)


def _verbose_log(*, starts: bool = True) -> Callable[[Run, str], None]:
    """Line logs of delegate runs on stderr; ``starts=False`` (--timings) only the ends."""
    started: dict[str, float] = {}

    def log(run: Run, state: str) -> None:
        name = f"{run.delegate} at {pointer_text(run.pointer)}"
        if state == "running":
            started[run.pointer] = time.monotonic()
            if starts:
                sys.stderr.write(f"bakeplan: {name}: running\n")
        elif state in ("done", "failed", "cancelled", "cached"):
            took = time.monotonic() - started.get(run.pointer, time.monotonic())
            sys.stderr.write(f"bakeplan: {name}: {state} in {took:.3f}s\n")

    return log
