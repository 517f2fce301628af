"""The docs name real files and real tests: a rename in the code cannot leave them behind.

README.md and docs/ point readers at modules (``orchestrator/core/mapper.py``), test
files and single tests (``test_stdout_flood_is_cut_at_the_cap``) as the proof of what
they say; each of those names must exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "e2e").glob("*.md")])
PATH = re.compile(
    r"\b((?:orchestrator|delegates|tests|e2e|examples)/[A-Za-z0-9_./-]+\.(?:py|json|sh))"
)
TEST = re.compile(r"\b(test_[a-z0-9_]+)\b(?!\.py)")


def _tests_defined() -> set[str]:
    names: set[str] = set()
    for folder in (REPO / "tests", REPO / "e2e"):
        for path in folder.rglob("test_*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names.update(
                node.name
                for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return names


DEFINED = _tests_defined()


def _mentions(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    return sorted(
        {(doc.name, found) for doc in DOCS for found in pattern.findall(doc.read_text("utf-8"))}
    )


def test_the_docs_are_read() -> None:
    assert len(DOCS) >= 5
    assert _mentions(PATH)
    assert _mentions(TEST)


@pytest.mark.parametrize(("doc", "path"), _mentions(PATH))
def test_each_path_named_in_the_docs_exists(doc: str, path: str) -> None:
    assert (REPO / path).exists(), f"{doc} names {path}, which is not in the repository"


@pytest.mark.parametrize(("doc", "name"), _mentions(TEST))
def test_each_test_named_in_the_docs_exists(doc: str, name: str) -> None:
    assert name in DEFINED, f"{doc} names {name}, which no test module defines"
