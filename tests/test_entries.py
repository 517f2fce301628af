"""``bakeplan delegates add|remove|list|show`` and package discovery, through ``main(argv)``
and real processes: the user registry's lock, mode and atomic writes; entry points from a
real ``.dist-info`` on ``sys.path``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import BAKEPLAN, SPEC, run_main
from helpers_protocol import write_delegate, write_identity

HYBRID = REPO / "examples" / "hybrid" / "config.json"


def user_registry() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "bakeplan" / "registry.json"


def entries() -> list[dict[str, Any]]:
    document: dict[str, Any] = json.loads(user_registry().read_text())
    return list(document["delegates"])


def test_add_stores_an_absolute_command_mode_0644_in_a_new_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = write_identity(tmp_path, "env-id")
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o000)  # even a permissive umask must not make it group-writable
    try:
        code, out, err = run_main(
            capsys,
            "delegates",
            "add",
            "env-id",
            "--claim",
            "/env",
            "--timeout",
            "5",
            "--env",
            "LANG",
            "--cache",
            "--",
            "./env-id",
            "--flag",
        )
    finally:
        os.umask(old)
    assert (code, out) == (0, ""), err
    assert "added env-id claiming /env" in err
    assert entries() == [
        {
            "name": "env-id",
            "command": [str(tool), "--flag"],
            "claims": ["/env"],
            "timeout": 5.0,
            "env": ["LANG"],
            "cache": True,
        }
    ]
    assert stat.S_IMODE(user_registry().stat().st_mode) == 0o644
    # The entry works from anywhere, with no -r: the user registry is read.
    monkeypatch.chdir(REPO)
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID))
    assert code == 0, err
    assert [d["delegate"] for d in json.loads(out)["delegations"]] == ["env-id", "rumprun"]


def test_add_without_claims_takes_them_from_describe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_delegate(tmp_path, "quiet", 'cat >/dev/null; echo \'{"protocol":"bakeplan/1"}\'')
    code, _, err = run_main(capsys, "delegates", "add", "quiet", "--", str(tmp_path / "quiet"))
    assert code == 2
    assert "suggests no claims in its describe answer" in err
    assert not user_registry().exists()
    # A bare name is looked up on PATH; the claims are those the delegate suggests.
    code, _, err = run_main(capsys, "delegates", "add", "mirage", "--", "mirage-net-config")
    assert code == 0, err
    (entry,) = entries()
    assert entry["claims"] == ["/net"]
    assert Path(entry["command"][0]).is_absolute()
    assert Path(entry["command"][0]).name == "mirage-net-config"


def test_add_twice_is_refused_unless_replace_and_remove_takes_it_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = str(write_identity(tmp_path))
    assert run_main(capsys, "delegates", "add", "x", "--claim", "/env", "--", tool)[0] == 0
    code, _, err = run_main(capsys, "delegates", "add", "x", "--claim", "/net", "--", tool)
    assert code == 2
    assert "'x' is already in the user registry" in err
    assert entries()[0]["claims"] == ["/env"]
    args = ("delegates", "add", "x", "--replace", "--claim", "/net", "--", tool)
    assert run_main(capsys, *args)[0] == 0
    assert entries()[0]["claims"] == ["/net"]
    assert run_main(capsys, "delegates", "remove", "x")[0] == 0
    assert entries() == []
    code, _, err = run_main(capsys, "delegates", "remove", "x")
    assert code == 2
    assert "'x' is not in the user registry" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["BadName", "--claim", "/env", "--", "mirage-net-config"], "1 to 64 lowercase"),
        (["ok", "--claim", "env", "--", "mirage-net-config"], "not a JSON pointer"),
        (["ok", "--claim", "/env", "--", "no-such-program-here"], "not found"),
        (["ok", "--claim", "/env"], "no command given for 'ok'"),
    ],
)
def test_add_refuses_bad_entries_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run_main(capsys, "delegates", "add", *argv)
    assert code == 2
    assert message in err
    assert not user_registry().exists()


def test_add_refuses_to_edit_a_registry_others_may_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_registry().parent.mkdir(parents=True)
    user_registry().write_text('{"delegates": []}')
    user_registry().chmod(0o666)
    tool = str(write_identity(tmp_path))
    code, _, err = run_main(capsys, "delegates", "add", "x", "--claim", "/env", "--", tool)
    assert code == 2
    assert "writable by group and others" in err


def test_concurrent_adds_from_separate_processes_all_land(tmp_path: Path) -> None:
    tool = str(write_identity(tmp_path))
    names = [f"d{i}" for i in range(12)]
    processes = [
        subprocess.Popen(
            [
                *BAKEPLAN,
                "delegates",
                "add",
                name,
                "--claim",
                f"/env/{name}",
                "--",
                tool,
            ],
            stderr=subprocess.PIPE,
        )
        for name in names
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
    assert sorted(e["name"] for e in entries()) == sorted(names)
    # No temporary file is left beside it; the lock file stays, empty.
    left = sorted(p.name for p in user_registry().parent.iterdir())
    assert left == ["registry.json", "registry.json.lock"]


def test_list_plain_json_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = str(write_identity(tmp_path))
    assert run_main(capsys, "delegates", "add", "ident", "--claim", "/env", "--", tool)[0] == 0
    code, out, _ = run_main(capsys, "delegates", "list")
    assert code == 0
    assert "\x1b[" not in out  # plain text when piped
    line = next(row for row in out.splitlines() if row.startswith("ident "))
    assert str(user_registry()) in line and "/env" in line
    assert any(
        row.startswith("mirage-net-config ") and "package bakeplan" in row
        for row in out.splitlines()
    )
    code, out, _ = run_main(capsys, "delegates", "list", "--json")
    listed = {e["name"]: e for e in json.loads(out)}
    assert listed["ident"]["source"] == {"kind": "registry", "path": str(user_registry())}
    assert listed["cni-ipam"]["source"]["kind"] == "package"
    assert listed["cni-ipam"]["source"]["package"] == "bakeplan"
    assert listed["cni-ipam"]["claims"] == []
    code, out, err = run_main(capsys, "delegates", "show", "mirage-net-config")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["describe"]["name"] == "mirage-net-config"
    assert shown["describe"]["claims"] == ["/net"]
    assert shown["entry"]["source"]["kind"] == "package"
    code, _, err = run_main(capsys, "delegates", "show", "mirage-net-confg")
    assert code == 2
    assert "did you mean 'mirage-net-config'?" in err


# -- delegates from installed packages: a real .dist-info on sys.path -------------------------


def install_tiny_distribution(site: Path) -> None:
    """A tiny distribution as pip would leave it: a module and its .dist-info."""
    site.mkdir()
    (site / "tiny_delegate.py").write_text(
        textwrap.dedent(
            """
            from orchestrator.sdk import Delegate

            def configure(request):
                return {"replace": {k: v.upper() for k, v in request.fragment.items()}}

            DELEGATE = Delegate(name="tiny", version="0.3", configure=configure,
                                claims=("/env",), fragment_schema={"type": "object"},
                                examples=({"TZ": "utc"},))
            """
        )
    )
    info = site / "tiny_delegate-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-delegate\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        "[bakeplan.delegates]\ntiny-upper = tiny_delegate:DELEGATE\n"
    )
    (info / "RECORD").write_text("")


def test_entry_point_delegates_are_listed_checked_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    install_tiny_distribution(site)
    monkeypatch.syspath_prepend(str(site))
    code, out, _ = run_main(capsys, "delegates", "list", "--json")
    (tiny,) = [e for e in json.loads(out) if e["name"] == "tiny-upper"]
    assert tiny["source"] == {"kind": "package", "package": "tiny-delegate", "version": "0.3"}
    assert tiny["command"] == [
        sys.executable,
        "-m",
        "orchestrator.sdk",
        "--path",
        str(site),
        "tiny_delegate:DELEGATE",
    ]
    code, out, err = run_main(capsys, "delegates", "check", "tiny-upper")
    assert code == 0, out + err
    # It claims nothing by itself: the plan is rumprun's alone until the user says so.
    code, out, _ = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(tmp_path / "none.json"))
    assert code == 2  # a missing -r file is an error: the explicit list is the list
    empty = tmp_path / "empty.json"
    empty.write_text('{"delegates": []}')
    empty.chmod(0o644)
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(empty))
    assert code == 0, err
    assert "tiny-upper" not in out
    code, out, err = run_main(
        capsys,
        "plan",
        *SPEC,
        str(HYBRID),
        "-r",
        str(empty),
        "--delegate",
        "/env=tiny-upper",
    )
    assert code == 0, err
    plan = json.loads(out)
    assert plan["runtime"]["config"]["env"] == {"TZ": "UTC"}
    # The plan names the package's delegate without this machine's paths.
    assert plan["delegations"][0]["command"] == [
        "python",
        "-m",
        "orchestrator.sdk",
        "tiny_delegate:DELEGATE",
    ]
    # A registry file's entry of the same name wins over the package's.
    shadow = tmp_path / "shadow.json"
    command = [str(write_identity(tmp_path))]
    shadow.write_text(
        json.dumps({"delegates": [{"name": "tiny-upper", "command": command, "claims": ["/env"]}]})
    )
    shadow.chmod(0o644)
    code, out, _ = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(shadow))
    assert json.loads(out)["runtime"]["config"]["env"] == {"TZ": "UTC"}  # unchanged
    assert json.loads(out)["delegations"][0]["command"] == command


def test_entry_point_delegate_through_a_real_bakeplan_process(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_tiny_distribution(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "delegates", "add", "tiny-upper"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert entries()[0]["claims"] == ["/env"]  # from its describe
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "plan", *SPEC, str(HYBRID)],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["runtime"]["config"]["env"] == {"TZ": "UTC"}
