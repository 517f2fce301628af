"""rumprun-bake.conf reading: the real files, both formats, and rumprun-bake's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO

from orchestrator.bake import ConfBook, standard_book
from orchestrator.bakeconf import read_books, read_text
from orchestrator.cli import main
from orchestrator.errors import InputError


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
