"""Test delegates that pass the ``describe`` handshake and then misbehave as told.

bakeplan asks every external delegate ``describe`` before any ``configure`` (without a
``BAKEPLAN_POINTER``, which only a configure request carries).  The fault and isolation
tests are about ``configure``, so their delegates answer ``describe`` correctly and keep
their misbehaviour for the configure request, even the ones that never read stdin.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers_exec import write_python, write_sh

DESCRIPTION = json.dumps(
    {"protocol": "bakeplan/1", "name": "test", "version": "1", "protocols": ["bakeplan/1"]}
)


def description(name: str, **fields: object) -> dict[str, object]:
    """A valid describe answer for ``name`` with ``fields`` (``pure``, ``examples``...)."""
    return {"protocol": "bakeplan/1", "name": name, "version": "1", "protocols": ["bakeplan/1"]} | (
        fields
    )


def write_registry(folder: Path, *entries: dict[str, object]) -> Path:
    """``folder/registry.json`` holding ``entries``, mode 0644 (the trust check refuses
    a registry others may write)."""
    path = folder / "registry.json"
    path.write_text(json.dumps({"delegates": list(entries)}), encoding="utf-8")
    path.chmod(0o644)
    return path


SH_DESCRIBE = (
    'if [ -z "${BAKEPLAN_POINTER-}" ]; then\n'
    f"  cat >/dev/null; echo '{DESCRIPTION}'; exit 0\n"
    "fi\n"
)

PY_DESCRIBE = (
    "import os, sys\n"
    'if "BAKEPLAN_POINTER" not in os.environ:\n'
    "    sys.stdin.read()\n"
    f"    print({DESCRIPTION!r})\n"
    "    sys.exit(0)\n"
)


def write_delegate(directory: Path, name: str, body: str) -> Path:
    """A ``/bin/sh`` delegate: describes itself, then runs ``body`` for configure."""
    import textwrap  # noqa: PLC0415

    return write_sh(directory, name, SH_DESCRIBE + textwrap.dedent(body).lstrip("\n"))


def write_py_delegate(directory: Path, name: str, body: str) -> Path:
    """A Python delegate: describes itself, then runs ``body`` for configure."""
    import textwrap  # noqa: PLC0415

    return write_python(directory, name, PY_DESCRIBE + textwrap.dedent(body).lstrip("\n"))


def write_identity(directory: Path, name: str = "identity") -> Path:
    """A delegate that answers every configure request with its fragment unchanged."""
    return write_py_delegate(
        directory,
        name,
        """
        import json
        request = json.load(sys.stdin)
        print(json.dumps({"protocol": "bakeplan/1", "replace": request["fragment"]}))
        """,
    )


def write_consumer(directory: Path, name: str = "consume") -> Path:
    """A delegate that consumes its fragment: nothing of it stays in the runtime config."""
    return write_delegate(directory, name, 'cat >/dev/null\necho \'{"protocol":"bakeplan/1"}\'\n')
