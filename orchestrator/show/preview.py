"""Everything a person sees, rendered with rich: the dry-run preview, live progress and
errors.

Nothing in the core imports this module; ``orchestrator.commands`` does, and only when there is
something to show, because importing rich costs more than the rest of start-up.  The
same renderers serve a terminal (colour, live updates) and a pipe: a rich ``Console``
writing to something that is not a terminal prints plain text with no escape codes, and
honours ``NO_COLOR`` and ``COLUMNS``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from orchestrator.core.routing import Run
from orchestrator.errors import BakeplanError, DelegateError
from orchestrator.pointers import pointer_of, pointer_text
from orchestrator.show import messages

BUILTIN_STYLE = "cyan"
# Delegates other than rumprun get these in order of appearance; the label always names
# the owner too, so nothing depends on seeing colour.
PALETTE = ("magenta", "green", "yellow", "blue", "red", "bright_magenta", "bright_green")
REQUEST_LINES = 24
# What a dry run's cache state (``configure.cache_state``) means, for a person.
CACHE_STATES = {
    "hit": "hit: the answer is in the response cache, the delegate will not run",
    "miss": "miss: the delegate runs, and its answer is kept",
    "pending": "known once the inner runs answer (the request depends on them)",
    "unknown": "unknown: the delegate was never described, so whether it is pure is not known",
    "never": 'never: neither pure nor "cache": true, so it runs every time',
    "off": "off (--no-cache): the delegate runs and nothing is kept",
}
TREE_CHILDREN = 12
TREE_DEPTH = 6


def console_for(stream: TextIO, *, width: int | None = None, record: bool = False) -> Console:
    """A console on ``stream``: rich in a terminal, plain text elsewhere."""
    return Console(file=stream, width=width, record=record, highlight=False, soft_wrap=False)


# -- the dry-run preview ---------------------------------------------------------------------


def _owner_styles(preview: Mapping[str, Any]) -> dict[str, str]:
    styles: dict[str, str] = {}
    for owner in preview["owners"]:
        name = owner["delegate"]
        if name not in styles:
            others = sum(1 for style in styles.values() if style != BUILTIN_STYLE)
            styles[name] = BUILTIN_STYLE if name == "rumprun" else PALETTE[others % len(PALETTE)]
    return styles


def _scalar(value: Any, limit: int = 48) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tree(preview: Mapping[str, Any], verbose: bool) -> Tree:
    styles = _owner_styles(preview)
    owners = {o["pointer"]: o["delegate"] for o in preview["owners"]}
    root = Tree(
        Text.assemble(
            (preview["config"], "bold"), "  ", _owner_label(owners[""], styles, builtin=True)
        )
    )

    def grow(node: Tree, value: Any, tokens: tuple[str, ...], owner: str) -> None:
        if isinstance(value, dict):
            items: list[tuple[str, Any]] = list(value.items())
        elif isinstance(value, list):
            items = [(str(i), v) for i, v in enumerate(value)]
        else:
            return
        limit = len(items) if verbose else TREE_CHILDREN
        for key, child in items[:limit]:
            path = (*tokens, key)
            pointer = pointer_of(path)
            label = Text(key if isinstance(value, dict) else f"[{key}]")
            child_owner = owners.get(pointer, owner)
            if pointer in owners:
                label.append("  ")
                label.append_text(_owner_label(child_owner, styles))
            if not isinstance(child, (dict, list)):
                label.append(f": {_scalar(child)}", style="dim")
            branch = node.add(label, style=styles.get(child_owner, ""))
            if verbose or len(path) < TREE_DEPTH:
                grow(branch, child, path, child_owner)
            elif isinstance(child, (dict, list)) and child:
                branch.add(Text("… (--verbose shows deeper levels)", style="dim"))
        if len(items) > limit:
            node.add(Text(f"… {len(items) - limit} more (--verbose shows all)", style="dim"))

    grow(root, preview["document"], (), owners[""])
    return root


def _owner_label(name: str, styles: Mapping[str, str], *, builtin: bool = False) -> Text:
    suffix = " (built in: everything not claimed)" if builtin else ""
    return Text(f"← {name}{suffix}", style=f"bold {styles.get(name, '')}".strip())


def compact_json(value: Any, indent: int = 2) -> str:
    """Indented JSON with arrays of scalars on one line, so long lists stay readable."""

    def walk(node: Any, depth: int) -> str:
        pad = " " * (indent * (depth + 1))
        end = " " * (indent * depth)
        if isinstance(node, dict) and node:
            body = ",\n".join(
                f"{pad}{json.dumps(k, ensure_ascii=False)}: {walk(v, depth + 1)}"
                for k, v in node.items()
            )
            return "{\n" + body + "\n" + end + "}"
        if isinstance(node, list) and node:
            if all(not isinstance(v, (dict, list)) for v in node):
                return json.dumps(node, ensure_ascii=False)
            body = ",\n".join(pad + walk(v, depth + 1) for v in node)
            return "[\n" + body + "\n" + end + "]"
        return json.dumps(node, ensure_ascii=False)

    return walk(value, 0)


def _request(run: Mapping[str, Any], verbose: bool) -> RenderableType:
    lines = compact_json(run["request"]).splitlines()
    note = None
    if not verbose and len(lines) > REQUEST_LINES:
        note = Text(
            f"… {len(lines) - REQUEST_LINES} more lines (--verbose shows the whole request)",
            style="dim",
        )
        lines = lines[:REQUEST_LINES]
    syntax = Syntax(
        "\n".join(lines), "json", theme="ansi_dark", word_wrap=True, background_color="default"
    )
    return Group(syntax, note) if note else syntax


def _order(preview: Mapping[str, Any], styles: Mapping[str, str]) -> Table:
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    table.add_column("step", justify="right")
    table.add_column("runs side by side")
    waves: dict[int, list[Mapping[str, Any]]] = {}
    for run in preview["runs"]:
        waves.setdefault(run["wave"], []).append(run)
    for wave, runs in sorted(waves.items()):
        cell = Text()
        for index, run in enumerate(runs):
            if index:
                cell.append("\n")
            cell.append(run["delegate"], style=f"bold {styles.get(run['delegate'], '')}".strip())
            cell.append(f" at {pointer_text(run['pointer'])}")
            if run["inner"]:
                cell.append(f" (gets the answers of {', '.join(run['inner'])})", style="dim")
        table.add_row(str(wave + 1), cell)
    return table


def _cache_style(state: str) -> str:
    return {"hit": "green", "miss": "yellow"}.get(state, "dim")


def _run_panel(run: Mapping[str, Any], styles: Mapping[str, str], verbose: bool) -> Panel:
    facts = Table.grid(padding=(0, 1))
    facts.add_column(style="bold")
    facts.add_column()
    if run["builtin"]:
        facts.add_row("command", "none: the rumprun layer is built into bakeplan")
    else:
        facts.add_row("command", Text(run["shell"]))
        facts.add_row("registry", f"{run['registry']} (time limit {run['timeout']:g}s)")
        cache = run.get("cache", "")
        if cache:
            facts.add_row("cache", Text(CACHE_STATES.get(cache, cache), style=_cache_style(cache)))
        if run.get("replay"):
            facts.add_row("replay", Text("the line below the box gives it this very request"))
        elif run["inner"]:
            facts.add_row("replay", Text("none until the inner runs answer", style="dim"))
    if run["inner"]:
        facts.add_row(
            "request",
            Text(
                'parts marked "$inner" are filled by the answers of the runs inside this one',
                style="dim",
            ),
        )
    else:
        facts.add_row("sha256", Text(run["request_sha256"], style="dim"))
    style = styles.get(run["delegate"], "")
    title = Text.assemble(
        (run["delegate"], f"bold {style}".strip()),
        f" at {pointer_text(run['pointer'])}",
        (f"  step {run['wave'] + 1}", "dim"),
    )
    return Panel(
        Group(facts, _request(run, verbose)),
        title=title,
        title_align="left",
        border_style=style or "none",
        box=box.ROUNDED,
    )


def _runtime(preview: Mapping[str, Any]) -> RenderableType:
    """Which rumprun reads the runtime config, and what of it that rumprun cannot say."""
    runtime = preview.get("runtime") or {"dialect": "spec", "refused": []}
    head = Text.assemble(("runtime config ", "bold"), f"for rumprun {runtime['dialect']}")
    if not runtime["refused"]:
        return Text.assemble(head, ": it can say every part rumprun keeps")
    lines = [Text.assemble(head, Text(" cannot say:", style="bold red"))]
    lines.extend(
        Text(f"  {pointer_text(r['pointer'])}: {r['message']}") for r in runtime["refused"]
    )
    return Group(*lines)


def _bake(preview: Mapping[str, Any]) -> RenderableType:
    bake = preview["bake"]
    head = Text.assemble(
        ("bake config ", "bold"),
        (bake["config"], "bold"),
        f" ({bake['platform']}): {bake['description']}",
    )
    libs = Text(" ".join(bake["libs"]), style="dim")
    rules = Table(
        box=box.SIMPLE,
        show_edge=False,
        pad_edge=False,
        title_justify="left",
        title="rules for the parts rumprun keeps",
    )
    rules.add_column("part")
    rules.add_column("needs")
    rules.add_column("in the base config")
    for rule in bake["rules"]:
        rules.add_row(
            pointer_text(rule["pointer"]),
            f"{' or '.join(rule['needs'])} ({rule['why']})",
            Text("yes", style="green") if rule["met"] else Text("MISSING", style="bold red"),
        )
    note = Text(
        "Delegates may add or remove components; the final list is known once they have answered.",
        style="dim",
    )
    parts: list[RenderableType] = [head, Text(f"{len(bake['libs'])} libraries:"), libs]
    parts.append(rules if bake["rules"] else Text("no rules apply to the parts rumprun keeps"))
    parts.append(note)
    parts.append(_runtime(preview))
    return Group(*parts)


def render_dry_run(preview: Mapping[str, Any], console: Console, *, verbose: bool = False) -> None:
    """The whole preview: owners, order, each delegate's command and request, the bake."""
    styles = _owner_styles(preview)
    console.print(
        Text.assemble(
            ("Dry run", "bold"), " of ", (preview["config"], "bold"), ": no delegate runs."
        )
    )
    console.print()
    console.print(Text("Who configures what", style="bold underline"))
    console.print(_tree(preview, verbose))
    if preview["absent"]:
        for claim in preview["absent"]:
            console.print(
                Text(
                    f"  {claim['delegate']} claims {claim['pointer']}, which this "
                    "config does not have: it will not run",
                    style="dim",
                )
            )
    console.print()
    console.print(Text("Order (inner claims first)", style="bold underline"))
    console.print(_order(preview, styles))
    for run in preview["runs"]:
        console.print(_run_panel(run, styles, verbose))
        if run.get("replay"):
            # One line, never wrapped or cut: pasted into a shell, it sends the delegate
            # the exact request bytes with exactly the environment bakeplan would give.
            console.print(Text.assemble(("replay: ", "bold"), run["replay"]), soft_wrap=True)
    console.print()
    console.print(_bake(preview))


# -- live progress -----------------------------------------------------------------------------


class LiveProgress:
    """One line per delegate run with its state and elapsed time, then a summary table.

    ``on_state`` is called from the scheduler's worker threads; rich's ``Progress`` is
    thread-safe, and the durations are kept here, never in the plan.
    """

    def __init__(self, runs: Sequence[Run], stream: TextIO) -> None:
        self._console = console_for(stream)
        self._progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            console=self._console,
        )
        self._runs = list(runs)
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._took: dict[str, float] = {}
        self._state: dict[str, str] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LiveProgress:
        for run in self._runs:
            self._tasks[run.pointer] = self._progress.add_task(
                f"{run.delegate} at {pointer_text(run.pointer)}",
                start=False,
                total=1,
                state="waiting",
            )
            self._state[run.pointer] = "waiting"
        self._progress.start()
        return self

    def on_state(self, run: Run, state: str) -> None:
        task = self._tasks[run.pointer]
        with self._lock:
            self._state[run.pointer] = state
            if state == "running":
                self._started[run.pointer] = time.monotonic()
                self._progress.start_task(task)
            elif state in ("done", "failed", "cancelled", "cached"):
                begun = self._started.get(run.pointer)
                self._took[run.pointer] = time.monotonic() - begun if begun else 0.0
                self._progress.update(task, completed=1)
                self._progress.stop_task(task)
        colour = {"done": "green", "failed": "bold red", "running": "yellow"}.get(state, "dim")
        self._progress.update(task, state=f"[{colour}]{state}[/]")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()
        table = Table(box=box.SIMPLE, show_edge=False, title="delegates", title_justify="left")
        table.add_column("delegate")
        table.add_column("pointer")
        table.add_column("state")
        table.add_column("took", justify="right")
        for run in self._runs:
            took = self._took.get(run.pointer)
            table.add_row(
                run.delegate,
                pointer_text(run.pointer),
                self._state[run.pointer],
                f"{took:.2f}s" if took is not None else "",
            )
        self._console.print(table)


class CheckProgress:
    """``delegates check`` while it runs: each row as it is judged (PASS or FAIL) above
    a spinner naming what the kit is doing now and for how long.  The table itself
    goes to stdout at the end; this is only for the person waiting."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self._name = name
        self._console = console_for(stream)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=True,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> CheckProgress:
        self._task = self._progress.add_task(f"checking {self._name}: starting")
        self._progress.start()
        return self

    def on_step(self, what: str, step: Any) -> None:
        """What the kit is about to do (``step`` None), or a row just judged."""
        assert self._task is not None
        if step is None:
            self._progress.update(self._task, description=f"checking {self._name}: {what}")
            return
        mark = Text("PASS", style="bold green") if step.passed else Text("FAIL", style="bold red")
        self._progress.console.print(Text.assemble(mark, f" {step.name}: ", (step.detail, "dim")))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()


# -- errors -------------------------------------------------------------------------------------


def _detail(lines: Sequence[str]) -> Iterator[Text]:
    for line in lines:
        if line.lstrip().startswith("|") and set(line.split("|", 1)[1].strip()) <= {"^"}:
            yield Text(f"  {line}", style="bold red")  # the marker under the column
        elif line.lstrip().startswith("|"):
            yield Text(f"  {line}")
        else:
            head, sep, rest = line.partition(": ")
            yield Text.assemble("  ", (head + sep, "bold"), rest) if sep else Text(f"  {line}")


def _delegate_panel(error: DelegateError) -> Panel:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("delegate", error.delegate)
    if error.pointer is not None:
        grid.add_row("at", pointer_text(error.pointer))
    if error.command:
        import shlex  # noqa: PLC0415

        grid.add_row("command", shlex.join(error.command))
    if error.status:
        grid.add_row("status", Text(error.status, style="bold red"))
    parts: list[RenderableType] = [Text(error.message, style="bold"), grid]
    parts.extend(_detail(error.detail))
    if error.stderr_tail:
        parts.append(Text("stderr (last lines)", style="bold"))
        parts.append(Text(error.stderr_tail, style="dim"))
    if error.hint:
        parts.append(Text(f"hint: {error.hint}", style="cyan"))
    return Panel(
        Group(*parts),
        title=Text("delegate failed", style="bold red"),
        title_align="left",
        border_style="red",
        box=box.ROUNDED,
    )


def render_error(error: BakeplanError, console: Console) -> None:
    """Every problem in ``error``: a panel for a delegate, a located message otherwise."""
    for problem in messages.problems_of(error):
        if isinstance(problem, DelegateError):
            console.print(_delegate_panel(problem))
            continue
        console.print(
            Text.assemble((f"{problem.kind}: ", "bold red"), (messages.headline(problem), "bold"))
        )
        for line in _detail(problem.detail):
            console.print(line)
        if problem.hint:
            console.print(Text(f"  hint: {problem.hint}", style="cyan"))
