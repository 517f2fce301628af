"""Plans for tests of what reads them: a few parts given, the rest of a real plan empty."""

from __future__ import annotations

from typing import Any

from orchestrator.core.planmodel import Plan
from orchestrator.schemas import explainer


def plan_document(**parts: Any) -> dict[str, Any]:
    """A plan document of a hw_virtio bake with nothing in it but ``parts`` (``bake``'s
    members are merged into the empty bake's)."""
    document: dict[str, Any] = {
        "plan": "bakeplan/1",
        "bake": {"config": "hw_virtio", "platform": "hw", "directives": [], "libs": []},
        "devices": [],
        "runtime": {"dialect": "spec", "config": {}},
        "toolchains": {},
        "delegations": [],
        "warnings": [],
        "provenance": {"libs": [], "runtime": [], "toolchains": []},
    }
    document["bake"] = {**document["bake"], **parts.pop("bake", {})}
    document.update(parts)
    return document


def plan_of_parts(**parts: Any) -> Plan:
    """``plan_document(**parts)`` as a ``Plan``, refused if it breaks the plan schema."""
    document = plan_document(**parts)
    problems = explainer.explain("plan", document)
    assert not problems, f"the test's plan breaks the plan schema: {problems}"
    return Plan.from_json(document)
