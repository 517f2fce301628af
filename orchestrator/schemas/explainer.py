"""The JSON Schemas (Draft 2020-12) of bakeplan's documents, and what breaks them.

Each schema is a file ``<name>.json`` in this package (``config``, ``registry``,
``request``, ``response``, ``plan``), with an ``$id`` under ``https://bakeplan.dev/schemas/``.

* ``load`` returns one as a dict (what ``bakeplan schema NAME`` prints);
* ``validator`` returns a ready validator for a whole schema or one part of it
  (``validator("config", "#/$defs/net")``), built once per process;
* ``violations`` (a package schema) and ``violations_of`` (any schema, such as a
  delegate's ``fragment_schema``) return every violation in a document as ``Violation``
  values: an RFC 6901 pointer, a message a person can act on, the value, what was
  expected; ``explain`` returns them as one line each.

Every schema in the package is registered under its ``$id`` in one shared registry, so a
schema may ``$ref`` another without network access.  A subschema may carry two
annotations of bakeplan's own, which validators ignore: ``x-message``, the message shown
when that subschema fails (better than a regular expression quoted back), and
``x-expected``, what a correct value looks like.

jsonschema is imported only when a validator is first built: start-up (``bakeplan
--version``) must not pay for it.  The happy path asks the compiled ``checker`` first;
this module imports it (and ``ecma``), never the other way round, so ``files``,
``checker`` and ``explainer`` have no cycle.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.core import jsontext
from orchestrator.pointers import pointer_of, pointer_order
from orchestrator.schemas import checker, ecma
from orchestrator.suggest import did_you_mean

if TYPE_CHECKING:
    from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]
        ValidationError,
    )
    from jsonschema.protocols import Validator  # type: ignore[import-untyped, unused-ignore]
    from referencing import Registry

__all__ = [
    "DRAFT",
    "Violation",
    "explain",
    "finish",
    "json_type",
    "load",
    "names",
    "schema_id",
    "show",
    "validator",
    "violations",
    "violations_of",
]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_SUFFIX = ".json"
# The schema files are package data beside this module; importlib.resources would find
# them too, at the cost of importing zipfile on every run.
_FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class Violation:
    """One way a document breaks a schema.

    ``pointer`` is where (RFC 6901, escaped: the key ``/data`` of ``mount`` is
    ``/mount/~1data``), ``message`` what is wrong, ``value`` the offending value (for a
    bad key name, the name), ``expected`` what would be right.
    """

    pointer: str
    message: str
    value: Any
    expected: str

    def line(self) -> str:
        """The violation as one line: ``pointer: message``."""
        return f"{self.pointer or '(the whole document)'}: {self.message}"


# --- the package's schemas -------------------------------------------------------------


@functools.cache
def _names() -> tuple[str, ...]:
    return tuple(
        sorted(
            entry.name.removesuffix(_SUFFIX)
            for entry in _FOLDER.iterdir()
            if entry.name.endswith(_SUFFIX) and entry.is_file()
        )
    )


def names() -> list[str]:
    """The names of every schema in the package, sorted (``config``, ``plan``, ...)."""
    return list(_names())


@functools.cache
def _shared(name: str) -> dict[str, Any]:
    """The parsed schema, shared by the validators built on it: never handed out."""
    if name not in names():
        raise KeyError(f"no schema named {name!r} (known: {', '.join(names())})")
    path = _FOLDER / (name + _SUFFIX)
    schema = jsontext.parse(path.read_bytes(), source=f"orchestrator/schemas/{name}{_SUFFIX}")
    if not isinstance(schema, dict) or not isinstance(schema.get("$id"), str):
        raise TypeError(f"schema {name!r} must be an object with an $id")
    return schema


def load(name: str) -> dict[str, Any]:
    """The schema ``<name>.json`` as a dict; a fresh copy, so callers may change it."""
    return copy.deepcopy(_shared(name))


def schema_id(name: str) -> str:
    """The ``$id`` of the schema ``<name>.json``."""
    return str(_shared(name)["$id"])


@functools.cache
def _registry() -> Registry[Any]:
    from referencing import Registry, Resource  # noqa: PLC0415  (lazy: start-up time)

    return Registry().with_resources(
        (schema_id(name), Resource.from_contents(_shared(name))) for name in names()
    )


@functools.cache
def validator(name: str, ref: str | None = None) -> Validator:
    """A Draft 2020-12 validator for the schema ``name``, built once per process.

    ``ref`` selects a part of the schema by JSON pointer, with or without the leading
    ``#`` (``"#/$defs/net"``): the validator then checks a value against that part alone,
    with every ``$ref`` inside it resolved against the whole schema.
    """
    if ref is None:
        root: dict[str, Any] = _shared(name)
    else:
        fragment = ref if ref.startswith("#") else "#" + ref
        root = {"$schema": DRAFT, "$ref": schema_id(name) + fragment}
    checker: Validator = _draft()(root, registry=_registry())
    if ref is not None:
        # Resolve now, so a misspelt ref fails here rather than in the middle of a check.
        checker.is_valid(None)
    return checker


# --- violations ------------------------------------------------------------------------


def violations(
    name: str,
    instance: Any,
    *,
    ref: str | None = None,
    base_pointer: str = "",
    skip: Collection[str] = (),
) -> list[Violation]:
    """Every violation of the package schema ``name`` (or its part ``ref``) in ``instance``.

    ``base_pointer`` is where ``instance`` sits in a larger document and prefixes every
    pointer; ``skip`` holds pointers (in the larger document's terms) whose subtrees are
    someone else's to check: violations at or below them are dropped.  Sorted by pointer.
    """
    # The happy path never imports jsonschema: a compiled yes-or-no check comes first
    # (and should it ever fail to compile a part, jsonschema decides instead).
    if checker.passes(name, instance, ref):
        return []
    return _collect(validator(name, ref), instance, base_pointer, skip)


def violations_of(
    schema: Mapping[str, Any] | bool,
    instance: Any,
    *,
    base_pointer: str = "",
    skip: Collection[str] = (),
) -> list[Violation]:
    """Every violation of any Draft 2020-12 ``schema`` (a delegate's own) in ``instance``.

    The schema may ``$ref`` the package's schemas by their ``$id``.  A schema that is
    not a valid JSON Schema raises ``ValueError``.
    """
    if checker.passes_schema(schema, instance):
        return []
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return _collect(_validator_of(text), instance, base_pointer, skip)


def explain(name: str, instance: Any, *, ref: str | None = None) -> tuple[str, ...]:
    """The violations of the package schema ``name`` in ``instance``, one line each."""
    return tuple(violation.line() for violation in violations(name, instance, ref=ref))


@functools.lru_cache(maxsize=64)
def _validator_of(schema_text: str) -> Validator:
    # Keyed by the schema's canonical text: a delegate's schema is a dict, not hashable.
    from jsonschema import (  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
        Draft202012Validator,  # lazy: start-up time must not pay for jsonschema
    )
    from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
        SchemaError,
    )

    schema = json.loads(schema_text)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
    checker: Validator = _draft()(schema, registry=_registry())
    return checker


@functools.cache
def _draft() -> Any:
    """Draft 2020-12 with its pattern keywords read as ECMA-262 reads them (``ecma``):
    jsonschema applies Python's ``re``, whose ``$`` also matches before a final newline."""
    from jsonschema import (  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
        Draft202012Validator,
        validators,
    )
    from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
        ValidationError,
    )

    def pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
        del schema
        if validator.is_type(instance, "string") and not ecma.search(pattern, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")

    def pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Any:
        del schema
        if not validator.is_type(instance, "object"):
            return
        for each, subschema in patterns.items():
            for key, value in instance.items():
                if ecma.search(each, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=each)

    def additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Any:
        if not validator.is_type(instance, "object"):
            return
        known = schema.get("properties", {})
        patterns = list(schema.get("patternProperties", {}))
        extras = [
            key
            for key in instance
            if key not in known and not any(ecma.search(p, key) for p in patterns)
        ]
        if validator.is_type(extra, "object"):
            for key in extras:
                yield from validator.descend(instance[key], extra, path=key)
        elif not extra and extras:
            listed = ", ".join(repr(key) for key in sorted(extras))
            yield ValidationError(f"Additional properties are not allowed ({listed} unexpected)")

    return validators.extend(
        Draft202012Validator,
        {
            "pattern": pattern,
            "patternProperties": pattern_properties,
            "additionalProperties": additional_properties,
        },
    )


def _collect(
    checker: Validator, instance: Any, base_pointer: str, skip: Collection[str]
) -> list[Violation]:
    # Several errors can describe one spot (an enum in a property and a narrower enum in
    # an if/then branch): keep the best for each spot, where a spot is a pointer and
    # what is wrong there (its value, its key's name, or one missing key).
    best: dict[tuple[str, str], tuple[_Rank, Violation]] = {}
    for error in checker.iter_errors(instance):
        for spot, rank, violation in _violations(error, base_pointer):
            key = (violation.pointer, spot)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, violation)
    return finish((violation for _, violation in best.values()), skip=skip)


def finish(found: Iterable[Violation], *, skip: Collection[str] = ()) -> list[Violation]:
    """Violations without those under ``skip`` and without repeats, sorted by pointer."""
    kept = {(v.pointer, v.message): v for v in found if not _skipped(v.pointer, skip)}
    return sorted(kept.values(), key=lambda v: (pointer_order(v.pointer), v.message))


def _skipped(pointer: str, skip: Collection[str]) -> bool:
    return any(pointer == owned or pointer.startswith(owned + "/") for owned in skip)


# --- from jsonschema's errors to violations --------------------------------------------

_WEAK = frozenset({"anyOf", "oneOf"})
# How well an error describes its spot: a plain keyword over an anyOf/oneOf summary, the
# schema's own message over jsonschema's, and a deeper (narrower) subschema over a
# shallower one (the if/then branch for inet over the enum every address shares).
_Rank = tuple[bool, bool, int]


def _violations(error: ValidationError, base: str) -> Iterator[tuple[str, _Rank, Violation]]:
    """The violations one jsonschema error stands for, each with its spot and rank."""
    from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
        best_match,  # lazy: start-up time must not pay for jsonschema
    )

    # A subschema of ours that says what its failure means wins over its sub-errors; an
    # anyOf/oneOf without one is replaced by the sub-error that fits best.
    if error.context and not _own_message(error):
        error = best_match([error]) or error
    pointer = base + pointer_of(str(token) for token in error.absolute_path)
    spot = "value"
    if _under_property_names(error):
        # The value that failed is a key: point at that key's member.
        pointer += pointer_of([str(error.instance)])
        spot = "name"
    validator_name = str(error.validator)
    rank = (
        validator_name not in _WEAK,
        bool(_own_message(error)),
        len(error.absolute_schema_path),
    )
    if validator_name == "additionalProperties" and error.validator_value is False:
        for violation in _unknown_keys(error, pointer):
            yield "name", rank, violation
        return
    if validator_name == "required":
        for missing in _missing(error):
            yield (
                f"required {missing}",
                rank,
                Violation(
                    pointer=pointer,
                    message=_own_message(error) or f"missing required key {missing!r}",
                    value=error.instance,
                    expected=_own_expected(error) or f"a key {missing!r}",
                ),
            )
        return
    yield (
        spot,
        rank,
        Violation(
            pointer=pointer,
            message=_message(error),
            value=error.instance,
            expected=_expected(error),
        ),
    )


def _under_property_names(error: ValidationError) -> bool:
    # "propertyNames" as a keyword, not as the name of a property called so.
    path = list(error.absolute_schema_path)
    return any(
        keyword == "propertyNames"
        and (index == 0 or path[index - 1] not in ("properties", "patternProperties", "$defs"))
        for index, keyword in enumerate(path)
    )


def _unknown_keys(error: ValidationError, pointer: str) -> Iterator[Violation]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = sorted(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in instance:
        if key in known or any(ecma.search(pattern, key) for pattern in patterns):
            continue
        message = f"unknown key {key!r}"
        suggestion = did_you_mean(key, known)
        if suggestion:
            message += f" ({suggestion})"
        yield Violation(
            pointer=pointer + pointer_of([key]),
            message=message,
            value=instance[key],
            expected=("one of " + ", ".join(repr(k) for k in known)) if known else "no keys",
        )


def _missing(error: ValidationError) -> list[str]:
    required = error.validator_value if isinstance(error.validator_value, list) else []
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [str(name) for name in required if name not in instance]


def _own_message(error: ValidationError) -> str:
    # A type error is best said plainly ("must be a string, not an integer"), so the
    # schema's own message covers the other keywords of its subschema.
    if error.validator == "type" or not isinstance(error.schema, dict):
        return ""
    return str(error.schema.get("x-message", ""))


def _own_expected(error: ValidationError) -> str:
    if not isinstance(error.schema, dict):
        return ""
    return str(error.schema.get("x-expected", ""))


def _message(error: ValidationError) -> str:  # noqa: PLR0911
    own = _own_message(error)
    if own:
        return own
    value, rule = error.instance, error.validator_value
    match error.validator:
        case "type":
            return f"must be {_types(rule)}, not {json_type(value)}"
        case "enum":
            options = ", ".join(show(option) for option in rule)
            return f"must be one of {options}, not {show(value)}"
        case "const":
            return f"must be {show(rule)}, not {show(value)}"
        case "minLength" if rule == 1:
            return "must not be empty"
        case "minItems":
            return f"must have at least {_count(rule, 'item')}"
        case "maxItems":
            return f"must have at most {_count(rule, 'item')}, not {len(value)}"
        case "minimum":
            return f"must be at least {rule}, not {show(value)}"
    return str(error.message)


def _expected(error: ValidationError) -> str:  # noqa: PLR0911
    own = _own_expected(error)
    if own:
        return own
    rule = error.validator_value
    match error.validator:
        case "type":
            return _types(rule)
        case "enum":
            return "one of " + ", ".join(show(option) for option in rule)
        case "const":
            return show(rule)
        case "minLength":
            return f"at least {_count(rule, 'character')}"
        case "minItems":
            return f"at least {_count(rule, 'item')}"
        case "maxItems":
            return f"at most {_count(rule, 'item')}"
        case "minimum":
            return f">= {rule}"
        case "pattern":
            return f"a string matching {rule}"
    return f"{error.validator}: {show(rule)}"


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: a bool is an int in Python
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)
_TYPE_NAMES = {
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, with its article: ``an array``, ``null``."""
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return "null"


def _types(rule: Any) -> str:
    types = rule if isinstance(rule, list) else [rule]
    return " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in types)


def _count(number: Any, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def show(value: Any, limit: int = 60) -> str:
    """A value as JSON for a message, cut short."""
    shown = json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
