"""What the Solo5 e2e suite needs around bakeplan: a Solo5 built from its snapshot, tap
interfaces, the probe unikernel built against an emitted manifest, and the probe's
reports read back, with what came out of each tap.

Nothing here decides whether bakeplan is right; ``e2e/test_solo5.py`` does, from what
the real programs did.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import needs
import pytest

HERE = Path(__file__).resolve().parent
PROBE_C = HERE / "probe.c"
SETUP = HERE / "setup.sh"
ETHERTYPE_PROBE = 0x88B5
FRAME_TAG = b"bakeplan-probe "
KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO, 0x00); the API version has been 12 since 2007


def vendor_dir() -> Path:
    """The vendored tarballs: ``$BAKEPLAN_VENDOR``, else ``../shared/vendor`` beside the
    repository (as for the rumprun suite)."""
    env = os.environ.get("BAKEPLAN_VENDOR")
    return Path(env) if env else HERE.parents[2] / "shared" / "vendor"


def need(ok: object, reason: str) -> None:
    """Go on when ``ok``; else skip for ``reason``, or fail under ``CI=true`` (``needs``)."""
    needs.need(None if ok else reason)


@dataclass(frozen=True)
class Solo5:
    """A Solo5 build: its tenders, elftool and toolchain."""

    root: Path

    @property
    def elftool(self) -> Path:
        return self.root / "elftool" / "solo5-elftool"

    @property
    def cc(self) -> Path:
        return self.root / "toolchain" / "bin" / "x86_64-solo5-none-static-cc"

    def tender(self, name: str) -> Path:
        return self.root / "tenders" / name / f"solo5-{name}"

    @property
    def bin_path(self) -> str:
        """A PATH on which the emitted lines find ``solo5-hvt`` and ``solo5-spt``."""
        return os.pathsep.join(str(self.tender(n).parent) for n in ("hvt", "spt"))


def build_solo5() -> Solo5:
    """Solo5 from its vendored snapshot, built by ``e2e/solo5/setup.sh`` (once)."""
    tarball = vendor_dir() / "solo5-469c1a8.tar.gz"
    need(tarball.is_file(), f"no Solo5 snapshot at {tarball} (set BAKEPLAN_VENDOR)")
    need(shutil.which("cc") and shutil.which("make"), "no C compiler or make to build Solo5")
    done = subprocess.run(
        ["/bin/sh", str(SETUP)], capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        pytest.fail(f"building Solo5 failed:\n{done.stderr[-3000:]}")
    solo5 = Solo5(Path(done.stdout.strip().splitlines()[-1]))
    for program in (solo5.elftool, solo5.cc, solo5.tender("spt"), solo5.tender("hvt")):
        assert program.is_file(), f"the Solo5 build has no {program}"
    return solo5


def kvm_missing() -> str | None:
    """Why solo5-hvt cannot run here, or None when /dev/kvm answers."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as error:
        return f"solo5-hvt needs KVM: /dev/kvm: {error.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as error:
        return f"solo5-hvt needs KVM: /dev/kvm does not answer: {error.strerror}"
    finally:
        os.close(fd)
    return None if version == 12 else f"solo5-hvt needs KVM API 12; /dev/kvm has {version}"


# -- tap interfaces ---------------------------------------------------------------------


@contextlib.contextmanager
def taps(count: int) -> Iterator[list[str]]:
    """``count`` tap interfaces, up, made for this run and removed after it."""
    need(os.geteuid() == 0, "tap interfaces need root (ip tuntap)")
    need(shutil.which("ip"), "no ip command (iproute2) to make tap interfaces")
    need(Path("/dev/net/tun").exists(), "no /dev/net/tun for tap interfaces")
    # Short enough for IFNAMSIZ, and this run's own: two runs never share a tap.
    names = [f"bpt{os.getpid() % 100000}n{i}" for i in range(count)]
    made: list[str] = []
    try:
        for name in names:
            _ip("tuntap", "add", "dev", name, "mode", "tap")
            made.append(name)
            # No IPv6 on it: the host would otherwise send its own frames out of it.
            Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1\n")
            _ip("link", "set", "dev", name, "up")
        yield names
    finally:
        for name in made:
            _ip("tuntap", "del", "dev", name, "mode", "tap")


def _ip(*args: str) -> None:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    done = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Frame:
    """A probe frame seen on a tap: its source MAC and the device name it carries."""

    tap: str
    source: str
    name: str


class Capture:
    """Listens on taps for the probe's frames (EtherType 0x88b5), from before a boot."""

    def __init__(self, names: Sequence[str]) -> None:
        self.sockets: dict[str, socket.socket] = {}
        for name in names:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE_PROBE))
            sock.bind((name, ETHERTYPE_PROBE))
            sock.setblocking(False)
            self.sockets[name] = sock

    def frames(self, expected: int, timeout: float = 5.0) -> list[Frame]:
        """Every probe frame received, waiting up to ``timeout`` for ``expected`` of them
        (a virtio NIC's last frame may still be on its way when the guest stops)."""
        found: list[Frame] = []
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select(list(self.sockets.values()), [], [], 0.05)
            for tap, sock in self.sockets.items():
                if sock in ready:
                    found += self._drain(tap, sock)
            if (len(found) >= expected and not ready) or time.monotonic() > deadline:
                return found

    @staticmethod
    def _drain(tap: str, sock: socket.socket) -> list[Frame]:
        found = []
        while True:
            try:
                data = sock.recv(2048)
            except OSError as error:
                if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return found
                raise
            payload = data[14:]
            if payload.startswith(FRAME_TAG):
                name = payload[len(FRAME_TAG) :].split(b"\0", 1)[0].decode("ascii", "replace")
                found.append(Frame(tap, data[6:12].hex(":"), name))

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()


# -- the probe --------------------------------------------------------------------------


def probe_header(manifest: Mapping[str, object]) -> str:
    """``probe_devices.h``: the manifest's devices, in its order, with their kinds."""
    devices = manifest["devices"]
    assert isinstance(devices, list)
    rows = [f'    {{"{d["name"]}", {1 if d["type"] == "NET_BASIC" else 0}}},' for d in devices]
    return (
        "/* Written by e2e/solo5/harness.py from the emitted manifest. */\n"
        "static const struct { const char *name; int net; } probe_devices[] = {\n"
        + "\n".join(rows)
        + "\n};\n"
    )


def build_probe(
    solo5: Solo5, manifest_file: Path, folder: Path, targets: Sequence[str]
) -> dict[str, Path]:
    """The probe for each target, against ``manifest_file`` through solo5-elftool."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    (folder / "probe_devices.h").write_text(probe_header(manifest), encoding="ascii")
    run([str(solo5.elftool), "gen-manifest", str(manifest_file), str(folder / "manifest.c")])
    cc = str(solo5.cc)
    run([cc, "-Wall", "-Werror", "-O2", "-I", str(folder), "-c", str(PROBE_C), "-o",
         str(folder / "probe.o")])  # fmt: skip
    run([cc, "-c", str(folder / "manifest.c"), "-o", str(folder / "manifest.o")])
    kernels = {}
    for target in targets:
        kernel = folder / f"probe.{target}"
        run([cc, "-z", f"solo5-abi={target}", str(folder / "probe.o"),
             str(folder / "manifest.o"), "-o", str(kernel)])  # fmt: skip
        kernels[target] = kernel
    return kernels


def run(argv: Sequence[str]) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def write_image(path: Path, marker: str, size: int) -> None:
    """A raw disk image of ``size`` bytes whose first block starts with ``marker``."""
    with path.open("wb") as image:
        image.write(marker.encode("ascii").ljust(512, b"\0"))
        image.truncate(size)


# -- a boot -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Boot:
    """What one boot of the probe printed, and the frames that came out of the taps."""

    line: str
    status: int | None
    output: str  # the guest's console: the program's stdout
    frames: tuple[Frame, ...]
    # The program's own messages, kept apart: QEMU's stderr written in the middle of a
    # console line would break the probe's report.
    errors: str = ""


def boot(line: str, path: str, capture: Capture, nets: int, timeout: float = 120) -> Boot:
    """Run the emitted command ``line`` exactly, by a POSIX shell, until it exits.

    The guest stops at the probe's end (the tenders exit, QEMU powers off through ACPI);
    a boot that outlives ``timeout`` is ended by its process group, which it leads.
    """
    env = {"PATH": path, "LC_ALL": "C", "HOME": os.environ.get("HOME", "/")}
    process = subprocess.Popen(
        ["/bin/sh", "-c", f"exec {line}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        output, errors = process.communicate(timeout=timeout)
        status: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, errors = process.communicate()
        status = None
    frames = capture.frames(expected=nets)
    return Boot(
        line,
        status,
        output.decode("utf-8", "replace"),
        tuple(frames),
        errors.decode("utf-8", "replace"),
    )


@dataclass(frozen=True)
class Report:
    """The probe's report lines, parsed."""

    cmdline: str | None = None
    nets: dict[str, dict[str, str]] = field(default_factory=dict)
    blocks: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: tuple[str, ...] = ()
    done: bool = False


_LINE = re.compile(r"PROBE (?P<what>cmdline|net|block|fail|done)(?: (?P<rest>.*))?")


def report(output: str) -> Report:
    cmdline = None
    nets: dict[str, dict[str, str]] = {}
    blocks: dict[str, dict[str, str]] = {}
    failures = []
    done = False
    for text in output.splitlines():
        match = _LINE.fullmatch(text.rstrip("\r"))
        if match is None:
            continue
        what, rest = match["what"], match["rest"] or ""
        if what == "cmdline":
            cmdline = rest.removeprefix("[").removesuffix("]")
        elif what in ("net", "block"):
            name, *pairs = rest.split(" ")
            if not all("=" in pair for pair in pairs):
                failures.append(f"an unreadable report line: {text!r}")
                continue
            (nets if what == "net" else blocks)[name] = dict(p.split("=", 1) for p in pairs)
        elif what == "fail":
            failures.append(rest)
        else:
            done = True
    return Report(cmdline, nets, blocks, tuple(failures), done)
