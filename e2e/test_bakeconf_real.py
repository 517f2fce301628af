"""bakeplan's ``--bake-conf`` reader against the real rumprun-bake, file by file.

Each case is a small rumprun-bake.conf that is easy to read wrongly: versions, CR line
ends, quoting, words rumprun-bake evaluates a second time, ``~`` and braces.  It goes
through ``bakeplan plan {} --bake-conf F -b NAME`` and through the real
``rumprun-bake -c F describe NAME`` (and ``list``, for the description).  ``SAME`` cases
must give the same library list and description, or be refused by both; ``STRICTER``
cases are the ones bakeplan refuses on purpose although rumprun-bake goes on, each with
its reason, so that a change on either side shows here.

Without the real script at /opt/rumprun/bin/rumprun-bake the module is skipped, unless
``CI=true``: there the real-tools suite must not pass by skipping, so it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

RUMPRUN_BAKE = Path("/opt/rumprun/bin/rumprun-bake")
REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "tests" / "fixtures" / "conformance" / "rumprun-bake" / "rumprun-bake.conf"


@dataclass(frozen=True)
class Case:
    """A conf file's text (bytes where line ends matter) and the config to describe."""

    name: str
    text: str | bytes
    config: str = "hw_test"
    why: str = ""  # for STRICTER: why bakeplan refuses what rumprun-bake takes
    located: bool = True  # whether bakeplan's refusal is at a file:line of the conf


@dataclass(frozen=True)
class Outcome:
    """What one program made of a case: its list and description, or None if refused."""

    libs: tuple[str, ...] | None
    description: str | None
    said: str  # stderr, for the failure message


def block(*lines: str) -> str:
    """A version 20160209 file whose ``hw_test`` holds ``lines`` after its create."""
    return "\n".join(("version 20160209", "conf hw_test", " create t", *lines, "fnoc", ""))


SAME: tuple[Case, ...] = (
    Case("shipped file read again", SHIPPED.read_text(encoding="utf-8"), "hw_virtio"),
    Case(
        "a lean config on a standard one",
        "version 20160209\nconf hw_lean\n create 'lean virtio'\n assimilate hw_virtio\n"
        " remove -lrumpfs_kernfs -lrumpdev_audio -lrumpnet_netinet6\nfnoc\n",
        "hw_lean",
    ),
    Case(
        "private set, remove then add again",
        "version 20160209\nconf _x\n create x\n add -lfoo\nfnoc\n"
        + block(
            " assimilate _x hw_virtio", " remove -lrumpdev_pci -lfoo", " add -lfoo -lrumpdev_pci"
        ),
    ),
    Case("first occurrence kept", block(" add -la -lb -la", " assimilate hw_generic", " add -lb")),
    Case("remove drops every occurrence", block(" add -la -lb -la -lc", " remove -la")),
    Case("continuations and comments", block(" add -la \\", "     -lb # a comment", " add -lc")),
    Case("quoted plain words", block(' add "-la" \'-lb\' -l"c"d -la', " add -le", " remove -le")),
    Case("version twice", block(" add -la") + "version 20160209\n"),
    Case("a wrong second version", block(" add -la") + "version 20990101\n"),
    Case("the older version second", block(" add -la") + "version 20150930\n"),
    Case("an error before a wrong version", "version 20160209\nconf virtio\nversion 2099\n"),
    Case("no version", "conf hw_test\n create t\n add -la\nfnoc\n"),
    Case("CRLF line ends", block(" add -la").replace("\n", "\r\n").encode()),
    Case(
        "a CR after the config name", block(" add -la").replace("hw_test\n", "hw_test\r\n").encode()
    ),
    Case("remove one quoted word with a blank", block(" add -la -lb -lc", ' remove "-la -lb"')),
    Case("remove a word with blanks around it", block(" add -la -lb -lc", ' remove " -la "')),
    Case("remove an empty word", block(" add -la -lb", ' remove ""')),
    Case("add one quoted word with a blank", block(' add "-la -lb" -lc', ' remove "-la -lb"')),
    Case("a double quote inside single quotes", block(" add '-la\"b'")),
    Case(
        "a backquote inside single quotes in remove", block(" add -la -lb", " remove '`echo -la`'")
    ),
    Case("tilde and braces in remove", block(" add -la -lb", " remove -l~x -l{a,b} { } -lb~")),
    Case(
        "tilde, braces and blanks in a description",
        "version 20160209\nconf hw_test\n create x~y {z} '~' \\~ a{b,c} '  p   q  '\n"
        " add -la\nfnoc\n",
    ),
    Case("a quote in a description", 'version 20160209\nconf hw_test\n create "it\'s"\nfnoc\n'),
    Case("add before create", "version 20160209\nconf hw_test\n add -la\nfnoc\n"),
    Case("create without a description", "version 20160209\nconf hw_test\n create\nfnoc\n"),
    # A config the file nuked is unknown to -b: an error of the command line, not the file.
    Case(
        "a nuked config",
        "version 20160209\nconf hw_gone\n create g\n nuke\nfnoc\n",
        "hw_gone",
        located=False,
    ),
)

STRICTER: tuple[Case, ...] = (
    Case("$ in single quotes", block(" add '-la$HOME'"), why="add's eval expands it"),
    Case("a backquote in single quotes", block(" add '-la`echo x`'"), why="add's eval runs it"),
    Case("a backslash in single quotes", block(" add '-la\\nb'"), why="describe's echo reads it"),
    Case("a glob in single quotes", block(" add '-l*'"), why="the list is globbed in the cwd"),
    Case("$ in a remove word", block(" add -la", " remove '-l$x'"), why="it can never match"),
    Case("a leading tilde", block(" add ~ -la"), why="sh puts a home directory there"),
    Case("one CRLF line", block(" add -la\r"), why="the library word ends in a CR"),
    Case("a tilde in an add word", block(" add -l~x"), why="not a -l flag a plan can hold"),
    Case("braces in an add word", block(" add -l{a,b}"), why="not a -l flag a plan can hold"),
    Case("no fnoc", "version 20160209\nconf hw_test\n create t\n add -la\n", why="a lost block"),
    Case("an unknown command", block(" frob -la", " add -lb"), why="sh says not found, goes on"),
    Case(
        "a backslash ending a comment",
        block(" add -la # c \\", " -lb"),
        why="sh runs -lb as a command, says not found, goes on",
    ),
    Case(
        "version with more words",
        "version 20160209 x\nconf hw_test\n create t\n add -la\nfnoc\n",
        why="the script reads the first word only; a second is a typo",
    ),
)


@pytest.fixture(scope="module")
def rumprun_bake() -> Path:
    if RUMPRUN_BAKE.is_file() and os.access(RUMPRUN_BAKE, os.X_OK):
        return RUMPRUN_BAKE
    reason = f"the real rumprun-bake is not installed at {RUMPRUN_BAKE}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; with CI=true the real-tools suite may not skip it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def plan_args(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ...]:
    """``plan`` on an empty config with an empty registry (and the specification's
    dialect, where bakeplan has ``--rumprun``: master's needs an rc to say ``{}``)."""
    folder = tmp_path_factory.mktemp("inputs")
    config = folder / "empty.json"
    config.write_text("{}\n", encoding="utf-8")
    registry = folder / "registry.json"
    registry.write_text('{"delegates": []}\n', encoding="utf-8")
    registry.chmod(0o644)  # bakeplan refuses a registry others may write
    helped = subprocess.run(
        [sys.executable, "-m", "orchestrator", "plan", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    dialect = ("--rumprun", "spec") if "--rumprun" in helped.stdout else ()
    return ("plan", str(config), *dialect, "-r", str(registry))


def write(folder: Path, case: Case) -> Path:
    conf = folder / "case.conf"
    if isinstance(case.text, bytes):
        conf.write_bytes(case.text)
    else:
        conf.write_text(case.text, encoding="utf-8")
    return conf


def environment(folder: Path, extra: Mapping[str, str]) -> dict[str, str]:
    home = folder / "home"
    home.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BAKEPLAN_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    env.update(XDG_CACHE_HOME=str(home / ".cache"), **extra)
    return env


def real(rumprun_bake: Path, conf: Path, config: str) -> Outcome:
    """``rumprun-bake -c CONF describe CONFIG`` and its ``list`` line, run in an empty
    folder (the script globs its lists there)."""
    cwd = conf.parent / "cwd"
    cwd.mkdir(exist_ok=True)
    env = environment(conf.parent, {"RUMPRUN_WARNING_STFU": "please"})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(rumprun_bake), "-c", str(conf), *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=60,
            check=False,
        )

    described = run("describe", config)
    said = described.stdout + described.stderr
    if described.returncode != 0:
        return Outcome(None, None, said)
    listed = run("list")
    # `printf '%-16s' NAME; printf ': %s' DESCRIPTION` per config.
    line = re.compile(rf"^{re.escape(config)} *: (.*)$")
    descriptions = [m.group(1) for row in listed.stdout.split("\n") if (m := line.match(row))]
    # Split as the script's echo joined them: on spaces and newlines, never on a CR.
    libs = tuple(word for word in re.split(r"[ \n]", described.stdout) if word)
    return Outcome(libs, descriptions[0] if descriptions else None, said)


def ours(args: tuple[str, ...], conf: Path, config: str, located: bool) -> Outcome:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, "--bake-conf", str(conf), "-b", config],
        capture_output=True,
        text=True,
        cwd=conf.parent,
        env=environment(conf.parent, {}),
        timeout=60,
        check=False,
    )
    if done.returncode == 2:
        if located:  # every refusal of a conf file names its file:line
            assert re.search(rf"{re.escape(str(conf))}:\d+: ", done.stderr), done.stderr
        return Outcome(None, None, done.stderr)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    bake = json.loads(done.stdout)["bake"]
    return Outcome(tuple(bake["libs"]), bake.get("description"), done.stderr)


@pytest.mark.parametrize("case", SAME + STRICTER, ids=lambda case: case.name)
def test_bakeplan_reads_the_file_as_rumprun_bake_does(
    case: Case, rumprun_bake: Path, plan_args: tuple[str, ...], tmp_path: Path
) -> None:
    conf = write(tmp_path, case)
    theirs = real(rumprun_bake, conf, case.config)
    mine = ours(plan_args, conf, case.config, located=case.located)
    said = f"rumprun-bake said:\n{theirs.said}\nbakeplan said:\n{mine.said}"
    if case.why:
        assert theirs.libs is not None, f"rumprun-bake refuses it now ({case.why}):\n{said}"
        assert mine.libs is None, f"bakeplan took it ({case.why}):\n{said}"
        return
    assert mine.libs == theirs.libs, said
    if theirs.libs is not None and mine.description is not None:
        assert mine.description == theirs.description, said
