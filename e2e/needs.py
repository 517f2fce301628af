"""Skip or fail: what the real-tools suite does when the machine lacks something.

Off CI a test that needs what is missing (a toolchain, QEMU, root for taps, KVM) is
skipped with the reason; under ``CI=true`` the suite must run, so it fails instead.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def need(missing: str | None) -> None:
    """Go on when nothing is ``missing``; else skip the test with that reason, or fail
    it under CI."""
    if missing is None:
        return
    if in_ci():
        pytest.fail(f"{missing} (CI=true: the real-tools suite must run, not skip)")
    pytest.skip(missing)
