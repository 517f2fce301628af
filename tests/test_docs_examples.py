"""The delegates the docs ship pass ``bakeplan delegates check`` as written.

Each complete delegate in ``docs/PROTOCOL.md`` and ``docs/WRITING-A-DELEGATE.md`` is
saved under the name the doc gives it, and the doc's own command lines (``chmod``,
``bakeplan delegates add``, ``bakeplan delegates check``) run as a shell would run
them, with the installed ``bakeplan`` on PATH: nothing is adapted.  Then the hybrid
example plans with the delegates they registered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from helpers_cli import run_main

DOCS = ("PROTOCOL.md", "WRITING-A-DELEGATE.md")
HYBRID = REPO / "examples" / "hybrid" / "config.json"
COMMAND = re.compile(r"^(chmod|bakeplan delegates (add|check)) ")


def blocks(doc: str) -> list[tuple[str, str]]:
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    return [
        (block.split("\n", 1)[0], block.split("\n", 1)[1])
        for block in text.split("```")[1::2]
        if "\n" in block
    ]


def shipped(doc: str) -> tuple[dict[str, str], list[str]]:
    """The doc's delegates by the file name it gives them, and its command lines."""
    files: dict[str, str] = {}
    sources: dict[str, list[str]] = {"sh": [], "python": []}
    commands: list[str] = []
    for language, body in blocks(doc):
        if language == "sh" and body.startswith("#!"):
            sources["sh"].append(body)
        elif language == "python" and "= Delegate(" in body:
            sources["python"].append(body)
        elif language == "sh":
            commands += [
                line.split("  #")[0].strip() for line in body.splitlines() if COMMAND.match(line)
            ]
    for line in commands:
        words = line.split()
        if "--sdk" in words:
            files[words[words.index("--sdk") + 1]] = sources["python"][0]
        elif "--" in words:
            name = words[words.index("--") + 1].removeprefix("./")
            (body,) = [b for b in sources["sh"] if f"\n# {name}:" in b]
            files[name] = body
    return files, commands


@pytest.mark.parametrize("doc", DOCS)
def test_the_shipped_delegates_pass_the_kit_as_written(tmp_path: Path, doc: str) -> None:
    files, commands = shipped(doc)
    assert any(f.endswith(".py") for f in files), f"{doc}: no Python delegate registered"
    assert any(not f.endswith(".py") for f in files), f"{doc}: no sh delegate registered"
    if any("jq " in body for body in files.values()) and shutil.which("jq") is None:
        pytest.skip("jq is not installed (apt-get install jq)")
    for name, body in files.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    environ = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    checks = 0
    for line in commands:
        done = run("/bin/sh", "-c", line)
        assert done.returncode == 0, f"{doc}: `{line}` failed:\n{done.stdout}{done.stderr}"
        if " check " in line:
            checks += 1
            assert "FAIL" not in done.stdout
            assert done.stderr.strip().endswith("every check passed")
    assert checks == len(files)
    # And they plan: the registered delegates take their parts of the hybrid example.
    done = run("bakeplan", "plan", str(HYBRID))
    assert done.returncode == 0, done.stderr
    ran = {d["delegate"] for d in json.loads(done.stdout)["delegations"]}
    assert ran >= {"hostname-lower", "rumprun"}


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("--sdk", "tool.txt"), "not a Python file with an importable name"),
        (("--sdk", "missing.py"), "--sdk missing.py: no such file"),
        (("--sdk", "tool.py", "--", "./tool"), "give --sdk FILE.py or -- COMMAND, not both"),
    ],
)
def test_add_sdk_refuses_what_it_cannot_run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tool.py").write_text("")
    (tmp_path / "tool.txt").write_text("")
    code, out, err = run_main(capsys, "delegates", "add", "tool", "--claim", "/env", *argv)
    assert (code, out) == (2, "")
    assert said in err
