"""Did you mean: the known word closest to one that is not known.

Every message that refuses a name (a top-level key, a delegate, a bake config, a schema
key, a library or a subject of ``bakeplan explain``) offers the closest known one the same
way, through here.  difflib is imported only when a suggestion is asked for: it is on the
error path, never at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable

# difflib's own default: a suggestion at least this similar (0 to 1) is offered.
CUTOFF = 0.6


def closest(word: str, known: Iterable[str], *, cutoff: float = CUTOFF) -> str | None:
    """The known word most like ``word`` (at least ``cutoff`` similar), or None."""
    import difflib  # noqa: PLC0415  (only on an error path)

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(
    word: str, known: Iterable[str], *, cutoff: float = CUTOFF, quoted: bool = True
) -> str | None:
    """``did you mean 'net'?`` for the closest known word (bare with ``quoted`` False),
    or None when none is close enough."""
    close = closest(word, known, cutoff=cutoff)
    if close is None:
        return None
    return f"did you mean {close!r}?" if quoted else f"did you mean {close}?"
