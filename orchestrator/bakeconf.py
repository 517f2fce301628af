"""Reading rumprun-bake.conf files into a ``ConfBook``, as rumprun-bake reads its ``-c`` files.

rumprun-bake sources its configuration files as shell scripts whose commands are its own
functions.  bakeplan does not run a shell: it reads the same files word by word (quotes,
backslash escapes and continuations, ``#`` comments) and refuses, with ``file:line``,
anything a plain word list cannot say (``$`` expansions, ``;``, redirections, ...).

Two formats are read, chosen by each file's ``version`` line:

* ``20160209`` (rumprun master): ``conf NAME`` ... ``fnoc`` blocks holding ``create
  "description"`` (required), ``add -l...``, ``assimilate OTHER...``, ``remove -l...``
  and ``nuke``;
* ``20150930`` (the earlier line format): the same commands with the config's name as
  their first word (``create NAME "description"``, ``add NAME -l...``, ...).  The real
  rumprun-bake accepts only its own version; bakeplan reads both so that an old file
  still gives the list it was written for.

After each file, private (``_``) names are hidden, as rumprun-bake does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.bake import NAME_RULE, ConfBook, standard_book
from orchestrator.errors import InputError

BLOCK_VERSION = "20160209"
LINE_VERSION = "20150930"
VERSIONS = (BLOCK_VERSION, LINE_VERSION)
# A config name becomes part of a shell variable name in rumprun-bake (CONFIG_<name>).
_SHELL_NAME = re.compile(r"[A-Za-z0-9_]+")  # fullmatch: "$" passes "a\n"
# Characters that would make the shell do something a word list cannot express.
_SHELL_SPECIAL = set("$`;&|<>(){}*?[~")
_COMMANDS = ("version", "conf", "fnoc", "create", "add", "assimilate", "remove", "nuke")


@dataclass(frozen=True)
class Command:
    """One command of a conf file: its words and the line it starts on."""

    line: int
    words: tuple[str, ...]


def read_books(paths: Sequence[str], book: ConfBook | None = None) -> ConfBook:
    """The standard configs (or ``book``), then each file of ``paths`` read in order."""
    result = standard_book() if book is None else book
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read the rumprun-bake configuration: {exc.strerror or exc}", file=path
            ) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text ({exc.reason})", file=path) from None
        read_text(text, path, result)
    return result


def read_text(text: str, source: str, book: ConfBook) -> None:
    """Apply the conf file ``text`` (named ``source`` in errors) to ``book``."""
    commands = list(commands_of(text, source))
    version = _version(commands, source)
    if version == BLOCK_VERSION:
        _apply_blocks(commands, source, book)
    else:
        _apply_lines(commands, source, book)
    book.end_of_file()


def _version(commands: Sequence[Command], source: str) -> str:
    for command in commands:
        if command.words[0] == "version":
            if len(command.words) != 2 or command.words[1] not in VERSIONS:
                got = " ".join(command.words[1:])
                raise InputError(
                    f"version mismatch: expect {BLOCK_VERSION} (or the older "
                    f"{LINE_VERSION}), got {got!r}",
                    file=source,
                    line=command.line,
                )
            return command.words[1]
    raise InputError(
        "config version not specified",
        file=source,
        line=commands[0].line if commands else 1,
        hint=f"rumprun-bake configuration files start with `version {BLOCK_VERSION}`",
    )


def _apply_blocks(commands: Iterable[Command], source: str, book: ConfBook) -> None:
    current: tuple[str, int] | None = None  # the open block's name and its line
    for command in commands:
        verb, args = command.words[0], command.words[1:]
        where = (source, command.line)
        if verb == "version":
            continue
        if verb == "conf":
            if current is not None:
                raise InputError(
                    f"conf {' '.join(args)}: the block of {current[0]} (line {current[1]}) "
                    "has no fnoc",
                    file=source,
                    line=command.line,
                )
            if len(args) != 1:
                raise InputError(
                    "conf takes exactly one config name", file=source, line=command.line
                )
            _check_name(args[0], source, command.line)
            current = (args[0], command.line)
            continue
        if verb == "fnoc":
            if current is None:
                raise InputError("fnoc without conf", file=source, line=command.line)
            current = None
            continue
        if current is None:
            raise InputError(
                f"{verb} outside a conf ... fnoc block",
                file=source,
                line=command.line,
                hint=f"version {BLOCK_VERSION} files put {verb} inside `conf NAME` ... `fnoc`",
            )
        _apply(book, verb, current[0], args, where)
    if current is not None:
        raise InputError(
            f"conf {current[0]} has no fnoc before the end of the file",
            file=source,
            line=current[1],
        )


def _apply_lines(commands: Iterable[Command], source: str, book: ConfBook) -> None:
    for command in commands:
        verb, args = command.words[0], command.words[1:]
        if verb == "version":
            continue
        if verb in ("conf", "fnoc"):
            raise InputError(
                f"{verb} is a version {BLOCK_VERSION} command; this file says version "
                f"{LINE_VERSION}",
                file=source,
                line=command.line,
            )
        if not args:
            raise InputError(
                f"{verb}: not enough arguments (version {LINE_VERSION} names the config first)",
                file=source,
                line=command.line,
            )
        if verb == "create":
            _check_name(args[0], source, command.line)
        _apply(book, verb, args[0], args[1:], (source, command.line))


def _apply(
    book: ConfBook, verb: str, name: str, args: Sequence[str], where: tuple[str, int]
) -> None:
    if verb == "create":
        book.create(name, " ".join(args), where)
    elif verb == "add":
        # rumprun-bake keeps the words unquoted, so one quoted "-la -lb" is two words.
        book.add(name, [w for arg in args for w in arg.split()], where)
    elif verb == "assimilate":
        book.assimilate(name, args, where)
    elif verb == "remove":
        book.remove(name, [w for arg in args for w in arg.split()], where)
    elif verb == "nuke":
        if args:
            raise InputError("nuke: wrong number of args", file=where[0], line=where[1])
        book.nuke(name, where)
    else:
        raise InputError(
            f"unknown command {verb!r}",
            file=where[0],
            line=where[1],
            hint=f"rumprun-bake.conf commands: {', '.join(_COMMANDS)}",
        )


def _check_name(name: str, source: str, line: int) -> None:
    if not NAME_RULE.match(name):
        raise InputError(
            f'invalid config name "{name}": must match ^(xen|hw)?_', file=source, line=line
        )
    if not _SHELL_NAME.fullmatch(name):
        raise InputError(
            f'invalid config name "{name}": letters, digits and _ only',
            file=source,
            line=line,
        )


# --- words -----------------------------------------------------------------------------


def commands_of(text: str, source: str) -> Iterator[Command]:
    """The file's commands: shell words, one command per logical line."""
    words: list[str] = []
    start = 0
    for line, word in _words(text, source):
        if word is None:
            if words:
                yield Command(start, tuple(words))
            words = []
            continue
        if not words:
            start = line
        words.append(word)
    if words:
        yield Command(start, tuple(words))


def _words(text: str, source: str) -> Iterator[tuple[int, str | None]]:  # noqa: PLR0912
    """``(line, word)`` pairs, and ``(line, None)`` at the end of each logical line."""
    line = 1
    pos = 0
    end = len(text)
    while pos < end:
        char = text[pos]
        if char == "\n":
            yield line, None
            line += 1
            pos += 1
        elif char in " \t\r":
            pos += 1
        elif char == "\\" and text.startswith("\n", pos + 1):
            line += 1  # a continuation: the command goes on
            pos += 2
        elif char == "#":
            while pos < end and text[pos] != "\n":
                pos += 1
        else:
            word_line = line
            word: list[str] = []
            while pos < end and text[pos] not in " \t\r\n":
                char = text[pos]
                if char == "\\":
                    if pos + 1 >= end:
                        raise InputError("a backslash ends the file", file=source, line=line)
                    if text[pos + 1] == "\n":
                        line += 1
                        pos += 2
                        continue
                    word.append(text[pos + 1])
                    pos += 2
                elif char in "'\"":
                    close = text.find(char, pos + 1)
                    if close < 0:
                        raise InputError(f"unterminated {char} quote", file=source, line=line)
                    quoted = text[pos + 1 : close]
                    if char == '"' and (set(quoted) & set("$`\\")):
                        raise InputError(
                            "$, ` and \\ inside double quotes are shell syntax bakeplan "
                            "does not read",
                            file=source,
                            line=line,
                        )
                    word.append(quoted)
                    line += quoted.count("\n")
                    pos = close + 1
                elif char in _SHELL_SPECIAL:
                    raise InputError(
                        f"{char!r} is shell syntax bakeplan does not read in a "
                        "rumprun-bake configuration",
                        file=source,
                        line=line,
                        hint="write plain words: commands, config names and -l flags",
                    )
                else:
                    word.append(char)
                    pos += 1
            yield word_line, "".join(word)
    yield line, None
