"""What a Python delegate imports: the ``bakeplan/1`` loop around one function.

A delegate module declares a ``Delegate`` and calls ``serve``.  ``serve`` reads the one
request from stdin, checks it against the request schema, answers ``describe`` from the
declaration, validates a ``configure`` fragment against the declared fragment schema
(errors point into the config), calls the function, and writes exactly one JSON answer.
A ``Refusal`` raised by the function becomes an error object with a pointer and exit
status 1.  Example::

    from orchestrator.sdk import Delegate, Refusal, serve

    def configure(request):
        if "secret" in request.fragment:
            raise Refusal("no secrets here", pointer=request.pointer + "/secret")
        return {"replace": request.fragment}

    DELEGATE = Delegate(name="example", version="1", configure=configure, claims=("/x",))

    if __name__ == "__main__":
        raise SystemExit(serve(DELEGATE))

A delegate an installed package declares under the entry-point group
``bakeplan.delegates`` (``NAME = "module:ATTRIBUTE"``) needs no ``__main__``: bakeplan
runs it as ``python -m orchestrator.sdk [--path FOLDER] module:ATTRIBUTE``.

A delegate pays for this module on every run, before it reads its request, so it imports
the wire (``orchestrator.core.wire``) and the compiled checks alone: the strict reader's full
scanner, ``orchestrator.schemas.explainer`` and jsonschema come in only to say what is wrong with a
request or a fragment, and a fragment is checked only when the delegate declares a
schema for it.
"""

from __future__ import annotations

import sys

from orchestrator.core import wire
from orchestrator.core.wire import PROTOCOL, Context, Request
from orchestrator.schemas import checker

# Not typing.TYPE_CHECKING: see orchestrator.core.wire.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, BinaryIO


class Refusal(Exception):
    """The delegate refuses the fragment: ``pointer`` is absolute, into the config."""

    def __init__(
        self, message: str, *, pointer: str | None = None, code: str = "invalid-fragment"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer
        self.code = code


class Delegate(wire.Frozen):
    """A delegate's declaration: its ``describe`` answer and its ``configure`` function.

    Frozen, as a frozen dataclass would be, without importing ``dataclasses``.
    """

    _fields = (
        "name",
        "version",
        "configure",
        "claims",
        "fragment_schema",
        "examples",
        "pure",
    )
    name: str
    version: str
    configure: Callable[[Request], Mapping[str, Any]]
    claims: tuple[str, ...]
    fragment_schema: Mapping[str, Any] | bool | None
    examples: tuple[Any, ...]
    # Only a delegate that says so is cached: an answer that reads a file, a clock or the
    # network would otherwise be served stale.
    pure: bool

    def __init__(
        self,
        *,
        name: str,
        version: str,
        configure: Callable[[Request], Mapping[str, Any]],
        claims: tuple[str, ...] = (),
        fragment_schema: Mapping[str, Any] | bool | None = None,
        examples: tuple[Any, ...] = (),
        pure: bool = False,
    ) -> None:
        wire.assign(
            self,
            name=name,
            version=version,
            configure=configure,
            claims=claims,
            fragment_schema=fragment_schema,
            examples=examples,
            pure=pure,
        )

    def describe(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "protocol": PROTOCOL,
            "name": self.name,
            "version": self.version,
            "protocols": [PROTOCOL],
            "pure": self.pure,
        }
        if self.claims:
            answer["claims"] = list(self.claims)
        if self.fragment_schema is not None:
            answer["fragment_schema"] = self.fragment_schema
        if self.examples:
            answer["examples"] = list(self.examples)
        return answer


def _error(message: str, *, pointer: str | None = None, code: str) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if pointer is not None:
        error["pointer"] = pointer
    return {"protocol": PROTOCOL, "error": error}


def _parse(raw: bytes) -> Any:
    """The request document: plain strict JSON read quickly, anything else by the strict
    reader, which says what is wrong and where."""
    try:
        return wire.loads(raw)
    except wire.NotPlain:
        pass
    from orchestrator.core import jsontext  # noqa: PLC0415  (lazy: a delegate's start time)

    try:
        return jsontext.parse(raw, source="stdin")
    except jsontext.JsonTextError as exc:
        raise Refusal(
            f"the request is not strict JSON: {exc.summary()}",
            code="bad-request",
        ) from None


def _request(raw: bytes) -> dict[str, Any]:
    document = _parse(raw)
    if isinstance(document, dict) and document.get("protocol") != PROTOCOL:
        raise Refusal(
            f"unsupported protocol {document.get('protocol')!r}; this delegate speaks {PROTOCOL}",
            code="unsupported-protocol",
        )
    problems: tuple[str, ...] = ()
    if not checker.passes("request", document):
        from orchestrator.schemas import explainer  # noqa: PLC0415  (lazy: only to say what is wrong)

        problems = explainer.explain("request", document)
    if problems:
        raise Refusal(
            "the request breaks the bakeplan/1 request schema: " + "; ".join(problems),
            code="bad-request",
        )
    assert isinstance(document, dict)
    return document


def _check_fragment(delegate: Delegate, request: Request) -> None:
    """Refuse a fragment outside the declared schema, pointing into the config."""
    if delegate.fragment_schema is None or checker.passes_schema(
        delegate.fragment_schema, request.fragment
    ):
        return
    from orchestrator.pointers import pointer_text  # noqa: PLC0415
    from orchestrator.schemas import explainer  # noqa: PLC0415  (lazy: only to say what is wrong)

    violations = explainer.violations_of(
        delegate.fragment_schema, request.fragment, base_pointer=request.pointer
    )
    if violations:
        raise Refusal(
            "; ".join(f"{pointer_text(v.pointer)}: {v.message}" for v in violations),
            pointer=violations[0].pointer,
        )


def handle(delegate: Delegate, raw: bytes) -> tuple[int, dict[str, Any]]:
    """The exit status and answer for one raw request (``serve`` without the streams)."""
    try:
        document = _request(raw)
        if document["op"] == "describe":
            return 0, delegate.describe()
        request = Request(
            delegate=document["delegate"],
            pointer=document["pointer"],
            fragment=document["fragment"],
            context=Context(
                bake_config=document["context"]["bake_config"],
                platform=document["context"]["platform"],
                components=tuple(document["context"]["components"]),
            ),
        )
        _check_fragment(delegate, request)
        answer = {"protocol": PROTOCOL, **delegate.configure(request)}
    except Refusal as refusal:
        return 1, _error(refusal.message, pointer=refusal.pointer, code=refusal.code)
    return 0, answer


def serve(delegate: Delegate, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Answer the one request on stdin; return the exit status."""
    raw = (stdin or sys.stdin.buffer).read()
    try:
        status, answer = handle(delegate, raw)
    except Exception as exc:  # a bug in the delegate: say so in the protocol, trace on stderr
        import traceback  # noqa: PLC0415  (only for a bug)

        traceback.print_exc()
        status, answer = 1, _error(f"internal error: {exc}", code="internal")
    out = stdout or sys.stdout.buffer
    out.write(wire.encode(answer))
    out.flush()
    return status


def load(target: str) -> Delegate:
    """The ``Delegate`` that ``module:ATTRIBUTE`` names, or ``LookupError`` saying why not."""
    import importlib  # noqa: PLC0415  (only for a delegate named by module:ATTRIBUTE)

    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise LookupError(f"{target!r} is not module:ATTRIBUTE")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import {module_name!r}: {exc}") from None
    found: Any = module
    for part in attribute.split("."):
        found = getattr(found, part, None)
    if callable(found) and not isinstance(found, Delegate):
        found = found()
    if not isinstance(found, Delegate):
        raise LookupError(f"{target} is not an orchestrator.sdk.Delegate")  # noqa: TRY004
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestrator.sdk [--path FOLDER]... module:ATTRIBUTE``: serve it."""
    args = list(sys.argv[1:] if argv is None else argv)
    while len(args) >= 2 and args[0] == "--path":
        sys.path.insert(0, args[1])
        del args[:2]
    if len(args) != 1:
        sys.stderr.write("usage: python -m orchestrator.sdk [--path FOLDER] module:ATTRIBUTE\n")
        return 2
    try:
        delegate = load(args[0])
    except LookupError as exc:
        sys.stderr.write(f"orchestrator.sdk: {exc}\n")
        sys.stdout.buffer.write(wire.encode(_error(str(exc), code="not-a-delegate")))
        return 1
    return serve(delegate)


if __name__ == "__main__":
    # Run as a module, this file is __main__, not orchestrator.sdk: hand over to the real
    # module so that isinstance(..., Delegate) compares the one class a delegate imports.
    from orchestrator import sdk as _sdk  # noqa: PLW0406  (see the comment above)

    raise SystemExit(_sdk.main())
