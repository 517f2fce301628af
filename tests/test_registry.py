"""Registry files: where they are found, what they may say, and which commands to trust.

Registry files and delegate executables are real files in ``tmp_path`` with explicit
modes; ``discover`` gets explicit environ mappings and cwd, never the developer's own.
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from helpers_exec import write_exec, write_sh

from orchestrator.core import registry
from orchestrator.core.jsontext import JsonTextError
from orchestrator.core.registry import Entry, Registry, discover, load_file, resolve_command
from orchestrator.errors import InputError, Problems, exit_code_of
from orchestrator.show import messages


def entry(name: str, *command: str, claims: tuple[str, ...] = ("/net",)) -> dict[str, Any]:
    return {"name": name, "command": list(command or (name,)), "claims": list(claims)}


def write_registry(path: Path, *entries: dict[str, Any], mode: int = 0o644) -> Path:
    """A registry file, one entry per line (so positions are easy to predict)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join("    " + json.dumps(e) for e in entries)
    path.write_text('{\n  "delegates": [\n' + lines + "\n  ]\n}\n", encoding="utf-8")
    path.chmod(mode)
    return path


def position(path: Path, needle: str, occurrence: int = 0) -> tuple[int, int]:
    """The 1-based line and column of the ``occurrence``-th ``needle`` in the file."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        start = 0
        while (col := line.find(needle, start)) != -1:
            found.append((number, col + 1))
            start = col + 1
    return found[occurrence]


def sources(reg: Registry) -> dict[str, str]:
    return {e.name: e.source for e in reg.entries}


# -- search order --------------------------------------------------------------------------


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """A project registry in the cwd, a user registry under XDG, and two more files."""
    project = tmp_path / "project"
    xdg = tmp_path / "xdg"
    return {
        "project": write_registry(
            project / "bakeplan-registry.json", entry("shared", "p"), entry("only-project")
        ),
        "user": write_registry(
            xdg / "bakeplan" / "registry.json", entry("shared", "u"), entry("only-user")
        ),
        "one": write_registry(tmp_path / "one.json", entry("shared", "1"), entry("only-one")),
        "two": write_registry(tmp_path / "two.json", entry("shared", "2"), entry("only-two")),
        "cwd": project,
        "xdg": xdg,
    }


def test_explicit_files_are_all_read_and_the_first_definition_wins(
    places: dict[str, Path],
) -> None:
    environ = {
        "BAKEPLAN_REGISTRY": str(places["one"]),
        "XDG_CONFIG_HOME": str(places["xdg"]),
    }
    reg = discover([str(places["two"]), str(places["one"])], environ=environ, cwd=places["cwd"])
    assert reg.files == (str(places["two"]), str(places["one"]))
    assert reg.names() == ("shared", "only-two", "only-one")
    assert sources(reg) == {
        "shared": str(places["two"]),
        "only-two": str(places["two"]),
        "only-one": str(places["one"]),
    }
    shared = reg.get("shared")
    assert shared is not None
    assert shared.command == ("2",)


def test_environment_variable_paths_when_no_file_is_given(places: dict[str, Path]) -> None:
    environ = {
        "BAKEPLAN_REGISTRY": f":{places['one']}::{places['two']}:",
        "XDG_CONFIG_HOME": str(places["xdg"]),
    }
    reg = discover([], environ=environ, cwd=places["cwd"])
    assert reg.files == (str(places["one"]), str(places["two"]))
    assert reg.names() == ("shared", "only-one", "only-two")
    assert sources(reg)["shared"] == str(places["one"])


def test_project_registry_shadows_the_users(places: dict[str, Path]) -> None:
    environ = {"XDG_CONFIG_HOME": str(places["xdg"])}
    reg = discover([], environ=environ, cwd=places["cwd"])
    assert reg.files == (str(places["project"]), str(places["user"]))
    assert reg.names() == ("shared", "only-project", "only-user")
    shared = reg.get("shared")
    assert shared is not None
    assert shared.command == ("p",)


def test_an_empty_environment_variable_falls_back_to_the_default_places(
    places: dict[str, Path],
) -> None:
    environ = {"BAKEPLAN_REGISTRY": "", "XDG_CONFIG_HOME": str(places["xdg"])}
    reg = discover([], environ=environ, cwd=places["cwd"])
    assert reg.files == (str(places["project"]), str(places["user"]))


def test_default_places_only_where_they_exist(places: dict[str, Path], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    only_user = discover([], environ={"XDG_CONFIG_HOME": str(places["xdg"])}, cwd=elsewhere)
    assert only_user.files == (str(places["user"]),)
    assert only_user.names() == ("shared", "only-user")

    no_xdg = tmp_path / "no-xdg"
    only_project = discover([], environ={"XDG_CONFIG_HOME": str(no_xdg)}, cwd=places["cwd"])
    assert only_project.files == (str(places["project"]),)
    assert only_project.names() == ("shared", "only-project")


def test_nothing_found_is_an_empty_registry(tmp_path: Path) -> None:
    reg = discover([], environ={"XDG_CONFIG_HOME": str(tmp_path / "none")}, cwd=tmp_path)
    assert reg == Registry(entries=(), files=())
    assert reg.get("anything") is None


def test_user_registry_defaults_to_dot_config_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    user = write_registry(home / ".config" / "bakeplan" / "registry.json", entry("mine"))
    monkeypatch.setenv("HOME", str(home))
    reg = discover([], environ={}, cwd=tmp_path)
    assert reg.files == (str(user),)
    assert reg.names() == ("mine",)


# -- load_file -------------------------------------------------------------------------------


def test_a_valid_file_gives_entries_with_defaults(tmp_path: Path) -> None:
    path = write_registry(
        tmp_path / "registry.json",
        entry("plain", "plain", "--flag", claims=("/net", "/mount/~1data")),
        {
            "name": "full-1",
            "command": ["./tool"],
            "claims": ["/blk"],
            "timeout": 2.5,
            "env": ["CNI_PATH", "LANG"],
            "cache": True,
        },
    )
    assert load_file(path) == (
        Entry(
            name="plain",
            command=("plain", "--flag"),
            claims=("/net", "/mount/~1data"),
            timeout=30.0,
            env=(),
            cache=False,
            source=str(path),
        ),
        Entry(
            name="full-1",
            command=("./tool",),
            claims=("/blk",),
            timeout=2.5,
            env=("CNI_PATH", "LANG"),
            cache=True,
            source=str(path),
        ),
    )


@pytest.mark.parametrize(
    ("bad", "pointer", "needle", "message"),
    [
        pytest.param(
            entry("Mirage"),
            "/delegates/0/name",
            '"Mirage"',
            "a delegate name is 1 to 64 lowercase letters, digits and dashes, "
            "starting with a letter",
            id="uppercase-name",
        ),
        pytest.param(
            entry("rumprun"),
            "/delegates/0/name",
            '"rumprun"',
            "'rumprun' is the name of the built-in rumprun layer",
            id="reserved-name",
        ),
        pytest.param(
            entry("n", claims=("net",)),
            "/delegates/0/claims/0",
            '"net"',
            "not a JSON pointer into the config "
            "(RFC 6901: starts with /, ~ written ~0, / inside a key written ~1)",
            id="claim-not-a-pointer",
        ),
        pytest.param(
            entry("net", claims=("",)),
            "/delegates/0/claims/0",
            '""',
            "not a JSON pointer into the config "
            "(RFC 6901: starts with /, ~ written ~0, / inside a key written ~1)",
            id="claim-whole-document",
        ),
        pytest.param(
            {**entry("net"), "timeout": 0},
            "/delegates/0/timeout",
            "0}",
            "0 is less than or equal to the minimum of 0",
            id="zero-timeout",
        ),
        pytest.param(
            {**entry("net"), "clams": ["/net"]},
            "/delegates/0/clams",
            '["/net"]}',
            "unknown key 'clams' (did you mean 'claims'?)",
            id="unknown-field",
        ),
    ],
)
def test_schema_violation_is_located(
    tmp_path: Path, bad: dict[str, Any], pointer: str, needle: str, message: str
) -> None:
    path = write_registry(tmp_path / "registry.json", bad)
    with pytest.raises(InputError) as caught:
        load_file(path)
    error = caught.value
    assert type(error) is InputError
    assert error.message == message
    assert (error.file, error.pointer) == (str(path), pointer)
    assert (error.line, error.col) == position(path, needle)
    assert messages.headline(error) == f"{path}:{error.line}:{error.col} at {pointer}: {message}"
    assert exit_code_of(error) == 2


def test_every_violation_is_reported_together(tmp_path: Path) -> None:
    path = write_registry(
        tmp_path / "registry.json",
        entry("Upper"),
        entry("rumprun"),
        {**entry("ok", claims=("net", "")), "timeout": 0, "cach": True},
    )
    with pytest.raises(Problems) as caught:
        load_file(path)
    found = {(p.pointer, p.line) for p in caught.value.problems}
    assert found == {
        ("/delegates/0/name", 3),
        ("/delegates/1/name", 4),
        ("/delegates/2/claims/0", 5),
        ("/delegates/2/claims/1", 5),
        ("/delegates/2/timeout", 5),
        ("/delegates/2/cach", 5),
    }
    assert all(p.file == str(path) for p in caught.value.problems)
    cach = next(p for p in caught.value.problems if p.pointer == "/delegates/2/cach")
    assert cach.message == "unknown key 'cach' (did you mean 'cache'?)"
    assert exit_code_of(caught.value) == 2


def test_a_name_defined_twice_in_one_file_is_an_error_at_the_second(tmp_path: Path) -> None:
    path = write_registry(
        tmp_path / "registry.json", entry("a", "first"), entry("b"), entry("a", "second")
    )
    with pytest.raises(InputError) as caught:
        load_file(path)
    error = caught.value
    assert error.message == "delegate 'a' is defined twice (first as /delegates/0)"
    assert error.pointer == "/delegates/2/name"
    assert (error.line, error.col) == position(path, '"a"', occurrence=1)
    assert error.line == 5


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        pytest.param(
            '{\n  "delegates": [\n  }\n', 3, 3, "expected a value, found '}'", id="not-json"
        ),
        pytest.param(
            '{\n  "delegates": [],\n  "delegates": []\n}\n',
            3,
            3,
            "duplicate key 'delegates' (first at 2:3)",
            id="duplicate-key",
        ),
    ],
)
def test_malformed_json_is_located(
    tmp_path: Path, text: str, line: int, col: int, message: str
) -> None:
    path = tmp_path / "registry.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(JsonTextError) as caught:
        load_file(path)
    assert (caught.value.file, caught.value.line, caught.value.col) == (str(path), line, col)
    assert caught.value.message == message


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(InputError) as caught:
        load_file(path)
    assert caught.value.file == str(path)
    assert caught.value.message == "cannot read registry file: No such file or directory"


def test_an_unreadable_file(tmp_path: Path) -> None:
    # A directory: unreadable as a file even for root, unlike a chmod 000 file.
    path = tmp_path / "registry.json"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    with pytest.raises(InputError) as caught:
        load_file(path)
    assert caught.value.file == str(path)
    assert caught.value.message == "cannot read registry: Is a directory"


@pytest.mark.parametrize(
    ("mode", "who"), [(0o664, "group"), (0o646, "others"), (0o666, "group and others")]
)
def test_a_registry_others_may_write_is_refused(tmp_path: Path, mode: int, who: str) -> None:
    path = write_registry(tmp_path / "registry.json", entry("a"), mode=mode)
    with pytest.raises(InputError) as caught:
        load_file(path)
    assert caught.value.message == (
        f"registry file is writable by {who} (mode {mode:04o}); refusing to trust it"
    )
    assert caught.value.file == str(path)
    assert caught.value.hint == f"chmod go-w {path}"
    # Refused through discover too: -r does not bypass the check.
    with pytest.raises(InputError, match="writable"):
        discover([str(path)], environ={}, cwd=tmp_path)


def test_a_registry_only_its_owner_may_write_is_accepted(tmp_path: Path) -> None:
    path = write_registry(tmp_path / "registry.json", entry("a"), mode=0o644)
    assert [e.name for e in load_file(path)] == ["a"]


# -- resolve_command -----------------------------------------------------------------------


def made(name: str, command: tuple[str, ...], source: Path | str = "") -> Entry:
    return Entry(name=name, command=command, claims=("/net",), source=str(source))


def test_a_bare_name_is_found_on_the_environs_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = write_sh(bin_dir, "net-tool", "exit 0\n")
    argv = resolve_command(
        made("net", ("net-tool", "--fast", "x y")), environ={"PATH": f"/nonexistent:{bin_dir}"}
    )
    assert argv == (str(tool.resolve()), "--fast", "x y")


def test_a_bare_name_missing_from_path_is_found_beside_the_interpreter(tmp_path: Path) -> None:
    scripts = Path(sysconfig.get_path("scripts"))
    expected = (scripts / "mirage-net-config").resolve()
    assert expected.is_file(), "the project is installed in the venv"
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = resolve_command(made("m", ("mirage-net-config", "-v")), environ={"PATH": str(empty)})
    assert argv == (str(expected), "-v")


def test_path_comes_before_the_interpreters_folder(tmp_path: Path) -> None:
    shadow = write_sh(tmp_path, "mirage-net-config", "exit 0\n")
    argv = resolve_command(made("m", ("mirage-net-config",)), environ={"PATH": str(tmp_path)})
    assert argv == (str(shadow.resolve()),)


@pytest.mark.parametrize("program", ["tools/net-tool", "./tools/net-tool"])
def test_a_name_with_a_slash_is_relative_to_the_registry_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, program: str
) -> None:
    folder = tmp_path / "reg"
    (folder / "tools").mkdir(parents=True)
    tool = write_sh(folder / "tools", "net-tool", "exit 0\n")
    source = write_registry(folder / "registry.json", entry("net", program))
    # A decoy at the same relative path from the cwd must not be taken.
    cwd = tmp_path / "cwd"
    (cwd / "tools").mkdir(parents=True)
    write_sh(cwd / "tools", "net-tool", "exit 0\n")
    monkeypatch.chdir(cwd)
    (loaded,) = load_file(source)
    assert resolve_command(loaded, environ={"PATH": str(cwd / "tools")}) == (str(tool.resolve()),)


def test_an_absolute_path_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = write_sh(tmp_path, "abs-tool", "exit 0\n")
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    argv = resolve_command(made("a", (str(tool), "arg"), other / "registry.json"), environ={})
    assert argv == (str(tool.resolve()), "arg")


@pytest.mark.parametrize("program", ["no-such-tool", "bin/no-such-tool"])
def test_a_missing_command_is_named(tmp_path: Path, program: str) -> None:
    source = tmp_path / "registry.json"
    with pytest.raises(InputError) as caught:
        resolve_command(made("ghost", (program,), source), environ={"PATH": str(tmp_path)})
    assert caught.value.message == (
        f"delegate 'ghost' (registry {source}): command {program!r} not found"
    )
    assert exit_code_of(caught.value) == 2


def test_a_directory_is_not_an_executable(tmp_path: Path) -> None:
    (tmp_path / "tool").mkdir()
    with pytest.raises(InputError) as caught:
        resolve_command(made("d", ("./tool",), tmp_path / "registry.json"), environ={})
    assert caught.value.message.endswith(f": {tmp_path / 'tool'} is not an executable file")


def test_a_file_without_the_execute_bit_is_not_an_executable(tmp_path: Path) -> None:
    tool = write_exec(tmp_path, "tool", "#!/bin/sh\n", mode=0o644)
    with pytest.raises(InputError) as caught:
        resolve_command(made("d", (str(tool),)), environ={})
    assert caught.value.message == (
        f"delegate 'd' (registry (built in)): {tool} is not an executable file"
    )
    assert caught.value.hint == f"chmod +x {tool}"


@pytest.mark.parametrize(("mode", "who"), [(0o775, "group"), (0o757, "others")])
def test_an_executable_others_may_write_is_refused(tmp_path: Path, mode: int, who: str) -> None:
    tool = write_exec(tmp_path, "tool", "#!/bin/sh\n", mode=mode)
    with pytest.raises(InputError) as caught:
        resolve_command(made("w", ("tool",)), environ={"PATH": str(tmp_path)})
    assert caught.value.message == (
        f"executable of delegate 'w' is writable by {who} (mode {mode:04o}); refusing to trust it"
    )
    assert caught.value.hint == f"chmod go-w {tool}"


def test_a_symlink_is_judged_by_its_target(tmp_path: Path) -> None:
    target = write_exec(tmp_path, "target", "#!/bin/sh\n", mode=0o777)
    link_dir = tmp_path / "bin"
    link_dir.mkdir()
    (link_dir / "tool").symlink_to(target)
    with pytest.raises(InputError, match="writable by group and others"):
        resolve_command(made("s", ("tool",)), environ={"PATH": str(link_dir)})


# -- unknown names -----------------------------------------------------------------------------


def test_unknown_name_suggests_the_closest() -> None:
    reg = Registry(entries=(made("mirage-net-config", ("m",)), made("cni-ipam", ("c",))), files=())
    error = reg.unknown("mirage-net-confg")
    assert isinstance(error, InputError)
    assert error.message == "unknown delegate 'mirage-net-confg'"
    assert error.hint == "did you mean 'mirage-net-config'?"
    assert reg.unknown("rumprn").hint == "did you mean 'rumprun'?"
    assert reg.unknown("zzz").hint == "known: mirage-net-config, cni-ipam, rumprun"
    assert registry.BUILTIN == "rumprun"
