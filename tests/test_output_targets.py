"""What ``-o`` does with what a path names, and what a failing stdout is.

Through the real command: a regular file keeps its mode (and, as root, its owner), a
symbolic link is followed and stays a link, a device, FIFO or socket is written in
place and stays what it is, a hard-linked file and a folder are refused; a full stdout
or ``-o`` is exit 2 naming the path and the system's reason, a reader of stdout that
goes away at any point is 141.  Never exit 70, never a traceback.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import REPO
from helpers_cli import run_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.output import write_atomic

CONFIG = str(REPO / "examples" / "rumprun-only" / "config.json")
REGISTRY = str(REPO / "examples" / "rumprun-only" / "registry.json")
PLAN = ("plan", CONFIG, "-r", REGISTRY)


def bakeplan(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "orchestrator", *argv],
        stderr=subprocess.PIPE,
        timeout=60,
        check=False,
        **kwargs,
    )


def is_plan(data: bytes) -> bool:
    return json.loads(data)["plan"] == "bakeplan/1"


def test_an_existing_files_mode_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plan.json"
    out.write_text("old\n")
    out.chmod(0o600)
    code, _, err = run_main(capsys, *PLAN, "-o", str(out))
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert is_plan(out.read_bytes())
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to someone else")
def test_as_root_an_existing_files_owner_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    out.write_text("old\n")
    os.chown(out, 65534, 65534)
    code, _, err = run_main(capsys, *PLAN, "-o", str(out))
    assert code == 0, err
    assert (out.stat().st_uid, out.stat().st_gid) == (65534, 65534)
    assert is_plan(out.read_bytes())


def test_a_symlink_is_followed_and_stays_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "plan.json"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "plan.json"
    link.symlink_to("real/plan.json")
    dangling = tmp_path / "new.json"
    dangling.symlink_to("real/new.json")
    for path in (link, dangling):
        code, _, err = run_main(capsys, *PLAN, "-o", str(path))
        assert code == 0, err
        assert path.is_symlink()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert is_plan(target.read_bytes())
    assert is_plan((tmp_path / "real" / "new.json").read_bytes())
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["new.json", "plan.json"]


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    done = bakeplan(*PLAN, "-o", str(fifo))
    reader.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert is_plan(got[0])


def test_a_fifo_whose_reader_leaves_is_exit_2_naming_it(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    env = {f"K{i}": "v" * 100 for i in range(3000)}
    big.write_text(json.dumps({"rc": [{"bin": "a", "argv": ["a"]}], "env": env}))

    def read_a_little() -> None:
        with fifo.open("rb") as stream:
            stream.read(10)

    reader = threading.Thread(target=read_a_little)
    reader.start()
    done = bakeplan("plan", str(big), "-r", REGISTRY, "--bin", "a", "-o", str(fifo))
    reader.join(timeout=30)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert f"{fifo}: cannot write output: Broken pipe" in err
    assert "Traceback" not in err and "internal error" not in err
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_socket_is_written_in_place(tmp_path: Path) -> None:
    path = tmp_path / "plan.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    got: list[bytes] = []

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
            got.append(b"".join(chunks))

    thread = threading.Thread(target=serve)
    thread.start()
    done = bakeplan(*PLAN, "-o", str(path))
    thread.join(timeout=30)
    server.close()
    assert done.returncode == 0, done.stderr
    assert stat.S_ISSOCK(path.lstat().st_mode)
    assert is_plan(got[0])


def test_character_devices_are_written_in_place() -> None:
    done = bakeplan(*PLAN, "-o", "/dev/null")
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_device_is_exit_2_with_its_path_and_reason() -> None:
    done = bakeplan(*PLAN, "-o", "/dev/full")
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "/dev/full: cannot write output: No space left on device" in err
    assert "internal error" not in err and "Traceback" not in err
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)


def test_a_hard_linked_file_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    out.write_text("old\n")
    other = tmp_path / "other-name.json"
    os.link(out, other)
    code, stdout, err = run_main(capsys, *PLAN, "-o", str(out))
    assert code == 2
    assert f"{out}: cannot write output: it has 2 hard links" in err
    assert stdout == ""
    assert out.read_text() == other.read_text() == "old\n"
    assert out.stat().st_ino == other.stat().st_ino


def test_a_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, *PLAN, "-o", str(tmp_path))
    assert code == 2
    assert f"{tmp_path}: cannot write output: Is a directory" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "argv",
    [PLAN, ("schema", "plan"), ("--version",), ("delegates", "list", "-r", REGISTRY)],
    ids=["plan", "schema", "version", "list"],
)
def test_a_full_stdout_is_exit_2_never_an_internal_error(argv: tuple[str, ...]) -> None:
    with Path("/dev/full").open("wb") as full:
        done = bakeplan(*argv, stdout=full)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "<stdout>: cannot write output: No space left on device" in err
    assert "internal error" not in err and "Traceback" not in err
    assert "Exception ignored" not in err


def test_a_reader_leaving_mid_plan_is_141(tmp_path: Path) -> None:
    """The plan is bigger than a pipe holds: the reader leaves after a few bytes, while
    bakeplan is still writing.  Every byte is written or the exit says why: a short
    write is never dropped silently (as an unbuffered stdout would)."""
    big = tmp_path / "big.json"
    env = {f"K{i}": "v" * 100 for i in range(3000)}
    big.write_text(json.dumps({"rc": [{"bin": "a", "argv": ["a"]}], "env": env}))
    command = [sys.executable, "-m", "orchestrator", "plan", str(big), "-r", REGISTRY]
    command += ["--bin", "a"]
    environ = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.read(10)
        process.stdout.close()
        err = process.stderr.read().decode()
        code = process.wait(timeout=60)
    assert code == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mode=st.integers(min_value=0o400, max_value=0o777).map(lambda m: m | 0o200),
    data=st.binary(max_size=4096),
)
def test_replacing_keeps_the_mode_and_writes_every_byte(
    tmp_path: Path, mode: int, data: bytes
) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"old")
    out.chmod(mode)
    assert write_atomic(out, data)
    assert out.read_bytes() == data
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
