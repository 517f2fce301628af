"""Installing bakeplan prints nothing to act on: ``pyproject.toml`` is in today's form
(an SPDX ``license`` string, the setuptools that reads it), and the editable install
``make`` runs, done here into a fresh virtualenv from a copy of the project with pip's
configured index, writes no warning at all."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

from conftest import REPO
from helpers_pip import pip_install, virtualenv


def test_the_license_is_an_spdx_string_and_the_backend_reads_it() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "BSD-2-Clause"
    assert "setuptools>=77" in project["build-system"]["requires"]


def makefile_install() -> tuple[dict[str, str], list[str]]:
    """The variables and the arguments of the Makefile's ``pip install -e`` line."""
    # A recipe line may go on after a backslash, start with @ and send its output to
    # stderr: the command is what is left.
    text = (REPO / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    (line,) = [x.strip() for x in text.splitlines() if "pip install" in x and " -e " in x]
    words = [w for w in shlex.split(line.lstrip("@")) if not re.match(r"^[0-9]?>", w)]
    variables = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    return variables, words[words.index("install") + 1 :]


def test_the_editable_install_make_runs_prints_no_warning(tmp_path: Path) -> None:
    copy = tmp_path / "bakeplan"
    files = (
        subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    env = virtualenv(tmp_path)
    variables, arguments = makefile_install()
    # The install as make does it, but without the dev extras (not what is judged here).
    arguments = [a.replace("'.[dev]'", ".").replace(".[dev]", ".") for a in arguments]
    done = pip_install(env, *arguments, cwd=copy, variables=variables)
    said = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        # The machine's own pip configuration may name index folders it lacks.
        if line.strip() and not re.match(r"^WARNING: Location '.*' is ignored", line)
    ]
    assert said == [], "\n".join(said)
