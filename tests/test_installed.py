"""Which installed Python code a command runs (``core.installed``), read from the real
interpreter running these tests: ``python -m MODULE`` past the interpreter's options, a
script or a standard module giving nothing more, a ``#!`` script that no distribution
installed, and the files a source tree stands for.  Console scripts, editable installs
and what is kept on disk are test_cache_keys'."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import REPO
from helpers_exec import write_python, write_sh

from orchestrator.core import installed


@pytest.mark.parametrize(
    "options",
    [
        ("-m", "orchestrator"),
        ("-morchestrator",),
        ("-W", "ignore", "-m", "orchestrator"),
        ("-I", "-m", "orchestrator"),
    ],
    ids=["m", "m-joined", "valued-option", "flag"],
)
def test_python_m_runs_the_distribution_providing_the_module(options: tuple[str, ...]) -> None:
    (code,) = installed.code_of([sys.executable, *options])
    assert code.distribution.startswith("bakeplan ")
    # This checkout, however it was installed (editable, or its egg-info on the path).
    assert str(REPO / "orchestrator" / "errors.py") in code.files
    assert list(code.files) == sorted(code.files)
    # Its requirements count by the versions installed.
    names = [r.split(" ")[0] for r in code.requires]
    assert {"jsonschema", "rich"} <= set(names)
    assert all(len(r.split(" ")) == 2 for r in code.requires)


def test_an_installed_distribution_counts_by_its_installed_files() -> None:
    (code,) = installed.code_of([sys.executable, "-m", "jsonschema"])
    assert code.distribution.startswith("jsonschema ") and not code.editable
    assert any(f.endswith("jsonschema/validators.py") for f in code.files)
    assert not any(f.endswith((".pyc", ".pyo")) for f in code.files)


@pytest.mark.parametrize(
    "arguments",
    [
        ("tool.py", "-m", "orchestrator"),  # a script: its own bytes are in the key already
        ("-m", "json"),  # the standard library is the interpreter's
        ("-W", "-m", "orchestrator"),  # -m is -W's value here: no module is run
        (),
    ],
    ids=["script", "stdlib", "option-value", "bare"],
)
def test_nothing_more_when_no_installed_module_runs(arguments: tuple[str, ...]) -> None:
    assert installed.code_of([sys.executable, *arguments]) == ()


def test_a_python_script_no_distribution_installed_adds_nothing(tmp_path: Path) -> None:
    script = write_python(tmp_path, "loose", "print('hi')\n")
    assert installed.code_of([str(script)]) == ()
    assert installed.code_of([str(write_sh(tmp_path, "shell", "exit 0\n"))]) == ()
    assert installed.code_of([]) == ()


def test_a_source_tree_stands_for_its_files_without_bytecode_vcs_or_virtualenvs(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "src"
    for name in (
        "pkg/a.py",
        "pkg/sub/b.py",
        "pkg/c.pyc",
        "pkg/__pycache__/a.cpython-311.pyc",
        ".git/config",
        "pkg/.hidden/x.py",
        "pkg/node_modules/m.js",
        "pkg/venv/pyvenv.cfg",
        "pkg/venv/lib/v.py",
    ):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("")
    single = tmp_path / "single.py"
    single.write_text("")
    folders: set[str] = set()
    found = list(installed.files_under([str(tree), str(single)], folders))
    assert found == [str(tree / "pkg" / "a.py"), str(tree / "pkg" / "sub" / "b.py"), str(single)]
    assert folders == {
        str(tree),
        str(tree / "pkg"),
        str(tree / "pkg" / "sub"),
        str(single),
    }
