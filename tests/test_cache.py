"""The response cache, end to end with real delegates that log every start: a warm
re-plan starts nothing and is the cold plan's very bytes (``--timings`` says which
answers came from the cache); every changed input misses; damaged entries are ignored
and replaced; concurrent writers, readers and evictions never corrupt it; ``--no-cache``
and ``cache clear`` do what they say; and only successful answers are ever kept, the
configure answers of opted-in delegates and every delegate's describe answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from helpers_cli import run_main
from helpers_exec import write_python

from orchestrator.core import cache

HYBRID = REPO / "examples" / "hybrid" / "config.json"
# The dialect whose residual these tests read; --timings reports each run's state.
SPEC = ("--rumprun", "spec", "--timings")


def plan(
    capsys: pytest.CaptureFixture[str], config: Path, reg: Path, *more: str
) -> tuple[int, str, str]:
    """``bakeplan plan`` in this process, in the spec dialect, with ``--timings``."""
    return run_main(capsys, "plan", *SPEC, str(config), "-r", str(reg), *more)


def run_process(*argv: str) -> tuple[int, str, str]:
    """bakeplan as a new process: nothing remembered in memory from an earlier plan."""
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, done.stderr


def delegate(folder: Path, name: str, *, pure: bool = False, configure: str = "") -> Path:
    """A delegate that appends ``NAME OP`` to ``starts`` the moment it starts, describes
    itself (``pure`` as told) and answers configure with its fragment, a device and a
    toolchain argument, or runs ``configure`` (Python) instead when given."""
    answer = (
        configure
        or f"""
        print(json.dumps({{
            "protocol": "bakeplan/1",
            "replace": request["fragment"],
            "devices": [{{"name": "dev-{name}", "kind": "test", "pointer": request["pointer"]}}],
            "toolchain": {{"test": {{"args": [{name!r}, os.environ.get("MODE", "")]}}}},
        }}))
        """
    )
    description = {
        "protocol": "bakeplan/1",
        "name": name,
        "version": "1",
        "protocols": ["bakeplan/1"],
        "pure": pure,
    }
    head = f"""
        import json, os, sys
        op = "configure" if "BAKEPLAN_POINTER" in os.environ else "describe"
        with open({str(folder / "starts")!r}, "a") as log:
            log.write({name!r} + " " + op + "\\n")
        request = json.load(sys.stdin)
        if request["op"] == "describe":
            print(json.dumps({description!r}))
            sys.exit(0)
        """
    return write_python(folder, name, textwrap.dedent(head) + textwrap.dedent(answer))


def starts(folder: Path) -> list[str]:
    path = folder / "starts"
    return path.read_text().splitlines() if path.exists() else []


def registry(folder: Path, *entries: dict[str, Any]) -> Path:
    path = folder / "registry.json"
    path.write_text(json.dumps({"delegates": list(entries)}), encoding="utf-8")
    path.chmod(0o644)
    return path


def two_cached(folder: Path) -> Path:
    """``a`` opted in by its registry entry at /env, ``b`` by describing itself pure at
    /netbsd: the two ways a delegate's answers may be reused."""
    delegate(folder, "a")
    delegate(folder, "b", pure=True)
    return registry(
        folder,
        {"name": "a", "command": ["./a"], "claims": ["/env"], "cache": True},
        {"name": "b", "command": ["./b"], "claims": ["/netbsd"]},
    )


def responses_folder() -> Path:
    return cache.folder()


def all_entries() -> list[Path]:
    return sorted(responses_folder().glob(f"*{cache.SUFFIX}"))


def _answer(path: Path) -> bytes:
    return path.read_bytes().partition(b"\n")[2]


def entries() -> list[Path]:
    """The configure answers kept (describe answers share the store; they name their
    protocols, which no configure answer does)."""
    return [p for p in all_entries() if b'"protocols"' not in _answer(p)]


def describe_entries() -> list[Path]:
    return [p for p in all_entries() if b'"protocols"' in _answer(p)]


def cached_flags(timings: str) -> dict[str, bool]:
    """Which runs ``--timings`` says were answered from the cache, by delegate."""
    flags = {}
    for line in timings.splitlines():
        head, _, state = line.removeprefix("bakeplan: ").rpartition(": ")
        if " at " in head and state.split(" ")[0] in ("cached", "done"):
            flags[head.split(" at ")[0]] = state.startswith("cached")
    return flags


# -- hits ---------------------------------------------------------------------------------------


def test_a_warm_plan_starts_no_process_and_is_the_cold_plans_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_leftovers: Path
) -> None:
    reg = two_cached(tmp_path)
    code, cold, err = plan(capsys, HYBRID, reg)
    assert code == 0, err
    assert sorted(starts(tmp_path)) == ["a configure", "a describe", "b configure", "b describe"]
    assert cached_flags(err) == {"a": False, "b": False, "rumprun": False}
    assert len(entries()) == 2
    assert len(describe_entries()) == 2
    # A new process: neither describe (its answer is kept) nor configure runs.
    code, warm, err = run_process("plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert code == 0, err
    assert len(starts(tmp_path)) == 4
    assert cached_flags(err) == {"a": True, "b": True, "rumprun": False}
    assert warm == cold  # byte for byte: the plan never says where an answer came from
    assert "cached" not in warm


def test_a_hit_is_shown_with_verbose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = two_cached(tmp_path)
    assert plan(capsys, HYBRID, reg)[0] == 0
    code, _, err = run_main(capsys, "plan", "--rumprun", "spec", str(HYBRID), "-r", str(reg), "-v")
    assert code == 0
    assert "bakeplan: a at /env: cached in" in err
    assert "bakeplan: rumprun at (the whole config): done in" in err


# -- misses -------------------------------------------------------------------------------------


def test_a_changed_fragment_argv_environment_or_executable_misses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.json"
    document = json.loads(HYBRID.read_text())
    config.write_text(json.dumps(document))
    delegate(tmp_path, "a")
    entry = {"name": "a", "command": ["./a"], "claims": ["/env"], "cache": True, "env": ["MODE"]}
    reg = registry(tmp_path, entry)

    def hit() -> bool:
        before = len(starts(tmp_path))
        code, _, err = plan(capsys, config, reg)
        assert code == 0, err
        ran = [s for s in starts(tmp_path)[before:] if s.endswith("configure")]
        assert bool(ran) is not cached_flags(err)["a"]
        return cached_flags(err)["a"]

    assert hit() is False
    assert hit() is True
    # Another fragment.
    document["env"]["TZ"] = "Europe/Paris"
    config.write_text(json.dumps(document))
    assert hit() is False
    assert hit() is True
    # Another argv.
    reg = registry(tmp_path, {**entry, "command": ["./a", "--verbose"]})
    assert hit() is False
    assert hit() is True
    # Another value of a variable the entry passes through.
    monkeypatch.setenv("MODE", "fast")
    assert hit() is False
    assert hit() is True
    # Another executable: the same path, other bytes.
    with (tmp_path / "a").open("a") as script:
        script.write("# changed\n")
    assert hit() is False
    assert hit() is True
    assert len(entries()) == 5


# -- damaged entries ----------------------------------------------------------------------------


def _garbage(data: bytes, other_key: str) -> bytes:
    del data, other_key
    return b"\x00\xffnot an entry at all\n{}"


def _truncated(data: bytes, other_key: str) -> bytes:
    del other_key
    return data[:-7]


def _empty(data: bytes, other_key: str) -> bytes:
    del data, other_key
    return b""


def _altered(data: bytes) -> bytes:
    """The answer with one letter changed: still a valid answer, but not the one given."""
    return data.partition(b"\n")[2].replace(b'"dev-', b'"Dev-')


def _wrong_key(data: bytes, other_key: str) -> bytes:
    # Whole and well-formed, but filed under another key.
    return cache.encoded(other_key, _altered(data))


def _flipped_letter(data: bytes, other_key: str) -> bytes:
    del other_key
    return data.partition(b"\n")[0] + b"\n" + _altered(data)


@pytest.mark.parametrize(
    "damage", [_garbage, _truncated, _empty, _wrong_key, _flipped_letter], ids=lambda f: f.__name__
)
def test_a_damaged_entry_is_ignored_and_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any
) -> None:
    reg = two_cached(tmp_path)
    code, cold, _ = plan(capsys, HYBRID, reg)
    assert code == 0
    first, second = entries()
    good = first.read_bytes()
    first.write_bytes(damage(good, second.name.removesuffix(cache.SUFFIX)))
    code, out, err = plan(capsys, HYBRID, reg)
    assert code == 0, err
    # One delegate ran again and its fresh answer is the cold one; the other was a hit.
    assert sorted(cached_flags(err).values()) == [False, False, True]
    assert out == cold
    assert len([s for s in starts(tmp_path) if s.endswith("configure")]) == 3
    assert first.read_bytes() == good  # replaced by the fresh, identical answer
    code, out, err = plan(capsys, HYBRID, reg)
    assert cached_flags(err) == {"a": True, "b": True, "rumprun": False}


def test_a_stored_answer_that_breaks_the_protocol_is_not_trusted(tmp_path: Path) -> None:
    """An entry whose header and digest are right but whose answer is not a valid answer
    (written by hand, or by a bakeplan that checked less) is a miss, not a plan."""
    reg = two_cached(tmp_path)
    assert run_process("plan", *SPEC, str(HYBRID), "-r", str(reg))[0] == 0
    for path in all_entries():  # describe answers too
        key = path.name.removesuffix(cache.SUFFIX)
        bad = b'{"protocol":"bakeplan/1","devices":"nope"}\n'
        path.write_bytes(cache.encoded(key, bad))
    code, _, err = run_process("plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert code == 0, err
    assert cached_flags(err) == {"a": False, "b": False, "rumprun": False}
    assert len(starts(tmp_path)) == 8  # each asked and run afresh


# -- concurrency --------------------------------------------------------------------------------


def test_concurrent_plans_share_the_cache_without_corrupting_it(
    tmp_path: Path, no_leftovers: Path
) -> None:
    reg = two_cached(tmp_path)
    argv = [sys.executable, "-m", "orchestrator", "plan", "--rumprun", "spec", str(HYBRID)]
    processes = [
        subprocess.Popen([*argv, "-r", str(reg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(10)
    ]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 10, "\n".join(e.decode() for _, e in results)
    assert len({out for out, _ in results}) == 1
    assert all(err == b"" for _, err in results)
    assert len(entries()) == 2
    for path in all_entries():
        assert cache.verified(path.read_bytes(), path.name.removesuffix(cache.SUFFIX))
    assert not list(responses_folder().glob("*.tmp"))
    # And the next plan is served whole from what they left.
    before = len(starts(tmp_path))
    code, out, _ = run_process("plan", "--rumprun", "spec", str(HYBRID), "-r", str(reg))
    assert code == 0
    assert len(starts(tmp_path)) == before
    assert out == results[0][0].decode()


def test_threads_writing_one_key_while_others_read_and_evict(tmp_path: Path) -> None:
    answer = b'{"protocol":"bakeplan/1","replace":' + b'"' + b"x" * 2000 + b'"}\n'
    size = len(cache.encoded("0" * 64, answer))
    # Room for four entries: the writers of other keys keep evicting.
    store = cache.Store(folder=tmp_path / "responses", max_bytes=4 * size + 100)
    key = "a" * 64
    wrong: list[bytes] = []
    errors: list[BaseException] = []

    def guarded(work: Any) -> Any:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # reported by the test below
                errors.append(exc)

        return run

    def write_same() -> None:
        for _ in range(60):
            store.put(key, answer)

    def write_others(n: int) -> Any:
        def work() -> None:
            for i in range(60):
                store.put(f"{n:02d}{i:062d}", answer)

        return work

    def read() -> None:
        for _ in range(300):
            found = store.get(key)
            if found is not None and found != answer:
                wrong.append(found)

    threads = [threading.Thread(target=guarded(write_same)) for _ in range(4)]
    threads += [threading.Thread(target=guarded(write_others(n))) for n in range(4)]
    threads += [threading.Thread(target=guarded(read)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert wrong == []
    files = list(store.folder.glob(f"*{cache.SUFFIX}"))
    assert sum(f.stat().st_size for f in files) <= store.max_bytes
    for path in files:
        assert cache.verified(path.read_bytes(), path.name.removesuffix(cache.SUFFIX))
    assert not list(store.folder.glob("*.tmp"))
    store.put(key, answer)
    assert store.get(key) == answer


# -- size and eviction --------------------------------------------------------------------------


def test_eviction_keeps_the_bound_and_evicts_the_least_recently_used(tmp_path: Path) -> None:
    answer = b'{"protocol":"bakeplan/1"}\n'
    keys = [f"{c}" * 64 for c in "1234"]
    size = len(cache.encoded(keys[0], answer))
    store = cache.Store(folder=tmp_path / "responses", max_bytes=3 * size + size // 2)
    for when, key in zip((1000, 2000, 3000), keys, strict=False):
        store.put(key, answer)
        os.utime(store.path(key), (when, when))
    assert store.get(keys[0]) == answer  # the oldest, used now: no longer least recent
    assert store.path(keys[0]).stat().st_mtime > 3000
    store.put(keys[3], answer)  # the fourth does not fit
    assert not store.path(keys[1]).exists()  # the least recently used went first
    assert all(store.path(k).exists() for k in (keys[0], keys[2], keys[3]))
    total = sum(p.stat().st_size for p in store.folder.glob(f"*{cache.SUFFIX}"))
    assert total <= store.max_bytes
    # The ledger holds the true total after a scan.
    assert int((store.folder / cache.LEDGER).read_text()) == total


def test_the_ledger_is_put_right_when_damaged(tmp_path: Path) -> None:
    answer = b'{"protocol":"bakeplan/1"}\n'
    store = cache.Store(folder=tmp_path / "responses", max_bytes=10_000)
    store.put("1" * 64, answer)
    (store.folder / cache.LEDGER).write_text("garbage")
    store.put("2" * 64, answer)
    total = sum(p.stat().st_size for p in store.folder.glob(f"*{cache.SUFFIX}"))
    assert int((store.folder / cache.LEDGER).read_text()) == total


def test_an_answer_larger_than_the_bound_is_not_kept(tmp_path: Path) -> None:
    store = cache.Store(folder=tmp_path / "responses", max_bytes=100)
    store.put("1" * 64, b"x" * 200)
    assert store.get("1" * 64) is None
    assert not list(store.folder.glob(f"*{cache.SUFFIX}")) if store.folder.exists() else True


def test_the_bound_comes_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache.max_bytes({}) == (cache.DEFAULT_MAX_BYTES, "")
    assert cache.max_bytes({cache.MAX_BYTES_VAR: "4096"}) == (4096, "")
    reg = two_cached(tmp_path)
    # Zero bytes: nothing is kept, so every plan starts every delegate.
    monkeypatch.setenv(cache.MAX_BYTES_VAR, "0")
    for _ in range(2):
        code, _, err = plan(capsys, HYBRID, reg)
        assert code == 0, err
        assert set(cached_flags(err).values()) == {False}
    assert len([s for s in starts(tmp_path) if s.endswith("configure")]) == 4
    assert all_entries() == []  # not even a describe answer
    # A value that is not a number of bytes is a note with --verbose, never a failure.
    monkeypatch.setenv(cache.MAX_BYTES_VAR, "lots")
    code, _, err = run_main(capsys, "plan", "--rumprun", "spec", str(HYBRID), "-r", str(reg))
    assert (code, err) == (0, "")
    code, _, err = run_main(
        capsys, "plan", "--rumprun", "spec", str(HYBRID), "-r", str(reg), "--verbose"
    )
    assert code == 0
    assert f"bakeplan: response cache: {cache.MAX_BYTES_VAR}='lots' is not a whole number" in err


# -- --no-cache, cache clear, an unwritable cache -----------------------------------------------


@pytest.mark.parametrize("command", ["plan", "graph"])
def test_no_cache_starts_every_delegate_and_keeps_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    reg = two_cached(tmp_path)
    argv = (command, "--rumprun", "spec", str(HYBRID), "-r", str(reg), "--no-cache")
    code, _, err = run_main(capsys, *argv)
    assert code == 0, err
    assert not responses_folder().exists()  # no describe answer kept either
    assert plan(capsys, HYBRID, reg)[0] == 0  # now warm
    configures = len([s for s in starts(tmp_path) if s.endswith("configure")])
    describes = len([s for s in starts(tmp_path) if s.endswith("describe")])
    code, _, err = run_main(capsys, *argv, *(("--timings",) if command == "plan" else ()))
    assert code == 0, err
    # Every delegate is asked describe and run again: a stale describe is never used.
    assert len([s for s in starts(tmp_path) if s.endswith("configure")]) == configures + 2
    assert len([s for s in starts(tmp_path) if s.endswith("describe")]) == describes + 2
    if command == "plan":
        assert set(cached_flags(err).values()) == {False}


def test_cache_clear_empties_both_caches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = Path(os.environ["XDG_CACHE_HOME"]) / "bakeplan"
    code, out, err = run_main(capsys, "cache", "clear")
    assert (code, out) == (0, "")
    assert err == f"bakeplan: cache clear: no answers in {base / 'responses'}\n"
    reg = two_cached(tmp_path)
    assert run_process("plan", "--rumprun", "spec", str(HYBRID), "-r", str(reg))[0] == 0
    sizes = sum(p.stat().st_size for p in all_entries())
    # The folder an earlier bakeplan kept describe answers in goes too.
    (base / "describe").mkdir()
    (base / "describe" / "old.json").write_text("{}")
    code, out, err = run_main(capsys, "cache", "clear")
    assert (code, out) == (0, "")
    assert f"removed 4 answers ({sizes} bytes) from {base / 'responses'}" in err
    assert f"removed 1 earlier describe answer (2 bytes) from {base / 'describe'}" in err
    assert not (base / "responses").exists()
    assert not (base / "describe").exists()
    # A new process must ask and run everything again.
    before = len(starts(tmp_path))
    code, _, err = run_process("plan", *SPEC, str(HYBRID), "-r", str(reg))
    assert code == 0
    assert len(starts(tmp_path)) == before + 4
    assert set(cached_flags(err).values()) == {False}


def test_cache_needs_a_verb(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "cache")
    assert code == 2
    assert "cache needs a verb: clear" in err


def test_an_unwritable_cache_is_only_slower(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file where the cache folder should be: no folder can be made under it, even by root.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    reg = two_cached(tmp_path)
    code, cold, err = run_main(capsys, "plan", "--rumprun", "spec", str(HYBRID), "-r", str(reg))
    assert (code, err) == (0, "")
    code, again, err = run_main(
        capsys, "plan", "--rumprun", "spec", str(HYBRID), "-r", str(reg), "-v"
    )
    assert code == 0
    assert again == cold
    assert f"bakeplan: response cache: not caching answers: cannot write in {blocker}" in err
    assert err.count("bakeplan: response cache:") == 1  # one note, not one per delegate


# -- what is never cached -----------------------------------------------------------------------


def test_a_delegate_neither_opted_in_nor_pure_is_never_cached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delegate(tmp_path, "plain")
    reg = registry(tmp_path, {"name": "plain", "command": ["./plain"], "claims": ["/env"]})
    for _ in range(2):
        code, _, err = plan(capsys, HYBRID, reg)
        assert code == 0, err
        assert cached_flags(err)["plain"] is False
    assert len([s for s in starts(tmp_path) if s.endswith("configure")]) == 2
    assert entries() == []
    assert len(describe_entries()) == 1  # its describe answer is kept, as every delegate's


FAILURES = {
    # what the delegate does on configure: (its script, what bakeplan says)
    "exit status": (
        'print(json.dumps({"protocol": "bakeplan/1", "error": {"message": "refused"}}))\n'
        "sys.exit(1)\n",
        "refused",
    ),
    "malformed answer": ('print("{not json")\n', "malformed answer"),
    "answer breaking the schema": (
        'print(json.dumps({"protocol": "bakeplan/1", "devices": 3}))\n',
        "breaks the configure answer schema",
    ),
    "device outside its claim": (
        'print(json.dumps({"protocol": "bakeplan/1", "replace": {}, '
        '"devices": [{"name": "x", "kind": "net", "pointer": "/net"}]}))\n',
        "outside its claim",
    ),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failing_delegates_answer_is_never_cached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], failure: str
) -> None:
    script, said = FAILURES[failure]
    delegate(tmp_path, "bad", pure=True, configure=script)
    reg = registry(
        tmp_path, {"name": "bad", "command": ["./bad"], "claims": ["/env"], "cache": True}
    )
    for _ in range(2):
        code, out, err = run_main(capsys, "plan", "--rumprun", "spec", str(HYBRID), "-r", str(reg))
        assert (code, out) == (1, "")
        assert "delegate 'bad' at /env" in err and said in err
    assert len([s for s in starts(tmp_path) if s.endswith("configure")]) == 2
    assert entries() == []
