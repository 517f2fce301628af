"""``cni-ipam``: a CNI IPAM plugin (``host-local``, ``static``, ``dhcp``...) as a delegate.

It resolves an address fragment ``{"type": "inet"|"inet6", "method": "ipam", "ipam":
{...}}`` into the static address rumprun configures at boot, ``{"type": ..., "method":
"static", "addr": "A.B.C.D/LEN"}``, by running the plugin ``ipam.type`` found on
``CNI_PATH`` (default ``/usr/lib/cni:/opt/cni/bin``) as the CNI specification says:
``CNI_COMMAND=ADD``, ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_PATH`` in
its environment and the network configuration (``cniVersion`` 1.0.0, a ``name``, the
``ipam`` object) on its stdin.  A CNI error object becomes an error with the pointer.

The container ID is derived from the pointer and the ipam object, so one part of one
config always asks as the same container; before ``ADD`` it sends ``DEL`` for that ID
(which every plugin must accept for an unknown container) so that planning again gives
back the part's earlier lease instead of failing on a duplicate allocation.  IPAM ADD
never enters the network namespace, so ``CNI_NETNS`` names a placeholder path; plugins
still require it to be set.

This is a delegate, its own program: it starts the plugin itself (``_run_plugin``, with
a time limit and no shell), which bakeplan's rule that only ``runner.py`` starts
processes does not cover.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.core.protocol import Request
from orchestrator.pointers import tokens_of
from orchestrator.sdk import Delegate, Refusal, serve

NAME = "cni-ipam"
VERSION = "1.0.0"
CNI_VERSION = "1.0.0"
DEFAULT_CNI_PATH = "/usr/lib/cni:/opt/cni/bin"
NETWORK_NAME = "bakeplan"
# IPAM plugins never enter the namespace on ADD/DEL, but require the variable set.
NETNS_PLACEHOLDER = "/var/run/netns/bakeplan-unikernel"
PLUGIN_TIMEOUT = 20.0  # below bakeplan's default limit of 30 s, so our error is the one seen

FRAGMENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["type", "method", "ipam"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": ["inet", "inet6"]},
        "method": {"const": "ipam"},
        "ipam": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                    "x-message": "the name of a CNI IPAM plugin (no slashes)",
                }
            },
        },
    },
}


@dataclass(frozen=True, kw_only=True)
class PluginRun:
    """How one plugin run ended."""

    returncode: int
    stdout: bytes
    stderr: bytes


def _run_plugin(path: str, env: Mapping[str, str], stdin: bytes) -> PluginRun:
    """Run one CNI plugin: an argv of one absolute path, no shell, a time limit."""
    try:
        done = subprocess.run(  # an absolute path found on CNI_PATH, no shell
            [path],
            input=stdin,
            env=dict(env),
            capture_output=True,
            timeout=PLUGIN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return PluginRun(returncode=-1, stdout=b"", stderr=b"time limit exceeded")
    except OSError as exc:
        return PluginRun(returncode=-1, stdout=b"", stderr=str(exc).encode())
    return PluginRun(returncode=done.returncode, stdout=done.stdout, stderr=done.stderr)


def _interface(pointer: str) -> str:
    """``vioif0`` for ``/net/interfaces/vioif0/addrs/0``; ``eth0`` elsewhere."""
    tokens = tokens_of(pointer)
    if len(tokens) >= 3 and tokens[:2] == ("net", "interfaces"):
        return tokens[2][:15]  # a Linux interface name, as CNI_IFNAME expects
    return "eth0"


def _cni_error(plugin: str, run: PluginRun) -> str:
    try:
        error = json.loads(run.stdout)
        message = f"{error['msg']} (CNI error {error['code']})"
        if error.get("details"):
            message += f": {error['details']}"
    except (ValueError, KeyError, TypeError):
        tail = run.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        message = f"exit status {run.returncode}" + (f": {tail[0]}" if tail else "")
    return f"CNI IPAM plugin {plugin!r}: {message}"


def configure(request: Request) -> Mapping[str, Any]:
    fragment = request.fragment
    ipam = fragment["ipam"]
    plugin = ipam["type"]
    cni_path = os.environ.get("CNI_PATH") or DEFAULT_CNI_PATH
    found = shutil.which(plugin, path=cni_path)
    if found is None:
        raise Refusal(
            f"CNI IPAM plugin {plugin!r} not found on CNI_PATH ({cni_path})",
            pointer=request.pointer + "/ipam/type",
            code="cni-plugin-missing",
        )
    canonical = json.dumps([request.pointer, ipam], sort_keys=True, separators=(",", ":"))
    container = "bakeplan-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
    network = {"cniVersion": CNI_VERSION, "name": NETWORK_NAME, "ipam": ipam}
    env = {
        "CNI_CONTAINERID": container,
        "CNI_NETNS": NETNS_PLACEHOLDER,
        "CNI_IFNAME": _interface(request.pointer),
        "CNI_PATH": cni_path,
        "PATH": os.environ.get("PATH", os.defpath),
    }
    stdin = json.dumps(network).encode()
    released = _run_plugin(found, {**env, "CNI_COMMAND": "DEL"}, stdin)
    if released.returncode != 0:
        sys.stderr.write(f"cni-ipam: DEL before ADD: {_cni_error(plugin, released)}\n")
    added = _run_plugin(found, {**env, "CNI_COMMAND": "ADD"}, stdin)
    if added.returncode != 0:
        raise Refusal(
            _cni_error(plugin, added), pointer=request.pointer + "/ipam", code="cni-error"
        )
    return {"replace": _static(fragment["type"], plugin, added, request.pointer)}


def _static(family: str, plugin: str, added: PluginRun, pointer: str) -> dict[str, str]:
    """The first address of ``family`` in the plugin's result, as a static address."""
    try:
        result = json.loads(added.stdout)
        ips = [str(ip["address"]) for ip in result.get("ips", ())]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Refusal(
            f"CNI IPAM plugin {plugin!r} answered with no valid CNI result",
            pointer=pointer + "/ipam",
            code="cni-bad-result",
        ) from None
    version = 4 if family == "inet" else 6
    for text in ips:
        try:
            address = ipaddress.ip_interface(text)
        except ValueError:
            continue
        if address.version == version:
            return {"type": family, "method": "static", "addr": str(address)}
    raise Refusal(
        f"CNI IPAM plugin {plugin!r} gave no IPv{version} address "
        f"(it gave: {', '.join(ips) or 'none'})",
        pointer=pointer + "/ipam",
        code="cni-no-address",
    )


DELEGATE = Delegate(
    name=NAME,
    version=VERSION,
    configure=configure,
    claims=("/net/interfaces/vioif0/addrs/0",),
    fragment_schema=FRAGMENT_SCHEMA,
    examples=(
        {
            "type": "inet",
            "method": "ipam",
            "ipam": {"type": "static", "addresses": [{"address": "10.0.120.10/24"}]},
        },
    ),
    # A plugin such as host-local leases addresses: the same request may get another.
    pure=False,
)


def main() -> int:
    return serve(DELEGATE)


if __name__ == "__main__":
    raise SystemExit(main())
