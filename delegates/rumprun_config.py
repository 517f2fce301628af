"""``rumprun-config``: the built-in rumprun layer as an executable speaking bakeplan/1.

bakeplan runs this layer in-process as the delegate ``rumprun``; the executable gives
the same answers to anyone who wants to run it by hand, register it under another name,
or check it with the protocol tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.core.config import RUMPRUN_KEYS
from orchestrator.core.protocol import Request
from orchestrator.rumprun import layer
from orchestrator.sdk import Delegate, Refusal, serve


def configure(request: Request) -> Mapping[str, Any]:
    if request.pointer not in ("", *(f"/{key}" for key in RUMPRUN_KEYS)):
        raise Refusal(
            f"the rumprun layer configures the whole config or one of "
            f"{', '.join(RUMPRUN_KEYS)}, not {request.pointer}",
            pointer=request.pointer,
            code="unsupported-pointer",
        )
    try:
        answer = layer.configure(request.fragment, request.pointer, request.context)
    except layer.LayerError as exc:
        first = exc.violations[0]
        raise Refusal(
            "; ".join(f"{v.pointer or '/'}: {v.message}" for v in exc.violations),
            pointer=first.pointer,
        ) from None
    document = answer.as_json()
    del document["protocol"]
    return document


DELEGATE = Delegate(
    name=layer.NAME,
    version=layer.VERSION,
    pure=True,  # the answer depends on the request alone
    configure=configure,
    claims=tuple(f"/{key}" for key in RUMPRUN_KEYS),
    # A fragment for the first claim, /rc: where `delegates check` configures examples.
    examples=([{"bin": "mathopd", "argv": ["mathopd", "-f", "/data/mathopd.conf"]}],),
)


def main() -> int:
    return serve(DELEGATE)


if __name__ == "__main__":
    raise SystemExit(main())
