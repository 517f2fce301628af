"""Reading rumprun-bake.conf files into a ``ConfBook``, as rumprun-bake reads its ``-c`` files.

rumprun-bake sources its configuration files as shell scripts whose commands are its own
functions.  bakeplan does not run a shell: it reads the same files word by word (quotes,
backslash escapes and continuations, ``#`` comments) and refuses, with ``file:line``,
anything a plain word list cannot say (``$`` expansions, ``;``, redirections, a leading
``~``, ...).  ``{``, ``}`` and a ``~`` inside a word are plain characters, as in sh.

Where the real script's shell would not take a file as bakeplan reads it, the file is
refused rather than read differently:

* CR line ends: sh keeps the CR as part of each line's last word, so rumprun-bake fails
  on ``version 20160209\r`` (or, past it, makes words ending in a CR);
* ``create`` and ``add`` paste their words, split and globbed, into an ``eval``, and
  ``remove`` splits and globs its words again, so ``"``, ``$``, backquotes, backslashes
  and glob characters are refused in those words even when quoted;
* every ``version`` line is checked, not only the first.

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

from orchestrator.errors import InputError
from orchestrator.rumprun.bake import COMPONENT, NAME_RULE, ConfBook, standard_book

BLOCK_VERSION = "20160209"
LINE_VERSION = "20150930"
VERSIONS = (BLOCK_VERSION, LINE_VERSION)
# A config name becomes part of a shell variable name in rumprun-bake (CONFIG_<name>).
_SHELL_NAME = re.compile(r"[A-Za-z0-9_]+")  # fullmatch: "$" passes "a\n"
# Characters that would make the shell do something a word list cannot express.  `{`, `}`
# and `~` are not among them: sh has no brace expansion and expands `~` only at the start
# of a word, which _words refuses by itself.
_SHELL_SPECIAL = set("$`;&|<>()*?[")
# What rumprun-bake's second evaluation of a `create`, `add` or `remove` word would still
# act on.  `create` and `add` paste their words unquoted into `eval VAR=\"... $@\"`: they
# are globbed first, then `"`, `$`, backquotes and backslashes are live again inside the
# eval's double quotes (a `'` is not).  `remove` words and the final list are split and
# globbed unquoted (`_filter ${x}`, `set -- ${list}`), and dash's `echo` in `describe`
# reads backslash escapes.
_EVALUATED_AGAIN = set('"$`\\*?[')
# The blanks sh splits unquoted words on (its default IFS).
_BLANKS = re.compile(r"[ \t\n]+")
_COMMANDS = ("version", "conf", "fnoc", "create", "add", "assimilate", "remove", "nuke")


@dataclass(frozen=True)
class Command:
    """One command of a conf file: its words, the line it starts on and each word's line
    (a command may go on over backslash continuations)."""

    line: int
    words: tuple[str, ...]
    word_lines: tuple[int, ...] = ()

    def line_of(self, index: int) -> int:
        """The line word ``index`` starts on."""
        return self.word_lines[index] if index < len(self.word_lines) else self.line


def read_books(paths: Sequence[str], book: ConfBook | None = None) -> ConfBook:
    """The standard configs (or ``book``), then each file of ``paths`` read in order."""
    result = standard_book() if book is None else book
    for path in paths:
        try:
            # Bytes, then text: read_text would turn CRLF into LF, and the real script's
            # shell sees every CR.
            text = Path(path).read_bytes().decode("utf-8")
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
    _refuse_carriage_returns(text, source)
    commands = list(commands_of(text, source))
    version = _version(commands, source)
    if version.words[1] == BLOCK_VERSION:
        _apply_blocks(commands, source, book, version)
    else:
        _apply_lines(commands, source, book, version)
    book.end_of_file()


def _refuse_carriage_returns(text: str, source: str) -> None:
    # sh splits words on blanks and newlines only: in a CRLF file every line's last word
    # ends in a CR, and rumprun-bake dies on its very first line (`mismatch: expect
    # 20160209, got "20160209\r"`).  Reading the CR as a blank would accept what the real
    # script refuses.
    where = text.find("\r")
    if where >= 0:
        crlf = text.startswith("\r\n", where)
        raise InputError(
            "CR line ends (CRLF): rumprun-bake's shell reads the CR as part of the last word"
            if crlf
            else "a carriage return (CR): rumprun-bake's shell reads it as part of a word",
            file=source,
            line=text.count("\n", 0, where) + 1,
            hint="convert the file to LF line ends (dos2unix, or sed -i 's/\\r$//')",
        )


def _check_version(command: Command, source: str, first: Command | None) -> None:
    """Refuse a ``version`` line rumprun-bake would die on, or one that disagrees with
    the file's ``first`` (the one that chose the format)."""
    if len(command.words) != 2 or command.words[1] not in VERSIONS:
        got = " ".join(command.words[1:])
        raise InputError(
            f"version mismatch: expect {BLOCK_VERSION} (or the older {LINE_VERSION}), got {got!r}",
            file=source,
            line=command.line,
        )
    if first is not None and command.words[1] != first.words[1]:
        raise InputError(
            f"version mismatch: line {first.line} says version {first.words[1]}, this "
            f"line {command.words[1]}",
            file=source,
            line=command.line,
            hint=f"rumprun-bake checks every version line against {BLOCK_VERSION}",
        )


def _version(commands: Sequence[Command], source: str) -> Command:
    """The first ``version`` command, which chooses the file's format."""
    for command in commands:
        if command.words[0] == "version":
            _check_version(command, source, None)
            return command
    raise InputError(
        "config version not specified",
        file=source,
        line=commands[0].line if commands else 1,
        hint=f"rumprun-bake configuration files start with `version {BLOCK_VERSION}`",
    )


def _apply_blocks(
    commands: Iterable[Command], source: str, book: ConfBook, version: Command
) -> None:
    current: tuple[str, int] | None = None  # the open block's name and its line
    for command in commands:
        verb, args = command.words[0], command.words[1:]
        if verb == "version":
            # Checked in file order, as rumprun-bake runs each one where it stands.
            _check_version(command, source, version)
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
        _apply(book, current[0], command, 1, source)
    if current is not None:
        raise InputError(
            f"conf {current[0]} has no fnoc before the end of the file",
            file=source,
            line=current[1],
        )


def _apply_lines(
    commands: Iterable[Command], source: str, book: ConfBook, version: Command
) -> None:
    for command in commands:
        verb, args = command.words[0], command.words[1:]
        if verb == "version":
            _check_version(command, source, version)
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
        _apply(book, args[0], command, 2, source)


def _apply(book: ConfBook, name: str, command: Command, first: int, source: str) -> None:
    """Apply ``command`` to config ``name``; its arguments are its words from ``first``."""
    verb, args = command.words[0], command.words[first:]
    where = (source, command.line)
    if verb in ("create", "add", "remove"):
        _check_evaluated_again(verb, command, first, source)
    if verb == "create":
        # `eval CONFDESCR_x=\"${*}\"` splits the description unquoted and joins the parts
        # with one space: each run of blanks becomes one space.
        book.create(name, _BLANKS.sub(" ", " ".join(args)), where)
    elif verb == "add":
        # rumprun-bake pastes the words into one string it splits later, so one quoted
        # "-la -lb" adds two words.
        words = [(w, command.line_of(first + i)) for i, arg in enumerate(args) for w in arg.split()]
        for word, line in words:
            _check_library(word, source, line)
        book.add(name, [word for word, _ in words], where)
    elif verb == "assimilate":
        book.assimilate(name, args, where)
    elif verb == "remove":
        book.remove(name, [lib for arg in args if (lib := _removed(arg)) is not None], where)
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


def _removed(word: str) -> str | None:
    """The library one ``remove`` word drops, or None when it can drop none.

    rumprun-bake removes word by word (``for x; do _filter ${x} ...``), so one quoted
    ``"-la -lb"`` is one word, not two.  The unquoted ``${x}`` drops blanks around it
    (``" -la"`` removes ``-la``); with a blank inside, its second part is taken as the
    name of the list to filter, the shell reports a bad substitution, and nothing is
    removed (rumprun-bake still exits 0).  No list word holds a blank, so none matches.
    """
    parts = word.split()
    return parts[0] if len(parts) == 1 else None


def _check_library(word: str, source: str, line: int) -> None:
    # rumprun-bake hands any word to the linker; a plan's libs are -l flags of component
    # names (bakeplan schema plan), so a word like -l~x, read literally as sh reads it,
    # is refused here, where its file and line are known, not in a plan that breaks its
    # schema.  remove takes any word: one that is not a flag matches nothing.
    if not (word.startswith("-l") and COMPONENT.match(word[2:])):
        raise InputError(
            f"add {word}: not a library flag; a plan's libraries are -l followed by "
            "letters, digits and _",
            file=source,
            line=line,
            hint="rumprun-bake would pass the word to the linker as it is; bakeplan plans "
            "-l libraries only",
        )


def _check_evaluated_again(verb: str, command: Command, first: int, source: str) -> None:
    """Refuse, in ``create``/``add``/``remove`` arguments, what rumprun-bake's second
    evaluation would act on, however it was quoted in the file."""
    for index in range(first, len(command.words)):
        bad = sorted(set(command.words[index]) & _EVALUATED_AGAIN)
        if bad:
            raise InputError(
                f"{bad[0]!r} in a {verb} word: rumprun-bake evaluates {verb}'s words a "
                "second time, so quoting does not make it a plain character",
                file=source,
                line=command.line_of(index),
                hint='write library flags and descriptions without " $ ` \\ * ? [',
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
    lines: list[int] = []
    for line, word in _words(text, source):
        if word is None:
            if words:
                yield Command(lines[0], tuple(words), tuple(lines))
            words, lines = [], []
            continue
        words.append(word)
        lines.append(line)
    if words:
        yield Command(lines[0], tuple(words), tuple(lines))


def _words(text: str, source: str) -> Iterator[tuple[int, str | None]]:
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
        elif char in " \t":
            pos += 1
        elif char == "\\" and text.startswith("\n", pos + 1):
            line += 1  # a continuation: the command goes on
            pos += 2
        elif char == "#":
            while pos < end and text[pos] != "\n":
                pos += 1
        else:
            if char == "~":
                # sh replaces a word's unquoted leading ~ with a home directory.
                raise InputError(
                    "'~' at the start of a word is the shell's home directory",
                    file=source,
                    line=line,
                    hint="quote it ('~' or \\~) to mean the character itself",
                )
            word_line = line
            word, pos, line = _word(text, pos, line, source)
            yield word_line, word
    yield line, None


def _word(text: str, pos: int, line: int, source: str) -> tuple[str, int, int]:
    """The word starting at ``pos`` on ``line``, and the position and line after it."""
    end = len(text)
    word: list[str] = []
    while pos < end and text[pos] not in " \t\n":
        char = text[pos]
        if char == "\\":
            if pos + 1 >= end:
                raise InputError("a backslash ends the file", file=source, line=line)
            if text[pos + 1] == "\n":
                line += 1
            else:
                word.append(text[pos + 1])
            pos += 2
        elif char in "'\"":
            close = text.find(char, pos + 1)
            if close < 0:
                raise InputError(f"unterminated {char} quote", file=source, line=line)
            quoted = text[pos + 1 : close]
            if char == '"' and (set(quoted) & set("$`\\")):
                raise InputError(
                    "$, ` and \\ inside double quotes are shell syntax bakeplan does not read",
                    file=source,
                    line=line,
                )
            word.append(quoted)
            line += quoted.count("\n")
            pos = close + 1
        elif char in _SHELL_SPECIAL:
            raise InputError(
                f"{char!r} is shell syntax bakeplan does not read in a rumprun-bake configuration",
                file=source,
                line=line,
                hint="write plain words: commands, config names and -l flags",
            )
        else:
            word.append(char)
            pos += 1
    return "".join(word), pos, line
