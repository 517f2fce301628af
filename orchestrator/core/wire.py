"""The ``bakeplan/1`` wire as a delegate sees it: the request it reads, the answer it writes.

Every Python delegate on the SDK imports this at every start, before it reads its
request, so it imports nothing the interpreter has not already loaded but ``json``:
``Request`` and ``Context`` are frozen classes written out by hand, because importing
``dataclasses`` (it brings ``inspect``) costs a delegate more than its own work; ``loads``
is the strict reader's happy path alone, and leaves anything unusual to
``orchestrator.core.jsontext``, which finds what is wrong and where.  ``orchestrator.core.protocol``
re-exports what is here for bakeplan's own side.
"""

from __future__ import annotations

import json
import re

# Not typing.TYPE_CHECKING: importing typing is a cost a delegate's start need not pay,
# and type checkers read any constant of this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

PROTOCOL = "bakeplan/1"
# What jsontext decides and json.loads would not: lone surrogate escapes, and nesting deep
# enough to need the scanner (jsontext.DEFAULT_MAX_DEPTH).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_MAX_DEPTH = 512


class FrozenError(AttributeError):
    """An attempt to change a field of a frozen ``Request``, ``Context`` or ``Delegate``."""


def assign(instance: Frozen, **values: Any) -> None:
    """Set a frozen instance's fields, once, from its ``__init__``."""
    for name, value in values.items():
        object.__setattr__(instance, name, value)


class Frozen:
    """Equality, hashing, repr and immutability over ``_fields``, as a frozen dataclass
    would give them."""

    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Frozen)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenError(f"cannot delete field {name!r}")


class Context(Frozen):
    """What a delegate knows of the bake it takes part in."""

    _fields = ("bake_config", "platform", "components")
    bake_config: str
    platform: str
    components: tuple[str, ...]

    def __init__(self, *, bake_config: str, platform: str, components: tuple[str, ...]) -> None:
        assign(self, bake_config=bake_config, platform=platform, components=components)

    def as_json(self) -> dict[str, Any]:
        return {
            "bake_config": self.bake_config,
            "platform": self.platform,
            "components": list(self.components),
        }


class Request(Frozen):
    """A ``configure`` request: the fragment at ``pointer`` for ``delegate``."""

    _fields = ("delegate", "pointer", "fragment", "context")
    delegate: str
    pointer: str
    fragment: Any
    context: Context

    def __init__(self, *, delegate: str, pointer: str, fragment: Any, context: Context) -> None:
        assign(self, delegate=delegate, pointer=pointer, fragment=fragment, context=context)

    def as_json(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "op": "configure",
            "delegate": self.delegate,
            "pointer": self.pointer,
            "fragment": self.fragment,
            "context": self.context.as_json(),
        }

    def encode(self) -> bytes:
        """The exact bytes written to the delegate's stdin: compact UTF-8 JSON and a newline."""
        return encode(self.as_json())


def encode(document: Any) -> bytes:
    """Compact, strict (no NaN) UTF-8 JSON followed by a newline."""
    text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


class NotPlain(ValueError):
    """Text the quick reader leaves to ``orchestrator.core.jsontext``: it may be strict JSON
    that needs the scanner, or not strict JSON at all."""


def loads(raw: bytes) -> Any:
    """Plain strict JSON (UTF-8, no byte-order mark, no duplicate key, no NaN, no number
    beyond a double, shallow), parsed as ``jsontext.parse`` parses it; ``NotPlain`` for
    anything else, for jsontext to decide."""
    if raw.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise NotPlain
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotPlain from None
    if _SURROGATE_ESCAPE.search(text) or text.count("[") + text.count("{") > _MAX_DEPTH:
        raise NotPlain
    try:
        return json.loads(
            text, object_pairs_hook=_unique, parse_constant=_refuse, parse_float=_finite
        )
    except (ValueError, RecursionError):  # NotPlain is a ValueError too
        raise NotPlain from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise NotPlain
    return obj


def _refuse(name: str) -> NoReturn:
    raise NotPlain(name)


def _finite(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise NotPlain(literal)
    return value
