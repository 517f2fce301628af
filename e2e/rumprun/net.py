"""The host side of a guest's NICs: a tap device per net device of the plan, made for
one boot and removed after it, and a DHCP server on a tap whose interface the plan
configures by DHCP.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rumprun.proc import Started, ToolFailed, run
from rumprun.tools import which

# Linux allows 15 characters; the pid keeps two suites on one machine apart.
_PREFIX = f"bkp{os.getpid() % 0x10000:04x}n"


def tap_name(index: int) -> str:
    """The tap the harness gives the plan's ``index``-th net device."""
    return f"{_PREFIX}{index}"


def dhcp_network(index: int) -> ipaddress.IPv4Network:
    """The subnet the DHCP server on tap ``index`` leases from."""
    return ipaddress.IPv4Network(f"10.199.{index}.0/24")


def _ip(*args: str) -> None:
    run([which("ip") or "ip", *args], timeout=30)


@contextlib.contextmanager
def taps(names: Sequence[str]) -> Iterator[list[str]]:
    """Make tap devices ``names`` (up, no address) and remove them afterwards, also
    when the boot fails."""
    made: list[str] = []
    try:
        for name in names:
            with contextlib.suppress(ToolFailed):
                # One left by an earlier run that was killed: take it over.
                _ip("tuntap", "del", "dev", name, "mode", "tap")
            _ip("tuntap", "add", "dev", name, "mode", "tap")
            made.append(name)
            _ip("link", "set", name, "up")
        yield made
    finally:
        for name in reversed(made):
            with contextlib.suppress(ToolFailed):
                _ip("tuntap", "del", "dev", name, "mode", "tap")


@dataclass(frozen=True)
class DhcpPool:
    """Where a guest's DHCP lease must come from."""

    network: ipaddress.IPv4Network

    @property
    def server(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def first(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 50

    @property
    def last(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 99

    def holds(self, addr: str, prefixlen: int) -> bool:
        return (
            self.first <= ipaddress.IPv4Address(addr) <= self.last
            and prefixlen == self.network.prefixlen
        )


@contextlib.contextmanager
def dhcp_server(tap: str, pool: DhcpPool, *, workdir: Path) -> Iterator[Started]:
    """dnsmasq answering DHCP on ``tap`` only (no DNS, no lease file), ended by its pid."""
    _ip("addr", "add", f"{pool.server}/{pool.network.prefixlen}", "dev", tap)
    server = Started(
        [
            which("dnsmasq") or "dnsmasq",
            "--keep-in-foreground",
            "--log-facility=-",
            "--conf-file=/dev/null",
            "--port=0",
            f"--interface={tap}",
            "--bind-interfaces",
            "--except-interface=lo",
            "--leasefile-ro",
            "--dhcp-authoritative",
            f"--dhcp-range={pool.first},{pool.last},{pool.network.netmask},1h",
            # No router option: a default route in the guest is then the plan's alone.
            "--dhcp-option=3",
            "--pid-file=",
        ],
        log=workdir / f"dnsmasq-{tap}.log",
    )
    try:
        yield server
    finally:
        server.stop()
