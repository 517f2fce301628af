"""The ``bakeplan/1`` protocol: requests, answers and error objects as frozen data.

A request is encoded once to exact bytes (those bytes are what the delegate reads and
what the plan's ``request_sha256`` digests).  An answer is decoded strictly (one JSON
value, UTF-8, no duplicate keys), validated against ``schemas/response.json`` and only
then turned into an ``Answer``.  Anything else is a ``ProtocolViolation`` that the
scheduler reports as a delegate failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from orchestrator.core import jsontext

# The request side lives in wire, which a delegate imports alone; re-exported here.
from orchestrator.core.wire import PROTOCOL, Context, Request, encode
from orchestrator.schemas import explainer

__all__ = [
    "PROTOCOL",
    "Answer",
    "Context",
    "Description",
    "Device",
    "ErrorObject",
    "ProtocolViolation",
    "Request",
    "Warning",
    "decode",
    "describe_request",
    "encode",
    "environment",
    "parse_configure",
    "parse_describe",
    "parse_error",
]


class ProtocolViolation(Exception):
    """An answer that breaks the protocol: what is wrong, with further detail lines."""

    def __init__(self, message: str, detail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


def environment(delegate: str, pointer: str | None = None) -> dict[str, str]:
    """The ``BAKEPLAN_*`` variables a delegate gets (docs/PROTOCOL.md); no pointer for
    ``describe``, which is about no part of the config."""
    variables = {"BAKEPLAN_PROTOCOL": PROTOCOL, "BAKEPLAN_DELEGATE": delegate}
    if pointer is not None:
        variables["BAKEPLAN_POINTER"] = pointer
    return variables


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
        raise ProtocolViolation("the delegate wrote nothing on stdout; one JSON object expected")
    try:
        return jsontext.parse(raw, source="stdout")
    except jsontext.JsonTextError as exc:
        raise ProtocolViolation(
            f"stdout is not one strict JSON value: {exc.file}:{exc.line}:{exc.col}: {exc.message}"
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


def parse_configure(raw: bytes) -> Answer:
    """Decode and validate a ``configure`` answer."""
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
    """Decode and validate a ``describe`` answer."""
    document = decode(raw)
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
