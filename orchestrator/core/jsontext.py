"""Strict JSON text, with the line and column of every problem; and the legacy near-JSON.

Configs, registry files and delegate answers are JSON written by people and programs
that make mistakes, so bakeplan reads them more strictly than ``json.loads`` does and says
exactly where a problem is.  ``parse`` accepts RFC 8259 JSON in UTF-8 and nothing else:
no byte-order mark, no invalid UTF-8, no duplicate keys, no NaN or Infinity, no unpaired
surrogate escapes, no trailing data, no nesting deeper than a limit, no integer longer
than Python converts.  ``locate`` finds where the value at a JSON pointer starts, so that
a schema violation found in the parsed data can be reported as ``file:line:col``.

The happy path is the C-accelerated ``json.loads``.  Only when a cheap pre-check or
``json.loads`` itself finds something wrong does a small iterative scanner run over the
text to find the first problem and its exact position.  Nothing here recurses on the
input's nesting: deep input gets a clear error, never a ``RecursionError``.

``read_legacy`` reads the near-JSON text rumprun's 2015 launcher wrote, with the same
explicit stack and bound: ``bakeplan upgrade`` converts what it reads, and ``load``
(``core.config``) recognises the dialect by the launcher's habits it records.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from jsonpointer import JsonPointer, JsonPointerException

from orchestrator.errors import InputError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "JsonTextError",
    "LegacyNode",
    "LegacyReader",
    "legacy_reader",
    "line_col",
    "locate",
    "parse",
    "read_legacy",
]

DEFAULT_MAX_DEPTH = 512
# JSON numbers are made of ASCII digits; str.isdigit would also take "²" or "٣".
DIGITS = frozenset("0123456789")

_WS = re.compile(r"[ \t\n\r]*")
# A string literal, or an unterminated one running to the end of the text.  It always
# matches at a '"', so scanning with it never restarts inside a string: linear time.
_STRING_OR_REST = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*(?:"|\\?\Z)')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}
_SKIP_TOKEN = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*"|[\[\]{}]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_STRING_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_SCALAR_END = re.compile(r"[^,\]}\s]*")
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_INDEX = re.compile(r"0|[1-9][0-9]*")
_SIMPLE_ESCAPES = frozenset('"\\/bfnrt')
_SPELLINGS = {
    "True": "true",
    "False": "false",
    "None": "null",
    "undefined": "null",
}


class JsonTextError(InputError):
    """JSON text that is not strict JSON; ``line`` and ``col`` (1-based) say where."""

    line: int
    col: int

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int,
        col: int,
        detail: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, file=file, line=line, col=col, detail=detail, hint=hint)

    def summary(self) -> str:
        """``file:line:col: message`` in one line, for an answer that must carry it as
        text (a delegate's refusal, a malformed answer)."""
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


@dataclass(frozen=True)
class _Fault:
    """The first problem in a text: where (an index into the text) and what."""

    pos: int
    message: str
    hint: str | None = None


class _Found(Exception):
    """Raised inside the scanner and the json.loads hooks to stop at the first problem."""

    def __init__(self, fault: _Fault | None = None) -> None:
        super().__init__(fault.message if fault else "")
        self.fault = fault


def line_col(text: str, pos: int) -> tuple[int, int]:
    """The 1-based line and column (in characters) of index ``pos`` of ``text``."""
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def parse(data: bytes | str, *, source: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse strict JSON text; raise ``JsonTextError`` with ``source:line:col`` if it is not.

    ``data`` is UTF-8 bytes (as read from a file or a pipe) or already decoded text.
    ``source`` names where it came from in messages (a path, ``<stdin>``, a delegate).
    """
    text = _decode(data, source)
    try:
        if _needs_scan(text, max_depth):
            _scan_or_raise(text, max_depth)
        return json.loads(
            text,
            object_pairs_hook=_unique_pairs,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except _Found as found:
        fault = found.fault or _scan(text, max_depth)
        error: BaseException = found
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError is a ValueError; so is Python's refusal of an integer longer
        # than sys.get_int_max_str_digits().  The scanner says what and where.
        fault = _scan(text, max_depth)
        error = exc
    if fault is None:
        fault = _fallback_fault(error, text)
    raise _text_error(fault, text, source) from None


def locate(text: str, pointer: str) -> tuple[int, int] | None:
    """The 1-based line and column where the value at ``pointer`` starts in ``text``.

    ``text`` is JSON text that ``parse`` accepted; ``pointer`` an RFC 6901 pointer
    (``""`` is the whole document, ``/mount/~1data`` the key ``/data`` of ``mount``).
    ``None`` when the pointer is malformed or names nothing in the text.
    """
    try:
        tokens: list[str] = JsonPointer(pointer).parts
    except JsonPointerException:
        return None
    try:
        pos = _WS.match(text, 0).end()  # type: ignore[union-attr]  # matches empty too
        for token in tokens:
            found = _child(text, pos, token)
            if found is None:
                return None
            pos = found
    except (ValueError, IndexError):
        # Text that is not JSON after all (locate is also called on error paths).
        return None
    if pos >= len(text):
        return None
    return line_col(text, pos)


# --- the happy path -------------------------------------------------------------------


def _decode(data: bytes | str, source: str) -> str:
    if isinstance(data, str):
        if data.startswith("\ufeff"):
            raise _bom_error(source)
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as exc:
            # A str can hold lone surrogates (surrogateescape, careless callers); UTF-8
            # text cannot, and they would break writing the plan later.
            line, col = line_col(data, exc.start)
            raise JsonTextError(
                f"unpaired surrogate U+{ord(data[exc.start]):04X} is not Unicode text",
                file=source,
                line=line,
                col=col,
            ) from None
        return data
    raw = bytes(data)
    if raw.startswith(b"\xef\xbb\xbf"):
        raise _bom_error(source)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise JsonTextError(
            "UTF-16 byte-order mark at start of file: JSON here must be UTF-8",
            file=source,
            line=1,
            col=1,
            hint="save the file as UTF-8",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = raw.count(b"\n", 0, start) + 1
        line_start = raw.rfind(b"\n", 0, start) + 1
        # Everything before the bad byte decoded, so this prefix of its line decodes too.
        col = len(raw[line_start:start].decode("utf-8")) + 1
        raise JsonTextError(
            f"invalid UTF-8 byte 0x{raw[start]:02x}",
            file=source,
            line=line,
            col=col,
            hint="JSON text must be UTF-8; re-save the file as UTF-8",
        ) from None


def _bom_error(source: str) -> JsonTextError:
    return JsonTextError(
        "byte-order mark at start of file",
        file=source,
        line=1,
        col=1,
        hint="save the file as UTF-8 without a byte-order mark (RFC 8259 forbids it)",
    )


def _needs_scan(text: str, max_depth: int) -> bool:
    """Whether ``json.loads`` cannot be trusted with this text without the scanner first.

    json.loads recurses once per nesting level and decodes lone surrogate escapes without
    complaint; both are ruled out here with C-speed string operations.
    """
    if _SURROGATE_ESCAPE.search(text):
        return True
    if text.count("[") + text.count("{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING_OR_REST.sub("", text))
    deepest = max(itertools.accumulate(map(_BRACKET_DELTA.__getitem__, brackets)), default=0)
    return deepest > max_depth


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Found()  # a duplicate key: the scanner finds which and where
    return obj


def _refuse_constant(name: str) -> NoReturn:
    raise _Found()


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Found()  # 1e400: valid JSON syntax, but no double holds it
    return value


# --- the scanner: only on the error path ---------------------------------------------

_VALUE, _VALUE_OR_CLOSE, _KEY, _KEY_OR_CLOSE, _COLON, _AFTER_VALUE = range(6)


@dataclass
class _Frame:
    """One open object or array in the scanner's explicit stack."""

    open_pos: int
    keys: dict[str, int] | None  # key -> position, for objects; None for arrays
    comma_pos: int = -1
    key: str = ""


def _scan(text: str, max_depth: int) -> _Fault | None:
    """The first problem in ``text``, or None if it is strict JSON."""
    try:
        _scan_or_raise(text, max_depth)
    except _Found as found:
        return found.fault
    return None


def _fail(pos: int, message: str, hint: str | None = None) -> NoReturn:
    raise _Found(_Fault(pos, message, hint))


def _scan_or_raise(text: str, max_depth: int) -> None:  # noqa: PLR0912, PLR0915
    # One loop and an explicit stack: the state says what may come next.
    end = len(text)
    stack: list[_Frame] = []
    state = _VALUE
    pos = _ws(text, 0)
    if pos == end:
        _fail(pos, "empty input: expected a JSON value")
    while True:
        pos = _ws(text, pos)
        char = text[pos] if pos < end else ""
        if state in (_VALUE, _VALUE_OR_CLOSE):
            if state == _VALUE_OR_CLOSE and char == "]":
                stack.pop()
                pos += 1
                state = _AFTER_VALUE
            elif char in ("{", "["):
                if len(stack) >= max_depth:
                    _fail(pos, f"nesting deeper than {max_depth} levels")
                stack.append(_Frame(pos, {} if char == "{" else None))
                pos += 1
                state = _KEY_OR_CLOSE if char == "{" else _VALUE_OR_CLOSE
            elif char == "]" and stack and stack[-1].keys is None and stack[-1].comma_pos >= 0:
                _fail(stack[-1].comma_pos, "trailing comma before ']'")
            else:
                pos = _scan_scalar(text, pos, stack)
                state = _AFTER_VALUE
        elif state in (_KEY, _KEY_OR_CLOSE):
            frame = stack[-1]
            if char == "}":
                if state == _KEY:
                    _fail(frame.comma_pos, "trailing comma before '}'")
                stack.pop()
                pos += 1
                state = _AFTER_VALUE
            elif char == '"':
                key_end = _scan_string(text, pos)
                key, _ = json.decoder.scanstring(text, pos + 1, True)  # type: ignore[attr-defined]
                assert frame.keys is not None
                first = frame.keys.get(key)
                if first is not None:
                    line, col = line_col(text, first)
                    _fail(pos, f"duplicate key {key!r} (first at {line}:{col})")
                frame.keys[key] = pos
                frame.key = key
                pos = key_end
                state = _COLON
            elif char == "":
                _fail(pos, _unclosed(text, frame))
            else:
                _fail(pos, *_bad_key(text, pos))
        elif state == _COLON:
            if char != ":":
                key = stack[-1].key
                _fail(pos, f"expected ':' after the key {key!r}, found {_describe(text, pos)}")
            pos += 1
            state = _VALUE
        else:  # _AFTER_VALUE
            if not stack:
                if pos < end:
                    _fail(pos, "extra data after the JSON value")
                return
            frame = stack[-1]
            close = "]" if frame.keys is None else "}"
            if char == ",":
                frame.comma_pos = pos
                pos += 1
                state = _VALUE if frame.keys is None else _KEY
            elif char == close:
                stack.pop()
                pos += 1
            elif char == "":
                _fail(pos, _unclosed(text, frame))
            elif char in ('"', "{", "[", "-", "t", "f", "n") or char in DIGITS:
                what = "elements" if frame.keys is None else "members"
                _fail(pos, f"missing ',' between {what}: found {_describe(text, pos)}")
            else:
                _fail(pos, f"expected ',' or '{close}', found {_describe(text, pos)}")


def _ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]  # matches empty too


def _unclosed(text: str, frame: _Frame) -> str:
    line, col = line_col(text, frame.open_pos)
    opener = "{" if frame.keys is not None else "["
    return f"unexpected end of input: '{opener}' opened at {line}:{col} is not closed"


def _scan_scalar(text: str, pos: int, stack: list[_Frame]) -> int:
    """Check the string, number or literal at ``pos``; return the index after it."""
    char = text[pos] if pos < len(text) else ""
    if char == '"':
        return _scan_string(text, pos)
    if char == "-" or char in DIGITS:
        return _scan_number(text, pos)
    for literal in ("true", "false", "null"):
        if text.startswith(literal, pos):
            return pos + len(literal)
    _fail(pos, _not_a_value(text, pos, stack))


def _not_a_value(text: str, pos: int, stack: list[_Frame]) -> str:  # noqa: PLR0911
    """What is at ``pos``, where a value should start and none does."""
    char = text[pos] if pos < len(text) else ""
    for constant in ("NaN", "Infinity"):
        if text.startswith(constant, pos):
            return f"{constant} is not JSON"
    if char == "":
        return _unclosed(text, stack[-1]) if stack else "unexpected end of input: expected a value"
    if char == "'":
        return "strings must be in double quotes, not single quotes"
    if text.startswith(("//", "/*"), pos):
        return "comments are not allowed in JSON"
    word = _WORD.match(text, pos)
    if word is None:
        return f"expected a value, found {_describe(text, pos)}"
    spelling = _SPELLINGS.get(word.group())
    if spelling is not None:
        return f"expected a value, found {word.group()!r} (JSON spells it {spelling})"
    return f"expected a value, found {word.group()!r}"


def _bad_key(text: str, pos: int) -> tuple[str, str | None]:
    if text[pos] == "'":
        return "keys must be strings in double quotes, not single quotes", None
    word = _WORD.match(text, pos)
    if word is not None:
        return (
            f"expected a key in double quotes, found {word.group()!r}",
            f'write the key as "{word.group()}"',
        )
    return f"expected a key in double quotes, found {_describe(text, pos)}", None


def _scan_string(text: str, start: int) -> int:
    """Check the string literal opening at ``start``; return the index after it."""
    end = len(text)
    pos = start + 1
    while True:
        pos = _STRING_PLAIN.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            _fail(start, "unterminated string")
        char = text[pos]
        if char == '"':
            return pos + 1
        if char != "\\":
            _fail(
                pos,
                f"control character U+{ord(char):04X} in a string",
                "write control characters as escapes (\\n, \\t, \\u0000)",
            )
        escape = text[pos + 1 : pos + 2]
        if not escape:
            _fail(start, "unterminated string")
        if escape in _SIMPLE_ESCAPES:
            pos += 2
            continue
        if escape != "u":
            _fail(pos, f"invalid escape '\\{escape}' in a string")
        pos = _scan_unicode_escape(text, pos)


def _scan_unicode_escape(text: str, pos: int) -> int:
    digits = _HEX4.match(text, pos + 2)
    if digits is None:
        _fail(pos, "invalid \\u escape: expected 4 hex digits")
    code = int(digits.group(), 16)
    if 0xDC00 <= code <= 0xDFFF:
        _fail(pos, f"unpaired surrogate escape \\u{digits.group()}")
    if 0xD800 <= code <= 0xDBFF:
        low = _HEX4.match(text, pos + 8) if text.startswith("\\u", pos + 6) else None
        if low is None or not 0xDC00 <= int(low.group(), 16) <= 0xDFFF:
            _fail(pos, f"unpaired surrogate escape \\u{digits.group()}")
        return pos + 12
    return pos + 6


def _scan_number(text: str, pos: int) -> int:
    number = _NUMBER.match(text, pos)
    if number is None:
        if text.startswith("-Infinity", pos):
            _fail(pos, "-Infinity is not JSON")
        found = _describe(text, pos + 1)
        _fail(pos, f"malformed number: expected a digit after '-', found {found}")
    after = number.end()
    following = text[after : after + 1]
    if following and following in "0123456789" and number.group(1) == "0":
        _fail(pos, "leading zeros are not allowed in JSON numbers")
    if following and following in ".eE":
        shown = text[pos : after + 1]
        _fail(pos, f"malformed number {shown!r}: expected digits after {following!r}")
    if number.group(2) is None and number.group(3) is None:
        limit = sys.get_int_max_str_digits()
        if limit and len(number.group(1)) > limit:
            _fail(pos, f"integer with more than {limit} digits")
    elif not math.isfinite(float(number.group())):
        _fail(pos, "number too large: it overflows to infinity")
    return after


def _describe(text: str, pos: int) -> str:
    if pos >= len(text):
        return "the end of the input"
    char = text[pos]
    if char.isprintable() and not char.isspace():
        return repr(char)
    return f"U+{ord(char):04X}"


def _fallback_fault(error: BaseException, text: str) -> _Fault:
    # The scanner and json.loads agree on every input the tests could find; should they
    # ever disagree, report what json.loads said rather than nothing.
    if isinstance(error, json.JSONDecodeError):
        return _Fault(error.pos, error.msg)
    if isinstance(error, RecursionError):
        return _Fault(0, "nesting too deep for the JSON parser")
    return _Fault(0, str(error) or "not strict JSON")


def _text_error(fault: _Fault, text: str, source: str) -> JsonTextError:
    line, col = line_col(text, fault.pos)
    return JsonTextError(
        fault.message,
        file=source,
        line=line,
        col=col,
        detail=_excerpt(text, fault.pos),
        hint=fault.hint,
    )


def _excerpt(text: str, pos: int, width: int = 72) -> tuple[str, ...]:
    """The line holding ``pos`` and a caret under it, cut to ``width`` around ``pos``."""
    start = text.rfind("\n", 0, pos) + 1
    stop = text.find("\n", pos)
    if stop < 0:
        stop = len(text)
    first = max(start, min(pos - width // 2, stop - width))
    shown = text[first : min(stop, first + width)]
    # Tabs and control characters would misplace the caret: show them as one space each.
    shown = "".join(c if c.isprintable() else " " for c in shown)
    if not shown.strip():
        return ()
    return (f"| {shown}", f"| {' ' * (pos - first)}^")


# --- locate ----------------------------------------------------------------------------


def _child(text: str, pos: int, token: str) -> int | None:
    """Where the member or element ``token`` of the container at ``pos`` starts."""
    opener = text[pos] if pos < len(text) else ""
    if opener == "{":
        return _member(text, pos, token)
    if opener == "[":
        if not _INDEX.fullmatch(token):
            return None
        return _element(text, pos, int(token))
    return None


def _member(text: str, pos: int, token: str) -> int | None:
    pos = _ws(text, pos + 1)
    if text[pos] == "}":
        return None
    while True:
        if text[pos] != '"':
            return None
        key, pos = json.decoder.scanstring(text, pos + 1, True)  # type: ignore[attr-defined]
        pos = _ws(text, pos)
        if text[pos] != ":":
            return None
        pos = _ws(text, pos + 1)
        if key == token:
            return pos
        pos = _ws(text, _skip_value(text, pos))
        if text[pos] != ",":
            return None
        pos = _ws(text, pos + 1)


def _element(text: str, pos: int, index: int) -> int | None:
    pos = _ws(text, pos + 1)
    if text[pos] == "]":
        return None
    for _ in range(index):
        pos = _ws(text, _skip_value(text, pos))
        if text[pos] != ",":
            return None
        pos = _ws(text, pos + 1)
    return pos


def _skip_value(text: str, pos: int) -> int:
    """The index just after the value starting at ``pos`` (iterative, for any depth)."""
    char = text[pos]
    if char == '"':
        end: int = json.decoder.scanstring(text, pos + 1, True)[1]  # type: ignore[attr-defined]
        return end
    if char not in "[{":
        return _SCALAR_END.match(text, pos).end()  # type: ignore[union-attr]
    depth = 0
    for token in _SKIP_TOKEN.finditer(text, pos):
        mark = token.group()
        if mark in ("[", "{"):
            depth += 1
        elif mark in ("]", "}"):
            depth -= 1
            if depth == 0:
                return token.end()
    raise ValueError("unterminated container")


# --- the legacy launcher's text --------------------------------------------------------
#
# rumprun's 2015 master dialect, as its launcher wrote it, is not JSON: objects opened
# with ``{,``, trailing commas, repeated keys (``blk`` once per device, ``env`` once per
# variable) and, for QEMU's ``-append``, every comma doubled.  This reader keeps each
# value's line, tolerates exactly those habits, and undoes the comma doubling (inside
# strings too) when every comma is doubled.  The loader reads it to recognise the
# dialect, ``bakeplan upgrade`` to convert it.


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
    fresh: bool = True  # nothing read inside it yet

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
    only, and is bounded as a config's is (``DEFAULT_MAX_DEPTH`` levels).

    Besides the values, it records what it tolerated, by index into the text, for the
    loader to name the signs of the dialect: each run of commas (``commas``: the index of
    the ``{`` it follows directly, or None, and the index of each comma) and each key of
    the top-level object (``top_keys``: the key, its index, and the index of its value).
    """

    text: str
    source: str
    undouble: bool = False
    pos: int = 0
    max_depth: int = DEFAULT_MAX_DEPTH
    commas: list[tuple[int | None, tuple[int, ...]]] = field(default_factory=list)
    top_keys: list[tuple[str, int, int]] = field(default_factory=list)
    _newlines: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # Where each line ends, so that a position's line is a bisection, not a count
        # from the start (which made a large text quadratic to read).
        self._newlines = [m.start() for m in re.finditer("\n", self.text)]

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_left(self._newlines, self.pos if pos is None else pos) + 1

    def line_col(self, pos: int) -> tuple[int, int]:
        """``line_col(text, pos)`` by bisection: a text can hold thousands of signs."""
        before = bisect.bisect_left(self._newlines, pos)
        return before + 1, pos - (self._newlines[before - 1] + 1 if before else 0) + 1

    def fail(self, message: str, pos: int | None = None) -> InputError:
        return InputError(message, file=self.source, line=self.line(pos))

    def skip_ws(self) -> None:
        self.pos = _ws(self.text, self.pos)

    def skip_commas(self, after: int | None = None) -> int:
        """Skip a run of commas (and the space between them); how many there were.
        ``after`` is the index of the ``{`` the run directly follows, if it does."""
        found: list[int] = []
        text = self.text
        while True:
            self.pos = _ws(text, self.pos)
            if not text.startswith(",", self.pos):
                break
            found.append(self.pos)
            self.pos += 1
        if found:
            self.commas.append((after, tuple(found)))
        return len(found)

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
        opener = open_.pos if open_.fresh and open_.kind == "{" else None
        open_.fresh = False
        if self.skip_commas(opener):
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
            if open_.depth == 1:
                self.top_keys.append((key, key_pos, _ws(self.text, self.pos)))
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
        raw = match.group()
        if self.undouble:
            raw = raw.replace(",,", ",")
        try:
            text = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise self.fail(f"bad string: {exc.msg}", start) from None
        assert isinstance(text, str)
        return text

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


_LEGACY_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LEGACY_SCALAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null")
_LITERALS = {"true": True, "false": False, "null": None}


def _number(literal: str) -> int | float:
    return float(literal) if any(c in literal for c in ".eE") else int(literal)


# Comma runs outside strings: QEMU -append text has every one doubled.
_COMMA_RUNS = re.compile(r'"(?:[^"\\\n]|\\.)*"|(,(?:[ \t\r\n]*,)*)')


def _all_commas_doubled(text: str) -> bool:
    runs = [m.group(1) for m in _COMMA_RUNS.finditer(text) if m.group(1)]
    return bool(runs) and all(run.count(",") % 2 == 0 for run in runs)


def legacy_reader(text: str, source: str) -> tuple[LegacyReader, list[str]]:
    """A reader set at the legacy text's first ``{``, and the notes on how it will read.

    ``read_legacy`` reads it through; the loader reads as far as it can, for the signs.
    """
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
