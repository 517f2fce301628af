"""``cni-ipam`` with the real ``static`` and ``host-local`` plugins of Debian's
containernetworking-plugins (``.ci/run`` installs them): as a process speaking
bakeplan/1, and inside real plans, alone and under mirage-net-config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CNI_PLUGINS, REPO, needs_cni_plugins
from helpers_cli import SPEC

from orchestrator.cli import main

CNI = CNI_PLUGINS
pytestmark = needs_cni_plugins
ADDR = "/net/interfaces/vioif0/addrs/0"
CONTEXT = {"bake_config": "hw_virtio", "platform": "hw", "components": ["rumpnet_netinet"]}


def ask(fragment: Any, pointer: str = ADDR, cni_path: str = str(CNI)) -> tuple[int, dict[str, Any]]:
    program = shutil.which("cni-ipam", path=str(Path(sys.executable).parent))
    assert program is not None
    request = {
        "protocol": "bakeplan/1",
        "op": "configure",
        "delegate": "cni-ipam",
        "pointer": pointer,
        "fragment": fragment,
        "context": CONTEXT,
    }
    done = subprocess.run(
        [program],
        input=json.dumps(request).encode(),
        capture_output=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CNI_PATH": cni_path},
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout)


def host_local(data: Path, subnet: str = "10.1.2.0/24") -> dict[str, Any]:
    return {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": str(data)}


def test_static_plugin_gives_its_address() -> None:
    ipam = {"type": "static", "addresses": [{"address": "192.0.2.9/26"}]}
    code, answer = ask({"type": "inet", "method": "ipam", "ipam": ipam})
    assert code == 0
    assert answer == {
        "protocol": "bakeplan/1",
        "replace": {"type": "inet", "method": "static", "addr": "192.0.2.9/26"},
    }


def test_host_local_leases_from_its_range_and_planning_again_still_works(tmp_path: Path) -> None:
    data = tmp_path / "leases"
    fragment = {"type": "inet", "method": "ipam", "ipam": host_local(data)}
    code, answer = ask(fragment)
    assert code == 0, answer
    assert answer["replace"] == {"type": "inet", "method": "static", "addr": "10.1.2.2/24"}
    assert (data / "bakeplan" / "10.1.2.2").is_file()  # the lease, under the network name
    # The same part asks again: its earlier lease is given back first (no duplicate error).
    code, again = ask(fragment)
    assert code == 0, again
    assert again["replace"]["addr"].endswith("/24")
    leases = [p.name for p in (data / "bakeplan").iterdir() if p.name.startswith("10.")]
    assert leases == [again["replace"]["addr"].split("/")[0]]
    code, six = ask(
        {"type": "inet6", "method": "ipam", "ipam": host_local(data, "fd00:1::/64")},
        pointer="/net/interfaces/vioif0/addrs/1",
    )
    assert code == 0, six
    assert six["replace"] == {"type": "inet6", "method": "static", "addr": "fd00:1::2/64"}


@pytest.mark.parametrize(
    ("fragment", "pointer", "message"),
    [
        (
            {
                "type": "inet",
                "method": "ipam",
                "ipam": {"type": "static", "addresses": [{"address": "bogus"}]},
            },
            f"{ADDR}/ipam",
            "CNI IPAM plugin 'static': the 'address' field is expected to be in CIDR notation",
        ),
        (
            {"type": "inet", "method": "ipam", "ipam": {"type": "no-such-ipam"}},
            f"{ADDR}/ipam/type",
            "CNI IPAM plugin 'no-such-ipam' not found on CNI_PATH",
        ),
        (
            {
                "type": "inet6",
                "method": "ipam",
                "ipam": {"type": "static", "addresses": [{"address": "192.0.2.9/26"}]},
            },
            f"{ADDR}/ipam",
            "gave no IPv6 address (it gave: 192.0.2.9/26)",
        ),
        (
            {"type": "inet", "method": "ipam", "ipam": {"type": "../bin/sh"}},
            f"{ADDR}/ipam/type",
            "the name of a CNI IPAM plugin (no slashes)",
        ),
    ],
)
def test_cni_errors_become_errors_with_the_pointer(
    fragment: Any, pointer: str, message: str
) -> None:
    code, answer = ask(fragment)
    assert code == 1
    assert answer["error"]["pointer"] == pointer
    assert message in answer["error"]["message"]


def test_the_cni_example_plans_under_mirage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNI_PATH", str(CNI))
    config = json.loads((REPO / "examples" / "cni" / "config.json").read_text())
    config["net"]["interfaces"]["vioif0"]["addrs"][0]["ipam"]["dataDir"] = str(tmp_path / "d")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config, indent=2))
    example = REPO / "examples" / "cni" / "registry.json"
    code = main(["plan", *SPEC, str(path), "-r", str(example)])
    out, err = capsys.readouterr()
    assert code == 0, err
    addr = {"type": "inet", "method": "static", "addr": "10.0.120.10/24"}
    assert json.loads(out)["runtime"]["config"]["net"]["interfaces"]["vioif0"]["addrs"] == [addr]
    # Nested under mirage-net-config: cni-ipam runs first, Mirage boots with its address.
    both = tmp_path / "both.json"
    entries = json.loads(example.read_text())["delegates"]
    entries.append(
        {"name": "mirage-net-config", "command": ["mirage-net-config"], "claims": ["/net"]}
    )
    both.write_text(json.dumps({"delegates": entries}))
    both.chmod(0o644)
    config["net"]["interfaces"]["vioif0"]["addrs"][0]["ipam"]["dataDir"] = str(tmp_path / "e")
    path.write_text(json.dumps(config, indent=2))
    code = main(["plan", *SPEC, str(path), "-r", str(both)])
    out, err = capsys.readouterr()
    assert code == 0, err
    plan = json.loads(out)
    assert [d["delegate"] for d in plan["delegations"]] == [
        "cni-ipam",
        "mirage-net-config",
        "rumprun",
    ]
    assert "--ipv4=10.0.120.10/24" in plan["toolchains"]["ocaml"]["boot"]
    # Without cni-ipam's claim, method ipam is not rumprun's: exit 2, pointing at it.
    empty = tmp_path / "empty.json"
    empty.write_text('{"delegates": []}')
    empty.chmod(0o644)
    code = main(["plan", *SPEC, str(path), "-r", str(empty)])
    _, err = capsys.readouterr()
    assert code == 2
    assert f"at {ADDR}/method" in err
    assert "cni-ipam claims the address" in err
