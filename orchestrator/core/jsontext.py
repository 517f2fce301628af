"""Strict JSON text, with the line and column of every problem.

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

The near-JSON text of rumprun's 2015 launcher has its own reader,
``orchestrator.rumprun.legacytext``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from jsonpointer import JsonPointer, JsonPointerException

from orchestrator.errors import InputError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "JsonTextError",
    "line_col",
    "locate",
    "parse",
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
# Array items, each followed by its comma, that no check of the scanner could refuse: a
# literal, a number too short to overflow or to exceed Python's integer digits, or a
# string of plain characters and simple escapes (a \u escape may be a lone surrogate).
# Possessive, so that a run of a million items keeps no backtracking state.
_PLAIN_ITEMS = re.compile(
    r"(?:[ \t\n\r]*(?:true|false|null|-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,2})?"
    r'|"[^"\\\x00-\x1f]*(?:\\["\\/bfnrt][^"\\\x00-\x1f]*)*")[ \t\n\r]*,)++'
)
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
            elif stack and stack[-1].keys is None and (run := _PLAIN_ITEMS.match(text, pos)):
                # The bulk of a large array in one match: items that hold no problem.
                pos = run.end()
                stack[-1].comma_pos = pos - 1
                state = _VALUE
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
