"""Schema patterns read as ECMA-262 reads them: ``$`` is the end of the text, in
bakeplan's compiled checks and in the jsonschema explainer, for delegates' own schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.schemas import ecma, explainer

NAME = {"type": "string", "pattern": "^[a-z]+$"}
KEYS = {
    "type": "object",
    "patternProperties": {"^[a-z]+$": {"type": "integer"}},
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("pattern", "python"),
    [
        ("^[a-z]+$", r"^[a-z]+\Z"),
        (r"^a\$$", r"^a\$\Z"),  # an escaped $ is a dollar sign
        ("^[$]x$", r"^[$]x\Z"),  # so is one in a class
        ("^[]$]+$", r"^[]$]+\Z"),  # "]" first in a class is a member
        ("^x$(?!\n)", "^x\\Z(?!\n)"),
    ],
)
def test_dollar_anchors_become_end_of_text(pattern: str, python: str) -> None:
    assert ecma.to_python(pattern) == python


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        (NAME, "xbd", "xbd\n"),
        (KEYS, {"xbd": 1}, {"xbd\n": 1}),
        ({"type": "object", "propertyNames": NAME}, {"xbd": 1}, {"xbd\n": 1}),
    ],
)
def test_a_delegate_schema_refuses_a_final_newline_in_both_checkers(
    schema: dict[str, Any], good: Any, bad: Any
) -> None:
    full = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    assert explainer.violations_of(full, good) == []
    found = explainer.violations_of(full, bad)
    assert found, "the compiled check or jsonschema let a final newline through"
    # The explainer (jsonschema) agrees with the compiled check on its own.
    text = json.dumps(full, sort_keys=True, separators=(",", ":"))
    assert not explainer._validator_of(text).is_valid(bad)


@given(st.text(alphabet="ab\n", max_size=6))
def test_an_anchored_class_takes_no_newline_anywhere(text: str) -> None:
    assert ecma.search("^[ab]*$", text) == ("\n" not in text)
