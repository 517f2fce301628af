"""The near-JSON text of rumprun's 2015 launcher: read with each value's line, and its
habits found.

rumprun's 2015 master dialect, as its launcher wrote it, is not JSON: objects opened
with ``{,``, trailing commas, repeated keys (``blk`` once per device, ``env`` once per
variable) and, for QEMU's ``-append``, every comma doubled.  ``read_legacy`` reads such
text with an explicit stack, not recursion, under the bounds of a config (512 levels),
keeps each value's line, tolerates exactly those habits, and undoes the comma doubling
(inside strings too) when every comma is doubled: ``bakeplan upgrade`` converts what it
reads.  ``signs`` finds the habits themselves, by index, in one pass over the text's
structure (strings, brackets, colons, comma runs), without building any value: the
loader (``core.config``) names the dialect from them on every config that is not JSON,
where reading a large broken text value by value would cost seconds.

Nothing here is imported on the happy path: only a config that is not JSON, and
``bakeplan upgrade``, pay for it.
"""

from __future__ import annotations

import bisect
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.jsontext import DEFAULT_MAX_DEPTH
from orchestrator.errors import InputError

__all__ = ["LegacyNode", "LegacyReader", "Signs", "legacy_reader", "read_legacy", "signs"]

_WS = re.compile(r"[ \t\n\r]*")
# A string of the legacy text: no raw newline inside (the launcher wrote none).
_STRING = r'"(?:[^"\\\n]|\\.)*"'
_LEGACY_STRING = re.compile(_STRING)
_SCALAR = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null"
_LEGACY_SCALAR = re.compile(_SCALAR)
_LITERALS = {"true": True, "false": False, "null": None}
# Comma runs outside strings: QEMU -append text has every one doubled.
_COMMA_RUNS = re.compile(_STRING + r"|(,(?:[ \t\r\n]*,)*)")
# What ``signs`` looks at, in one search: a run of values each followed by a single
# comma (the bulk of a large array, taken whole, since it holds no habit); a string; a
# comma run; a bracket or a colon; or a quote that starts no string, where the text stops
# being readable.  Space between is skipped by the search itself.
_LEXEME = re.compile(
    rf"(?P<values>(?:[ \t\r\n]*(?:{_SCALAR}|{_STRING})[ \t\r\n]*,(?![ \t\r\n]*,))++)"
    rf"|(?P<string>{_STRING})"
    r"|(?P<commas>,(?:[ \t\r\n]*,)*)"
    r'|(?P<mark>[{}\[\]:"])'
)
_COMMA = re.compile(",")


# --- the values ------------------------------------------------------------------------


@dataclass(frozen=True)
class LegacyNode:
    """A value of the legacy text: ``members`` for objects (repeatable keys, in order)."""

    line: int
    value: Any = None  # a string, number, bool or None; or a list of nodes for arrays
    members: tuple[tuple[str, int, LegacyNode], ...] | None = None

    @property
    def is_object(self) -> bool:
        return self.members is not None

    def plain(self) -> Any:
        """The value as JSON data (a later repeated key wins), built without recursion:
        the reader allows 512 levels, more than Python's own stack would."""
        made: dict[int, Any] = {}
        # Post-order over an explicit stack: a node is made once its children are.
        pending: list[tuple[LegacyNode, bool]] = [(self, False)]
        while pending:
            node, ready = pending.pop()
            children = (
                [child for _, _, child in node.members]
                if node.members is not None
                else node.value
                if isinstance(node.value, list)
                else []
            )
            if not ready and children:
                pending.append((node, True))
                pending.extend((child, False) for child in children)
                continue
            if node.members is not None:
                made[id(node)] = {key: made[id(child)] for key, _, child in node.members}
            elif isinstance(node.value, list):
                made[id(node)] = [made[id(child)] for child in node.value]
            else:
                made[id(node)] = node.value
        return made[id(self)]


@dataclass
class _Open:
    """An object or array the reader is inside: what it holds so far."""

    kind: str  # "{" or "["
    line: int
    pos: int
    depth: int  # 1 for the top-level object
    members: list[tuple[str, int, LegacyNode]] = field(default_factory=list)
    items: list[LegacyNode] = field(default_factory=list)
    key: tuple[str, int] | None = None  # the member whose value is being read
    separated: bool = True

    def add(self, node: LegacyNode) -> None:
        if self.kind == "[":
            self.items.append(node)
            return
        assert self.key is not None
        self.members.append((*self.key, node))
        self.key = None

    def closed(self) -> LegacyNode:
        if self.kind == "[":
            return LegacyNode(self.line, self.items)
        return LegacyNode(self.line, members=tuple(self.members))


@dataclass
class LegacyReader:
    """The legacy text read with an explicit stack, not recursion: nesting costs memory
    only, and is bounded as a config's is (``DEFAULT_MAX_DEPTH`` levels)."""

    text: str
    source: str
    undouble: bool = False
    pos: int = 0
    max_depth: int = DEFAULT_MAX_DEPTH
    _newlines: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # Where each line ends, so that a position's line is a bisection, not a count
        # from the start (which made a large text quadratic to read).
        self._newlines = _newlines(self.text)

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_left(self._newlines, self.pos if pos is None else pos) + 1

    def fail(self, message: str, pos: int | None = None) -> InputError:
        return InputError(message, file=self.source, line=self.line(pos))

    def skip_ws(self) -> None:
        self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def skip_commas(self) -> int:
        """Skip a run of commas (and the space between them); how many there were."""
        run = _COMMA_RUNS.match(self.text, _WS.match(self.text, self.pos).end())  # type: ignore[union-attr]
        if run is None or run.group(1) is None:
            self.skip_ws()
            return 0
        self.pos = run.end()
        self.skip_ws()
        return run.group(1).count(",")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def document(self) -> LegacyNode:
        """The top-level value, and nothing after it but commas and space."""
        top = self.value()
        self.skip_commas()
        if self.pos < len(self.text):
            raise self.fail("text after the config's closing }")
        return top

    def value(self) -> LegacyNode:
        """One value, however deeply nested, up to ``max_depth`` levels."""
        stack: list[_Open] = []
        while True:
            node = self._start(stack)
            while node is not None or stack:
                if node is not None:
                    if not stack:
                        return node
                    stack[-1].add(node)
                if self._next(stack[-1]):
                    node = stack.pop().closed()
                    continue
                break  # the next member or item is a value to read

    def _start(self, stack: list[_Open]) -> LegacyNode | None:
        """A scalar or string read whole, or None after opening an object or array."""
        self.skip_ws()
        char = self.peek()
        if char in ("{", "["):
            if len(stack) >= self.max_depth:
                raise self.fail(
                    f"nesting deeper than {self.max_depth} levels (the most bakeplan reads, "
                    "as in a config)"
                )
            stack.append(_Open(char, self.line(), self.pos, len(stack) + 1))
            self.pos += 1
            return None
        if char == '"':
            line = self.line()
            return LegacyNode(line, self.string())
        return self.scalar()

    def _next(self, open_: _Open) -> bool:
        """Move to ``open_``'s next member or item: True when it closed instead."""
        # `{,` openers, doubled and trailing commas: the launcher's habits.
        if self.skip_commas():
            open_.separated = True
        char = self.peek()
        what = "object" if open_.kind == "{" else "array"
        if char == ("}" if open_.kind == "{" else "]"):
            self.pos += 1
            return True
        if char == "":
            raise self.fail(f"the {what} opened on line {open_.line} is never closed")
        if open_.kind == "{":
            if char != '"':
                raise self.fail(f"expected a quoted key or }}, found {char!r}")
            if not open_.separated:
                raise self.fail("a comma is missing before this key")
            key_pos = self.pos
            key = self.string()
            self.skip_ws()
            if self.peek() != ":":
                raise self.fail(f"expected : after the key {key!r}")
            self.pos += 1
            open_.key = (key, self.line(key_pos))
        elif not open_.separated:
            raise self.fail("a comma is missing before this value")
        open_.separated = False
        return False

    def string(self) -> str:
        start = self.pos
        match = _LEGACY_STRING.match(self.text, self.pos)
        if match is None:
            raise self.fail("unterminated string", start)
        self.pos = match.end()
        try:
            return _decoded(match.group(), undouble=self.undouble)
        except ValueError as exc:
            raise self.fail(f"bad string: {exc}", start) from None

    def scalar(self) -> LegacyNode:
        start = self.pos
        match = _LEGACY_SCALAR.match(self.text, self.pos)
        if match is None:
            found = self.peek() or "the end of the text"
            raise self.fail(f"expected a value, found {found!r}")
        self.pos = match.end()
        literal = match.group()
        try:
            # As json.loads reads a number, without its cost on every element of an array.
            value = _LITERALS[literal] if literal in _LITERALS else _number(literal)
        except ValueError:
            # Python refuses to convert an integer longer than sys.get_int_max_str_digits().
            limit = sys.get_int_max_str_digits()
            raise self.fail(f"integer with more than {limit} digits", start) from None
        return LegacyNode(self.line(start), value)


def _number(literal: str) -> int | float:
    return float(literal) if any(c in literal for c in ".eE") else int(literal)


def _decoded(raw: str, *, undouble: bool) -> str:
    """A string literal's text; ``ValueError`` (saying why) when its escapes are bad."""
    if undouble:
        raw = raw.replace(",,", ",")
    try:
        text = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(exc.msg) from None
    assert isinstance(text, str)
    return text


def _newlines(text: str) -> list[int]:
    return [m.start() for m in re.finditer("\n", text)]


def _all_commas_doubled(text: str) -> bool:
    """Whether every comma run outside strings has an even length (QEMU -append text).
    Stops at the first odd run, which ordinary JSON has at its first comma."""
    seen = False
    for match in _COMMA_RUNS.finditer(text):
        run = match.group(1)
        if run is not None:
            if run.count(",") % 2:
                return False
            seen = True
    return seen


def legacy_reader(text: str, source: str) -> tuple[LegacyReader, list[str]]:
    """A reader set at the legacy text's first ``{``, and the notes on how it will read."""
    notes: list[str] = []
    start = text.find("{")
    if start < 0:
        raise InputError("no { in the text: rumprun would boot without a config", file=source)
    reader = LegacyReader(text, source, pos=start)
    if text[:start].strip():
        notes.append("line 1: text before the first { ignored, as rumprun ignores it")
    if _all_commas_doubled(text):
        reader.undouble = True
        notes.append(
            f"line {reader.line()}: every comma is doubled (QEMU -append text): undoubled, "
            "inside strings too"
        )
    return reader, notes


def read_legacy(text: str, source: str) -> tuple[LegacyNode, list[str]]:
    """The legacy text's top-level object and the notes on how it was read."""
    reader, notes = legacy_reader(text, source)
    return reader.document(), notes


# --- the habits ------------------------------------------------------------------------


@dataclass(frozen=True)
class Signs:
    """The launcher's habits in a text, by index into it.

    ``commas``: each run of commas outside strings that is a habit, as the index of the
    ``{`` it directly follows (an opener) or None, and the index of each of its commas:
    a run right after a ``{``, or of two commas or more.  ``single``: whether the text
    also has a single comma elsewhere, as JSON separates values (a text whose commas are
    doubled for QEMU has none).  ``top_keys``: each key of the top-level object, with its
    index and that of its value.  All only as far as the reader would read: up to text
    that is neither structure nor a value (a quote that starts no string, a word), or to
    the end of the top-level value and a comma run right after it.
    """

    commas: tuple[tuple[int | None, tuple[int, ...]], ...]
    single: bool
    top_keys: tuple[tuple[str, int, int], ...]
    newlines: tuple[int, ...] = field(repr=False)

    def line_col(self, pos: int) -> tuple[int, int]:
        """The 1-based line and column of index ``pos``, by bisection: a text can hold
        thousands of signs."""
        before = bisect.bisect_left(self.newlines, pos)
        return before + 1, pos - (self.newlines[before - 1] + 1 if before else 0) + 1


def signs(text: str) -> Signs | None:  # noqa: PLR0912  (one loop: a branch per lexeme)
    """The habits of the legacy launcher in ``text``, from its first ``{``; None when it
    has no ``{`` at all."""
    start = text.find("{")
    if start < 0:
        return None
    undouble = _all_commas_doubled(text)
    commas: list[tuple[int | None, tuple[int, ...]]] = []
    single = False
    top_keys: list[tuple[str, int, int]] = []
    stack = ["{"]  # the top-level object, opened at ``start``
    previous_end = start + 1  # where the lexeme before ended
    opened: int | None = start  # the index of the `{` the lexeme before was, if it was one
    expect_key = True  # a key of the top-level object comes next
    for lexeme in _LEXEME.finditer(text, start + 1):
        at, end = lexeme.span()
        kind, first = lexeme.lastgroup, text[at]
        gap = text[previous_end:at].strip()
        if gap and not _LEGACY_SCALAR.fullmatch(gap):
            break  # neither structure nor a value: where the reader stops reading too
        previous_end, after_open, opened = end, opened, None
        if not stack and kind != "commas":
            break  # after the top-level value, only a comma run right after it is read
        if kind == "commas":
            if after_open is not None and not gap:
                commas.append((after_open, _positions(text, at, end)))
            elif end - at > 1:
                commas.append((None, _positions(text, at, end)))
            else:
                single = True
            if not stack:
                break
            expect_key = len(stack) == 1
            continue
        if kind == "values":
            single = True
            expect_key = len(stack) == 1
            continue
        if kind == "string" and expect_key:
            try:
                top_keys.extend(_top_key(text, lexeme, undouble=undouble))
            except ValueError:
                break  # a key with bad escapes: the reader stops there too
        elif first == '"' and kind == "mark":
            break  # a quote that starts no string: the structure ends here
        elif first in "{[":
            stack.append(first)
            opened = at if first == "{" else None
        elif first in "}]":
            stack.pop()
        expect_key = False
    return Signs(tuple(commas), single, tuple(top_keys), tuple(_newlines(text)))


def _top_key(text: str, lexeme: re.Match[str], *, undouble: bool) -> list[tuple[str, int, int]]:
    """The top-level key ``lexeme`` is, with its index and its value's: none when no
    colon follows (it is a value); ``ValueError`` when its escapes are bad."""
    colon = _WS.match(text, lexeme.end()).end()  # type: ignore[union-attr]
    if not text.startswith(":", colon):
        return []
    value = _WS.match(text, colon + 1).end()  # type: ignore[union-attr]
    return [(_decoded(lexeme.group(), undouble=undouble), lexeme.start(), value)]


def _positions(text: str, start: int, end: int) -> tuple[int, ...]:
    """The index of each comma of the run ``text[start:end]``."""
    if end - start == 1:
        return (start,)
    return tuple(m.start() for m in _COMMA.finditer(text, start, end))
