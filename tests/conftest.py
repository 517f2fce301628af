"""Shared fixtures: where the conformance specimens are, and an isolated environment.

The specimens live in ``tests/fixtures/conformance`` (``SOURCES.md`` there says where
each came from): the suite reads nothing outside the repository, so a bare clone runs it.

Tests never read the developer's own registry or cache: ``isolated_env`` points the
XDG folders into ``tmp_path`` and clears ``BAKEPLAN_REGISTRY``.  Tests that run
delegates ask for ``no_leftovers`` to prove that nothing they started outlives them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_exec import process_gone, this_process_children, wait_until

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO / "tests" / "fixtures" / "conformance"
# Debian's containernetworking-plugins, which the cni example's delegate runs and
# ``.ci/run`` installs.  Off CI a test that needs them is skipped with this reason; on CI
# it runs, and fails if they are missing.
CNI_PLUGINS = Path("/usr/lib/cni")
CNI_MISSING = "the CNI plugins are not installed (.ci/run installs containernetworking-plugins)"
needs_cni_plugins = pytest.mark.skipif(
    not (CNI_PLUGINS / "host-local").exists()
    and not (os.environ.get("CI") or os.environ.get("BAKEPLAN_CI")),
    reason=CNI_MISSING,
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("BAKEPLAN_REGISTRY", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def conformance() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"the conformance specimens are missing: {CONFORMANCE}")
    return CONFORMANCE


def _mentions(pid: int, needle: str) -> bool:
    """Whether process ``pid`` runs from, or was started with, a path under ``needle``."""
    proc = Path(f"/proc/{pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes().decode("utf-8", "replace")
        cwd = os.readlink(proc / "cwd")
    except OSError:
        return False  # gone, or not ours to look at
    return needle in cmdline or needle in cwd


def _leftovers(root: Path) -> list[int]:
    me = os.getpid()
    needle = str(root)
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and int(entry.name) != me
        and _mentions(int(entry.name), needle)
        and not process_gone(int(entry.name))
    ]


@pytest.fixture
def no_leftovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Fails the test if any process it started is still running afterwards.

    Delegates run in private folders under ``TMPDIR``; pointing ``TMPDIR`` (for this
    process and for bakeplan processes a test starts with ``os.environ``) into
    ``tmp_path`` means every delegate and grandchild has ``tmp_path`` in its command
    line or working directory, even after it escaped to init.  The folder itself must
    be empty again: every private working directory removed.
    """
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    assert wait_until(lambda: not _leftovers(tmp_path), timeout=10), (
        f"processes left behind: {_leftovers(tmp_path)}"
    )
    assert wait_until(lambda: all(process_gone(p) for p in this_process_children()), timeout=10), (
        f"children of the test process left: {this_process_children()}"
    )
    assert list(scratch.iterdir()) == [], "a private working directory was not removed"


@pytest.fixture(autouse=True)
def plans_follow_their_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every plan a test makes through ``bakeplan plan`` is checked against
    ``bakeplan schema plan`` as it is written (issue 6: the schema is for everyone's
    tools, so no plan may break it)."""
    from orchestrator.core import plan  # noqa: PLC0415
    from orchestrator.core.planmodel import Plan  # noqa: PLC0415
    from orchestrator.schemas import explainer  # noqa: PLC0415

    write = plan.dumps

    def checked(built: Plan) -> str:
        problems = explainer.explain("plan", built.to_json())
        assert not problems, f"the plan breaks its schema: {problems}"
        return write(built)

    monkeypatch.setattr(plan, "dumps", checked)
