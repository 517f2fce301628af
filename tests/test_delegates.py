"""The reference delegates as real processes speaking bakeplan/1."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.schemas import explainer

BIN = Path(sys.executable).parent
CONTEXT = {"bake_config": "hw_virtio", "platform": "hw", "components": ["rumpnet_netinet"]}


def ask(command: str, request: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    program = shutil.which(command, path=str(BIN))
    assert program is not None, f"{command} is not installed beside {sys.executable}"
    done = subprocess.run(
        [program],
        input=json.dumps(request).encode(),
        capture_output=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    answer = json.loads(done.stdout)
    explainer.validator("response").validate(answer)
    return done.returncode, answer, done.stderr.decode()


def configure(command: str, pointer: str, fragment: Any) -> tuple[int, dict[str, Any], str]:
    return ask(
        command,
        {
            "protocol": "bakeplan/1",
            "op": "configure",
            "delegate": command,
            "pointer": pointer,
            "fragment": fragment,
            "context": CONTEXT,
        },
    )


@pytest.mark.parametrize("command", ["mirage-net-config", "rumprun-config"])
def test_describe(command: str) -> None:
    code, answer, _ = ask(command, {"protocol": "bakeplan/1", "op": "describe"})
    assert code == 0
    assert "bakeplan/1" in answer["protocols"]
    assert answer["claims"]


def test_mirage_static_ipv4_with_gateway() -> None:
    code, answer, _ = configure(
        "mirage-net-config",
        "/net",
        {
            "interfaces": {
                "vioif0": {"addrs": [{"type": "inet", "method": "static", "addr": "10.0.0.2/24"}]}
            },
            "gateways": [{"type": "inet", "addr": "10.0.0.1"}],
        },
    )
    assert code == 0
    assert "replace" not in answer
    assert answer["components"] == {
        "add": ["rumpdev_bpf"],
        "remove": ["rumpnet_netinet"],
    }
    assert answer["toolchain"]["ocaml"]["boot"] == [
        "--ipv4=10.0.0.2/24",
        "--ipv4-gateway=10.0.0.1",
        "--ipv4-only=true",
    ]
    assert answer["devices"] == [
        {"name": "vioif0", "kind": "net", "pointer": "/net/interfaces/vioif0", "driver": "bpf"}
    ]


def test_mirage_dhcp_and_ipv6() -> None:
    code, answer, _ = configure(
        "mirage-net-config",
        "/net",
        {
            "interfaces": {
                "vioif0": {
                    "addrs": [
                        {"type": "inet", "method": "dhcp"},
                        {"type": "inet6", "method": "static", "addr": "2001:db8::2/64"},
                    ]
                }
            },
            "gateways": [{"type": "inet6", "addr": "2001:db8::1"}],
        },
    )
    assert code == 0
    ocaml = answer["toolchain"]["ocaml"]
    assert ocaml["configure"] == ["--dhcp=true"]
    assert "charrua-client" in ocaml["packages"]
    assert ocaml["boot"] == [
        "--ipv6=2001:db8::2/64",
        "--accept-router-advertisements=false",
        "--ipv6-gateway=2001:db8::1",
    ]


def test_mirage_ipv6_auto_with_nameservers() -> None:
    code, answer, _ = configure(
        "mirage-net-config",
        "/net",
        {
            "interfaces": {"vioif0": {"addrs": [{"type": "inet6", "method": "auto"}]}},
            "dns": {"nameservers": ["2001:db8::53", "9.9.9.9"]},
        },
    )
    assert code == 0
    ocaml = answer["toolchain"]["ocaml"]
    assert ocaml["boot"] == [
        "--accept-router-advertisements=true",
        "--ipv6-only=true",
        "--nameservers=tcp:2001:db8::53,tcp:9.9.9.9",
    ]
    assert "configure" not in ocaml
    assert "warnings" not in answer


def test_mirage_static_dual_stack_has_both_gateways_and_no_only_flag() -> None:
    code, answer, _ = configure(
        "mirage-net-config",
        "/net",
        {
            "interfaces": {
                "vioif0": {
                    "addrs": [
                        {"type": "inet", "method": "static", "addr": "10.0.0.2/24"},
                        {"type": "inet6", "method": "auto"},
                    ]
                }
            },
            "gateways": [
                {"type": "inet", "addr": "10.0.0.1"},
                {"type": "inet6", "addr": "fe80::1"},
            ],
        },
    )
    assert code == 0
    assert answer["toolchain"]["ocaml"]["boot"] == [
        "--ipv4=10.0.0.2/24",
        "--accept-router-advertisements=true",
        "--ipv4-gateway=10.0.0.1",
        "--ipv6-gateway=fe80::1",
    ]


@pytest.mark.parametrize(
    ("fragment", "pointer", "message"),
    [
        (
            {
                "interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}},
                "gateways": [{"type": "inet", "addr": "10.0.0.1"}],
            },
            "/net/gateways/0",
            "DHCP",
        ),
        (
            {
                "interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}},
                "gateways": [{"type": "inet6", "addr": "2001:db8::1"}],
            },
            "/net/gateways/0",
            "no inet6 address",
        ),
        (
            {
                "interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]}},
                "dns": {"search": ["example.org"]},
            },
            "/net/dns/search",
            "no search list",
        ),
        (
            {
                "interfaces": {
                    "vioif0": {"addrs": [{"type": "inet", "method": "dhcp"}]},
                    "vioif1": {"addrs": [{"type": "inet6", "method": "auto"}]},
                }
            },
            "/net/interfaces/vioif1/addrs",
            "one interface",
        ),
    ],
)
def test_mirage_refuses_what_its_stack_cannot_do(
    fragment: dict[str, Any], pointer: str, message: str
) -> None:
    code, answer, _ = configure("mirage-net-config", "/net", fragment)
    assert code == 1
    assert answer["error"]["pointer"] == pointer
    assert message in answer["error"]["message"]


def test_mirage_refuses_two_addresses_of_one_family_with_a_pointer() -> None:
    code, answer, _ = configure(
        "mirage-net-config",
        "/net",
        {
            "interfaces": {
                "vioif0": {
                    "addrs": [
                        {"type": "inet", "method": "dhcp"},
                        {"type": "inet", "method": "static", "addr": "10.0.0.2/24"},
                    ]
                }
            }
        },
    )
    assert code == 1
    assert answer["error"]["pointer"] == "/net/interfaces/vioif0/addrs/1"


def test_mirage_refuses_an_invalid_fragment_with_a_pointer_into_the_config() -> None:
    code, answer, _ = configure(
        "mirage-net-config",
        "/net",
        {
            "interfaces": {
                "vioif0": {"addrs": [{"type": "inet", "method": "static", "addr": "10.0.0.300/24"}]}
            }
        },
    )
    assert code == 1
    assert answer["error"]["pointer"] == "/net/interfaces/vioif0/addrs/0/addr"


def test_rumprun_config_answers_as_the_builtin_layer() -> None:
    fragment = {"mount": {"/data": {"source": "blk", "path": "/dev/ld0a"}}}
    code, answer, _ = configure("rumprun-config", "", fragment)
    assert code == 0
    assert answer["replace"] == fragment
    assert answer["devices"] == [
        {"name": "ld0", "kind": "block", "pointer": "/mount/~1data", "path": "/dev/ld0"}
    ]


def test_rumprun_config_refuses_with_a_pointer() -> None:
    code, answer, _ = configure("rumprun-config", "/rc", [{"bin": "x", "runmode": "|"}])
    assert code == 1
    assert answer["error"]["pointer"] == "/rc/0/runmode"


def test_bad_request_is_an_error_object() -> None:
    code, answer, _ = ask("rumprun-config", {"protocol": "bakeplan/9", "op": "describe"})
    assert code == 1
    assert answer["error"]["code"] == "unsupported-protocol"
