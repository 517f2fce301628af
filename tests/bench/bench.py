"""bakeplan's performance targets, measured side by side in one run (``make bench``).

Each target is a ratio against a baseline measured in the same run on the same machine,
over several runs, medians compared, so the verdict does not depend on how fast the
machine is.  Prints one table: target, bakeplan's median, the baseline's median, the
ratio, the limit and the verdict; exits 1 when a target is missed.  Not part of
``make test``: tests check correctness, this checks speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orchestrator
import orchestrator.core.cache
import orchestrator.core.protocol

BIN = Path(sys.executable).parent
BAKEPLAN = str(BIN / "bakeplan")
# The binary the benched plans bake: released rumprun (the default dialect) starts the
# baked binaries its config lists, and these configs are all delegates' parts.
BAKED = ("--bin", "bench")
CORES = os.cpu_count() or 1

DESCRIBE = """'{"protocol":"bakeplan/1","name":"bench","version":"1","protocols":["bakeplan/1"]}'"""
TRIVIAL = f"""#!/bin/sh
case "$(cat)" in
  *'"op":"describe"'*) echo {DESCRIBE} ;;
  *) echo '{{"protocol":"bakeplan/1"}}' ;;
esac
"""
SLOW = f"""#!/bin/sh
case "$(cat)" in
  *'"op":"describe"'*) echo {DESCRIBE} ;;
  *) sleep 0.5; echo '{{"protocol":"bakeplan/1"}}' ;;
esac
"""

# What a user would write without bakeplan: split with jq, call each tool in turn,
# merge the answers with jq.
JQ_PIPELINE = r"""#!/bin/bash
set -euo pipefail
config=$1; shift
plan='{}'
for key in "$@"; do
  fragment=$(jq -c --arg k "$key" '.[$k]' "$config")
  request=$(jq -nc --arg k "$key" --argjson f "$fragment" \
    '{protocol: "bakeplan/1", op: "configure", delegate: $k, pointer: ("/" + $k), fragment: $f}')
  answer=$(printf '%s' "$request" | "./d-$key")
  plan=$(jq -c --arg k "$key" --argjson a "$answer" '. + {($k): $a}' <<<"$plan")
done
printf '%s\n' "$plan"
"""

# The physical limit: start the same processes from a thread pool and parse their JSON.
BARE_POOL = r"""
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
workers, keys = int(sys.argv[1]), sys.argv[2:]
def call(key):
    request = json.dumps({"protocol": "bakeplan/1", "op": "configure", "pointer": "/" + key})
    out = subprocess.run(["./d-" + key], input=request.encode(), capture_output=True, check=True)
    return key, json.loads(out.stdout)
with ThreadPoolExecutor(workers) as pool:
    print(json.dumps(dict(pool.map(call, keys))))
"""


@dataclass(frozen=True)
class Row:
    target: str
    ours: float
    baseline: float
    limit: float
    higher_is_better: bool = False
    # What the baseline is, and which of bakeplan's caches were warm for the timed runs.
    against: str = ""
    caches: str = "none used"

    @property
    def ratio(self) -> float:
        return self.baseline / self.ours if self.higher_is_better else self.ours / self.baseline

    @property
    def met(self) -> bool:
        return self.ratio >= self.limit if self.higher_is_better else self.ratio <= self.limit


def median_time(
    command: Sequence[str],
    runs: int,
    cwd: Path,
    env: dict[str, str] | None = None,
    setup: Callable[[], None] | None = None,
    stdin: bytes | None = None,
) -> float:
    """The median wall-clock seconds of ``command`` over ``runs`` runs (after one warm-up)."""
    times = []
    for attempt in range(runs + 1):
        if setup is not None:
            setup()
        start = time.perf_counter()
        done = subprocess.run(
            list(command),
            cwd=cwd,
            env=env,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            check=False,
        )
        took = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(
                f"benchmark command failed: {' '.join(command)}\n"
                f"{done.stderr.decode(errors='replace')}"
            )
        if attempt:  # the first run only warms caches
            times.append(took)
    return statistics.median(times)


def write_delegates(folder: Path, keys: Sequence[str], body: str) -> Path:
    folder.mkdir()
    for key in keys:
        path = folder / f"d-{key}"
        path.write_text(body)
        path.chmod(0o755)
    (folder / "registry.json").write_text(
        json.dumps(
            {
                "delegates": [
                    {"name": f"d-{key}", "command": [f"./d-{key}"], "claims": [f"/{key}"]}
                    for key in keys
                ]
            }
        )
    )
    (folder / "config.json").write_text(json.dumps({key: {"n": i} for i, key in enumerate(keys)}))
    return folder


def startup(work: Path, runs: int) -> Row:
    ours = median_time([BAKEPLAN, "--version"], runs, work)
    bare = median_time([sys.executable, "-c", "pass"], runs, work)
    return Row("start-up: --version vs python -c pass", ours, bare, 2.0, against="python -c pass")


def trivial(work: Path, runs: int) -> tuple[Row, Row]:
    keys = [f"k{i:02d}" for i in range(32)]
    folder = write_delegates(work / "trivial", keys, TRIVIAL)
    (folder / "pool.py").write_text(BARE_POOL)
    (folder / "pipeline.sh").write_text(JQ_PIPELINE)
    plan = [BAKEPLAN, "plan", "config.json", "-r", "registry.json", *BAKED, "-j", str(CORES)]
    env = own_cache(folder)
    ours = median_time(plan, runs, folder, env)
    only_describe_answers_kept(env, len(keys))
    pool = median_time([sys.executable, "pool.py", str(CORES), *keys], runs, folder)
    shell = median_time(["bash", "pipeline.sh", "config.json", *keys], max(3, runs // 3), folder)
    return (
        Row(
            f"32 trivial delegates, -j {CORES}: vs a bare thread pool",
            ours,
            pool,
            1.5,
            against="a Python thread pool starting the same 32 processes",
            caches=RAN_EVERY_TIME,
        ),
        Row(
            "32 trivial delegates: times faster than bash+jq, one by one",
            ours,
            shell,
            4.0,
            higher_is_better=True,
            against="a bash loop: jq splits, each tool in turn, jq merges",
            caches=RAN_EVERY_TIME,
        ),
    )


def slow(work: Path, runs: int) -> Row:
    keys = [f"s{i}" for i in range(8)]
    folder = write_delegates(work / "slow", keys, SLOW)
    env = own_cache(folder)
    ours = median_time(
        [BAKEPLAN, "plan", "config.json", "-r", "registry.json", *BAKED, "-j", "8"],
        max(3, runs // 3),
        folder,
        env,
    )
    only_describe_answers_kept(env, len(keys))
    return Row(
        "8 delegates of 0.5 s, -j 8: seconds (limit 1.0 s)",
        ours,
        1.0,
        1.0,
        against="one second",
        caches=RAN_EVERY_TIME,
    )


def growth(work: Path, runs: int) -> Row:
    folder = work / "growth"
    folder.mkdir()
    (folder / "registry.json").write_text('{"delegates": []}')
    for size in (5000, 20000):
        (folder / f"config-{size}.json").write_text(
            json.dumps({"env": {f"VAR_{i}": f"value {i}" for i in range(size)}})
        )

    def cost(size: int) -> float:
        return median_time(
            [BAKEPLAN, "plan", f"config-{size}.json", "-r", "registry.json", *BAKED],
            max(3, runs // 2),
            folder,
        )

    return Row(
        "growth: 20,000 keys vs 5,000 keys (limit 4.5x for 4x)",
        cost(20000),
        cost(5000),
        4.5,
        against="the same plan of 5,000 keys",
    )


# The trivial and slow delegates declare neither `cache` nor `pure`: bakeplan never keeps
# their configure answers, so every timed plan runs every one of them, as the baselines
# do, while their describe answers (filed by the warm-up run) are read from the store.
RAN_EVERY_TIME = "describe answers warm; configure answers never kept (every run runs them)"


def own_cache(folder: Path) -> dict[str, str]:
    """An environment whose cache home is ``folder``'s own, for counting what it keeps."""
    return {**os.environ, "XDG_CACHE_HOME": str(folder / "xdg-cache")}


def only_describe_answers_kept(env: dict[str, str], delegates: int) -> None:
    """Refuse the row unless the store holds one describe answer per delegate and nothing
    else: a kept configure answer would mean the timed plans skipped the runs."""
    store = orchestrator.core.cache.folder(env)
    kept = len(list(store.glob(f"*{orchestrator.core.cache.SUFFIX}")))
    if kept != delegates:
        raise SystemExit(f"{store} holds {kept} answers, not the {delegates} describe answers")


def no_cache() -> list[str]:
    """``--no-cache`` where this bakeplan has a response cache."""
    done = subprocess.run([BAKEPLAN, "plan", "--help"], capture_output=True, text=True, check=False)
    return ["--no-cache"] if "--no-cache" in done.stdout else []


def warm_cache(work: Path, runs: int) -> Row | None:
    if not no_cache():
        return None
    keys = [f"c{i:02d}" for i in range(8)]
    folder = write_delegates(work / "cache", keys, TRIVIAL)
    registry = json.loads((folder / "registry.json").read_text())
    for entry in registry["delegates"]:
        entry["cache"] = True
    (folder / "registry.json").write_text(json.dumps(registry))
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "xdg-cache")}
    plan = [BAKEPLAN, "plan", "config.json", "-r", "registry.json", *BAKED]
    cold = subprocess.run(plan, cwd=folder, env=env, check=True, capture_output=True).stdout
    ours = median_time(plan, runs, folder, env)
    validate = median_time(
        [BAKEPLAN, "validate", "config.json", "-r", "registry.json", *BAKED], runs, folder, env
    )
    warm = subprocess.run(plan, cwd=folder, env=env, check=True, capture_output=True).stdout
    if warm != cold:
        raise SystemExit("the warm plan differs from the cold one: the cache changed a plan")
    return Row(
        "warm cache: re-plan vs validate (plan byte-identical to the cold one)",
        ours,
        validate,
        1.3,
        against="bakeplan validate of the same config",
        caches="describe answers and responses warm",
    )


# The hybrid example, planned as a user plans it, with the reference delegate on the SDK.
HYBRID = Path(__file__).resolve().parents[2] / "examples" / "hybrid"

# A delegate without the SDK: the standard library reads the request and prints the
# answer mirage-net-config gives (filled in below), so only the SDK's own cost differs.
STDLIB_DELEGATE = """import json, sys
request = json.loads(sys.stdin.buffer.read())
sys.stdout.write(ANSWER)
"""


def hybrid(work: Path, runs: int) -> list[Row]:
    """validate, one SDK delegate's configure run, and the plan that is made of both."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    inputs = ["config.json", "-r", "registry.json"]
    # The describe answer (and which code the delegate runs) is kept by this first plan.
    subprocess.run(
        [BAKEPLAN, "plan", *inputs], cwd=HYBRID, env=env, check=True, capture_output=True
    )
    preview = subprocess.run(
        [BAKEPLAN, "plan", "--dry-run", "--json", *inputs],
        cwd=HYBRID,
        env=env,
        check=True,
        capture_output=True,
    )
    run = next(r for r in json.loads(preview.stdout)["runs"] if r["pointer"] == "/net")
    request = orchestrator.core.protocol.encode(run["request"])
    delegate = [str(BIN / "mirage-net-config")]
    answer = subprocess.run(delegate, input=request, capture_output=True, check=True).stdout
    script = work / "stdlib_delegate.py"
    script.write_text(STDLIB_DELEGATE.replace("ANSWER", repr(answer.decode())))
    bare = subprocess.run(
        [sys.executable, str(script)], input=request, capture_output=True, check=True
    ).stdout
    if bare != answer:
        raise SystemExit("the stdlib delegate does not answer as mirage-net-config does")

    responses = Path(env.get("XDG_CACHE_HOME", "")) / "bakeplan" / "responses"

    def forget_configure_answers() -> None:
        # Keep describe answers, drop the kept configure answer of the pure delegate, so
        # every timed plan runs it.
        for entry in responses.glob("*.answer"):
            if b'"protocols"' not in entry.read_bytes():
                entry.unlink()

    validate = median_time([BAKEPLAN, "validate", *inputs], runs, HYBRID, env)
    sdk = median_time(delegate, runs, HYBRID, env, stdin=request)
    stdlib = median_time([sys.executable, str(script)], runs, HYBRID, env, stdin=request)
    plan = median_time(
        [BAKEPLAN, "plan", *inputs], runs, HYBRID, env, setup=forget_configure_answers
    )
    bare = median_time([sys.executable, "-c", "pass"], runs, HYBRID, env)
    return [
        Row(
            "validate the hybrid example vs python -c pass",
            validate,
            bare,
            2.0,
            against="python -c pass",
            caches="describe answers warm",
        ),
        Row(
            "SDK delegate: mirage-net-config on the /net request vs a stdlib script",
            sdk,
            stdlib,
            1.5,
            against="a stdlib-only script reading the request, printing the same answer",
        ),
        Row(
            "plan the hybrid example vs validate + one mirage-net-config run",
            plan,
            validate + sdk,
            1.15,
            against="the two medians above added",
            caches="describe answers warm; configure answer dropped before each run",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    if shutil.which("jq") is None:
        raise SystemExit("the bash+jq baseline needs jq (apt-get install jq)")
    # An installed package has its bytecode compiled (pip does it); an editable checkout
    # under PYTHONDONTWRITEBYTECODE would compile every module on every run instead.
    package = Path(orchestrator.__file__).parent
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package), str(package.parent / "delegates")],
        check=True,
    )
    with tempfile.TemporaryDirectory(prefix="bakeplan-bench-") as temporary:
        work = Path(temporary)
        # Caches (describe answers, responses) live in the run's own folder, not the user's.
        os.environ["XDG_CACHE_HOME"] = str(work / "xdg-cache")
        rows = [
            startup(work, args.runs),
            *hybrid(work, args.runs),
            *trivial(work, args.runs),
            slow(work, args.runs),
            growth(work, args.runs),
        ]
        cached = warm_cache(work, args.runs)
        if cached is not None:
            rows.append(cached)
    print_table(rows, markdown=args.markdown)
    return 0 if all(row.met for row in rows) else 1


def print_table(rows: Sequence[Row], *, markdown: bool) -> None:
    header = ("target", "bakeplan", "baseline", "ratio", "limit", "verdict")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.target,
                f"{row.ours * 1000:.1f} ms",
                f"{row.baseline * 1000:.1f} ms",
                f"{row.ratio:.2f}x",
                f"{'>=' if row.higher_is_better else '<='} {row.limit:g}x",
                "met" if row.met else "MISSED",
            )
        )
    notes = [
        f"- {row.target}: baseline {row.against or 'as named'}; caches: {row.caches}"
        for row in rows
    ]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines[1:]:
            print("| " + " | ".join(line) + " |")
        print("\n" + "\n".join(notes))
        return
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    print("\n" + "\n".join(notes))
    print(f"\n{CORES} cores, Python {sys.version.split()[0]}, medians of runs after a warm-up")


if __name__ == "__main__":
    raise SystemExit(main())
