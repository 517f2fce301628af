"""``mirage-net-config``: MirageOS owns the network of a hybrid Mirage/rumprun unikernel.

It consumes ``/net`` (rumprun configures no network at boot), asks rumprun-bake to leave
out rumprun's own TCP/IP (``rumpnet_netinet``, ``rumpnet_netinet6``) while keeping the
packet filter device Mirage's stack reaches the NIC through (``rumpdev_bpf``), lists the
NICs for the domain builder, and gives the OCaml toolchain its packages and the boot
arguments of Mirage's generic stack (``--ipv4=ADDR/PREFIX``, ``--ipv4-gateway=ADDR``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator import schemas
from orchestrator.protocol import Request
from orchestrator.routing import pointer_of
from orchestrator.sdk import Delegate, Refusal, serve

NAME = "mirage-net-config"
VERSION = "1.0.0"
# The packages of Mirage's TCP/IP stack; DHCP adds its client.
STACK_PACKAGES = ("tcpip", "ethernet", "arp")
DHCP_PACKAGES = ("charrua-client",)


def _fragment_schema() -> dict[str, Any]:
    """rumprun's own ``net`` schema, self-contained, so Mirage reads what rumprun would."""
    config = schemas.load("config")
    return {"$schema": config["$schema"], "$defs": config["$defs"], "$ref": "#/$defs/net"}


def _interface_arguments(
    name: str, interface: Mapping[str, Any]
) -> tuple[list[str], list[str], set[str]]:
    """Boot and configure arguments for the one interface Mirage's stack drives."""
    boot: list[str] = []
    configure: list[str] = []
    first: dict[str, str] = {}  # family -> pointer of its address
    for index, address in enumerate(interface.get("addrs") or ()):
        where = pointer_of(["net", "interfaces", name, "addrs", str(index)])
        family, method = address["type"], address["method"]
        if family in first:
            raise Refusal(
                f"Mirage's stack takes one {family} address per interface; "
                f"{first[family]} already gives one",
                pointer=where,
                code="unsupported",
            )
        first[family] = where
        if family == "inet" and method == "static":
            boot.append(f"--ipv4={address['addr']}")
        elif family == "inet":
            configure.append("--dhcp=true")
        elif method == "static":
            boot.append(f"--ipv6={address['addr']}")
        else:
            boot.append("--accept-router-advertisements=true")
    return boot, configure, set(first)


def configure(request: Request) -> Mapping[str, Any]:
    if request.pointer != "/net":
        raise Refusal(
            f"{NAME} configures /net, not {request.pointer}",
            pointer=request.pointer,
            code="unsupported-pointer",
        )
    net = request.fragment
    interfaces: Mapping[str, Any] = net.get("interfaces") or {}
    addressed = [name for name, interface in interfaces.items() if interface.get("addrs")]
    if len(addressed) > 1:
        raise Refusal(
            f"Mirage's generic stack configures one interface's addresses; "
            f"{addressed[0]} and {addressed[1]} both have some",
            pointer=pointer_of(["net", "interfaces", addressed[1], "addrs"]),
            code="unsupported",
        )
    boot: list[str] = []
    configure_args: list[str] = []
    families: set[str] = set()
    if addressed:
        boot, configure_args, families = _interface_arguments(
            addressed[0], interfaces[addressed[0]]
        )
    for gateway in net.get("gateways") or ():
        option = "--ipv4-gateway" if gateway["type"] == "inet" else "--ipv6-gateway"
        families.add(gateway["type"])
        boot.append(f"{option}={gateway['addr']}")
    if families == {"inet"}:
        boot.append("--ipv4-only=true")
    elif families == {"inet6"}:
        boot.append("--ipv6-only=true")

    warnings = []
    if net.get("dns"):
        warnings.append(
            {
                "pointer": "/net/dns",
                "message": "Mirage resolves names with the unikernel's own DNS client; "
                "these resolvers are not passed to it",
            }
        )
    packages = list(STACK_PACKAGES)
    if "--dhcp=true" in configure_args:
        packages.extend(DHCP_PACKAGES)
    ocaml: dict[str, list[str]] = {"packages": packages, "boot": boot}
    if configure_args:
        ocaml["configure"] = configure_args
    answer: dict[str, Any] = {
        "devices": [
            {
                "name": name,
                "kind": "net",
                "pointer": pointer_of(["net", "interfaces", name]),
                "driver": "bpf",
            }
            for name in interfaces
        ],
        "components": {"add": ["rumpdev_bpf"], "remove": ["rumpnet_netinet", "rumpnet_netinet6"]},
        "toolchain": {"ocaml": ocaml},
    }
    if warnings:
        answer["warnings"] = warnings
    return answer


DELEGATE = Delegate(
    name=NAME,
    version=VERSION,
    configure=configure,
    claims=("/net",),
    fragment_schema=_fragment_schema(),
    examples=(
        {
            "interfaces": {
                "vioif0": {
                    "addrs": [{"type": "inet", "method": "static", "addr": "10.0.120.10/24"}]
                }
            },
            "gateways": [{"type": "inet", "addr": "10.0.120.1"}],
        },
        {"interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}}},
    ),
)


def main() -> int:
    return serve(DELEGATE)


if __name__ == "__main__":
    raise SystemExit(main())
