"""What ``bakeplan why`` and ``diff`` take: a plan file read back as a ``Plan`` after its
schema check, or a config planned on the spot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_plan import plan_document

from orchestrator.core.planmodel import Plan
from orchestrator.errors import InputError
from orchestrator.review import planfile


def never(path: str) -> Plan:
    raise AssertionError(f"{path} was planned, but it holds a plan")


def test_a_plan_file_becomes_the_plan_it_holds(tmp_path: Path) -> None:
    document = plan_document(devices=[{"name": "ld0", "kind": "block", "by": "d", "pointer": ""}])
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))
    read = planfile.obtain(str(path), never)
    assert read == Plan.from_json(document)
    assert read.devices[0].name == "ld0"


def test_a_config_is_handed_to_the_planner(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"rc": [{"bin": "www"}]}')
    planned = Plan.from_json(plan_document())
    asked: list[str] = []

    def plan_config(given: str) -> Plan:
        asked.append(given)
        return planned

    assert planfile.obtain(str(path), plan_config) is planned
    assert asked == [str(path)]


def test_a_plan_that_breaks_the_schema_is_refused_at_its_line(tmp_path: Path) -> None:
    document = plan_document()
    document["devices"] = [{"name": "ld0"}]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document, indent=2))
    with pytest.raises(InputError) as caught:
        planfile.obtain(str(path), never)
    assert caught.value.message.startswith("not a valid bake plan: ")
    # The line of the device that lacks its kind, by and pointer.
    opening = path.read_text().splitlines().index("    {") + 1
    assert (caught.value.file, caught.value.line) == (str(path), opening)
