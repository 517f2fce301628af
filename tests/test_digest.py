"""What "an unchanged delegate" means (``core.digest``): a file's digest, found again when
the file changes; a command's digest over its executable, the files its arguments name and
``extra``; and a registry entry's ``inputs``, relative to the registry's folder, a pattern
matching nothing being part of the key as such.  The cache keys built from them, end to
end, are test_cache_keys'."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from helpers_exec import write_sh

from orchestrator.core import digest


def test_a_files_digest_is_its_bytes_and_follows_a_change(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one")
    assert digest.file_sha256(path) == hashlib.sha256(b"one").hexdigest()
    assert digest.file_sha256(str(path)) == digest.file_sha256(path)
    # The same size, another mtime: not the remembered digest.
    path.write_bytes(b"two")
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    assert digest.file_sha256(path) == hashlib.sha256(b"two").hexdigest()
    with pytest.raises(OSError):
        digest.file_sha256(tmp_path / "missing")


def test_a_commands_digest_covers_the_files_its_arguments_name(tmp_path: Path) -> None:
    script = tmp_path / "delegate.sh"
    script.write_text("echo one\n")
    argv = ["/bin/sh", str(script)]
    before = digest.command_digest(argv)
    assert digest.command_digest(argv) == before
    script.write_text("echo two, longer\n")
    assert digest.command_digest(argv) != before
    # An argument naming no file counts by its text only, until such a file exists.
    flag = digest.command_digest(["/bin/sh", "-c", "x"])
    assert digest.command_digest(["/bin/sh", "-c", "y"]) != flag
    (tmp_path / "x").write_text("")
    assert digest.command_digest(["/bin/sh", "-c", str(tmp_path / "x")]) != digest.command_digest(
        ["/bin/sh", "-c", str(tmp_path / "y")]
    )


def test_extra_and_the_executable_enter_the_digest(tmp_path: Path) -> None:
    program = write_sh(tmp_path, "d", "cat\n")
    plain = digest.command_digest([str(program)])
    assert digest.command_digest([str(program)], extra="dist 1.0") != plain
    assert digest.command_digest([str(program)], extra="dist 1.1") != digest.command_digest(
        [str(program)], extra="dist 1.0"
    )
    with pytest.raises(OSError):
        digest.command_digest([str(tmp_path / "gone")])


def test_inputs_are_taken_from_the_registrys_folder_and_a_miss_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "registry"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)  # not the folder: relative patterns must not be read here
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "a.txt").write_text("from the working directory\n")
    assert digest.inputs_digest(["tables/*.txt"], folder) == [["tables/*.txt", []]]
    (folder / "tables").mkdir()
    (folder / "tables" / "a.txt").write_text("v1\n")
    name = str(folder / "tables" / "a.txt")
    assert digest.inputs_digest(["tables/*.txt"], folder) == [
        ["tables/*.txt", [[name, hashlib.sha256(b"v1\n").hexdigest()]]]
    ]
    # An absolute pattern is taken as it is.
    assert digest.inputs_digest([str(tmp_path / "tables" / "*.txt")], folder)[0][1] == [
        [str(tmp_path / "tables" / "a.txt"), digest.file_sha256(tmp_path / "tables" / "a.txt")]
    ]


def test_a_folder_input_stands_for_the_files_under_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "deep" / "__pycache__").mkdir(parents=True)
    (data / "deep" / "table.json").write_text("{}")
    (data / "deep" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    ((pattern, files),) = digest.inputs_digest(["data"], tmp_path)
    assert pattern == "data"
    assert [name for name, _ in files] == [str(data / "deep" / "table.json")]  # no bytecode
    before = digest.command_digest(["/bin/sh"], inputs=["data"], folder=tmp_path)
    (data / "deep" / "table.json").write_text('{"changed": true}')
    assert digest.command_digest(["/bin/sh"], inputs=["data"], folder=tmp_path) != before
