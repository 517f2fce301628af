"""``output.write_atomic``, the one atomic writer (plan output, the user registry, the
response cache): text or bytes, a fixed mode or the umask's, fsync or not, and a failure
that leaves the old file and no temporary file behind."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import InputError, exit_code_of
from orchestrator.output import write_atomic


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def only(folder: Path) -> list[str]:
    """What the folder holds: any temporary file left behind shows up here."""
    return sorted(p.name for p in folder.iterdir())


def no_space(fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_text_is_written_as_utf8_with_newlines_untranslated(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    assert write_atomic(target, "é\r\nz\n")
    assert target.read_bytes() == "é\r\nz\n".encode()
    assert only(tmp_path) == ["out.txt"]


def test_bytes_are_written_as_they_are(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    data = bytes(range(256))
    assert write_atomic(target, data)
    assert target.read_bytes() == data
    assert only(tmp_path) == ["out.bin"]


def test_an_existing_file_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old contents, longer than the new\n")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert only(tmp_path) == ["out.txt"]


@pytest.mark.usefixtures("umask")
def test_without_a_mode_the_umask_decides_for_a_new_file_as_for_open(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_atomic(target, "x")
    assert mode_of(target) == 0o644  # 0666 less the umask 022, not mkstemp's 0600
    os.umask(0o077)
    write_atomic(tmp_path / "other.txt", "y")
    assert mode_of(tmp_path / "other.txt") == 0o600


@pytest.mark.usefixtures("umask")
def test_without_a_mode_an_existing_files_mode_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    target.chmod(0o600)
    write_atomic(target, "new\n")
    assert mode_of(target) == 0o600
    target.chmod(0o664)
    write_atomic(target, "newer\n")
    assert mode_of(target) == 0o664


@pytest.mark.parametrize("mask", [0o000, 0o077])
def test_a_mode_holds_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    target = tmp_path / "out.txt"
    old = os.umask(mask)
    try:
        write_atomic(target, "x", mode=0o644)
    finally:
        os.umask(old)
    assert mode_of(target) == 0o644


@pytest.mark.parametrize("sync", [True, False])
def test_fsync_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: bool) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    write_atomic(tmp_path / "out.txt", "x", fsync=sync)
    assert bool(synced) is sync


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(InputError) as caught:
        write_atomic(target, "new\n", what="the user registry")
    assert caught.value.message == "cannot write the user registry: No space left on device"
    assert caught.value.file == str(target)
    assert exit_code_of(caught.value) == 2
    assert target.read_text() == "old\n"
    assert only(tmp_path) == ["out.txt"]


def test_a_failed_rename_leaves_the_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "inside").write_text("kept\n")
    with pytest.raises(InputError, match="cannot write output: Is a directory"):
        write_atomic(target, "new\n")
    assert (target / "inside").read_text() == "kept\n"
    assert only(tmp_path) == ["out"]


def test_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "out.txt"
    with pytest.raises(InputError, match="cannot write output: No such file or directory"):
        write_atomic(target, "x")
    assert only(tmp_path) == []


def test_an_interrupt_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert only(tmp_path) == ["out.txt"]


def test_on_error_takes_the_error_instead_of_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", no_space)
    seen: list[OSError] = []
    assert not write_atomic(target, b"new", on_error=seen.append)
    assert [e.errno for e in seen] == [errno.ENOSPC]
    assert target.read_bytes() == b"old"
    assert only(tmp_path) == ["out.bin"]
