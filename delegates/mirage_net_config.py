"""``mirage-net-config``: MirageOS owns the network of a hybrid Mirage/rumprun unikernel.

It consumes ``/net`` (rumprun configures no network at boot), asks rumprun-bake to leave
out rumprun's own IPv4 stack (``rumpnet_netinet``; its IPv6 stack stays, unconfigured,
because rumprun cannot boot with neither) while keeping the packet filter device
Mirage's stack reaches the NIC through (``rumpdev_bpf``), lists the
NICs for the domain builder, and gives the OCaml toolchain its packages and the boot
arguments of Mirage 4's generic stack: ``--ipv4=ADDR/PREFIX``, ``--ipv4-gateway``,
``--ipv4-only``, ``--ipv6``, ``--ipv6-gateway``, ``--ipv6-only``,
``--accept-router-advertisements``, and its DNS client's ``--nameservers``.  DHCP is a
configure-time choice in Mirage (``mirage configure --dhcp true``), so it goes to the
toolchain's ``configure`` arguments.  What Mirage's stack cannot do (two interfaces with
addresses, two addresses of one family, a gateway with DHCP or without an address of its
family, DNS search suffixes) is refused with a pointer.
"""

from __future__ import annotations

from orchestrator.pointers import pointer_of
from orchestrator.schemas import files
from orchestrator.sdk import Delegate, Refusal, serve

# The delegate's own start is what it costs bakeplan: nothing imported for types alone
# (not typing.TYPE_CHECKING either; see orchestrator.core.wire).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from orchestrator.core.wire import Request

NAME = "mirage-net-config"
VERSION = "1.0.0"
# The packages of Mirage's TCP/IP stack; DHCP adds its client.
STACK_PACKAGES = ("tcpip", "ethernet", "arp")
# rumprun's IPv4 stack, which Mirage's replaces.  Its IPv6 stack stays linked, and
# unconfigured: rumpnet_config, which librumprun_base cannot link without, panics at boot
# when neither stack is linked ("netconfig: missing both inet and inet6").
REMOVED = ("rumpnet_netinet",)
DHCP_PACKAGES = ("charrua-client",)


def _fragment_schema() -> dict[str, Any]:
    """rumprun's own ``net`` schema, self-contained, so Mirage reads what rumprun would."""
    config = files.load("config")
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
            # Mirage 4 accepts router advertisements unless told not to; a static address
            # is the whole IPv6 configuration, as rumprun's static method is.
            boot.append(f"--ipv6={address['addr']}")
            boot.append("--accept-router-advertisements=false")
        else:
            boot.append("--accept-router-advertisements=true")
    return boot, configure, set(first)


def _gateway_arguments(net: Mapping[str, Any], families: set[str], *, dhcp: bool) -> list[str]:
    """``--ipv4-gateway`` / ``--ipv6-gateway``, refusing what Mirage's stack cannot use."""
    boot: list[str] = []
    for index, gateway in enumerate(net.get("gateways") or ()):
        where = pointer_of(["net", "gateways", str(index)])
        family = gateway["type"]
        if family not in families:
            raise Refusal(
                f"an {family} gateway, but no {family} address: Mirage's stack routes only "
                "the families it has an address for",
                pointer=where,
                code="unsupported",
            )
        if family == "inet" and dhcp:
            raise Refusal(
                "an inet gateway with DHCP: Mirage's DHCP stack takes its gateway from the "
                "DHCP lease and has no --ipv4-gateway",
                pointer=where,
                code="unsupported",
            )
        option = "--ipv4-gateway" if family == "inet" else "--ipv6-gateway"
        boot.append(f"{option}={gateway['addr']}")
    return boot


def _dns_arguments(dns: Mapping[str, Any]) -> list[str]:
    """Mirage 4's DNS client (``generic_dns_client``) takes its resolvers at boot as
    ``--nameservers``; it has no search list, so search suffixes are refused."""
    if dns.get("search"):
        raise Refusal(
            "Mirage's DNS client has no search list; write fully qualified names",
            pointer="/net/dns/search",
            code="unsupported",
        )
    servers = dns.get("nameservers") or []
    if not servers:
        return []
    return ["--nameservers=" + ",".join(f"tcp:{server}" for server in servers)]


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
    boot.extend(_gateway_arguments(net, families, dhcp="--dhcp=true" in configure_args))
    if families == {"inet"}:
        boot.append("--ipv4-only=true")
    elif families == {"inet6"}:
        boot.append("--ipv6-only=true")
    boot.extend(_dns_arguments(net.get("dns") or {}))
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
        "components": {"add": ["rumpdev_bpf"], "remove": list(REMOVED)},
        "toolchain": {"ocaml": ocaml},
    }
    return answer


DELEGATE = Delegate(
    name=NAME,
    version=VERSION,
    pure=True,  # the answer depends on the request alone
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
