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
from typing import TYPE_CHECKING, Any

from orchestrator import __version__
from orchestrator.emit import FORMATS
from orchestrator.errors import (
    INTERNAL,
    INTERRUPTED,
    TERMINATED,
    BakeplanError,
    Interrupted,
    UsageError,
    exit_code_of,
)
from orchestrator.pointers import pointer_text

if TYPE_CHECKING:
    from typing import TypeAlias

    from orchestrator.core.pipeline import Execution, Options
    from orchestrator.core.planmodel import Plan

    Subparsers: TypeAlias = "argparse._SubParsersAction[_Parser]"
    from orchestrator.core.routing import Run

SCHEMAS = ("config", "registry", "request", "response", "plan", "lock")
# The --emit formats; orchestrator/emit/formats.py renders each (--help needs no emitter).
EMIT_FORMATS = FORMATS


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


def registry_option(parser: argparse.ArgumentParser) -> None:
    """``-r/--registry FILE``, for every command that reads registries."""
    parser.add_argument(
        "-r",
        "--registry",
        action="append",
        default=[],
        metavar="FILE",
        help="a registry file (repeatable); default: $BAKEPLAN_REGISTRY, "
        "else ./bakeplan-registry.json and the user registry",
    )


def _routing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="the unikernel config (- for stdin)")
    _planning_options(parser)


def _planning_options(parser: argparse.ArgumentParser) -> None:
    """How a config is planned: registries, bake config, routing, binaries, dialect."""
    registry_option(parser)
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
    parser.add_argument(
        "--bake-conf",
        action="append",
        default=[],
        metavar="FILE",
        help="a rumprun-bake.conf read after the standard configs (repeatable, in order)",
    )
    parser.add_argument(
        "--bin",
        action="append",
        default=[],
        metavar="NAME",
        help="a binary rumprun-bake will bake (repeatable, in order): rc[].bin is checked "
        "against them",
    )
    parser.add_argument(
        "--rumprun",
        choices=("master", "spec"),
        default="master",
        help="which rumprun reads the runtime config at boot: master, the released one "
        "(default), or spec, the configuration specification's parser",
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's (argparse builds every
    subparser's options eagerly, which costs more than a small plan)."""
    parser = _Parser(
        prog="bakeplan",
        description="Split a rumprun unikernel config among the toolchains that own its "
        "parts, run their delegates, and print one bake plan.",
    )
    parser.add_argument("--version", action="version", version=f"bakeplan {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, add in _COMMANDS.items():
        if only is None or name == only:
            add(commands)
    return parser


def _add_plan(commands: Subparsers) -> None:
    plan = commands.add_parser("plan", help="run the delegates and print the bake plan")
    _routing_options(plan)
    _run_options(plan)
    _emit_options(plan)
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
    plan.set_defaults(func=_plan)


def _add_graph(commands: Subparsers) -> None:
    graph = commands.add_parser(
        "graph", help="run the plan and print a Graphviz DOT picture of who contributes what"
    )
    _routing_options(graph)
    _run_options(graph)
    graph.add_argument("-o", "--output", metavar="OUT", help="write the DOT text to OUT")
    graph.set_defaults(func=_graph)


def _add_validate(commands: Subparsers) -> None:
    validate = commands.add_parser(
        "validate", help="check config, registry and routing without running any delegate"
    )
    _routing_options(validate)
    validate.set_defaults(func=_validate)


def _add_upgrade(commands: Subparsers) -> None:
    upgrade = commands.add_parser(
        "upgrade", help="convert a legacy (2015 master) config to the specification dialect"
    )
    upgrade.add_argument("legacy", metavar="LEGACY", help="the legacy config (- for stdin)")
    upgrade.add_argument("-o", "--output", metavar="OUT", help="write the config to OUT atomically")
    upgrade.set_defaults(func=_upgrade)


def _add_schema(commands: Subparsers) -> None:
    schema = commands.add_parser("schema", help="print one of bakeplan's JSON Schemas")
    schema.add_argument(
        "name", choices=SCHEMAS, metavar="NAME", help=f"one of: {', '.join(SCHEMAS)}"
    )
    schema.set_defaults(func=_schema)


def _add_delegates(commands: Subparsers) -> None:
    from orchestrator.commands import delegates  # noqa: PLC0415  (not on the --version path)

    delegates.register(commands)


def _add_cache(commands: Subparsers) -> None:
    cache = commands.add_parser("cache", help="manage bakeplan's caches")
    cache.set_defaults(func=_cache_missing_verb)
    verbs = cache.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    clear = verbs.add_parser(
        "clear", help="remove the cached delegate answers and describe answers"
    )
    clear.set_defaults(func=_cache_clear)


def _emit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--emit",
        choices=EMIT_FORMATS,
        default="plan",
        metavar="FORMAT",
        help=f"what to print: {', '.join(EMIT_FORMATS)} (default: plan)",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a host-only value for an emitter (kernel, config, memory, name, "
        "disk.DEV, tap.DEV, bridge.DEV); unset ones stay <host:KEY> placeholders",
    )


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="delegates run at once (default: 8, or twice the cores if more)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
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


def _options(args: argparse.Namespace) -> Options:
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


def _plan(args: argparse.Namespace) -> int:
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.core import pipeline  # noqa: PLC0415
    from orchestrator.core.plan import dumps  # noqa: PLC0415
    from orchestrator.show import report  # noqa: PLC0415

    if args.json and not args.dry_run:
        raise UsageError("--json goes with --dry-run (the plan itself is always JSON)")
    options = _options(args)
    if args.dry_run:
        output.emit(_dry_run_text(pipeline.dry_run(options), args), args.output)
        return 0
    done = _with_progress(options, args.verbose, args.timings)
    plan = done.plan
    report.show_warnings([w.to_json() for w in plan.warnings])
    # The lock first: a lock file that cannot be written must not follow a plan written.
    if args.lock is not None and done.lock is not None:
        output.emit(done.lock.text(), args.lock, what="lock file")
    if args.emit == "plan":
        output.emit(dumps(plan), args.output)
    else:
        from orchestrator.emit import formats  # noqa: PLC0415

        emitted = formats.render(plan, args.emit, formats.parse_host(args.host))
        for note in emitted.notes:
            sys.stderr.write(f"bakeplan: emit {args.emit}: {note}\n")
        output.emit(emitted.text, args.output)
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


def _with_progress(options: Options, verbose: bool, timings: bool) -> Execution:
    """Run the plan with live progress in a terminal (its summary has the durations),
    line logs with --verbose or --timings elsewhere."""
    from orchestrator.core import pipeline  # noqa: PLC0415

    prepared = pipeline.prepare(options)
    if not sys.stderr.isatty():
        log = _verbose_log(starts=verbose) if verbose or timings else None
        return pipeline.carry_out(prepared, options, on_state=log)
    from orchestrator.show import preview  # noqa: PLC0415

    with preview.LiveProgress(prepared.routing.runs, sys.stderr) as progress:
        return pipeline.carry_out(prepared, options, on_state=progress.on_state)


def _graph(args: argparse.Namespace) -> int:
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.core import pipeline  # noqa: PLC0415
    from orchestrator.emit import graph  # noqa: PLC0415

    options = _options(args)
    prepared = pipeline.prepare(options)
    results, plan = pipeline.execute(prepared, options)
    output.emit(graph.dot(prepared, results, plan), args.output)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from orchestrator.core import pipeline  # noqa: PLC0415

    options = _options(args)
    prepared = pipeline.validate(options)
    runs = ", ".join(f"{r.delegate} at {pointer_text(r.pointer)}" for r in prepared.routing.runs)
    sys.stderr.write(
        f"bakeplan: {options.config}: valid for {prepared.bake.name} and rumprun "
        f"{options.dialect} ({runs})\n"
    )
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.rumprun import upgrade  # noqa: PLC0415

    result = upgrade.upgrade_file(args.legacy)
    for line in upgrade.notes_for_humans(result):
        sys.stderr.write(line + "\n")
    output.emit(result.text(), args.output)
    return 0


def _schema(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from orchestrator import output  # noqa: PLC0415
    from orchestrator.schemas import explainer  # noqa: PLC0415

    output.emit(json.dumps(explainer.load(args.name), indent=2) + "\n", None)
    return 0


def _cache_missing_verb(args: argparse.Namespace) -> int:
    del args
    raise UsageError("cache needs a verb: clear", hint="see bakeplan cache --help")


def _cache_clear(args: argparse.Namespace) -> int:
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


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise Interrupted("SIGTERM", TERMINATED)


def _add_why(commands: Subparsers) -> None:
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
    _reads_plans(why, "the answer as JSON for programs")
    why.set_defaults(func=_why)


def _add_diff(commands: Subparsers) -> None:
    diff = commands.add_parser(
        "diff",
        help="compare two plans (or configs, planned alike) in the plan's own terms; "
        "exit 0 same, 1 different, 2 trouble",
    )
    diff.add_argument("old", metavar="OLD", help="a bake plan (- for stdin), or a config")
    diff.add_argument("new", metavar="NEW", help="a bake plan, or a config")
    _reads_plans(diff, "the differences as JSON")
    diff.set_defaults(func=_diff)


def _reads_plans(parser: argparse.ArgumentParser, json_help: str) -> None:
    """What why and diff share: a config among their files is planned with these."""
    _planning_options(parser)
    _run_options(parser)
    parser.add_argument("--json", action="store_true", help=json_help)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line.  ``why``'s subject may look like an option
    (``-lrumpnet_netinet``, ``--ipv4=...``): one word argparse does not know, where the
    subject belongs, is taken as it."""
    if not argv or argv[0] != "why":
        return parser.parse_args(argv)
    args, extra = parser.parse_known_args(argv)
    if args.subject is None and len(extra) == 1:
        args.subject = extra[0]
    elif extra:
        parser.parse_args(argv)  # argparse's own message for what is wrong
    if args.subject is None:
        raise UsageError("why needs a SUBJECT after the FILE", hint="see bakeplan why --help")
    return args


def _plans_configs(args: argparse.Namespace) -> Callable[[str], Plan]:
    """Plan a config given to why or diff, with the command's planning options."""
    import dataclasses  # noqa: PLC0415

    def plan_config(path: str) -> Plan:
        from orchestrator.core import pipeline  # noqa: PLC0415

        return pipeline.make_plan(dataclasses.replace(_options(args), config=path))

    return plan_config


def _why(args: argparse.Namespace) -> int:
    from orchestrator.review import explain, planfile  # noqa: PLC0415
    from orchestrator.show import answers  # noqa: PLC0415

    answer = explain.why(planfile.obtain(args.file, _plans_configs(args)), args.subject)
    _tell(args, answer.as_json(), lambda stream: answers.why_text(answer, stream))
    return 0


def _tell(args: argparse.Namespace, document: Any, text: Callable[[Any], str]) -> None:
    """An answer of why or diff: JSON with --json, rich in a terminal, else plain text."""
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.show import answers, report  # noqa: PLC0415

    if args.json:
        output.emit(answers.as_json(document), None)
    elif report.is_terminal(sys.stdout):
        text(sys.stdout)
    else:
        output.emit(text(None), None)


def _diff(args: argparse.Namespace) -> int:
    from orchestrator.errors import Trouble  # noqa: PLC0415
    from orchestrator.review import compare, planfile  # noqa: PLC0415
    from orchestrator.show import answers  # noqa: PLC0415

    try:
        old = planfile.obtain(args.old, _plans_configs(args))
        new = planfile.obtain(args.new, _plans_configs(args))
    except BakeplanError as error:
        raise Trouble([error]) from None
    difference = compare.diff(old, new)
    _tell(
        args,
        difference.as_json(),
        lambda stream: answers.diff_text(difference, args.old, args.new, stream),
    )
    return 0 if difference.same else 1


def _add_lock(commands: Subparsers) -> None:
    lock = commands.add_parser("lock", help="check a lock file against what is installed")
    lock.set_defaults(func=_lock_missing_verb)
    verbs = lock.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    check = verbs.add_parser(
        "check",
        help="whether the locked delegates and bake config still match (exit 0), or not (3)",
    )
    check.add_argument("file", metavar="FILE", help="a lock file written by plan --lock")
    registry_option(check)
    check.add_argument(
        "--bake-conf",
        action="append",
        default=[],
        metavar="FILE",
        help="a rumprun-bake.conf read after the standard configs (repeatable, in order)",
    )
    check.add_argument("--timeout", type=_positive_float, default=None, metavar="S",
                       help="time limit per describe in seconds")  # fmt: skip
    check.add_argument("--json", action="store_true", help="the result as JSON")
    check.set_defaults(func=_lock_check)


def _lock_missing_verb(args: argparse.Namespace) -> int:
    del args
    raise UsageError("lock needs a verb: check", hint="see bakeplan lock --help")


def _lock_check(args: argparse.Namespace) -> int:
    from orchestrator import output  # noqa: PLC0415
    from orchestrator.core import lock, pipeline  # noqa: PLC0415
    from orchestrator.show import answers  # noqa: PLC0415

    locked = lock.read(args.file)
    found = pipeline.lock_check(
        locked,
        registry_files=tuple(args.registry),
        bake_confs=tuple(args.bake_conf),
        timeout=args.timeout,
    )
    if args.json:
        output.emit(answers.as_json({"matches": not found, "differences": found}), None)
    else:
        said = [f"  {line}" for line in found] or [
            f"  {len(locked.pins)} delegate(s) and bake config {locked.bake_config} match"
        ]
        verdict = "does not match" if found else "matches"
        output.emit("\n".join([f"{args.file}: what is installed {verdict}", *said]) + "\n", None)
    return 3 if found else 0


_COMMANDS: dict[str, Callable[[Subparsers], None]] = {
    "plan": _add_plan,
    "graph": _add_graph,
    "validate": _add_validate,
    "why": _add_why,
    "diff": _add_diff,
    "upgrade": _add_upgrade,
    "schema": _add_schema,
    "lock": _add_lock,
    "delegates": _add_delegates,
    "cache": _add_cache,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run bakeplan with ``argv`` (default: the process's) and return the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words == ["--version"]:
        # Build scripts ask this often; building every subcommand's parser (and the
        # help formatter argparse loads to print it) would double the answer's cost.
        return _flushed(0, f"bakeplan {__version__}\n")
    return _run(words)


def _run(argv: Sequence[str]) -> int:  # noqa: PLR0911  (one return per way out)
    parser = build_parser(argv[0] if argv and argv[0] in _COMMANDS else None)
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = _can_handle_signals()
    if in_main_thread:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = _parse(parser, argv)
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


# 128 + SIGPIPE, as a shell reports a program its pipe's reader left; 1 would say that a
# delegate failed.
CLOSED_STDOUT = 141


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


def _can_handle_signals() -> bool:
    import threading  # noqa: PLC0415

    return threading.current_thread() is threading.main_thread()


def _fail(error: BakeplanError) -> int:
    from orchestrator.show import report  # noqa: PLC0415

    if error.file == "<stdout>":
        _discard_stdout()
    report.show_error(error)
    return exit_code_of(error)
