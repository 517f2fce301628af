"""The jsonschema side of the schemas: violations with escaped pointers and did-you-mean."""

from __future__ import annotations

import subprocess
import sys

from orchestrator.schemas import explainer


def test_an_unknown_key_names_the_closest_known_one_and_is_pointed_at_escaped() -> None:
    entry = {"name": "a", "command": ["x"], "claims": [], "timout": 3, "a/b~": 1}
    found = explainer.violations("registry", {"delegates": [entry]})
    assert [(v.pointer, v.message) for v in found] == [
        ("/delegates/0/a~1b~0", "unknown key 'a/b~'"),
        ("/delegates/0/timout", "unknown key 'timout' (did you mean 'timeout'?)"),
    ]
    assert found[1].expected.startswith("one of 'cache', 'claims', 'command'")


def test_a_violation_below_an_escaped_key_keeps_the_escapes() -> None:
    config = {"mount": {"/da~ta": {"source": "blk", "paht": "/dev/ld0a"}}}
    found = explainer.violations("config", config, base_pointer="/x~1y")
    assert [v.pointer for v in found] == ["/x~1y/mount/~1da~0ta", "/x~1y/mount/~1da~0ta/paht"]
    assert found[1].message == "unknown key 'paht' (did you mean 'path'?)"


def test_a_valid_document_is_passed_without_importing_jsonschema() -> None:
    code = (
        "import sys; from orchestrator.schemas import explainer;"
        "assert explainer.violations('config', {'env': {'A': 'b'}}) == [];"
        "print('jsonschema' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
