"""Yes-or-no validators compiled from bakeplan's JSON Schemas, for the happy path.

Importing jsonschema costs more than all the rest of a ``bakeplan plan`` run around the
delegates, so the common case (a valid config, valid answers) is checked by closures
compiled here from the very same schema files, and jsonschema is brought in only to
explain a failure (``orchestrator.schemas.explainer``) or for a schema this compiler does not
know.  The schemas stay the single source of truth: this module has no rule of its own,
only Draft 2020-12 keywords, and ``tests/test_checker.py`` runs a corpus of valid and
invalid documents through both paths to prove they agree.

It reads the schema files through ``orchestrator.schemas.files`` and never imports
``explainer``, which imports it: the fast path and the explaining path are one way round.

A keyword outside the supported set raises ``Unsupported``, never a silent pass, when
its part of the schema is compiled: at once for the part asked for, and for a part behind
a ``$ref`` when data first reaches it (parts are compiled lazily).  The callers in
``orchestrator.schemas.explainer`` catch ``COMPILE_ERRORS`` and let jsonschema decide.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable, Mapping

from orchestrator.schemas import ecma, files

# Not typing.TYPE_CHECKING: a delegate checking its request imports this module, and
# importing typing is a cost its start need not pay (see orchestrator.core.wire).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    Check: TypeAlias = Callable[[Any], bool]

# Keywords that never affect validity.
_ANNOTATIONS = frozenset({
    "$schema", "$id", "$comment", "$anchor", "title", "description", "default", "examples",
    "deprecated", "readOnly", "writeOnly", "format", "contentMediaType", "contentEncoding",
    "$defs", "definitions",
})  # fmt: skip


_OBJECT = frozenset({"properties", "patternProperties", "additionalProperties"})
_ARRAY = frozenset({"prefixItems", "items"})
_CONTAINS = frozenset({"contains", "minContains", "maxContains"})
_CONDITION = frozenset({"if", "then", "else"})
_GROUPED = _OBJECT | _ARRAY | _CONTAINS | _CONDITION


# functools.cache may run a function twice at once; this lock makes the shared
# compiler's half-built references invisible to other threads (RLock: a package schema
# may be loaded while another is compiled).
_COMPILING = threading.RLock()


class Unsupported(Exception):  # a reason to fall back to jsonschema, not a failure
    """The schema uses something this compiler does not implement."""


# What compiling a schema can raise: a keyword this compiler does not know, a pattern
# Python's re refuses, or a schema that is not well formed (a delegate's own).
COMPILE_ERRORS = (Unsupported, re.error, KeyError, TypeError)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    # Draft 2020-12: any number with a zero fractional part is an integer (1.0 included).
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": _is_integer,
}


def equal(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``, containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


class Compiler:
    """Compiles schemas whose ``$ref``s stay inside ``documents`` (by ``$id``)."""

    def __init__(
        self,
        documents: Mapping[str, Mapping[str, Any]],
        load: Callable[[str], Mapping[str, Any] | None] = lambda _id: None,
    ) -> None:
        self.documents = dict(documents)
        # Other documents are read only when a $ref reaches them: most checks need one.
        self._load = load
        self._refs: dict[str, Check] = {}

    def compile(self, schema: Any, base: str) -> Check:
        """A check for ``schema``; ``base`` is the ``$id`` its local refs resolve in."""
        if schema is True:
            return lambda _v: True
        if schema is False:
            return lambda _v: False
        if not isinstance(schema, dict):
            raise Unsupported(f"a schema must be an object or a boolean, not {schema!r}")
        checks: list[Check] = []
        # Keywords that only mean something together are compiled as one group each.
        for group, build in (
            (_OBJECT, self._object),
            (_ARRAY, self._array),
            (_CONTAINS, self._contains),
            (_CONDITION, self._condition),
        ):
            if group & schema.keys():
                checks.append(build(schema, base))
        checks.extend(
            self._keyword(key, value, base)
            for key, value in schema.items()
            if key not in _ANNOTATIONS and key not in _GROUPED and not key.startswith("x-")
        )
        if not checks:
            return lambda _v: True
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(check(v) for check in checks)

    def _ref(self, ref: str, base: str) -> Check:
        target = ref if not ref.startswith("#") else base + ref
        if target in self._refs:
            return self._refs[target]
        document_id, _, fragment = target.partition("#")
        if document_id not in self.documents:
            loaded = self._load(document_id)
            if loaded is None:
                raise Unsupported(f"$ref to an unknown document: {ref}")
            self.documents[document_id] = loaded
        node: Any = self.documents[document_id]
        for escaped in [t for t in fragment.split("/") if t]:
            token = escaped.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or token not in node:
                raise Unsupported(f"$ref {ref} does not resolve")
            node = node[token]
        # The target is compiled when data first reaches it: a config touches few of the
        # schema's parts, and compiling them all cost more than the rest of a check.
        # Registered before it is compiled, which also makes recursive schemas work.
        compiled: list[Check] = []

        def forward(value: Any) -> bool:
            if not compiled:
                with _COMPILING:  # threads share the compiler; check again under the lock
                    if not compiled:
                        compiled.append(self._compiled_or_failing(node, document_id))
            return compiled[0](value)

        self._refs[target] = forward
        return forward

    def _compiled_or_failing(self, node: Any, base: str) -> Check:
        """The compiled ``node``, or a check that raises why it could not be compiled,
        so that a failure is found once, not on every call under the lock."""
        try:
            return self.compile(node, base)
        except COMPILE_ERRORS as error:
            failure = error

            def fail(_value: Any) -> bool:
                raise failure

            return fail

    def _keyword(  # noqa: PLR0911, PLR0912  (one branch per keyword reads best)
        self, key: str, value: Any, base: str
    ) -> Check:
        match key:
            case "$ref":
                return self._ref(value, base)
            case "type":
                names = [value] if isinstance(value, str) else list(value)
                kinds = [_TYPES[name] for name in names]
                return lambda v: any(kind(v) for kind in kinds)
            case "enum":
                options = list(value)
                return lambda v: any(equal(v, option) for option in options)
            case "const":
                return lambda v: equal(v, value)
            case "required":
                names = list(value)
                return lambda v: not isinstance(v, dict) or all(n in v for n in names)
            case "propertyNames":
                check = self.compile(value, base)
                return lambda v: not isinstance(v, dict) or all(check(k) for k in v)
            case "minProperties":
                return lambda v: not isinstance(v, dict) or len(v) >= value
            case "maxProperties":
                return lambda v: not isinstance(v, dict) or len(v) <= value
            case "dependentRequired":
                rules = {k: list(names) for k, names in value.items()}
                return lambda v: (
                    not isinstance(v, dict)
                    or all(all(n in v for n in names) for k, names in rules.items() if k in v)
                )
            case "minItems":
                return lambda v: not isinstance(v, list) or len(v) >= value
            case "maxItems":
                return lambda v: not isinstance(v, list) or len(v) <= value
            case "uniqueItems":
                return lambda v: (
                    not value
                    or not isinstance(v, list)
                    or all(not equal(v[i], v[j]) for i in range(len(v)) for j in range(i))
                )
            case "minLength":
                return lambda v: not isinstance(v, str) or len(v) >= value
            case "maxLength":
                return lambda v: not isinstance(v, str) or len(v) <= value
            case "pattern":
                search = _searcher(value)
                return lambda v: not isinstance(v, str) or search(v)
            case "minimum":
                return lambda v: not _is_number(v) or v >= value
            case "maximum":
                return lambda v: not _is_number(v) or v <= value
            case "exclusiveMinimum":
                return lambda v: not _is_number(v) or v > value
            case "exclusiveMaximum":
                return lambda v: not _is_number(v) or v < value
            case "multipleOf":
                return lambda v: not _is_number(v) or _multiple(v, value)
            case "allOf":
                parts = [self.compile(s, base) for s in value]
                return lambda v: all(p(v) for p in parts)
            case "anyOf":
                parts = [self.compile(s, base) for s in value]
                return lambda v: any(p(v) for p in parts)
            case "oneOf":
                parts = [self.compile(s, base) for s in value]
                return lambda v: sum(1 for p in parts if p(v)) == 1
            case "not":
                inner = self.compile(value, base)
                return lambda v: not inner(v)
        raise Unsupported(f"keyword {key!r}")

    def _condition(self, schema: Mapping[str, Any], base: str) -> Check:
        if "if" not in schema:
            return lambda _v: True  # "then" and "else" alone mean nothing
        condition = self.compile(schema["if"], base)
        then = self.compile(schema.get("then", True), base)
        otherwise = self.compile(schema.get("else", True), base)
        return lambda v: then(v) if condition(v) else otherwise(v)

    def _object(self, schema: Mapping[str, Any], base: str) -> Check:
        properties = {k: self.compile(s, base) for k, s in schema.get("properties", {}).items()}
        patterns = [
            (_searcher(p), self.compile(s, base))
            for p, s in schema.get("patternProperties", {}).items()
        ]
        extra = schema.get("additionalProperties", True)
        additional = None if extra is True else self.compile(extra, base)

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for key, item in value.items():
                matched = False
                if key in properties:
                    matched = True
                    if not properties[key](item):
                        return False
                for matches, rule in patterns:
                    if matches(key):
                        matched = True
                        if not rule(item):
                            return False
                if not matched and additional is not None and not additional(item):
                    return False
            return True

        return check

    def _array(self, schema: Mapping[str, Any], base: str) -> Check:
        prefix = [self.compile(s, base) for s in schema.get("prefixItems", [])]
        rest = self.compile(schema["items"], base) if "items" in schema else None

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return True
            for index, item in enumerate(value):
                rule = prefix[index] if index < len(prefix) else rest
                if rule is not None and not rule(item):
                    return False
            return True

        return check

    def _contains(self, schema: Mapping[str, Any], base: str) -> Check:
        if "contains" not in schema:
            return lambda _v: True  # minContains and maxContains alone mean nothing
        inner = self.compile(schema["contains"], base)
        least = schema.get("minContains", 1)
        most = schema.get("maxContains", math.inf)

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return True
            found = sum(1 for item in value if inner(item))
            return bool(least <= found <= most)

        return check


def _searcher(pattern: str) -> Callable[[str], bool]:
    """``re.search`` for ``pattern``, compiled on first use.

    The config schema holds dozens of long patterns (IPv6 addresses alone are a page)
    and compiling them all costs more than a whole plan; most configs touch few.
    """
    compiled: list[re.Pattern[str]] = []

    def search(text: str) -> bool:
        if not compiled:
            # As ECMA-262 reads it: "$" is the end of the text, not a final newline.
            compiled.append(ecma.compiled(pattern))
        return compiled[0].search(text) is not None

    return search


def _multiple(value: float, factor: float) -> bool:
    quotient = value / factor
    return math.isfinite(quotient) and float(quotient).is_integer()


@functools.cache
def _compiler() -> Compiler:
    return Compiler({}, _package_schema)


def _package_schema(schema_id: str) -> Mapping[str, Any] | None:
    """The package schema whose ``$id`` is ``schema_id`` (``.../<name>.json``), if any."""
    return files.by_id(schema_id)


@functools.cache
def checker(name: str, ref: str | None = None) -> Check:
    """The yes-or-no check for the package schema ``name`` (or its part ``ref``)."""
    # Delegate answers are checked from several threads at once; a check being compiled
    # is not yet usable, so compiling (not calling) is one thread at a time.
    with _COMPILING:
        return _checker(name, ref)


def _checker(name: str, ref: str | None) -> Check:
    document = files.shared(name)
    if document is None:
        raise KeyError(f"no schema named {name!r}")
    base = str(document["$id"])
    fragment = (ref or "").removeprefix("#")
    return _compiler().compile({"$ref": f"{base}#{fragment}"}, base)


@functools.lru_cache(maxsize=64)
def compiled(schema_text: str) -> Check | None:
    """A check for any schema (a delegate's own, as canonical JSON text); its ``$ref``s
    may reach the package's schemas.  None when its top level uses what this compiler
    does not know; a part behind a ``$ref`` raises one of ``COMPILE_ERRORS`` when data
    reaches it."""
    import json  # noqa: PLC0415

    schema = json.loads(schema_text)
    own = schema.get("$id", "") if isinstance(schema, dict) else ""
    compiler = Compiler({own: schema}, _package_schema)
    try:
        with _COMPILING:
            return compiler.compile(schema, own)
    except COMPILE_ERRORS:
        return None


def is_valid(name: str, instance: Any, ref: str | None = None) -> bool:
    """Whether ``instance`` satisfies the package schema ``name`` (or its part ``ref``)."""
    return checker(name, ref)(instance)


def passes(name: str, instance: Any, ref: str | None = None) -> bool:
    """True when the compiled check of the package schema ``name`` (or its part ``ref``)
    says ``instance`` is valid; False when it says not, or cannot tell (jsonschema then
    has the last word)."""
    try:
        return is_valid(name, instance, ref)
    except COMPILE_ERRORS:
        return False


def passes_schema(schema: Mapping[str, Any] | bool, instance: Any) -> bool:
    """``passes`` for any schema (a delegate's own fragment schema)."""
    import json  # noqa: PLC0415

    check = compiled(json.dumps(schema, sort_keys=True, separators=(",", ":")))
    try:
        return check is not None and check(instance)
    except COMPILE_ERRORS:
        return False  # a delegate's bad pattern or unknown keyword
