"""Where the real programs of the rumprun e2e suite are, and what happens when one is
missing: off CI the test skips with the reason; with ``CI=true`` it fails, because CI
must run the real programs, not pass by skipping them.

The two rumprun toolchains are vendored tarballs that ``e2e/setup.sh`` extracts to
``/opt`` (their scripts name their own folder by absolute path, so they cannot live
anywhere else). The vendor folder is ``$BAKEPLAN_VENDOR``, else ``../shared/vendor``
beside the repository.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
E2E = REPO / "e2e"
CASES = E2E / "cases"
PROBE_C = E2E / "probe" / "probe.c"

# The sbin folders hold mke2fs and ip, and are not on every user's PATH.
_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def vendor_dir() -> Path:
    """The folder holding the vendored rumprun tarballs."""
    env = os.environ.get("BAKEPLAN_VENDOR")
    return Path(env) if env else REPO.parent / "shared" / "vendor"


def which(name: str) -> str | None:
    return shutil.which(name, path=_SEARCH)


@dataclass(frozen=True)
class Toolchain:
    """One rumprun hw/x86_64 toolchain, and the dialect of the rumprun it links."""

    dialect: str
    root: Path
    tarball: str

    @property
    def cc(self) -> Path:
        return self.root / "bin" / "x86_64-rumprun-netbsd-gcc"

    @property
    def bake(self) -> Path:
        return self.root / "bin" / "rumprun-bake"

    def missing(self) -> str | None:
        """Why this toolchain cannot be used here, or None when it can."""
        if self.cc.is_file() and self.bake.is_file():
            return None
        tarball = vendor_dir() / self.tarball
        if tarball.is_file():
            return (
                f"the {self.dialect} rumprun toolchain is not extracted at {self.root}: "
                f"run `make e2e` as root (it extracts {tarball})"
            )
        return (
            f"the {self.dialect} rumprun toolchain is missing: no {self.root} and no "
            f"{tarball} (set BAKEPLAN_VENDOR to the folder holding {self.tarball})"
        )


TOOLCHAINS: dict[str, Toolchain] = {
    "master": Toolchain("master", Path("/opt/rumprun"), "rumprun-master-hw-x86_64.tar.xz"),
    "spec": Toolchain("spec", Path("/opt/rumprun-spec"), "rumprun-spec-hw-x86_64.tar.xz"),
}
DIALECTS = tuple(TOOLCHAINS)

# Host programs each boot needs, with the Debian package that brings each one.
HOST_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "genisoimage": "genisoimage",
    "mke2fs": "e2fsprogs",
    "gcc": "build-essential",  # the rumprun compiler wrapper calls the host's gcc and ld
    "ld": "build-essential",
}


def missing_host_tools() -> str | None:
    """Why the host cannot bake and boot, or None when it can."""
    absent = [f"{tool} (Debian: {pkg})" for tool, pkg in HOST_TOOLS.items() if not which(tool)]
    if not absent:
        return None
    return "missing host programs: " + ", ".join(absent) + "; run `make e2e` as root"


def tap_support() -> str | None:
    """Why this host cannot make tap devices for a guest's NICs, or None."""
    if os.geteuid() != 0:
        return "tap devices need root (ip tuntap add)"
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun: the kernel has no tun/tap support"
    if not which("ip"):
        return "no `ip` program (Debian: iproute2)"
    return None


def dhcp_support() -> str | None:
    """Why no DHCP server can answer a guest's DHCP client here, or None."""
    if not which("dnsmasq"):
        return "no dnsmasq to answer the guest's DHCP (Debian: dnsmasq-base)"
    return None


def bakeplan_command() -> list[str]:
    """bakeplan as installed beside the Python running the suite (the project's venv)."""
    beside = Path(sys.executable).parent / "bakeplan"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("bakeplan")
    if found is None:
        pytest.fail("bakeplan is not installed: run the suite with `make e2e`")
    return [found]
