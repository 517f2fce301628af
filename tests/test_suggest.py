"""Did you mean: the one way every refusal of a name offers the closest known one."""

from __future__ import annotations

import subprocess
import sys

from orchestrator.suggest import CUTOFF, closest, did_you_mean


def test_the_closest_known_word_is_offered() -> None:
    assert closest("nett", ["rc", "net", "netbsd"]) == "net"
    assert closest("zzz", ["rc", "net"]) is None
    assert closest("net", []) is None
    assert CUTOFF == 0.6  # difflib's own default, which most messages use


def test_the_cutoff_is_each_callers_own() -> None:
    # "mt" is 0.57 like "mount": offered at routing's 0.5, not at the default.
    assert closest("mt", ["mount"]) is None
    assert closest("mt", ["mount"], cutoff=0.5) == "mount"


def test_the_wording_is_one_sentence_quoted_or_bare() -> None:
    assert did_you_mean("nett", ["net"]) == "did you mean 'net'?"
    assert did_you_mean("-lc_pthread", ["-lpthread"], quoted=False) == "did you mean -lpthread?"
    assert did_you_mean("zzz", ["net"]) is None


def test_the_known_words_may_be_any_iterable() -> None:
    assert did_you_mean("nett", (k for k in ("net", "env"))) == "did you mean 'net'?"


def test_difflib_is_imported_only_when_a_suggestion_is_asked_for() -> None:
    code = "import sys, orchestrator.suggest; print('difflib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
