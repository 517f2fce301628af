"""The unikernel config: loading it strictly, recognising the legacy dialect, checking it.

``load`` reads one config (a file, or ``-`` for stdin) as strict JSON, refuses rumprun's
2015 master dialect with a pointer to ``bakeplan upgrade`` (never converting it
silently; text that is not JSON is recognised by the launcher's habits, which
``rumprun.legacytext``, the module of ``bakeplan upgrade``'s reader, finds), and returns
a ``Config`` that keeps its text, so that every later problem can be reported at
``file:line:col`` as well as by JSON pointer.  A config larger than ``MAX_CONFIG_BYTES``
is refused before it is read whole, so no input exhausts memory.

``validate_dialect`` checks a whole config, or the fragment under one of its top-level
keys, against the specification dialect's schema (``schemas/config.json``) plus the rules
a schema cannot say, and returns every violation; ``check`` raises them as errors.
jsonschema is imported only when a check runs, never at start-up.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from orchestrator.core import jsontext
from orchestrator.errors import (
    BakeplanError,
    DelegateError,
    InputError,
    LegacyDialectError,
    Problems,
    raise_all,
)
from orchestrator.pointers import nearest
from orchestrator.schemas import explainer
from orchestrator.schemas.explainer import Violation

__all__ = [
    "RUMPRUN_KEYS",
    "Config",
    "Violation",
    "check",
    "load",
    "validate_dialect",
]

# The largest config bakeplan reads (docs/RELIABILITY.md).  rumprun itself boots from at
# most 4 KiB on hw, so this leaves room for delegates' own large parts while keeping
# parsing, checking and the delegates' copies well inside a few hundred MiB of memory
# and a few seconds; a 100 MB file is refused before it is read.
MAX_CONFIG_BYTES = 4 * 1024 * 1024

STDIN = "-"
STDIN_NAME = "<stdin>"
SCHEMA = "config"
# The specification dialect's top-level keys, in the order rumprun applies them: what the
# built-in rumprun layer reads, and so what no delegate has to claim.
RUMPRUN_KEYS = ("rc", "env", "blk", "mount", "net", "netbsd")

_LEGACY_TOP_KEYS = {
    "cmdline": "`cmdline`, one command-line string (the specification has rc[].argv)",
    "rc_TESTING": "`rc_TESTING` (the specification has rc)",
    "hostname": "a top-level `hostname` (the specification has netbsd.sysctl kern.hostname)",
}
_LEGACY_ENV_STRING = '`env` as a "NAME=VALUE" string (the specification has an object)'
_LEGACY_NET_KEYS = frozenset({"if", "cloner", "type", "method", "addr", "mask", "gw"})
_LEGACY_BLK_KEYS = frozenset({"source", "path", "fstype", "mountpoint"})
_SHOWN_MARKS = 5


@dataclass(frozen=True)
class Config:
    """One loaded config: where it came from, its text, and its parsed value."""

    source: str
    text: str
    data: dict[str, Any]

    def position(self, pointer: str) -> tuple[int, int] | None:
        """The line and column where the value at ``pointer`` starts, if it exists."""
        return jsontext.locate(self.text, pointer)

    def error_at(
        self,
        pointer: str,
        message: str,
        *,
        detail: Sequence[str] = (),
        hint: str | None = None,
    ) -> InputError:
        """An error at ``pointer``, placed at ``file:line:col``.

        A pointer to something absent (a missing key) is placed at its closest existing
        ancestor, which is where the fix goes.
        """
        line, col = nearest(pointer, self.position) or (None, None)
        return InputError(
            message,
            file=self.source,
            line=line,
            col=col,
            pointer=pointer,
            detail=detail,
            hint=hint,
        )

    def place(self, error: BakeplanError) -> BakeplanError:
        """``error`` (and each problem inside it) at this file's line:col for its pointer,
        as a new error; the one given is left as it was raised.

        Routing and gating speak in pointers; a person looks for a line in the file.
        Errors that already name a file, or a delegate, keep their own place.
        """
        if isinstance(error, Problems):
            return type(error)(self.place(problem) for problem in error.problems)
        if error.pointer is None or error.file is not None or isinstance(error, DelegateError):
            return error
        return error.located(self.source, *(nearest(error.pointer, self.position) or (None, None)))


# --- loading ---------------------------------------------------------------------------


def load(path: str) -> Config:
    """Read and parse the config at ``path`` (``-``: stdin); refuse the legacy dialect."""
    source = STDIN_NAME if path == STDIN else path
    raw = _read(path, source)
    try:
        value = jsontext.parse(raw, source=source)
    except jsontext.JsonTextError as error:
        # Legacy launcher output is not JSON at all; say what it is before saying where
        # the JSON broke, which would only mislead.
        legacy = _legacy_text_marks(raw.decode("utf-8", errors="replace"))
        if legacy:
            raise _legacy_error(source, path, legacy) from None
        raise error from None
    text = raw.decode("utf-8")
    if not isinstance(value, dict):
        line, col = jsontext.locate(text, "") or (1, 1)
        raise InputError(
            f"the config must be a JSON object, not {explainer.json_type(value)}",
            file=source,
            line=line,
            col=col,
            hint='an empty config is {}; see "bakeplan schema config"',
        )
    config = Config(source=source, text=text, data=value)
    marks = _legacy_data_marks(config)
    if marks:
        raise _legacy_error(source, path, marks)
    return config


def _read(path: str, source: str) -> bytes:
    """The config's bytes, refused past ``MAX_CONFIG_BYTES`` before they are all read.

    A regular file's size is known up front; a pipe, stdin or a device such as
    ``/dev/zero`` is read only up to one byte past the limit.
    """
    try:
        if path == STDIN:
            if sys.stdin is None:
                raise InputError("no standard input to read the config from", file=source)
            return _bounded(sys.stdin.buffer, source)
        with Path(path).open("rb") as stream:
            info = os.fstat(stream.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_CONFIG_BYTES:
                raise _too_big(source, f"{info.st_size} bytes")
            return _bounded(stream, source)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"cannot read the config: {reason}", file=source) from None


def _bounded(stream: BinaryIO, source: str) -> bytes:
    data = stream.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise _too_big(source, "more")
    return data


def _too_big(source: str, size: str) -> InputError:
    said = "more" if size == "more" else f"{size}, more"
    return InputError(
        f"the config is {said} than the {MAX_CONFIG_BYTES // (1 << 20)} MiB bakeplan reads "
        "(its maximum config size); refused before parsing",
        file=source,
        hint="rumprun boots from a runtime config of at most 4 KiB on hw: is this the right file?",
    )


# A legacy mark: (line, col, pointer or None, what was recognised).
_Mark = tuple[int, int, str | None, str]


def _legacy_text_marks(text: str) -> list[_Mark]:
    """Signs of the legacy launcher's non-JSON text: ``{,``, doubled commas, legacy keys,
    as far as the text's structure can be followed (``legacytext.signs``)."""
    from orchestrator.rumprun import legacytext  # noqa: PLC0415  (only for text that is not JSON)

    found = legacytext.signs(text)
    if found is None:
        return []  # no object at all
    marks: list[_Mark] = []
    doubled: list[_Mark] = []
    lone_comma = found.single
    for opener, commas in found.commas:
        if opener is not None:
            marks.append(
                (
                    *found.line_col(opener),
                    None,
                    "the `{,` opener the old rumprun launcher wrote (not JSON)",
                )
            )
            commas = commas[2:]  # noqa: PLW2901  (the opener's own one or two are not doubled)
        doubled.extend(
            (
                *found.line_col(pos),
                None,
                "doubled commas, as QEMU's -append needs them (not JSON)",
            )
            for pos in commas[: len(commas) - len(commas) % 2 : 2]
        )
        lone_comma = lone_comma or len(commas) % 2 == 1
    for key, pos, value in found.top_keys:
        if key in _LEGACY_TOP_KEYS:
            marks.append((*found.line_col(pos), "/" + key, _LEGACY_TOP_KEYS[key]))
        elif key == "env" and text.startswith('"', value):
            marks.append((*found.line_col(pos), "/env", _LEGACY_ENV_STRING))
    # QEMU's -append doubles every comma; one stray ",," in a config is a typo, not that.
    if not lone_comma:
        marks.extend(doubled)
    return sorted(marks, key=lambda mark: (mark[0], mark[1]))


def _legacy_data_marks(config: Config) -> list[_Mark]:
    """Signs of the legacy dialect in a config that parsed as JSON."""
    data = config.data
    found: list[tuple[str, str]] = [
        ("/" + key, reason) for key, reason in _LEGACY_TOP_KEYS.items() if key in data
    ]
    if isinstance(data.get("env"), str):
        found.append(("/env", _LEGACY_ENV_STRING))
    net = data.get("net")
    if isinstance(net, dict) and _LEGACY_NET_KEYS & net.keys():
        found.append(
            (
                "/net",
                "a flat `net` object with `if`, `method`, ... (the specification has "
                "net.interfaces)",
            )
        )
    blk = data.get("blk")
    # A specification blk maps device names to objects; legacy blk is one flat object of
    # strings.  A device named "source" would hold an object, so it is not mistaken.
    if isinstance(blk, dict) and any(
        key in _LEGACY_BLK_KEYS and not isinstance(value, dict) for key, value in blk.items()
    ):
        found.append(
            (
                "/blk",
                "a `blk` object with `source`, `mountpoint`, `fstype` (the specification "
                "splits it into blk and mount)",
            )
        )
    marks: list[_Mark] = []
    for pointer, reason in found:
        line, col = config.position(pointer) or (1, 1)
        marks.append((line, col, pointer, reason))
    return sorted(marks, key=lambda mark: (mark[0], mark[1]))


def _legacy_error(source: str, path: str, marks: Sequence[_Mark]) -> LegacyDialectError:
    line, col, pointer, _ = marks[0]
    detail = [
        f"{mark_line}:{mark_col}{f' at {mark_pointer}' if mark_pointer else ''}: {reason}"
        for mark_line, mark_col, mark_pointer, reason in marks[:_SHOWN_MARKS]
    ]
    if len(marks) > _SHOWN_MARKS:
        detail.append(f"... and {len(marks) - _SHOWN_MARKS} more signs of the legacy dialect")
    return LegacyDialectError(
        "this config is in rumprun's legacy (2015 master) dialect, which bakeplan does not read",
        file=source,
        line=line,
        col=col,
        pointer=pointer,
        detail=detail,
        hint=f"`bakeplan upgrade {shlex.quote(path)}` converts it to the specification "
        "dialect (bakeplan never converts it silently)",
    )


# --- validating ------------------------------------------------------------------------


def validate_dialect(
    data: Any,
    *,
    base_pointer: str = "",
    section: str | None = None,
    skip: Collection[str] = (),
) -> list[Violation]:
    """Every violation of the specification dialect in ``data``, sorted by pointer.

    ``data`` is a whole config (``section`` None) or the value of one top-level key
    (``section="net"``); ``base_pointer`` is where ``data`` sits in the whole config and
    prefixes every pointer returned.  ``skip`` holds pointers (in the same, whole-config
    terms) whose subtrees other delegates own: violations at or below them are dropped.
    """
    if section is None:
        ref = None
    elif section in RUMPRUN_KEYS:
        ref = f"#/$defs/{section}"
    else:
        raise ValueError(f"unknown section {section!r}; known: {', '.join(RUMPRUN_KEYS)}")
    found = explainer.violations(SCHEMA, data, ref=ref, base_pointer=base_pointer)
    if section is None and isinstance(data, dict):
        found.extend(_rc_rules(data.get("rc"), base_pointer + "/rc"))
    elif section == "rc":
        found.extend(_rc_rules(data, base_pointer))
    return explainer.finish(found, skip=skip)


def check(config: Config, *, skip: Collection[str] = ()) -> None:
    """Raise every violation in ``config`` as an error at ``file:line:col`` and pointer."""
    raise_all(
        [
            config.error_at(
                violation.pointer,
                violation.message,
                detail=(
                    f"value: {explainer.show(violation.value)}",
                    f"expected: {violation.expected}",
                ),
            )
            for violation in validate_dialect(config.data, skip=skip)
        ]
    )


def _rc_rules(rc: Any, pointer: str) -> list[Violation]:
    """What the schema cannot say about rc: the last entry has nothing to pipe into."""
    if not isinstance(rc, list) or not rc:
        return []
    last = rc[-1]
    if isinstance(last, dict) and last.get("runmode") == "|":
        return [
            Violation(
                pointer=f"{pointer}/{len(rc) - 1}/runmode",
                message='runmode "|" pipes into the next rc entry, but this is the last one',
                value="|",
                expected='"" (foreground) or "&" (background) on the last entry',
            )
        ]
    return []
