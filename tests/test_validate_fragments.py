"""``validate`` starts no process, yet applies the fragment schema of every describe
answer already kept, so it refuses at its line what ``plan`` would refuse; for a
delegate never described it says that its schema could not be applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_cli import run_main
from helpers_exec import write_python
from helpers_protocol import description, write_registry

CONFIG = """{
  "rc": [{"bin": "www", "argv": ["www"]}],
  "net": {
    "interfaces": {"vioif0": {"addrs": [{"type": "inet", "method": "ipam"}]}},
    "mtu": "fast"
  }
}
"""
SCHEMA = {
    "type": "object",
    "properties": {
        "mtu": {"type": "integer"},
        "interfaces": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "addrs": {
                        "type": "array",
                        "items": {"properties": {"method": {"const": "static"}}},
                    }
                },
            },
        },
    },
}


def delegate(folder: Path, name: str, schema: object, replace: str = 'request["fragment"]') -> None:
    described = description(name, fragment_schema=schema)
    write_python(
        folder,
        name,
        f"""
        import json, os, sys
        request = json.load(sys.stdin)
        with open({str(folder)!r} + "/{name}.starts", "a") as log:
            log.write(request["op"] + "\\n")
        if request["op"] == "describe":
            print(json.dumps({described!r}))
        else:
            answer = {{"protocol": "bakeplan/1"}}
            if {replace!r}:
                answer["replace"] = {replace or "None"}
            print(json.dumps(answer))
        """,
    )


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    delegate(tmp_path, "net", SCHEMA, replace="")  # it consumes /net
    static = '{"type": "inet", "method": "static", "addr": "10.0.0.2/24"}'
    delegate(tmp_path, "ipam", {"type": "object"}, static)
    config = tmp_path / "config.json"
    config.write_text(CONFIG)
    registry = write_registry(
        tmp_path,
        {"name": "net", "command": ["./net"], "claims": ["/net"]},
        # Fills the address the outer schema refuses as written ("ipam").
        {"name": "ipam", "command": ["./ipam"], "claims": ["/net/interfaces/vioif0/addrs/0"]},
    )
    return config, registry


def test_validate_applies_the_fragment_schemas_it_already_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inputs: tuple[Path, Path]
) -> None:
    config, registry = inputs
    argv = (str(config), "-r", str(registry), "--rumprun", "spec")
    # Never described: valid as far as validate can tell, and it says what it could not do.
    code, _, err = run_main(capsys, "validate", *argv)
    assert code == 0, err
    assert (
        "delegate 'net' has not been described yet, so its fragment schema was not applied" in err
    )
    assert not (tmp_path / "net.starts").exists()  # validate started nothing
    # plan asks describe and refuses the fragment at its line.
    code, _, plan_err = run_main(capsys, "plan", *argv)
    assert code == 2
    refusal = f"{config}:5:12 at /net/mtu: must be an integer, not a string (the fragment schema"
    assert refusal in plan_err
    # Now validate knows the schema: the same refusal, still without starting anything.
    starts = (tmp_path / "net.starts").read_text()
    code, _, err = run_main(capsys, "validate", *argv)
    assert code == 2
    assert refusal in err
    assert "has not been described" not in err
    # The address the inner delegate fills is not judged as written ("ipam"): only plan,
    # with the inner answer in place, can tell.
    assert "/net/interfaces/vioif0/addrs/0" not in err
    assert (tmp_path / "net.starts").read_text() == starts


def test_a_valid_config_stays_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inputs: tuple[Path, Path]
) -> None:
    config, registry = inputs
    config.write_text(CONFIG.replace('"fast"', "1500"))
    argv = (str(config), "-r", str(registry), "--rumprun", "spec")
    code, _, err = run_main(capsys, "plan", *argv)
    assert code == 0, err
    code, _, err = run_main(capsys, "validate", *argv)
    assert code == 0, err
    assert "valid for hw_virtio" in err
