"""Caller authentication: with CONNECTORS_API_KEYS set, every route but /health needs one of the keys.

A key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>`. It is compared in constant time
against every configured key (no early exit, so timing says nothing about which or how much matched),
and only its short id ever reaches the access log (`caller`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from errors import CRMError, Unauthorized
from observability import log_event, request_fields_var

OPEN_PATHS = frozenset({"/health"})  # liveness probes carry no key
# Routes with their own authentication: the admin API (admin keys, admin.py), vendors' webhooks (the vendor's
# signature) and OAuth redirects (a signed state). A caller's key opens none of them.
OWN_AUTH_PREFIXES = ("/connections", "/subscriptions", "/webhooks/", "/oauth/")
_KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True)
class APIKey:
    """One caller's key and the short id the logs name it by."""

    id: str
    digest: bytes  # sha256 of the key: equal-length inputs for compare_digest, and no key kept in memory


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_keys(values: Iterable[SecretStr]) -> tuple[APIKey, ...]:
    """`id:key` entries keep their id; a bare key gets `k-` and 8 hex digits of its hash."""
    keys = []
    for value in values:
        text = value.get_secret_value()
        key_id, sep, key = text.partition(":")
        if not sep or not key or not set(key_id) <= _KEY_ID_CHARS or len(key_id) > 32:
            key_id, key = f"k-{hashlib.sha256(text.encode()).hexdigest()[:8]}", text
        keys.append(APIKey(key_id, _digest(key)))
    return tuple(keys)


def key_values(values: Iterable[SecretStr]) -> list[str]:
    """Each configured entry and its key part, for the log scrubber (a key echoed anywhere is redacted)."""
    texts = [value.get_secret_value() for value in values]
    return [*texts, *(text.partition(":")[2] for text in texts)]


def identify(keys: tuple[APIKey, ...], presented: str) -> str | None:
    """The id of the key presented, comparing against every key whatever matches first."""
    digest = _digest(presented)
    found = None
    for key in keys:
        if hmac.compare_digest(key.digest, digest):
            found = key.id
    return found


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key in `Authorization: Bearer` or `X-API-Key`, if any."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


ErrorSender = Callable[[CRMError, Scope, Receive, Send], Awaitable[None]]


class CallerAuthMiddleware:
    """Pure ASGI: refuse a request without a valid key with a contract 401 before anything reads its body."""

    def __init__(self, app: ASGIApp, keys: tuple[APIKey, ...], send_error: ErrorSender) -> None:
        self.app = app
        self.keys = keys
        self.send_error = send_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.keys or path in OPEN_PATHS or path.startswith(OWN_AUTH_PREFIXES):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope["headers"])
        caller = identify(self.keys, key) if key is not None else None
        if caller is None:
            reason = "no API key" if key is None else "an API key that is not configured"
            message = f"{reason}: send Authorization: Bearer <key> or X-API-Key: <key>"
            await self.send_error(Unauthorized(message), scope, receive, send)
            return
        fields = request_fields_var.get()
        if fields is not None:
            fields["caller"] = caller
        await self.app(scope, receive, send)


def warn_if_open(keys: tuple[APIKey, ...], holds_env_credentials: bool) -> None:
    """Say loudly at start-up when anyone who reaches the port may spend the environment's credentials."""
    if not keys and holds_env_credentials:
        log_event(
            "auth_disabled",
            logging.WARNING,
            detail="CONNECTORS_API_KEYS is not set: any caller that reaches this port can use the vendor "
            "credentials in the environment",
        )
