"""Snapshot comparison for what a person sees: rich output recorded as plain text.

Snapshots live in ``tests/snapshots/``. ``BAKEPLAN_UPDATE_SNAPSHOTS=1 make test`` writes
them anew; otherwise a missing or different snapshot fails the test with a diff.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("BAKEPLAN_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path}; record it with BAKEPLAN_UPDATE_SNAPSHOTS=1"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True),
                text.splitlines(True),
                f"{name} (snapshot)",
                f"{name} (now)",
            )
        )
        raise AssertionError(f"{name} differs from its snapshot:\n{diff}")
