"""The ``bakeplan/1`` protocol: requests, answers and error objects as frozen data.

A request is encoded once to exact bytes (those bytes are what the delegate reads and
what the plan's ``request_sha256`` digests).  An answer is decoded strictly (one JSON
value, UTF-8, no duplicate keys), validated against ``schemas/response.json`` and only
then turned into an ``Answer`` (configure) or a ``Description`` (describe).  Anything
else is a ``ProtocolViolation`` saying which rule it broke.

``judge`` is the one place a delegate's run is read: it turns the runner's ``Outcome``
(exit status, signal, time limit, stdout) into the parsed, checked answer or a
``Failure`` of a named kind.  The scheduler, the describe handshake and the conformance
kit all call it, and each only decides how its failure reads to a person.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from orchestrator.core import jsontext

# The request side lives in wire, which a delegate imports alone; re-exported here.
from orchestrator.core.wire import PROTOCOL, Context, Request, encode
from orchestrator.pointers import pointer_text, tokens_of, within
from orchestrator.schemas import explainer

if TYPE_CHECKING:  # judge reads what the runner gives; this module starts nothing
    from orchestrator.core.runner import Outcome

__all__ = [
    "PROTOCOL",
    "Answer",
    "Context",
    "Description",
    "Device",
    "ErrorObject",
    "Failure",
    "ProtocolViolation",
    "Request",
    "Warning",
    "decode",
    "delegate_env",
    "describe_request",
    "encode",
    "environment",
    "judge",
    "outside_claim",
    "parse_configure",
    "parse_describe",
    "parse_error",
]

# Which rule an answer broke: ``unreadable``, not one strict JSON value; ``invalid``,
# against the response schema (or another protocol's answer); ``unspoken``, a describe
# answer not listing bakeplan/1; ``outside``, a device pointing outside the claim;
# ``schema``, a fragment_schema that is no JSON Schema.
Violation = Literal["unreadable", "invalid", "unspoken", "outside", "schema"]
# Why a run gave no answer: a violation above, or ``failed`` (it did not exit 0 on its
# own: an exit status, a signal, the time limit, stdout past its cap) or ``cancelled``
# (bakeplan stopped it).
FailureKind = Literal[
    "cancelled", "failed", "unreadable", "invalid", "unspoken", "outside", "schema"
]
# The kinds whose message says "malformed answer".
MALFORMED: frozenset[str] = frozenset({"unreadable", "invalid"})

Parsed = TypeVar("Parsed")


class ProtocolViolation(Exception):
    """An answer that breaks the protocol: what is wrong, with further detail lines."""

    def __init__(
        self, message: str, detail: tuple[str, ...] = (), *, kind: Violation = "invalid"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.kind: Violation = kind


def environment(delegate: str, pointer: str | None = None) -> dict[str, str]:
    """The ``BAKEPLAN_*`` variables a delegate gets (docs/PROTOCOL.md); no pointer for
    ``describe``, which is about no part of the config."""
    variables = {"BAKEPLAN_PROTOCOL": PROTOCOL, "BAKEPLAN_DELEGATE": delegate}
    if pointer is not None:
        variables["BAKEPLAN_POINTER"] = pointer
    return variables


# Environment names every delegate gets from bakeplan's own environment (SPEC: PATH,
# locale, TMPDIR; TMPDIR is the private directory ``runner.run`` makes, never the
# parent's).
_BASE_ENV_NAMES = frozenset({"PATH", "LANG", "LANGUAGE", "TZ"})
_EMPTY_ENV: Mapping[str, str] = MappingProxyType({})


def delegate_env(
    passthrough: Iterable[str] = (),
    extra: Mapping[str, str] = _EMPTY_ENV,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a delegate gets: PATH, locale, TZ, the names it lists, ``extra``.

    ``base`` defaults to this process's environment.  Nothing else leaks through (no
    HOME, no credentials).  ``TMPDIR`` is added by ``runner.run``, which makes the
    directory; ``extra`` is usually ``environment``'s variables.
    """
    source: Mapping[str, str] = os.environ if base is None else base
    env = {
        name: value
        for name, value in source.items()
        if name in _BASE_ENV_NAMES or name.startswith("LC_")
    }
    for name in passthrough:
        if name in source:
            env[name] = source[name]
    env.update(extra)
    return env


def describe_request() -> bytes:
    """The exact bytes of a ``describe`` request."""
    return encode({"protocol": PROTOCOL, "op": "describe"})


@dataclass(frozen=True, kw_only=True)
class Device:
    """A device the domain builder must attach; ``fields`` keeps the delegate's own extras."""

    name: str
    kind: str
    pointer: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Warning:
    """A warning from a delegate about a place in the config."""

    message: str
    pointer: str | None = None


@dataclass(frozen=True, kw_only=True)
class ErrorObject:
    """The optional ``error`` object of a failing delegate."""

    message: str
    code: str | None = None
    pointer: str | None = None


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A validated ``configure`` answer.

    ``replaced`` tells a ``replace`` of ``null`` (the value stays, as null) from no
    ``replace`` at all (the delegate consumed the fragment).
    """

    replaced: bool
    replace: Any = None
    devices: tuple[Device, ...] = ()
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    toolchain: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    warnings: tuple[Warning, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The answer as a delegate would write it (the built-in layer's answer digest)."""
        document: dict[str, Any] = {"protocol": PROTOCOL}
        if self.replaced:
            document["replace"] = self.replace
        if self.devices:
            document["devices"] = [
                {
                    "name": d.name,
                    "kind": d.kind,
                    **({"pointer": d.pointer} if d.pointer else {}),
                    **d.fields,
                }
                for d in self.devices
            ]
        if self.add or self.remove:
            document["components"] = {"add": list(self.add), "remove": list(self.remove)}
        if self.toolchain:
            document["toolchain"] = {
                chain: {key: list(values) for key, values in args.items()}
                for chain, args in self.toolchain.items()
            }
        if self.warnings:
            document["warnings"] = [
                {"message": w.message, **({"pointer": w.pointer} if w.pointer is not None else {})}
                for w in self.warnings
            ]
        return document


@dataclass(frozen=True, kw_only=True)
class Description:
    """A validated ``describe`` answer."""

    name: str
    version: str
    protocols: tuple[str, ...]
    claims: tuple[str, ...] = ()
    fragment_schema: Any = None
    examples: tuple[Any, ...] = ()
    pure: bool = False


def decode(raw: bytes) -> Any:
    """The one JSON value of an answer, strictly, or ``ProtocolViolation``."""
    if not raw.strip():
        raise ProtocolViolation(
            "the delegate wrote nothing on stdout; one JSON object expected", kind="unreadable"
        )
    try:
        return jsontext.parse(raw, source="stdout")
    except jsontext.JsonTextError as exc:
        raise ProtocolViolation(
            f"stdout is not one strict JSON value: {exc.summary()}",
            kind="unreadable",
        ) from None


def _check(document: Any, section: Literal["configure", "describe", "failure"]) -> None:
    """Validate against the response schema's section; every violation becomes detail."""
    if isinstance(document, dict) and document.get("protocol") != PROTOCOL:
        spoken = document.get("protocol")
        raise ProtocolViolation(
            f"the answer speaks protocol {spoken!r}; bakeplan speaks {PROTOCOL!r}"
            if spoken is not None
            else f'the answer has no "protocol": {PROTOCOL!r} expected'
        )
    problems = explainer.explain("response", document, ref=f"#/$defs/{section}")
    if problems:
        raise ProtocolViolation(f"the answer breaks the {section} answer schema", problems)


def outside_claim(claim: str, pointer: str) -> str:
    """Why ``pointer`` is outside the ``claim``, for a person."""
    return f"the delegate pointed at {pointer_text(pointer)}, outside its claim " + (
        pointer_text(claim)
    )


def parse_configure(raw: bytes, claim: str | None = None) -> Answer:
    """Decode and validate a ``configure`` answer; with the ``claim`` (the run's
    pointer), also bounded to it.

    An answer speaks only of its own subtree: a device pointing outside the claim breaks
    the protocol, and a warning pointing outside it is moved to the claim, saying where
    the delegate pointed, so that no delegate speaks for another's part.
    """
    answer = _answer(raw)
    if claim is None:
        return answer
    tokens = tokens_of(claim)
    for device in answer.devices:
        if device.pointer is not None and not within(tokens_of(device.pointer), tokens):
            raise ProtocolViolation(
                f"device {device.name!r} points at {device.pointer}, outside its claim",
                kind="outside",
            )
    warnings = tuple(
        w
        if w.pointer is None or within(tokens_of(w.pointer), tokens)
        else Warning(message=f"{w.message} [{outside_claim(claim, w.pointer)}]", pointer=claim)
        for w in answer.warnings
    )
    if warnings == answer.warnings:
        return answer
    return replace(answer, warnings=warnings)


def _answer(raw: bytes) -> Answer:
    document = decode(raw)
    _check(document, "configure")
    components = document.get("components", {})
    return Answer(
        replaced="replace" in document,
        replace=document.get("replace"),
        devices=tuple(
            Device(
                name=d["name"],
                kind=d["kind"],
                pointer=d.get("pointer"),
                fields=MappingProxyType(
                    {k: v for k, v in d.items() if k not in ("name", "kind", "pointer")}
                ),
            )
            for d in document.get("devices", ())
        ),
        add=tuple(components.get("add", ())),
        remove=tuple(components.get("remove", ())),
        # Read-only views: an answer is data that flows, never changed on its way.
        toolchain=MappingProxyType(
            {
                chain: MappingProxyType({key: tuple(values) for key, values in args.items()})
                for chain, args in document.get("toolchain", {}).items()
            }
        ),
        warnings=tuple(
            Warning(message=w["message"], pointer=w.get("pointer"))
            for w in document.get("warnings", ())
        ),
    )


def parse_describe(raw: bytes) -> Description:
    """Decode and validate a ``describe`` answer: first that it speaks ``bakeplan/1``
    (an answer of another protocol's version is that, not a malformed one)."""
    document = decode(raw)
    spoken = document.get("protocols") if isinstance(document, dict) else None
    if isinstance(spoken, list) and PROTOCOL not in spoken:
        said = ", ".join(str(p) for p in spoken) or "none"
        raise ProtocolViolation(f"speaks {said}, not {PROTOCOL}", kind="unspoken")
    _check(document, "describe")
    return Description(
        name=document["name"],
        version=document["version"],
        protocols=tuple(document["protocols"]),
        claims=tuple(document.get("claims", ())),
        fragment_schema=document.get("fragment_schema"),
        examples=tuple(document.get("examples", ())),
        pure=bool(document.get("pure", False)),
    )


def parse_error(raw: bytes) -> ErrorObject | None:
    """The error object of a failing delegate's stdout, if it wrote a valid one."""
    try:
        document = decode(raw)
        _check(document, "failure")
    except ProtocolViolation:
        return None
    error = document["error"]
    return ErrorObject(
        message=error["message"], code=error.get("code"), pointer=error.get("pointer")
    )


@dataclass(frozen=True, kw_only=True)
class Failure:
    """Why a delegate's run gave no answer, in fields: each caller words it its own way.

    ``message`` is the one line every caller shows (the error object's message, ``failed:
    exit status 3``, ``malformed answer: ...``); ``status`` how the run ended and
    ``stderr`` the tail of what it wrote there (shown with a failure, see
    RELIABILITY.md); ``error`` the error object it wrote, if a valid one.
    """

    kind: FailureKind
    message: str
    detail: tuple[str, ...] = ()
    status: str = ""
    stderr: str = ""
    error: ErrorObject | None = None

    @property
    def malformed(self) -> bool:
        """The delegate answered, but not in the protocol's words."""
        return self.kind in MALFORMED


def judge(outcome: Outcome, read: Callable[[bytes], Parsed]) -> Parsed | Failure:
    """The answer a run gave, read by ``read`` (``parse_configure``, ``parse_describe``
    or a caller's stricter reader), or the ``Failure`` saying why there is none.

    A run answers only when it exited 0 on its own; a non-zero exit may still carry an
    error object, which is kept.
    """
    if outcome.ok():
        try:
            return read(outcome.stdout)
        except ProtocolViolation as exc:
            return failure_of(exc, status=outcome.status(), stderr=outcome.stderr_lines())
    status = outcome.status()
    error = parse_error(outcome.stdout) if outcome.returncode else None
    return Failure(
        kind="cancelled" if outcome.cancelled else "failed",
        message=error.message if error is not None else f"failed: {status}",
        status=status,
        stderr=outcome.stderr_lines(),
        error=error,
    )


def failure_of(violation: ProtocolViolation, *, status: str = "", stderr: str = "") -> Failure:
    """The ``Failure`` an answer breaking the protocol is."""
    return Failure(
        kind=violation.kind,
        message=f"malformed answer: {violation.message}"
        if violation.kind in MALFORMED
        else violation.message,
        detail=violation.detail,
        status=status,
        stderr=stderr,
    )
