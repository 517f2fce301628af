"""JSON Schema ``pattern``s as ECMA-262 reads them, on Python's ``re``.

A schema's patterns are ECMA-262 regular expressions (JSON Schema 2020-12, section 6.4),
where ``$`` matches only at the very end of the text.  Python's ``$`` also matches before
a final newline, so ``^[a-z]+$`` would take ``"xbd0\\n"``, a name Solo5's elftool, a
shell and a file system all read differently.  Every pattern bakeplan applies, its own
schemas' and delegates' ``fragment_schema``s alike, goes through ``search`` here: ``$``
outside a character class becomes ``\\Z``.
"""

from __future__ import annotations

import functools
import re


def to_python(pattern: str) -> str:
    """``pattern`` with each ``$`` anchor (unescaped, outside ``[...]``) made ``\\Z``."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # A "]" first in a class is a member, not its end.
            if pattern.startswith("]", index + 1) or pattern.startswith("^]", index + 1):
                out.append(pattern[index : pattern.index("]", index + 1) + 1])
                index = pattern.index("]", index + 1) + 1
                continue
        elif char == "$":
            char = r"\Z"
        out.append(char)
        index += 1
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def compiled(pattern: str) -> re.Pattern[str]:
    """The compiled form of ``pattern`` (``re.error`` when Python cannot read it)."""
    return re.compile(to_python(pattern))


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, as JSON Schema's keyword asks."""
    return compiled(pattern).search(text) is not None
