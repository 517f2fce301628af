"""Walking JSON documents in tests: every node's reference tokens, every leaf's."""

from __future__ import annotations

from typing import Any


def nodes(value: Any, tokens: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The tokens of every node below the root (the root itself is left out)."""
    found = [tokens] if tokens else []
    if isinstance(value, dict):
        found += [t for k, v in value.items() for t in nodes(v, (*tokens, k))]
    elif isinstance(value, list):
        found += [t for i, v in enumerate(value) for t in nodes(v, (*tokens, str(i)))]
    return found


def leaves(value: Any, tokens: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The tokens of every leaf: scalars and empty containers."""
    if isinstance(value, dict) and value:
        return [t for k, v in value.items() for t in leaves(v, (*tokens, k))]
    if isinstance(value, list) and value:
        return [t for i, v in enumerate(value) for t in leaves(v, (*tokens, str(i)))]
    return [tokens]
