"""``bakeplan schema NAME``: each schema valid against its metaschema and documented
enough for an editor to complete and explain files (``$id``, title, descriptions)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from orchestrator.cli import main

NAMES = ("config", "registry", "request", "response", "plan")


def printed(capsys: pytest.CaptureFixture[str], name: str) -> dict[str, Any]:
    assert main(["schema", name]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


# Subschemas that refine a property declared (and described) elsewhere, not declare one.
REFINING = frozenset({"if", "then", "else", "not", "allOf", "anyOf", "oneOf"})


def undocumented(node: Any, where: str = "#") -> Iterator[str]:
    """Every declared property (under ``properties``) without a ``description``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in REFINING:
                continue
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    if isinstance(sub, dict) and "description" not in sub:
                        yield f"{where}/properties/{name}"
            yield from undocumented(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from undocumented(item, f"{where}/{index}")


@pytest.mark.parametrize("name", NAMES)
def test_each_schema_is_valid_identified_and_described(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    schema = printed(capsys, name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://bakeplan.dev/schemas/{name}.json"
    assert schema["title"] and schema["description"]


def test_every_property_has_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    missing = [
        f"{name}: {where}" for name in NAMES for where in undocumented(printed(capsys, name))
    ]
    assert missing == []


def test_an_unknown_schema_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err
