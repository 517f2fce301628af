"""Real installs for the tests that need a Python distribution: a fresh virtualenv in
``tmp_path`` and this interpreter's pip installing into it, with the user's own pip
configuration (the index it names), not the tests' XDG folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def virtualenv(folder: Path) -> Path:
    """A virtualenv without pip at ``folder/env``: pip is run from outside it."""
    env = folder / "env"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120
    )
    return env


def pip_install(
    env: Path, *args: str, cwd: Path | None = None, variables: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``pip install --no-deps ARGS`` into ``env``; skipped, saying why, when pip cannot
    build here (no index serving the build's setuptools)."""
    environ = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    python = str(env / "bin" / "python")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environ | (variables or {}),
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        said = f"pip cannot install here: {done.stderr.strip().splitlines()[-3:]}"
        # CI installs the project itself this way: there, a failed install is a failure.
        if os.environ.get("CI") or os.environ.get("BAKEPLAN_CI"):
            pytest.fail(said)
        pytest.skip(said)
    return done
