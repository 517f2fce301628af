"""The cache keys cover the code that runs: a Python delegate installed as a console
script (editable or not) is keyed by its distribution's files, so editing its module or
reinstalling other code is a miss, for describe and configure alike; a registry entry's
``inputs`` enter the key; a warm plan is the cold plan's very bytes.

The Python delegates here are real distributions installed with pip into a virtualenv
in ``tmp_path``, from the package index pip is configured with (the build needs
setuptools); without one the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from helpers_cli import run_main
from helpers_exec import write_sh
from helpers_pip import pip_install, virtualenv
from helpers_protocol import write_registry

from orchestrator.core import digest, installed

CONFIG = {"rc": [{"bin": "www", "argv": ["www"]}], "env": {"TZ": "UTC"}}

MODULE = """
import json, sys

VERSION = "v1"


def main():
    request = json.load(sys.stdin)
    if request["op"] == "describe":
        print(json.dumps({"protocol": "bakeplan/1", "name": "toy", "version": VERSION,
                          "protocols": ["bakeplan/1"], "pure": True,
                          "fragment_schema": {"type": "object"}}))
        return 0
    with open(__file__ + ".runs", "a") as runs:
        runs.write("x")
    print(json.dumps({"protocol": "bakeplan/1", "replace": request["fragment"],
                      "toolchain": {"toy": {"version": [VERSION]}}}))
    return 0
"""

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "toy-delegate"
version = "1.0"

[project.scripts]
toy-delegate = "toy_delegate.main:main"

[tool.setuptools]
packages = ["toy_delegate"]
"""


def project(folder: Path) -> Path:
    source = folder / "toy"
    (source / "toy_delegate").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "toy_delegate" / "__init__.py").write_text("")
    (source / "toy_delegate" / "main.py").write_text(textwrap.dedent(MODULE))
    return source


def registry(folder: Path, entry: dict[str, object]) -> Path:
    return write_registry(folder, entry)


def plan(
    capsys: pytest.CaptureFixture[str], folder: Path, reg: Path
) -> tuple[str, dict[str, object], bool]:
    """The plan's text, its toolchains, and whether --timings says the run was cached."""
    config = folder / "config.json"
    config.write_text(json.dumps(CONFIG))
    code, out, err = run_main(capsys, "plan", str(config), "-r", str(reg), "--timings")
    assert code == 0, err
    line = next(x for x in err.splitlines() if " at /env: " in x)
    return out, json.loads(out)["toolchains"], ": cached in " in line


def test_editing_an_editable_console_script_delegate_is_a_miss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = project(tmp_path)
    env = virtualenv(tmp_path)
    pip_install(env, "--quiet", "--editable", str(source))
    script = env / "bin" / "toy-delegate"
    reg = registry(tmp_path, {"name": "toy", "command": [str(script)], "claims": ["/env"]})
    # What the key covers: the editable install's source files, not the wrapper alone.
    (code,) = installed.code_of([str(script)])
    assert code.editable and code.distribution == "toy-delegate 1.0"
    assert str(source / "toy_delegate" / "main.py") in code.files
    cold, chains, hit = plan(capsys, tmp_path, reg)
    assert (chains, hit) == ({"toy": {"version": ["v1"]}}, False)
    warm, _, hit = plan(capsys, tmp_path, reg)
    assert hit and warm == cold  # the same bytes, whether cached or not
    wrapper = script.read_bytes()
    module = source / "toy_delegate" / "main.py"
    module.write_text(module.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
    assert script.read_bytes() == wrapper  # the console script itself did not change
    _, chains, hit = plan(capsys, tmp_path, reg)
    assert (chains, hit) == ({"toy": {"version": ["v2"]}}, False)
    # The describe answer was asked again too: it says the new version.
    done = run_main(capsys, "delegates", "show", "toy", "-r", str(reg))
    assert json.loads(done[1])["describe"]["version"] == "v2"
    assert plan(capsys, tmp_path, reg)[2] is True


def test_reinstalling_other_code_is_a_miss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = project(tmp_path)
    env = virtualenv(tmp_path)
    pip_install(env, "--quiet", str(source))
    script = env / "bin" / "toy-delegate"
    reg = registry(tmp_path, {"name": "toy", "command": [str(script)], "claims": ["/env"]})
    (code,) = installed.code_of([str(script)])
    assert not code.editable
    assert any(f.endswith("toy_delegate/main.py") and "site-packages" in f for f in code.files)
    assert plan(capsys, tmp_path, reg)[1:] == ({"toy": {"version": ["v1"]}}, False)
    assert plan(capsys, tmp_path, reg)[2] is True
    module = source / "toy_delegate" / "main.py"
    module.write_text(module.read_text().replace('VERSION = "v1"', 'VERSION = "v3"'))
    installed._memo.clear()  # a new bakeplan process would find the files anew
    pip_install(env, "--quiet", "--force-reinstall", str(source))
    assert plan(capsys, tmp_path, reg)[1:] == ({"toy": {"version": ["v3"]}}, False)


def test_a_package_delegate_is_keyed_by_its_distributions_files() -> None:
    """bakeplan's own reference delegates, as ``python -m orchestrator.sdk`` runs them:
    the key covers the distribution that provides the module (here the editable
    checkout's sources, ``delegates/mirage_net_config.py`` among them)."""
    argv = [sys.executable, "-m", "orchestrator.sdk", "bakeplan_delegates.mirage_net_config:X"]
    codes = installed.code_of(argv)
    files = {f for c in codes for f in c.files}
    assert any(f.endswith("mirage_net_config.py") for f in files)
    assert any(f.endswith(os.path.join("orchestrator", "sdk.py")) for f in files)


def test_a_shell_delegate_is_keyed_by_its_own_bytes_only(tmp_path: Path) -> None:
    script = write_sh(tmp_path, "d", "cat\n")
    assert installed.code_of([str(script)]) == ()
    before = digest.command_digest([str(script)])
    (tmp_path / "unrelated.py").write_text("x = 1\n")
    assert digest.command_digest([str(script)]) == before


def test_inputs_enter_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A delegate that reads files of its own says so with ``inputs``: a changed file, or
    a new one its glob matches, is a miss; another file is not."""
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "a.txt").write_text("v1\n")
    write_sh(
        tmp_path,
        "reader",
        f"""
        request=$(cat)
        case $request in
          *'"op":"describe"'*)
            echo '{{"protocol":"bakeplan/1","name":"reader","version":"1",'\
'"protocols":["bakeplan/1"]}}'
            exit 0 ;;
        esac
        echo x >> {tmp_path}/reader.runs
        v=$(cat {tmp_path}/tables/*.txt | tr '\\n' ' ')
        printf '{{"protocol":"bakeplan/1","toolchain":{{"t":{{"v":["%s"]}}}}}}\\n' "$v"
        """,
    )
    entry = {
        "name": "reader",
        "command": ["./reader"],
        "claims": ["/env"],
        "cache": True,
        "inputs": ["tables/*.txt"],
    }
    reg = registry(tmp_path, entry)
    assert plan(capsys, tmp_path, reg)[1:] == ({"t": {"v": ["v1 "]}}, False)
    assert plan(capsys, tmp_path, reg)[2] is True
    (tmp_path / "tables" / "a.txt").write_text("v2\n")
    assert plan(capsys, tmp_path, reg)[1:] == ({"t": {"v": ["v2 "]}}, False)
    (tmp_path / "tables" / "b.txt").write_text("more\n")
    assert plan(capsys, tmp_path, reg)[1:] == ({"t": {"v": ["v2 more "]}}, False)
    (tmp_path / "tables" / "notes.md").write_text("not an input\n")
    assert plan(capsys, tmp_path, reg)[2] is True
    # Without inputs the same change goes unseen: what the key covers is what is listed.
    reg = registry(tmp_path, {k: v for k, v in entry.items() if k != "inputs"})
    assert plan(capsys, tmp_path, reg)[2] is False
    (tmp_path / "tables" / "a.txt").write_text("v3\n")
    _, chains, hit = plan(capsys, tmp_path, reg)
    assert hit and chains == {"t": {"v": ["v2 more "]}}  # stale, as documented


def test_add_stores_inputs_as_absolute_globs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_sh(tmp_path, "d", "cat\n")
    monkeypatch.chdir(tmp_path)
    argv = ("delegates", "add", "d", "--claim", "/env", "--input", "tables/*.txt", "--", "./d")
    code, _, err = run_main(capsys, *argv)
    assert code == 0, err
    code, out, err = run_main(capsys, "delegates", "list", "--json")
    assert code == 0, err
    (entry,) = [e for e in json.loads(out) if e["name"] == "d"]
    assert entry["inputs"] == [str(tmp_path / "tables" / "*.txt")]


def _kept_file(argv: list[str]) -> Path:
    return installed._kept_path(argv)


def test_what_a_python_command_runs_is_kept_and_found_again_when_a_stamp_moves() -> None:
    """bakeplan's own console script: what was found is kept on disk with the stamps of
    what was read, used as kept while they hold, found again when one moves."""
    argv = [str(Path(sys.executable).parent / "mirage-net-config")]
    installed._memo.clear()
    found = installed.code_of(argv)
    kept = _kept_file(argv)
    document = json.loads(kept.read_text())
    assert [c["distribution"] for c in document["code"]] == [c.distribution for c in found]
    assert any(path.endswith("site-packages") for path, _ in document["watched"])
    # Used as kept while every stamp holds (a marked distribution name shows it was).
    document["code"][0]["distribution"] = "kept 0"
    kept.write_text(json.dumps(document))
    installed._memo.clear()
    assert installed.code_of(argv)[0].distribution == "kept 0"
    # A folder that changed (a file added or removed) means finding it again.
    document["watched"][0][1] = [0, 0, 0]
    kept.write_text(json.dumps(document))
    installed._memo.clear()
    assert installed.code_of(argv) == found
    assert json.loads(kept.read_text())["code"][0]["distribution"] == found[0].distribution


def test_a_shell_command_keeps_nothing(tmp_path: Path) -> None:
    script = write_sh(tmp_path, "d", "cat >/dev/null; echo '{}'")
    installed._memo.clear()
    assert installed.code_of([str(script)]) == ()
    assert not _kept_file([str(script)]).exists()
