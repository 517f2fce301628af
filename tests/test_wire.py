"""The wire a delegate imports alone: frozen requests, the quick strict reader, and a
delegate's start that imports neither dataclasses nor the config machinery."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO

from orchestrator.core import jsontext, wire
from orchestrator.core.wire import Context, Request


def _request() -> Request:
    context = Context(bake_config="hw_virtio", platform="hw", components=("rumpvfs",))
    return Request(delegate="d", pointer="/net", fragment={"a": 1}, context=context)


def test_requests_are_frozen_values() -> None:
    request = _request()
    assert request == _request() and request != object()
    assert hash(request.context) == hash(_request().context)
    assert repr(request.context) == (
        "Context(bake_config='hw_virtio', platform='hw', components=('rumpvfs',))"
    )
    with pytest.raises(AttributeError):
        request.pointer = "/x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del request.delegate
    assert wire.loads(request.encode()) == request.as_json()


@pytest.mark.parametrize(
    "text",
    [b'{"a": [1, 2.5, "x", null, true]}', b"[]", b'"\\u00e9"', b"  0 ", '{"\u00e9": 1}'.encode()],
)
def test_plain_json_reads_as_the_strict_reader_reads_it(text: bytes) -> None:
    assert wire.loads(text) == jsontext.parse(text, source="t")


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1, "a": 2}',
        b"[NaN]",
        b"[1e400]",
        b'["\\ud800"]',
        b"\xef\xbb\xbf{}",
        b"\xff\xfe{",
        b"[1] [2]",
        b"\xc3(",
        b"[" * 600 + b"]" * 600,
    ],
)
def test_anything_else_is_left_to_the_strict_reader(text: bytes) -> None:
    with pytest.raises(wire.NotPlain):
        wire.loads(text)


def test_a_delegate_on_the_sdk_starts_without_the_config_machinery() -> None:
    request = _request().encode().replace(b'"fragment":{"a":1}', b'"fragment":{}')
    script = (
        "import sys\n"
        "from bakeplan_delegates import mirage_net_config as m\n"
        "from orchestrator import sdk\n"
        "sdk.serve(m.DELEGATE)\n"
        "heavy = ('dataclasses', 'typing', 'jsonschema', 'orchestrator.schemas.explainer',\n"
        "         'orchestrator.core.jsontext', 'orchestrator.core.protocol',\n"
        "         'orchestrator.core.routing')\n"
        "sys.stderr.write(repr([n for n in heavy if n in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=request, capture_output=True, cwd=REPO, check=True
    )
    assert done.stderr.decode() == "[]"
    assert b'"devices":[]' in done.stdout
