"""Input limits enforced before a route runs: how long a client may take, and what shape its JSON may have.

uvicorn bounds only the idle time between requests (timeout_keep_alive). A client that sends its headers
or body a byte at a time would hold a connection, and a graceful shutdown, for ever; and a body the size
cap lets through can still nest or count beyond what pydantic, orjson and the vendors handle (a 500).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from errors import RequestTimeout, ValidationFailed

MAX_JSON_DEPTH = 32  # objects and arrays, the body itself included
MAX_JSON_INT = 2**63 - 1  # signed 64-bit: what vendors store and orjson can write back
MAX_JSON_STRING = 65_536  # characters in any one string (the longest field, a description, takes 65,000)
TOO_LONG = f"a string is longer than {MAX_JSON_STRING} characters"
TOO_BIG = f"a number is outside the signed 64-bit range (±{MAX_JSON_INT})"


class _JSONLimit(ValueError):
    """Raised by the parser hooks: the JSON is well-formed but outside the limits."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > MAX_JSON_INT:
        raise _JSONLimit(f"an integer is outside the signed 64-bit range (±{MAX_JSON_INT})")
    return value


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _JSONLimit("a number is too large")
    return value


def _constant(name: str) -> float:
    raise _JSONLimit(f"{name} is not JSON")


def _check_shape(document: Any) -> None:
    """Depth, string length and number range, walked without recursion.

    Parsers give exact builtin types (orjson and json alike), so `type(...) is` tells them apart, and keys are
    strings checked in place; only containers go on the stack.
    """
    if type(document) is not dict and type(document) is not list:
        _check_scalar(document)
        return
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _JSONLimit(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
        if type(container) is dict:
            for key in container:
                if len(key) > MAX_JSON_STRING:
                    raise _JSONLimit(TOO_LONG)
            values: Any = container.values()
        else:
            values = container
        for value in values:
            kind = type(value)
            if kind is dict or kind is list:
                stack.append((value, depth + 1))
            elif kind is str:
                if len(value) > MAX_JSON_STRING:
                    raise _JSONLimit(TOO_LONG)
            elif kind is int or kind is float:
                if abs(value) > MAX_JSON_INT:  # orjson reads an integer past 64 bits as a float
                    raise _JSONLimit(TOO_BIG)
            elif kind is not bool and value is not None:
                _check_scalar(value)


def _check_scalar(value: Any) -> None:
    """One value outside a container (or of a type no parser gives): the same limits, by isinstance."""
    if isinstance(value, str):
        if len(value) > MAX_JSON_STRING:
            raise _JSONLimit(TOO_LONG)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if abs(value) > MAX_JSON_INT:
            raise _JSONLimit(TOO_BIG)


def check_json(body: bytes) -> None:
    """Raise a 422 for JSON outside the limits; malformed JSON is left for FastAPI's own 400.

    orjson reads the ordinary body (a C call); only a body it refuses is read again by the stdlib parser, whose
    hooks tell a limit (infinity, NaN, depth) from malformed JSON.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _classify(body)
        if document is None:
            return
    try:
        _check_shape(document)
    except _JSONLimit as exc:
        raise ValidationFailed(f"invalid request: {exc}") from None


def _classify(body: bytes) -> Any:
    """The stdlib's reading of a body orjson refused: a 422 for a limit, None for malformed JSON."""
    try:
        return json.loads(body, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _JSONLimit as exc:
        raise ValidationFailed(f"invalid request: {exc}") from None
    except RecursionError:
        raise ValidationFailed(f"invalid request: the JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        return None


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would parse this body as JSON (no Content-Type, or a json one)."""
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"").decode("latin-1").lower()
    media = content_type.split(";", 1)[0].strip()
    return not media or media == "application/json" or media.endswith("+json")


class BodyLimitMiddleware:
    """Read the whole body within `read_timeout` seconds (else 408), check its JSON, then hand it on."""

    def __init__(self, app: ASGIApp, read_timeout: float) -> None:
        self.app = app
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(self.read_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":  # the client went away: nobody to answer
                        return
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise RequestTimeout(f"the request body was not received within {self.read_timeout:g}s") from None
        body = b"".join(chunks)
        if body and _is_json(scope):
            check_json(body)
        await self.app(scope, _replay({"type": "http.request", "body": body, "more_body": False}, receive), send)


def _replay(first: Message, receive: Receive) -> Receive:
    """A receive that gives `first` once, then whatever the client sends next (its disconnect)."""
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request line and headers take too long.

    The timer starts when the connection opens (or a keep-alive request begins) and stops when the
    headers are complete; uvicorn's own keep-alive timeout covers the idle time between requests.
    """

    # Set by header_timeout_protocol(); None (a worker process importing the class by name) reads the setting.
    header_timeout: float | None = None
    _header_timer: asyncio.TimerHandle | None = None

    @property
    def header_bound(self) -> float:
        """The header read timeout in seconds."""
        if self.header_timeout is not None:
            return self.header_timeout
        from settings import get_settings  # a worker's settings come from the same environment as its parent's

        return get_settings().header_read_timeout_seconds

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_bound, self._headers_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            error = RequestTimeout(f"the request headers were not received within {self.header_bound:g}s")
            body = orjson.dumps(error.to_body(uuid.uuid4().hex))
            head = b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
            self.transport.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class for uvicorn's `http=` option, with this header read timeout."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})


def uvicorn_options(settings: Any) -> dict[str, Any]:
    """The uvicorn settings that bound slow clients and shutdown; main() and the tests both use them."""
    # Worker processes get the class by name: one made here could not be pickled into them.
    several = getattr(settings, "workers", 1) > 1
    return {
        "http": "limits:HeaderTimeoutProtocol" if several else header_timeout_protocol(settings.header_read_timeout_seconds),
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "timeout_graceful_shutdown": settings.graceful_shutdown_seconds,
    }
