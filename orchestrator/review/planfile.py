"""A plan read back from its file, or a config planned on the spot: what ``bakeplan why``
and ``bakeplan diff`` take.

A JSON object whose ``plan`` is ``bakeplan/1`` is a plan, checked against the plan
schema (each violation at its line and column) and read as a ``Plan``; anything else is
a config, planned with the command's routing and run options.  Standard input (``-``)
holds a plan: a config read from it could not be planned again.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.core import jsontext
from orchestrator.errors import InputError
from orchestrator.schemas import explainer

if TYPE_CHECKING:  # lock files are read with this module's helpers and are no plans
    from orchestrator.core.planmodel import Plan

STDIN = "-"
# Plans are small: a 4 KiB runtime config and a few dozen libraries and devices.
MAX_PLAN_BYTES = 16 * 1024 * 1024


def obtain(path: str, plan_config: Callable[[str], Plan]) -> Plan:
    """The plan in ``path``, or the plan ``plan_config(path)`` makes of the config there."""
    from orchestrator.core.planmodel import PLAN_VERSION, Plan  # noqa: PLC0415

    source = "<stdin>" if path == STDIN else path
    raw = read_bounded(path, source, limit=MAX_PLAN_BYTES, what="a plan or a config")
    value = jsontext.parse(raw, source=source)
    if isinstance(value, dict) and value.get("plan") == PLAN_VERSION:
        check(
            "plan",
            value,
            raw.decode("utf-8"),
            source,
            what="a valid bake plan",
            hint="a plan written by an older bakeplan may lack what this one needs: plan again",
        )
        return Plan.from_json(value)
    if path == STDIN:
        raise InputError(
            'standard input holds no bake plan (no "plan": "bakeplan/1")',
            file=source,
            hint="give a config as a file to have it planned first",
        )
    return plan_config(path)


def read_bounded(path: str, source: str, *, limit: int, what: str) -> bytes:
    """The bytes at ``path`` (``-``: stdin), refused past ``limit`` before they are all
    read; every error names ``source`` and says it was to be ``what``."""
    try:
        if path == STDIN:
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(path).open("rb") as stream:
                data = stream.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", file=source) from None
    if len(data) > limit:
        raise InputError(f"more than {limit} bytes: not {what}", file=source)
    return data


def check(schema: str, document: Any, text: str, source: str, *, what: str, hint: str) -> None:
    """Refuse ``document`` (read from ``text`` at ``source``) where it breaks the package
    schema ``schema``: the first violation at its line and column, the rest as detail."""
    found = explainer.violations(schema, document)
    if not found:
        return
    first = found[0]
    line, col = jsontext.locate(text, first.pointer) or (None, None)
    raise InputError(
        f"not {what}: {first.line()}",
        file=source,
        line=line,
        col=col,
        detail=tuple(v.line() for v in found[1:]),
        hint=hint,
    )
