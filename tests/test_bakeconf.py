"""rumprun-bake.conf reading: the real files, both formats, and rumprun-bake's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO
from helpers_cli import SPEC, run_main

from orchestrator.cli import main
from orchestrator.errors import InputError
from orchestrator.rumprun.bake import ConfBook, standard_book
from orchestrator.rumprun.bakeconf import read_books, read_text


def expected(conformance: Path) -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(
        (conformance / "rumprun-bake" / "expanded-configs.json").read_text()
    )
    return data


def test_the_real_file_into_an_empty_book_expands_exactly(conformance: Path) -> None:
    book = read_books([str(conformance / "rumprun-bake" / "rumprun-bake.conf")], ConfBook())
    want = expected(conformance)
    assert book.names() == ("xen_pv", "xen_pci", "hw_virtio", "hw_virtio_scsi", "hw_generic")
    for name, libs in want.items():
        assert list(book.get(name).libs) == libs, name
    assert book.get("xen_pci").platform == "xen"
    assert book.get("hw_generic").description.startswith("generic targets")


def test_the_20150930_line_format_gives_that_era_s_lists(conformance: Path) -> None:
    book = read_books(
        [str(conformance / "rumprun-bake" / "rumprun-bake.conf.20150930")], ConfBook()
    )
    want = expected(conformance)
    # Two later commits changed the shipped file: rumprunfs_base joined _foundation
    # (858ad6a) and hw_generic gained _virtio_scsi (86f30a4); otherwise the same lists.
    for name in ("xen_pv", "xen_pci", "hw_virtio", "hw_virtio_scsi"):
        assert list(book.get(name).libs) == [
            lib for lib in want[name] if lib != "-lrumprunfs_base"
        ], name
    # Without _virtio_scsi, hw_generic first meets scsipi in _usb, after umass.
    generic = list(book.get("hw_generic").libs)
    later = ("-lrumprunfs_base", "-lrumpdev_virtio_vioscsi", "-lrumpdev_scsipi")
    assert [lib for lib in generic if lib != "-lrumpdev_scsipi"] == [
        lib for lib in want["hw_generic"] if lib not in later
    ]
    assert generic.index("-lrumpdev_scsipi") == generic.index("-lrumpdev_umass") + 1


def test_redefining_a_standard_public_name_fails_as_rumprun_bake_would(conformance: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_books([str(conformance / "rumprun-bake" / "rumprun-bake.conf")])
    assert caught.value.message == "config xen_pv already exists"
    assert caught.value.line is not None
    assert caught.value.file is not None and caught.value.file.endswith("rumprun-bake.conf")


def test_a_file_defines_configs_on_the_standard_ones(tmp_path: Path) -> None:
    conf = tmp_path / "mine.conf"
    conf.write_text(
        "version 20160209\n"
        "conf _extra   # private to this file\n"
        '\tcreate "extra" \n'
        "\tadd -lfoo \\\n"
        "\t    -lbar # a comment after a continuation's last word\n"
        "fnoc\n"
        "conf hw_mine\n"
        "\tcreate 'mine, with extra'\n"
        "\tassimilate hw_virtio _extra\n"
        "\tremove -lrumpnet_netinet6 -lbar\n"
        "fnoc\n"
        "conf hw_gone\n\tcreate gone\n\tnuke\nfnoc\n"
    )
    book = read_books([str(conf)])
    mine = book.get("hw-mine")
    base = standard_book().get("hw_virtio").libs
    assert mine.libs == (*[lib for lib in base if lib != "-lrumpnet_netinet6"], "-lfoo")
    assert mine.description == "mine, with extra"
    assert "_extra" not in book.names()
    assert "hw_gone" not in book.names()
    # A second file cannot reach the first file's private names.
    second = tmp_path / "second.conf"
    second.write_text("version 20160209\nconf hw_two\n create two\n assimilate _extra\nfnoc\n")
    with pytest.raises(InputError) as caught:
        read_books([str(conf), str(second)])
    assert (caught.value.file, caught.value.line) == (str(second), 4)
    assert caught.value.message == 'config "_extra" not found'


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("conf hw_x\n create x\nfnoc\n", 1, "config version not specified"),
        ("version 20990101\n", 1, "version mismatch"),
        ("version 20160209\nconf virtio\n", 2, "must match ^(xen|hw)?_"),
        ("version 20160209\nconf hw_x\n add -la\nfnoc\n", 3, 'config "hw_x" not found'),
        ("version 20160209\nconf hw_x\n create\nfnoc\n", 3, "create: need description"),
        ("version 20160209\nadd -la\n", 2, "add outside a conf ... fnoc block"),
        ("version 20160209\nconf hw_x\n create x\n", 2, "has no fnoc"),
        ("version 20160209\nconf hw_x\n create x\nconf hw_y\n", 4, "has no fnoc"),
        ("version 20160209\nconf hw_x\n create x\n nuke now\nfnoc\n", 4, "nuke: wrong number"),
        ("version 20160209\nconf hw_x\n create x\n add $LIBS\nfnoc\n", 4, "shell syntax"),
        ('version 20160209\nconf hw_x\n create "x\n', 3, "unterminated"),
        ("version 20160209\nconf hw_x\n create x\n frob -la\nfnoc\n", 4, "unknown command"),
        ("version 20160209\nfnoc\n", 2, "fnoc without conf"),
        ("version 20150930\nconf hw_x\n", 2, "version 20160209 command"),
        ("version 20150930\ncreate hw_x x\nadd hw_y -la\n", 3, 'config "hw_y" not found'),
    ],
)
def test_errors_carry_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(InputError) as caught:
        read_text(text, "x.conf", ConfBook())
    assert (caught.value.file, caught.value.line) == ("x.conf", line)
    assert message in caught.value.message


def test_cli_plan_and_validate_take_bake_conf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "lean.conf"
    conf.write_text(
        "version 20160209\nconf hw_lean\n create lean\n assimilate hw_virtio\n"
        " remove -lrumpfs_kernfs -lrumpdev_audio\nfnoc\n"
    )
    config = REPO / "examples" / "rumprun-only" / "config.json"
    registry = REPO / "examples" / "rumprun-only" / "registry.json"
    args = [str(config), "-r", str(registry), "--bake-conf", str(conf), "-b", "hw-lean"]
    assert main(["validate", *args]) == 0
    assert main(["plan", *args]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["bake"]["config"] == "hw_lean"
    assert plan["bake"]["libs"] == list(standard_book().get("hw_virtio").libs)
    bad = tmp_path / "bad.conf"
    bad.write_text("version 20160209\nconf hw_bad\n add -la\nfnoc\n")
    assert main(["validate", str(config), "-r", str(registry), "--bake-conf", str(bad)]) == 2
    assert f"{bad}:3: " in capsys.readouterr().err


# --- agreeing with the real rumprun-bake ----------------------------------------------
#
# Each test below records, in its comment, what the real script (rumprun master's
# rumprun-bake, /bin/sh being dash) did with the same file, run as
#   RUMPRUN_WARNING_STFU=please rumprun-bake -c F.conf describe hw_test
# e2e/test_bakeconf_real.py runs such files through both programs and compares.

EMPTY_REGISTRY = REPO / "examples" / "rumprun-only" / "registry.json"


def block(*lines: str) -> str:
    """A version 20160209 file defining ``hw_test`` (line 3 is its create) from ``lines``
    (starting on line 4)."""
    return "\n".join(("version 20160209", "conf hw_test", " create t", *lines, "fnoc", ""))


def libs_of(text: str) -> tuple[str, ...]:
    book = ConfBook()
    read_text(text, "x.conf", book)
    return book.get("hw_test").libs


def refusal(text: str) -> InputError:
    with pytest.raises(InputError) as caught:
        read_text(text, "x.conf", ConfBook())
    assert caught.value.file == "x.conf"
    assert caught.value.line is not None
    return caught.value


def planned(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | bytes
) -> tuple[int, list[str] | None, str]:
    """``bakeplan plan {} --bake-conf F -b hw_test``: exit code, libs (or None), stderr."""
    conf = tmp_path / "f.conf"
    if isinstance(content, str):
        conf.write_text(content, encoding="utf-8")
    else:
        conf.write_bytes(content)
    config = tmp_path / "empty.json"
    config.write_text("{}\n")
    code, out, err = run_main(
        capsys, "plan", str(config), *SPEC, "-r", str(EMPTY_REGISTRY),
        "--bake-conf", str(conf), "-b", "hw_test",
    )  # fmt: skip
    libs: list[str] | None = json.loads(out)["bake"]["libs"] if code == 0 else None
    return code, libs, err


def test_every_version_line_is_checked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Real: a wrong second version
    #   version 20160209 / conf hw_test / create t / add -la / fnoc / version 20990101
    # -> `>> ERROR: v-second-wrong.conf mismatch: expect 20160209, got "20990101"`, exit 1.
    # The same version twice -> `-la`, exit 0.  Each version runs where it stands:
    #   version 20160209 / conf virtio / version 20990101
    # -> `>> ERROR: conf: invalid "virtio" (v-order.conf)`, exit 1 (line 2 first).
    second_wrong = block(" add -la") + "version 20990101\n"
    error = refusal(second_wrong)
    assert error.line == 6
    assert "version mismatch" in error.message
    assert "20990101" in error.message
    # A known version that differs from the first one (which chose the format) is refused
    # too: the real script takes 20160209 only, anywhere in the file.
    mixed = block(" add -la") + "version 20150930\n"
    assert refusal(mixed).line == 6
    assert refusal("version 20150930\ncreate hw_test t\nversion 20160209\n").line == 3
    assert libs_of(block(" add -la") + "version 20160209\n") == ("-la",)
    assert refusal("version 20160209\nconf virtio\nversion 20990101\n").line == 2
    code, libs, err = planned(capsys, tmp_path, second_wrong)
    assert (code, libs) == (2, None)
    assert f"{tmp_path / 'f.conf'}:6: version mismatch" in err


def test_cr_line_ends_are_refused_at_their_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Real: the whole file with CRLF line ends
    # -> `>> ERROR: crlf.conf mismatch: expect 20160209, got "20160209\r"`, exit 1.
    # Only `add -la\r` on line 4 -> `-la\r` (a library word ending in a CR), exit 0: sh
    # splits on blanks and newlines only, so no CR is ever a blank.
    crlf = block(" add -la").replace("\n", "\r\n")
    error = refusal(crlf)
    assert error.line == 1
    assert "CRLF" in error.message
    assert refusal(block(" add -la\r")).line == 4
    assert refusal(block(' add "-la\r"')).line == 4  # quoted, still not what sh reads
    code, libs, err = planned(capsys, tmp_path, crlf.encode())
    assert (code, libs) == (2, None)
    assert f"{tmp_path / 'f.conf'}:1: CR line ends (CRLF)" in err
    # Read from a file, a lone CR line is caught too: no newline translation on the way.
    code, _, err = planned(capsys, tmp_path, block(" add -la", " add -lb\r").encode())
    assert code == 2
    assert f"{tmp_path / 'f.conf'}:5: " in err


def test_a_quoted_remove_word_with_a_blank_is_one_word(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Real: add -la -lb -lc / remove "-la -lb" -> `-la -lb -lc`, exit 0: remove runs
    # `_filter ${x} CONFIG_hw_test` once per word, "-la -lb" splits into the filtee -la
    # and a list name -lb, and the shell says `eval: Bad substitution` and
    # `eval: -lb=: not found` on stderr; nothing is removed.
    # remove " -la" -> `-lb -lc`, exit 0 (the blank around the one word goes).
    # add "-la -lb" -lc -> `-la -lb -lc`, exit 0 (add pastes its words into one string).
    one_word = block(" add -la -lb -lc", ' remove "-la -lb"')
    assert libs_of(one_word) == ("-la", "-lb", "-lc")
    assert libs_of(block(" add -la -lb -lc", ' remove " -la"')) == ("-lb", "-lc")
    assert libs_of(block(" add -la -lb -lc", ' remove ""')) == ("-la", "-lb", "-lc")
    assert libs_of(block(' add "-la -lb" -lc', ' remove "-la -lb"')) == ("-la", "-lb", "-lc")
    assert libs_of(block(" add -la -lb -lc", " remove -la -lb")) == ("-lc",)
    code, libs, _ = planned(capsys, tmp_path, one_word)
    assert (code, libs) == (0, ["-la", "-lb", "-lc"])


@pytest.mark.parametrize(
    ("line", "char"),
    [
        # Real: -la/root, exit 0.
        (" add '-la$HOME'", "$"),
        # Real: `eval: Syntax error: Unterminated quoted string`, exit 2.
        (" add '-la\"b'", '"'),
        # Real: -lax, exit 0.
        (" add '-la`echo x`'", "`"),
        # Real: `-la`, then `b -la b` on a new line, exit 0 (dash's echo reads the \n).
        (" add '-la\\nb'", "\\"),
        # Real: `\$` leaves `$HOME` to add, which expands it: -l/root.
        (" add -l\\$HOME", "$"),
        # Real: -l* in an empty folder, -lzz where a file -lzz exists.
        (" add '-l*'", "*"),
        # Real: -la -lb, exit 0: the word can never match what add kept.
        (" add -la -lb\n remove '-la$HOME'", "$"),
        # Real: `eval: Syntax error: EOF in backquote substitution`, exit 2.
        (" add -la -lb\n remove '`echo -la`'", "`"),
    ],
)
def test_what_rumprun_bake_evaluates_again_is_refused_even_quoted(
    line: str, char: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = block(line)
    error = refusal(text)
    assert error.line == 3 + line.count("\n") + 1
    assert error.message.startswith(f"{char!r} in a ")
    assert "second time" in error.message
    code, libs, err = planned(capsys, tmp_path, text)
    assert (code, libs) == (2, None)
    assert f"{tmp_path / 'f.conf'}:{error.line}: {char!r} in a " in err


def test_evaluated_again_names_the_word_s_own_line_and_spares_single_quotes() -> None:
    error = refusal(block(" add -la \\", "     '-l$x' -lb"))
    assert error.line == 5
    # create's words go through the same eval: `create 'a $HOME'` would say "a /root".
    assert refusal("version 20160209\nconf hw_test\n create 'a $HOME'\nfnoc\n").line == 3
    # Real: create "it's", then `rumprun-bake -c F list` -> `hw_test         : it's`: a '
    # is plain inside the eval's double quotes.  (add "-l'x'" -> -l'x' there, exit 0;
    # bakeplan refuses it as no library flag, below.)
    assert description_of('version 20160209\nconf hw_test\n create "it\'s"\nfnoc\n') == "it's"


def description_of(text: str) -> str:
    book = ConfBook()
    read_text(text, "x.conf", book)
    return book.get("hw_test").description


def test_a_description_s_blanks_are_joined_as_create_s_eval_joins_them() -> None:
    # Real: create '  a   b  ' c, then `rumprun-bake -c descr.conf list`
    # -> `hw_test         :  a b c` (each run of blanks one space).
    text = "version 20160209\nconf hw_test\n create '  a   b  ' c\nfnoc\n"
    assert description_of(text) == " a b c"


def test_tilde_and_braces_inside_a_word_are_plain_characters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Real: add -l~x -la~ '~' \~ -> `-l~x -la~ ~`, exit 0 (sh expands only a leading,
    # unquoted ~); add -l{a,b} -l{} -lc{d} { } / remove -l{} -> `-l{a,b} -lc{d} { }`,
    # exit 0 (sh has no brace expansion); add ~ -la -> `/root -la`, exit 0.
    # bakeplan reads the same literal words; it plans -l flags of component names only
    # (the plan schema's libs), so it refuses such a word in add naming it as written,
    # and takes it in remove (where it matches nothing) and in descriptions.
    text = (
        "version 20160209\nconf hw_test\n create x~y {z} '~' \\~ a{b,c}\n"
        " add -la -lb\n remove -l~x -l{a,b} { } -lb~\nfnoc\n"
    )
    book = ConfBook()
    read_text(text, "x.conf", book)
    assert book.get("hw_test").description == "x~y {z} ~ ~ a{b,c}"
    assert book.get("hw_test").libs == ("-la", "-lb")
    for word in ("-l~x", "-la~", "-l{a,b}", "-l{}", "{", "}"):
        error = refusal(block(f" add -la {word}"))
        assert (error.line, error.message) == (
            4,
            f"add {word}: not a library flag; a plan's libraries are -l followed by "
            "letters, digits and _",
        )
    for leading in (" add ~ -la", " add -la ~root/x", " add -la \\\n  ~", " remove ~"):
        error = refusal(block(leading))
        assert error.line == 4 + leading.count("\n")
        assert error.message == "'~' at the start of a word is the shell's home directory"
    conf = tmp_path / "f.conf"
    code, libs, _ = planned(capsys, tmp_path, text)
    assert (code, libs) == (0, ["-la", "-lb"])
    code, _, err = planned(capsys, tmp_path, block(" add -la~"))
    assert code == 2
    assert f"{conf}:4: add -la~: not a library flag" in err
    code, _, err = planned(capsys, tmp_path, block(" add ~ -la"))
    assert code == 2
    assert f"{conf}:4: '~' at the start of a word" in err
