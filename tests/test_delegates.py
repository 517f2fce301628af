"""The reference delegates as real processes speaking bakeplan/1."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import schemas

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
    schemas.validator("response").validate(answer)
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
        "remove": ["rumpnet_netinet", "rumpnet_netinet6"],
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
    assert ocaml["boot"] == ["--ipv6=2001:db8::2/64", "--ipv6-gateway=2001:db8::1"]


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
