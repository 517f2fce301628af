"""Driving the CLI in-process through ``main(argv)``, as a user's command would run."""

from __future__ import annotations

import sys

import pytest

from orchestrator.cli import main

# bakeplan as a real process: this interpreter running the package.
BAKEPLAN = (sys.executable, "-m", "orchestrator")
# Plan for the specification's parser: tests of routing and assembly check the residual
# config itself, which that dialect keeps as it is.
SPEC = ("--rumprun", "spec")


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``bakeplan ARGV``; never a traceback on stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
