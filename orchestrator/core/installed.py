"""What code an installed Python delegate really runs: its distribution's files.

A Python delegate is seldom the file its registry entry names.  A console script is
pip's few-line wrapper (``from bakeplan_delegates.mirage_net_config import main``), a
package delegate is ``python -m orchestrator.sdk module:ATTRIBUTE``: the bytes of the
wrapper or of the interpreter say nothing of the code they load.  So the describe and
response caches (``digest.command_digest``) also cover, for such a command, every file
of the distribution that provides the code, found through ``importlib.metadata`` in the
interpreter's own environment:

* an ordinary install: each file its ``RECORD`` lists (bytecode left out, since it
  follows from the sources), so a reinstall of other code is another key;
* an editable install (``direct_url.json`` says ``editable``): the source files it maps
  its packages to (setuptools' ``MAPPING``, or the folders a ``.pth`` file adds), so an
  edit of ``mirage_net_config.py`` is another key without any reinstall;
* and, for either, the name and version of each distribution it requires directly.

Which distribution: for a console script, the one declaring an entry point of that name
(whose ``RECORD`` lists the very file, when it lists scripts at all); for ``python -m
MODULE``, the one providing MODULE's top-level package, and for ``-m orchestrator.sdk``
also the one providing the delegate's own module (or its file under ``--path``).  A
command that is none of these is not Python as far as the caches go: its own bytes and
the files its arguments name are the key, and a registry entry's ``inputs`` name what
else it reads.

``importlib.metadata`` is imported only for a command whose first line or name says
Python: a shell delegate costs nothing here.  Importing it and reading every
distribution's metadata costs more than the rest of a ``bakeplan validate``, so what was
found is kept on disk (``$XDG_CACHE_HOME/bakeplan/code/``) with the modification stamps of
everything the search read: the command, the interpreter's site folders (an install or
removal changes them), the distribution's metadata folder and files, and every folder an
editable install's sources were listed from.  A kept finding whose stamps all still hold
is used as found; any other is found again.  Only which files make up the code is kept:
their contents are digested afresh by ``digest.command_digest`` on every run.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import Distribution

__all__ = ["Code", "code_of", "files_under"]

_HEAD = 512
_PYTHON_NAME = re.compile(r"python[0-9.]*")  # fullmatch: "$" passes "python3\n"
# Options of the interpreter that take a value: skipped when looking for -m or a script.
_VALUED = frozenset({"-W", "-X", "--check-hash-based-pycs"})
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r";.*\bextra\s*==")
_MAPPING = re.compile(r"^MAPPING\s*(?::[^=\n]*)?=\s*(\{.*\})\s*$", re.MULTILINE)
_SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", "node_modules"})

_lock = threading.Lock()
_memo: dict[tuple[str, ...], tuple[Code, ...]] = {}
_KEPT_FORMAT = "bakeplan-code/1"


@dataclass(frozen=True, kw_only=True)
class Code:
    """One distribution whose code a command runs, and the files that make it up."""

    distribution: str  # "NAME VERSION"
    editable: bool
    files: tuple[str, ...]  # absolute paths, sorted
    requires: tuple[str, ...]  # "NAME VERSION" of each direct requirement installed

    def as_json(self) -> list[object]:
        return [self.distribution, self.editable, list(self.requires)]


def code_of(argv: Sequence[str]) -> tuple[Code, ...]:
    """The distributions whose code runs when the resolved ``argv`` runs; ``()`` for a
    command that is not an installed Python program.  Found once per process."""
    key = tuple(argv)
    with _lock:
        known = _memo.get(key)
    if known is not None:
        return known
    if not _python(argv):
        found: tuple[Code, ...] | None = ()
    else:
        found = _kept(argv)
    if found is None:
        watched: set[str] = set()
        found = tuple(_find(argv, watched))
        _keep(argv, found, watched)
    with _lock:
        _memo[key] = found
    return found


# -- what was found, kept on disk --------------------------------------------------------


def _kept_path(argv: Sequence[str]) -> Path:
    import hashlib  # noqa: PLC0415  (only for Python commands)

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    # Which distributions a command runs depends on where this interpreter imports from.
    where = [_KEPT_FORMAT, list(argv), sys.prefix, sys.path]
    name = hashlib.sha256(json.dumps(where).encode()).hexdigest()
    return Path(base) / "bakeplan" / "code" / f"{name}.json"


def _stamp(path: str) -> list[int] | None:
    try:
        status = Path(path).stat()
    except OSError:
        return None
    return [status.st_mtime_ns, status.st_size, status.st_ino]


def _kept(argv: Sequence[str]) -> tuple[Code, ...] | None:
    """The finding kept for ``argv`` when every stamp it was found with still holds."""
    try:
        document = json.loads(_kept_path(argv).read_bytes())
        if document["format"] != _KEPT_FORMAT or document["argv"] != list(argv):
            return None
        for path, stamp in document["watched"]:
            if _stamp(path) != stamp:
                return None
        return tuple(
            Code(
                distribution=c["distribution"],
                editable=c["editable"],
                files=tuple(c["files"]),
                requires=tuple(c["requires"]),
            )
            for c in document["code"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none kept, or unreadable: found again


def _keep(argv: Sequence[str], found: tuple[Code, ...], watched: set[str]) -> None:
    """Keep a finding; a folder that cannot be written only means finding it again."""
    stamps = [[path, _stamp(path)] for path in sorted(watched | _watched_command(argv))]
    document = {
        "format": _KEPT_FORMAT,
        "argv": list(argv),
        "watched": stamps,
        "code": [
            {
                "distribution": c.distribution,
                "editable": c.editable,
                "files": list(c.files),
                "requires": list(c.requires),
            }
            for c in found
        ],
    }
    path = _kept_path(argv)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(document), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _watched_command(argv: Sequence[str]) -> set[str]:
    """The command's own files: the program and each argument naming a file."""
    return {os.path.realpath(word) for word in argv if Path(word).exists()}


# -- what the command is -------------------------------------------------------------------


def _shebang(path: str) -> list[str]:
    """The words of ``path``'s ``#!`` line, or [] (not a script, or unreadable)."""
    try:
        with Path(path).open("rb") as stream:
            head = stream.read(_HEAD)
    except OSError:
        return []
    if not head.startswith(b"#!"):
        return []
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace")
    return line.split()


def _interpreter(words: list[str]) -> str | None:
    """The Python a ``#!`` line runs, or None when it runs something else."""
    if not words:
        return None
    program = words[0]
    if Path(program).name == "env":
        rest = [w for w in words[1:] if not w.startswith("-")]
        if not rest:
            return None
        import shutil  # noqa: PLC0415

        program = shutil.which(rest[0]) or rest[0]
    return program if _PYTHON_NAME.fullmatch(Path(program).name) else None


def _module_and_target(arguments: Sequence[str]) -> tuple[str | None, list[str]]:
    """``-m MODULE`` among an interpreter's arguments, and what follows it."""
    index = 0
    while index < len(arguments):
        word = arguments[index]
        if word == "-m" and index + 1 < len(arguments):
            return arguments[index + 1], list(arguments[index + 2 :])
        if word.startswith("-m") and len(word) > 2:
            return word[2:], list(arguments[index + 1 :])
        if not word.startswith("-"):
            return None, []  # a script: its bytes are already part of the key
        index += 2 if word in _VALUED else 1
    return None, []


def _find(argv: Sequence[str], watched: set[str]) -> Iterator[Code]:
    """Each distribution once, in the order found; ``watched`` gathers what was read."""
    seen: set[str] = set()
    for code in _each(argv, watched):
        if code.distribution not in seen:
            seen.add(code.distribution)
            yield code


def _python(argv: Sequence[str]) -> bool:
    """Whether ``argv`` runs Python: an interpreter by name, or a script whose ``#!`` says
    so (what ``_each`` looks further into)."""
    if not argv:
        return False
    program = argv[0]
    return bool(_PYTHON_NAME.fullmatch(Path(program).name)) or (
        _interpreter(_shebang(program)) is not None
    )


def _each(argv: Sequence[str], watched: set[str]) -> Iterator[Code]:
    if not argv:
        return
    program = argv[0]
    if _PYTHON_NAME.fullmatch(Path(program).name):
        module, rest = _module_and_target(argv[1:])
        if module is None:
            return
        site = _site(program)
        watched.update(site)
        yield from _providing(module, site, watched)
        if module == "orchestrator.sdk":
            yield from _sdk_target(rest, site, watched)
        return
    python = _interpreter(_shebang(program))
    if python is None:
        return
    site = _site(python)
    watched.update(site)
    yield from _console_script(program, site, watched)


# -- where the interpreter's distributions are ----------------------------------------------


def _site(python: str) -> list[str]:
    """The folders the interpreter ``python`` imports from, as far as can be told
    without starting it: this process's own path when it is this environment, else the
    virtualenv's (or the prefix's) site-packages."""
    root = Path(python).parent.parent
    try:
        here = root.resolve() == Path(sys.prefix).resolve()
    except OSError:
        here = False
    if here:
        return [p for p in sys.path if p]
    found = sorted(str(p) for p in root.glob("lib/python3*/site-packages"))
    found += sorted(str(p) for p in root.glob("lib/python3*/dist-packages"))
    if not (root / "pyvenv.cfg").exists() and root == Path("/usr"):
        found += sorted(str(p) for p in Path("/usr/local").glob("lib/python3*/dist-packages"))
    return found


def _distributions(site: Sequence[str]) -> Iterator[Distribution]:
    from importlib import metadata  # noqa: PLC0415  (only for Python delegates)

    seen: set[str] = set()
    for dist in metadata.distributions(path=list(site)):
        # The name from the folder's, where the distribution offers it: parsing every
        # METADATA file would cost more than the rest of a plan.
        name = getattr(dist, "_normalized_name", None) or _name(dist)
        if name and name not in seen:  # the first on the path is the one imported
            seen.add(name)
            yield dist


def _name(dist: Distribution) -> str:
    name = dist.metadata["Name"] if dist.metadata is not None else None
    return str(name) if name else ""


def _console_script(script: str, site: Sequence[str], watched: set[str]) -> Iterator[Code]:
    name = Path(script).name
    wanted = os.path.realpath(script)
    for dist in _distributions(site):
        points = [
            p
            for p in dist.entry_points
            if p.group in ("console_scripts", "gui_scripts") and p.name == name
        ]
        if not points:
            continue
        scripts = [
            os.path.realpath(str(dist.locate_file(f)))
            for f in dist.files or ()
            if Path(str(f)).name == name
        ]
        if scripts and wanted not in scripts:
            continue  # a script of that name, but another environment's
        yield _code(dist, site, watched)
        return


def _top_levels(dist: Distribution) -> set[str]:
    """The top-level modules a distribution provides."""
    text = dist.read_text("top_level.txt")
    names = set(text.split()) if text else set()
    for file in dist.files or ():
        parts = Path(str(file)).parts
        if not parts or parts[0].endswith((".dist-info", ".egg-info")) or parts[0] == "..":
            continue
        first = parts[0]
        if first.endswith(".py") and len(parts) == 1:
            if not first.startswith("__editable__"):
                names.add(first[:-3])
        elif len(parts) > 1 and first != "__pycache__":
            names.add(first)
    names.update(_editable_mapping(dist))
    return names


def _providing(module: str, site: Sequence[str], watched: set[str]) -> Iterator[Code]:
    """The distribution providing ``module``: cheap looks first (one named like it, then
    each ``top_level.txt``), every ``RECORD`` only when those do not tell."""
    from importlib import metadata  # noqa: PLC0415

    top = module.split(".", 1)[0]
    for dist in metadata.distributions(path=list(site), name=top):
        if top in _top_levels(dist):
            yield _code(dist, site, watched)
            return
    dists = list(_distributions(site))
    for dist in dists:
        text = dist.read_text("top_level.txt")
        if text and top in text.split():
            yield _code(dist, site, watched)
            return
    for dist in dists:
        if top in _top_levels(dist):
            yield _code(dist, site, watched)
            return


def _sdk_target(rest: Sequence[str], site: Sequence[str], watched: set[str]) -> Iterator[Code]:
    """The delegate module of ``python -m orchestrator.sdk [--path F]... MODULE:ATTR``."""
    folders: list[str] = []
    words = list(rest)
    while len(words) >= 2 and words[0] == "--path":
        folders.append(words[1])
        words = words[2:]
    if not words or ":" not in words[0]:
        return
    module = words[0].split(":", 1)[0]
    watched.update(folders)
    found = list(_providing(module, [*folders, *site], watched))
    if found:
        yield from found
        return
    # A module in a folder of its own, installed by no distribution: its files.
    top = module.split(".", 1)[0]
    for folder in folders:
        for candidate in (Path(folder) / top, Path(folder) / f"{top}.py"):
            if candidate.exists():
                yield Code(
                    distribution=f"{top} (not installed)",
                    editable=True,
                    files=tuple(files_under([str(candidate)], watched)),
                    requires=(),
                )
                return


# -- the files of a distribution --------------------------------------------------------------


def _editable_root(dist: Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    if not text:
        return False
    try:
        document = json.loads(text)
    except ValueError:
        return False
    info = document.get("dir_info") if isinstance(document, dict) else None
    return isinstance(info, dict) and info.get("editable") is True


def _editable_mapping(dist: Distribution) -> dict[str, str]:
    """setuptools' editable finder: top-level name -> source folder (or file)."""
    mapping: dict[str, str] = {}
    for file in dist.files or ():
        name = Path(str(file)).name
        if not (name.startswith("__editable__") and name.endswith("_finder.py")):
            continue
        try:
            text = Path(str(dist.locate_file(file))).read_text(encoding="utf-8")
        except OSError:
            continue
        match = _MAPPING.search(text)
        if match is None:
            continue
        try:
            value = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            mapping.update({str(k): str(v) for k, v in value.items()})
    return mapping


def _pth_folders(dist: Distribution) -> list[str]:
    """The folders the distribution's ``.pth`` files put on the path (editable installs
    by other back ends, and setuptools' lenient mode)."""
    folders: list[str] = []
    for file in dist.files or ():
        if not str(file).endswith(".pth"):
            continue
        try:
            text = Path(str(dist.locate_file(file))).read_text(encoding="utf-8")
        except OSError:
            continue
        for raw in text.splitlines():
            line = raw.strip()
            if line and not line.startswith(("#", "import ", "import\t")) and Path(line).is_dir():
                folders.append(line)
    return folders


def files_under(roots: Iterable[str], folders: set[str] | None = None) -> Iterator[str]:
    """Every file under each root (a file or a folder), bytecode, VCS folders and
    virtualenvs left out.  ``folders``, when given, gathers each root and folder listed."""
    for root in roots:
        path = Path(root)
        if folders is not None:
            folders.add(str(path.absolute()))
        if path.is_file():
            yield str(path.absolute())
            continue
        for folder, dirs, files in os.walk(path):
            if folders is not None:
                folders.add(str(Path(folder).absolute()))
            # A virtualenv inside a source tree is not the source.
            dirs[:] = sorted(
                d
                for d in dirs
                if d not in _SKIPPED_DIRS
                and not d.startswith(".")
                and not (Path(folder) / d / "pyvenv.cfg").exists()
            )
            for name in sorted(files):
                if not name.endswith((".pyc", ".pyo")):
                    yield str(Path(folder, name).absolute())


def _source_files(dist: Distribution, watched: set[str]) -> list[str]:
    mapping = _editable_mapping(dist)
    if mapping:
        return sorted(set(files_under(mapping.values(), watched)))
    tops = _top_levels(dist)
    roots: list[str] = []
    for folder in _pth_folders(dist):
        named = [
            str(candidate)
            for top in sorted(tops)
            for candidate in (Path(folder) / top, Path(folder) / f"{top}.py")
            if candidate.exists()
        ]
        roots.extend(named or [folder])
    return sorted(set(files_under(roots, watched)))


def _installed_files(dist: Distribution) -> list[str]:
    files = []
    for file in dist.files or ():
        text = str(file)
        if "__pycache__" in Path(text).parts or text.endswith((".pyc", ".pyo")):
            continue
        files.append(str(Path(str(dist.locate_file(file))).absolute()))
    return sorted(set(files))


def _requires(dist: Distribution, site: Sequence[str]) -> tuple[str, ...]:
    from importlib import metadata  # noqa: PLC0415

    found = []
    for requirement in dist.requires or ():
        if _EXTRA.search(requirement):
            continue  # an optional extra: not what runs by default
        match = _REQUIREMENT_NAME.match(requirement)
        if match is None:
            continue
        name = match.group(1)
        versions = [d.version for d in metadata.distributions(path=list(site), name=name)]
        found.append(f"{name} {versions[0] if versions else '(not installed)'}")
    return tuple(sorted(set(found)))


def _code(dist: Distribution, site: Sequence[str], watched: set[str]) -> Code:
    # The metadata folder and its files (RECORD, direct_url.json, an editable finder's
    # or .pth file's location), and the files it lists that say where sources are.
    folder = getattr(dist, "_path", None)
    if folder is not None:
        watched.add(str(folder))
        with contextlib.suppress(OSError):
            watched.update(str(entry) for entry in Path(folder).iterdir())
    for file in dist.files or ():
        if str(file).endswith((".pth", "_finder.py")):
            watched.add(str(dist.locate_file(file)))
    editable = _editable_root(dist)
    files = _source_files(dist, watched) if editable else _installed_files(dist)
    return Code(
        distribution=f"{_name(dist)} {dist.version}",
        editable=editable,
        files=tuple(files),
        requires=_requires(dist, site),
    )
