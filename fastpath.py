"""The known caller's fast path: a fresh caller-cache hit on the lookup routes, answered before FastAPI.

It sits inside the request-id, caller-key and body-limit layers (they still run: auth and limits are security)
and answers only a body whose exact bytes the full route validated before and keyed (`learn`), when that entry
is fresh; the access line, audit line and request metric come from the outer layer as for any request.
Anything else (miss, stale, no-cache, a new or invalid body, a connection_id) goes on to FastAPI unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from audit import ID_FIELDS
from cache import CallerCache, hit_headers
from errors import CRMError
from limits import _replay
from observability import request_fields_var

PATHS = frozenset({"/crm/customer", "/crm/customer/search"})
SCOPE_KEY = "connectors.fast_path"  # the body bytes the route may learn, left in the scope by the middleware
MAX_BODY_BYTES = 4096  # a lookup body is tiny; a bigger one is never learnt, so the map stays small in bytes
MAX_ENTRIES = 4096
# What the route noted for the access and audit lines, replayed on a hit (the caller is noted per request).
NOTED = ("crm_type", "operation", *ID_FIELDS)


@dataclass(frozen=True)
class Learnt:
    """What the route computed for one body: its cache key, its noted fields and its route (for the metric)."""

    key: str
    fields: tuple[tuple[str, Any], ...]
    route: Any


class KnownBodies:
    """(path, content-type, body bytes) -> what the route learnt; bounded, the oldest dropped first."""

    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self.limit = limit
        self.entries: dict[tuple[str, bytes, bytes], Learnt] = {}

    def get(self, token: tuple[str, bytes, bytes]) -> Learnt | None:
        """What the route learnt for these bytes, if it has seen them."""
        return self.entries.get(token)

    def learn(self, request: Request, key: str) -> None:
        """Called by the route once it validated the body and computed its key (never for a connection_id)."""
        token = request.scope.get(SCOPE_KEY)
        fields = request_fields_var.get() or {}
        if token is None or fields.get("connection_id") is not None or token in self.entries:
            return
        if len(self.entries) >= self.limit:
            del self.entries[next(iter(self.entries))]
        noted = tuple((name, fields[name]) for name in NOTED if fields.get(name) is not None)
        self.entries[token] = Learnt(key, noted, request.scope.get("route"))


class FastPathMiddleware:
    """Answer a fresh hit for a known body with the stored bytes and the route's headers; else pass it on."""

    def __init__(self, app: ASGIApp, known: KnownBodies) -> None:
        self.app = app
        self.known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache: CallerCache | None = scope["app"].state.cache if scope["type"] == "http" else None
        if cache is None or scope["method"] != "POST" or scope["path"] not in PATHS:
            await self.app(scope, receive, send)
            return
        content_type, cache_control = b"", b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"cache-control":
                cache_control = value
        if b"no-cache" in cache_control:
            await self.app(scope, receive, send)
            return
        message = await receive()  # the body-limit layer hands on the whole body in one message
        body = message.get("body", b"")
        token = (scope["path"], content_type, body)
        learnt = self.known.get(token)
        got = None
        if learnt is not None:
            try:
                got = await cache.fresh_hit(learnt.key)
            except CRMError:  # the store is down: the route answers with the contract error
                got = None
        if got is None or learnt is None:
            if len(body) <= MAX_BODY_BYTES and b"connection_id" not in body:
                scope[SCOPE_KEY] = token
            await self.app(scope, _replay(message, receive), send)
            return
        fields = request_fields_var.get()
        if fields is not None:
            fields.update(learnt.fields)
            fields["cache"] = got.outcome
        if learnt.route is not None:
            scope["route"] = learnt.route
        response = Response(got.body, media_type="application/json", headers=hit_headers(got))
        await response(scope, receive, send)
