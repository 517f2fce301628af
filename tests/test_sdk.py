"""The SDK a Python delegate imports (``orchestrator.sdk``), run as the real program.

Each delegate here is a file in ``tmp_path`` that imports the SDK and calls ``serve``,
started as its own process with the request on stdin, as bakeplan starts it; the
module-path form (``python -m orchestrator.sdk module:ATTRIBUTE``) is run the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import sdk
from tests.helpers_exec import write_python

CONTEXT = {"bake_config": "hw_virtio", "platform": "hw", "components": ["rumpnet_netinet"]}

DELEGATE = """
from orchestrator.sdk import Delegate, Refusal, serve

def configure(request):
    if request.fragment.get("secret"):
        raise Refusal("no secrets here", pointer=request.pointer + "/secret")
    if request.fragment.get("crash"):
        raise RuntimeError("a bug in the delegate")
    return {"replace": {"seen": request.fragment, "platform": request.context.platform}}

SCHEMA = {"type": "object", "properties": {"port": {"type": "integer"}}}
DELEGATE = Delegate(name="example", version="1.2", configure=configure, claims=("/x",),
                    fragment_schema=SCHEMA, pure=True)

if __name__ == "__main__":
    raise SystemExit(serve(DELEGATE))
"""


def configure_request(fragment: Any, pointer: str = "/x") -> dict[str, Any]:
    return {
        "protocol": "bakeplan/1",
        "op": "configure",
        "delegate": "example",
        "pointer": pointer,
        "fragment": fragment,
        "context": CONTEXT,
    }


def ask(argv: list[str], request: bytes) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(argv, input=request, capture_output=True, check=False, timeout=60)
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 1, done.stdout  # exactly one JSON answer, on one line
    return done.returncode, json.loads(lines[0]), done.stderr.decode()


@pytest.fixture
def delegate(tmp_path: Path) -> list[str]:
    return [str(write_python(tmp_path, "example.py", DELEGATE))]


def test_describe_is_answered_from_the_declaration(delegate: list[str]) -> None:
    status, answer, _ = ask(delegate, b'{"protocol":"bakeplan/1","op":"describe"}')
    assert status == 0
    assert answer == {
        "protocol": "bakeplan/1",
        "name": "example",
        "version": "1.2",
        "protocols": ["bakeplan/1"],
        "pure": True,
        "claims": ["/x"],
        "fragment_schema": {"type": "object", "properties": {"port": {"type": "integer"}}},
    }


def test_configure_calls_the_function_with_the_request(delegate: list[str]) -> None:
    request = json.dumps(configure_request({"port": 80})).encode()
    status, answer, _ = ask(delegate, request)
    assert (status, answer) == (
        0,
        {"protocol": "bakeplan/1", "replace": {"seen": {"port": 80}, "platform": "hw"}},
    )


def test_a_refusal_is_an_error_object_with_its_pointer(delegate: list[str]) -> None:
    request = json.dumps(configure_request({"secret": True}, pointer="/net/0")).encode()
    status, answer, _ = ask(delegate, request)
    assert status == 1
    assert answer["error"] == {
        "code": "invalid-fragment",
        "message": "no secrets here",
        "pointer": "/net/0/secret",
    }


def test_a_fragment_outside_the_declared_schema_points_into_the_config(
    delegate: list[str],
) -> None:
    request = json.dumps(configure_request({"port": "eighty"}, pointer="/x")).encode()
    status, answer, _ = ask(delegate, request)
    assert status == 1
    assert answer["error"]["code"] == "invalid-fragment"
    assert answer["error"]["pointer"] == "/x/port"
    assert answer["error"]["message"].startswith("/x/port: ")


@pytest.mark.parametrize(
    ("request_bytes", "code", "words"),
    [
        (b'{"protocol":"bakeplan/1","op":"describe",}', "bad-request", "not strict JSON: stdin:1:"),
        (b'{"protocol":"bakeplan/2","op":"describe"}', "unsupported-protocol", "bakeplan/2"),
        (b'{"protocol":"bakeplan/1","op":"guess"}', "bad-request", "request schema"),
        (b'{"protocol":"bakeplan/1","op":"describe","a":1,"a":2}', "bad-request", "strict"),
    ],
)
def test_a_bad_request_is_refused_with_its_code(
    delegate: list[str], request_bytes: bytes, code: str, words: str
) -> None:
    status, answer, _ = ask(delegate, request_bytes)
    assert status == 1
    assert answer["error"]["code"] == code
    assert words in answer["error"]["message"]


def test_a_bug_in_the_delegate_is_an_internal_error_with_its_trace(
    delegate: list[str],
) -> None:
    request = json.dumps(configure_request({"crash": True})).encode()
    status, answer, stderr = ask(delegate, request)
    assert status == 1
    assert answer["error"] == {
        "code": "internal",
        "message": "internal error: a bug in the delegate",
    }
    assert "Traceback" in stderr
    assert "RuntimeError: a bug in the delegate" in stderr


def test_a_module_attribute_is_served_by_python_dash_m(tmp_path: Path) -> None:
    (tmp_path / "pkgmod.py").write_text(DELEGATE, encoding="utf-8")
    argv = [sys.executable, "-m", "orchestrator.sdk", "--path", str(tmp_path), "pkgmod:DELEGATE"]
    status, answer, _ = ask(argv, b'{"protocol":"bakeplan/1","op":"describe"}')
    assert (status, answer["name"]) == (0, "example")


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("pkgmod", "is not module:ATTRIBUTE"),
        ("no_such_module_here:X", "cannot import 'no_such_module_here'"),
        ("pkgmod:SCHEMA", "is not an orchestrator.sdk.Delegate"),
    ],
)
def test_a_target_that_is_no_delegate_says_why(tmp_path: Path, target: str, words: str) -> None:
    (tmp_path / "pkgmod.py").write_text(DELEGATE, encoding="utf-8")
    argv = [sys.executable, "-m", "orchestrator.sdk", "--path", str(tmp_path), target]
    status, answer, stderr = ask(argv, b'{"protocol":"bakeplan/1","op":"describe"}')
    assert status == 1
    assert answer["error"]["code"] == "not-a-delegate"
    assert words in answer["error"]["message"]
    assert words in stderr


def test_a_factory_is_called_for_its_delegate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "factorymod.py").write_text(
        DELEGATE + "\ndef make():\n    return DELEGATE\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert sdk.load("factorymod:make").name == "example"


def test_the_declaration_is_frozen() -> None:
    declared = sdk.Delegate(name="x", version="1", configure=lambda request: {})
    with pytest.raises(AttributeError):
        declared.name = "y"  # type: ignore[misc]


def test_main_without_a_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert sdk.main([]) == 2
    assert "usage: python -m orchestrator.sdk" in capsys.readouterr().err
