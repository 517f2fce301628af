"""The describe handshake in ``bakeplan plan`` and ``bakeplan delegates check``, with real
executables: protocols, the digest-keyed cache in memory and on disk, fragment schemas
reported at the config's line, and the conformance kit's table on good and broken
delegates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, needs_cni_plugins
from helpers_cli import BAKEPLAN, SPEC, run_main
from helpers_exec import write_python, write_sh
from helpers_protocol import write_identity, write_py_delegate

HYBRID = REPO / "examples" / "hybrid" / "config.json"


def registry_file(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"delegates": list(entries)}), encoding="utf-8")
    path.chmod(0o644)
    return path


def counting_delegate(tmp_path: Path, description: dict[str, Any], name: str = "d") -> Path:
    """A delegate that logs each describe to ``describes`` and echoes its fragment."""
    return write_python(
        tmp_path,
        name,
        f"""
        import json, sys
        request = json.load(sys.stdin)
        if request["op"] == "describe":
            with open({str(tmp_path / "describes")!r}, "a") as log:
                log.write("x")
            print(json.dumps({description!r}))
        else:
            print(json.dumps({{"protocol": "bakeplan/1", "replace": request["fragment"]}}))
        """,
    )


DESCRIBED = {"protocol": "bakeplan/1", "name": "d", "version": "1", "protocols": ["bakeplan/1"]}


def test_describe_is_asked_once_per_executable_and_cached_on_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counting_delegate(tmp_path, DESCRIBED)
    # Two names for one executable, three claims: one describe in all.
    reg = registry_file(
        tmp_path,
        {"name": "a", "command": ["./d"], "claims": ["/env", "/netbsd"]},
        {"name": "b", "command": ["./d"], "claims": ["/net"]},
    )
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert code == 0, err
    assert (tmp_path / "describes").read_text() == "x"
    store = Path(os.environ["XDG_CACHE_HOME"]) / "bakeplan" / "responses"
    cached = [p for p in store.iterdir() if p.suffix == ".answer"]
    # One verified entry in the response cache's store: a header line, then the answer.
    assert len(cached) == 1
    assert json.loads(cached[0].read_bytes().partition(b"\n")[2]) == DESCRIBED
    # A second process finds the answer on disk and does not ask again.
    done = subprocess.run(
        [
            *BAKEPLAN,
            "plan",
            *SPEC,
            str(HYBRID),
            "-r",
            str(reg),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "describes").read_text() == "x"
    # A changed executable is another delegate: asked afresh.
    with (tmp_path / "d").open("a") as script:
        script.write("# changed\n")
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert code == 0, err
    assert (tmp_path / "describes").read_text() == "xx"


def test_dry_run_and_validate_ask_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counting_delegate(tmp_path, DESCRIBED)
    reg = registry_file(tmp_path, {"name": "a", "command": ["./d"], "claims": ["/env"]})
    assert (
        run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg), "--dry-run", "--json")[0] == 0
    )
    assert run_main(capsys, "validate", *SPEC, str(HYBRID), "-r", str(reg))[0] == 0
    assert not (tmp_path / "describes").exists()


def test_a_delegate_without_bakeplan_1_is_exit_1_naming_what_it_speaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counting_delegate(tmp_path, {**DESCRIBED, "protocols": ["bakeplan/2", "bakeplan/3"]})
    reg = registry_file(tmp_path, {"name": "future", "command": ["./d"], "claims": ["/env"]})
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert (code, out) == (1, "")
    assert "delegate 'future' at /env: speaks bakeplan/2, bakeplan/3, not bakeplan/1" in err
    assert "during the describe handshake" in err


def test_a_delegate_that_cannot_describe_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_identity(tmp_path)  # answers describe; the next one does not
    write_sh(tmp_path, "mute", "cat >/dev/null; exit 3\n")
    reg = registry_file(
        tmp_path,
        {"name": "ok", "command": ["./identity"], "claims": ["/env"]},
        {"name": "mute", "command": ["./mute"], "claims": ["/net"]},
    )
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert code == 1
    assert "delegate 'mute' at /net: failed: exit status 3" in err
    assert "'ok'" not in err


def test_the_fragment_schema_is_checked_before_configure_at_the_configs_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    counting_delegate(tmp_path, {**DESCRIBED, "fragment_schema": schema})
    reg = registry_file(tmp_path, {"name": "ints", "command": ["./d"], "claims": ["/env"]})
    config = tmp_path / "config.json"
    config.write_text('{\n  "env": {\n    "A": 1,\n    "TZ": "UTC"\n  }\n}\n')
    code, out, err = run_main(capsys, "plan", *SPEC, str(config), "-r", str(reg))
    assert (code, out) == (2, "")
    assert f"{config}:4:11 at /env/TZ: must be an integer, not a string" in err
    assert "fragment schema of delegate 'ints'" in err


def test_an_invalid_fragment_schema_is_the_delegates_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counting_delegate(tmp_path, {**DESCRIBED, "fragment_schema": {"type": "no-such-type"}})
    reg = registry_file(tmp_path, {"name": "bad", "command": ["./d"], "claims": ["/env"]})
    code, _, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert code == 1
    assert "its fragment_schema is not a valid JSON Schema" in err


# -- delegates check ----------------------------------------------------------------------------


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_main(capsys, "delegates", "check", *argv, "--json")
    document: dict[str, Any] = json.loads(out)
    assert document["passed"] is (code == 0), err
    return code, {c["check"]: c for c in document["checks"]}


@pytest.mark.parametrize(
    "name",
    ["mirage-net-config", "rumprun-config", pytest.param("cni-ipam", marks=needs_cni_plugins)],
)
def test_every_shipped_delegate_passes(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, rows = check(capsys, name)
    assert code == 0, rows
    assert all(row["passed"] for row in rows.values())
    assert {"describe", "refuses a wrong fragment", "same request, same answer"} <= set(rows)


def test_the_plain_table_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "delegates", "check", "mirage-net-config")
    assert code == 0
    assert out.splitlines()[1].split() == ["check", "result", "detail"]
    assert "describe                   PASS" in out
    assert "\x1b[" not in out
    assert "every check passed" in err


# The head of a broken delegate's script: a valid describe answer listing one example.
WITH_EXAMPLE = (
    "r=$(cat); case $r in *describe*)\n echo '"
    + json.dumps({**DESCRIBED, "examples": [1]}, separators=(",", ":"))
    + "';;\n"
)
RANDOM = "$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"

BROKEN: dict[str, tuple[str, str, str]] = {
    # name: (script body, the failing check, what its detail says)
    "no-protocol": (
        """cat >/dev/null
echo '{"protocol":"bakeplan/1","name":"x","version":"1","protocols":["other/1"]}'""",
        "describe",
        "speaks other/1, not bakeplan/1",
    ),
    "no-examples": (
        """r=$(cat); case $r in *describe*)
echo '{"protocol":"bakeplan/1","name":"x","version":"1","protocols":["bakeplan/1"]}';;
*) echo '{"protocol":"bakeplan/1"}';; esac""",
        "examples",
        "describe lists no examples",
    ),
    "bad-answer": (
        WITH_EXAMPLE + """*) echo '{"protocol":"bakeplan/1","devices":"none"}';; esac""",
        "example 0",
        "breaks the configure answer schema",
    ),
    "accepts-anything": (
        WITH_EXAMPLE + """*) echo '{"protocol":"bakeplan/1"}';; esac""",
        "refuses a wrong fragment",
        "accepted it (exit status 0)",
    ),
    "no-pointer": (
        WITH_EXAMPLE
        + """*'"fragment":1,'*) echo '{"protocol":"bakeplan/1"}';;
*) echo '{"protocol":"bakeplan/1","error":{"message":"no"}}'; exit 1;; esac""",
        "refuses a wrong fragment",
        "its error has no pointer",
    ),
    "random": (
        WITH_EXAMPLE
        + """*'"fragment":1,'*) printf '{"protocol":"bakeplan/1","replace":"%s"}\\n' """
        + RANDOM
        + """;;
*) echo '{"protocol":"bakeplan/1","error":{"message":"no","pointer":"/env"}}'; exit 1;; esac""",
        "same request, same answer",
        "the answers differ from byte",
    ),
    "slow": (
        WITH_EXAMPLE
        + """*'"fragment":1,'*) sleep 30;;
*) echo '{"protocol":"bakeplan/1","error":{"message":"no","pointer":"/env"}}'; exit 1;; esac""",
        "within the time limit",
        "runs reached the 1s limit",
    ),
    "tty": (
        WITH_EXAMPLE
        + """*'"fragment":1,'*) read -r answer < /dev/tty; echo "$answer";;
*) echo '{"protocol":"bakeplan/1","error":{"message":"no","pointer":"/env"}}'; exit 1;; esac""",
        "without a terminal",
        "reached for /dev/tty",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_delegate_fails_with_a_clear_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    body, failing, detail = BROKEN[name]
    write_sh(tmp_path, name, body + "\n")
    reg = registry_file(tmp_path, {"name": name, "command": [f"./{name}"], "claims": ["/env"]})
    code, rows = check(capsys, name, "-r", str(reg), "--timeout", "1")
    assert code == 1
    assert rows[failing]["passed"] is False, rows
    assert detail in rows[failing]["detail"]


def test_an_inner_answer_breaking_the_outer_fragment_schema_is_the_inner_delegates_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    write_py_delegate(
        tmp_path,
        "bad-addr",
        """
        import json
        json.load(sys.stdin)
        print(json.dumps({"protocol": "bakeplan/1", "replace": {
            "type": "inet", "method": "static", "addr": "not-an-address"}}))
        """,
    )
    reg = registry_file(
        tmp_path,
        {
            "name": "bad-addr",
            "command": ["./bad-addr"],
            "claims": ["/net/interfaces/vioif0/addrs/0"],
        },
        {"name": "mirage-net-config", "command": ["mirage-net-config"], "claims": ["/net"]},
    )
    code, out, err = run_main(capsys, "plan", *SPEC, str(HYBRID), "-r", str(reg), "--no-cache")
    assert (code, out) == (1, "")
    assert "delegate 'bad-addr' at /net/interfaces/vioif0/addrs/0/addr" in err
    assert "breaks the fragment schema of delegate 'mirage-net-config'" in err
