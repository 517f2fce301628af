"""A claim that can never own a part of any config is refused by ``delegates add`` and
warned about whenever a registry is read, naming the closest known pointer: a typo of
one of rumprun's keys (``/nett``) would leave the part with rumprun without a word, and
a legacy key (``/hostname``) is in no config bakeplan reads.  A key of a delegate's own
that resembles none of rumprun's stays allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from helpers_cli import run_main
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.config import RUMPRUN_KEYS
from orchestrator.core.registry import claim_problem, user_registry_path
from orchestrator.pointers import pointer_of

HYBRID = REPO / "examples" / "hybrid" / "config.json"
MIRAGE = str(Path(sys.executable).parent / "mirage-net-config")


def user_registry() -> Path:
    return user_registry_path(os.environ)


@pytest.mark.parametrize(
    ("claim", "closest"),
    [
        ("/nett", "/net"),
        ("/Net/interfaces", "/net/interfaces"),
        ("/mounts/~1data", "/mount/~1data"),
        ("/netbds/sysctl", "/netbsd/sysctl"),
        ("/hostname", "/netbsd/sysctl/kern.hostname"),
        ("/cmdline", "/rc"),
    ],
)
def test_add_refuses_a_claim_no_config_could_own(
    capsys: pytest.CaptureFixture[str], claim: str, closest: str
) -> None:
    code, out, err = run_main(capsys, "delegates", "add", "mirage", "--claim", claim, "--", MIRAGE)
    assert (code, out) == (2, "")
    assert f"delegate 'mirage' claims {claim}" in err
    assert f"did you mean {closest}?" in err
    assert not user_registry_path({}).exists() or "mirage" not in user_registry_path({}).read_text()


def test_add_accepts_rumpruns_keys_and_a_delegates_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_main(
        capsys, "delegates", "add", "mirage", "--claim", "/net", "--claim", "/mirage", "--", MIRAGE
    )
    assert code == 0, err
    assert "warning" not in err
    entry = json.loads(user_registry().read_text())["delegates"][0]
    assert entry["claims"] == ["/net", "/mirage"]


def test_a_registry_with_such_a_claim_is_read_with_a_warning_at_its_line(
    tmp_path: Path,
) -> None:
    registry = tmp_path / "registry.json"
    registry.write_text(
        '{"delegates": [\n'
        '  {"name": "mirage", "command": ["mirage-net-config"],\n'
        '   "claims": ["/nett"]}\n'
        "]}\n"
    )
    registry.chmod(0o644)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "plan", str(HYBRID), "-r", str(registry)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    warning = (
        f"bakeplan: warning: {registry}:3:15: delegate 'mirage' claims /nett, but rumprun's "
        "config has no key 'nett': the part it means would stay rumprun's; did you mean /net?"
    )
    assert done.stderr.count(warning) == 1
    # The hybrid is lost: rumprun keeps /net, which is exactly what the warning is about.
    assert [d["delegate"] for d in json.loads(done.stdout)["delegations"]] == ["rumprun"]


@given(
    key=st.sampled_from(RUMPRUN_KEYS),
    rest=st.lists(st.text(min_size=1, max_size=8), max_size=3),
)
def test_every_claim_under_rumpruns_keys_is_fine(key: str, rest: list[str]) -> None:
    assert claim_problem(pointer_of([key, *rest])) is None


@given(key=st.sampled_from(RUMPRUN_KEYS), at=st.integers(min_value=0), letter=st.sampled_from("xq"))
def test_one_letter_more_is_a_typo_naming_the_key(key: str, at: int, letter: str) -> None:
    at %= len(key) + 1
    typo = key[:at] + letter + key[at:]
    problem = claim_problem(pointer_of([typo, "a"]))
    assert problem is not None
    assert problem.endswith(f"did you mean /{key}/a?")
