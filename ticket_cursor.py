"""Opaque ticket-search cursors: the vendor's own paging state, signed and bound to the tenant and the query.

A cursor is base64url(JSON) plus an HMAC-SHA256 over it and the tenant fingerprint, so a caller can neither
forge paging state (e.g. a Salesforce locator) nor replay another tenant's cursor, nor reuse one with another query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

import orjson

from errors import InvalidRequest

# Without CURSOR_SIGNING_KEY each process signs with its own random key: cursors then hold per replica only.
_PROCESS_KEY = secrets.token_bytes(32)


def _key(configured: str | None) -> bytes:
    return configured.encode() if configured else _PROCESS_KEY


def _mac(key: bytes, tenant: str, query: str, payload: bytes) -> str:
    digest = hmac.new(key, b"\x1f".join((tenant.encode(), query.encode(), payload)), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def encode(state: dict[str, Any], *, tenant: str, query: str, key: str | None = None) -> str:
    """The cursor for the vendor's next-page state."""
    payload = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_mac(_key(key), tenant, query, payload)}"


def decode(cursor: str, *, tenant: str, query: str, key: str | None = None) -> dict[str, Any]:
    """The paging state a cursor holds, or a 400 when it was not issued for this tenant and query."""
    refused = InvalidRequest("cursor is not one this service issued for this account and search: start without it")
    body, _, mac = cursor.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, TypeError):
        raise refused from None
    if not mac or not hmac.compare_digest(mac, _mac(_key(key), tenant, query, payload)):
        raise refused
    state = orjson.loads(payload)
    if not isinstance(state, dict):
        raise refused
    return state
