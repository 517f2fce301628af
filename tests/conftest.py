"""Shared fixtures: where the conformance specimens are, and an isolated environment.

Tests never read the developer's own registry or cache: ``isolated_env`` points the
XDG folders into ``tmp_path`` and clears ``BAKEPLAN_REGISTRY``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance"


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
