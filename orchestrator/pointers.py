"""RFC 6901 JSON pointers: made from tokens and read back, resolved, ordered, shown.

Every part of bakeplan speaks of the config by pointer: claims, fragments, errors, the
plan's provenance.  This is the one place that knows how a pointer is written and read.
A delegate on the SDK imports it at every start (through ``orchestrator.core.wire``), so
it imports nothing at load time; jsonpointer, which reads pointers by the RFC, comes in
only when a pointer is read back into tokens.
"""

from __future__ import annotations

# Not typing.TYPE_CHECKING: see orchestrator.core.wire.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any, TypeVar

    T = TypeVar("T")

# Pointers longer than this are shortened when shown, so that no message can be made huge
# by a hostile config.
SHOWN = 120


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # what ``resolve`` answers for a place the document does not have


def pointer_of(tokens: Iterable[str]) -> str:
    """The RFC 6901 pointer of reference tokens, escaping ``~`` and ``/``."""
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def tokens_of(pointer: str) -> tuple[str, ...]:
    """The unescaped reference tokens of an RFC 6901 pointer (``/mount/~1data`` -> mount, /data)."""
    import jsonpointer  # noqa: PLC0415  (see the module docstring)

    try:
        return tuple(jsonpointer.JsonPointer(pointer).parts)
    except jsonpointer.JsonPointerException as exc:
        from orchestrator.errors import UsageError  # noqa: PLC0415

        raise UsageError(f"{pointer!r} is not a JSON pointer: {exc}") from None


def is_index(token: str) -> bool:
    """A reference token made of ASCII digits ("²" is a digit to ``str.isdigit`` but not to
    ``int`` or to RFC 6901)."""
    return token.isascii() and token.isdigit()


def is_array_index(token: str) -> bool:
    """A token that RFC 6901 lets index an array: ``0``, or digits with no leading zero."""
    return is_index(token) and (token == "0" or not token.startswith("0"))  # noqa: S105


def resolve(document: Any, tokens: Sequence[str]) -> Any:
    """The value at ``tokens``, or ``MISSING``."""
    node = document
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                return MISSING
            node = node[token]
        elif isinstance(node, list):
            if not is_array_index(token) or int(token) >= len(node):
                return MISSING
            node = node[int(token)]
        else:
            return MISSING
    return node


def is_present(document: Any, pointer: str) -> bool:
    """Whether ``document`` has a value at ``pointer``."""
    return resolve(document, tokens_of(pointer)) is not MISSING


def value_at(document: Any, tokens: Sequence[str]) -> Any:
    """The value at ``tokens``, which the caller knows to be present."""
    value = resolve(document, tokens)
    if value is MISSING:
        raise KeyError(pointer_of(tokens))
    return value


def ancestors(pointer: str) -> Iterator[str]:
    """``pointer``, then each pointer above it, up to ``""`` (/mount/~1data/path,
    /mount/~1data, /mount, "").  Cut at each ``/`` as written: an escaped ``/`` is ``~1``."""
    current = pointer
    while True:
        yield current
        if not current:
            return
        current = current.rpartition("/")[0]


def nearest(pointer: str, found: Callable[[str], T | None]) -> T | None:
    """What ``found`` answers for the deepest of ``ancestors(pointer)`` it knows, or None.

    A problem at an absent place (a missing key) is shown where the fix goes: at its
    nearest ancestor that the text has.
    """
    for each in ancestors(pointer):
        answer = found(each)
        if answer is not None:
            return answer
    return None


def within(inner: Sequence[str], outer: Sequence[str]) -> bool:
    """True when ``inner`` is at or below ``outer``."""
    return len(inner) >= len(outer) and tuple(inner[: len(outer)]) == tuple(outer)


def order(tokens: Sequence[str]) -> tuple[tuple[int, int, str], ...]:
    """A sort key for paths that orders array indexes as numbers (/rc/2 before /rc/10)
    and keys as text."""
    return tuple((0, int(t), "") if is_index(t) else (1, 0, t) for t in tokens)


def pointer_order(pointer: str) -> tuple[tuple[int, int, str], ...]:
    """``order`` of a pointer as written; the tokens are taken unescaped."""
    return order([t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]])


def strings(value: Any, tokens: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, object keys included, with the pointer of its place
    (a key's pointer is that of its member)."""
    if isinstance(value, str):
        yield pointer_of(tokens), value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield pointer_of((*tokens, key)), key
            yield from strings(item, (*tokens, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, (*tokens, str(index)))


def pointer_text(pointer: str) -> str:
    """A pointer as a person reads it: ``""`` is the whole config, which ``/`` is not
    (``/`` points at the key that is the empty string); a megabyte-long pointer is
    shortened."""
    if not pointer:
        return "(the whole config)"
    if len(pointer) > SHOWN:
        return f"{pointer[: SHOWN - 20]}… ({len(pointer)} characters)"
    return pointer
