"""What every part of the HubSpot emulator shares: its error envelope and 400s, timestamps, the API version.

The envelope follows https://developers.hubspot.com/docs/faq/api-error-responses; from 2026-09 writes also enforce
the portal's validation rules (https://developers.hubspot.com/changelog/crm-api-write-validation-enforcement).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web

from sandbox.core import VendorError

ENFORCING_VERSION = "2026-09"  # the first date version whose writes enforce the portal's validation rules
MSG_AUTH = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
MSG_SCOPES = (
    "This app hasn't been granted all required scopes to make this call. "
    "Read more about required scopes here: https://developers.hubspot.com/scopes."
)


def instant(moment: datetime | None = None) -> str:
    """HubSpot's timestamps: UTC ISO 8601 with milliseconds, e.g. 2025-11-18T10:30:00.000Z."""
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_body(message: str, category: str | None = None, **extra: Any) -> dict[str, Any]:
    """HubSpot's error envelope: status, message, correlationId, then errors/context/links, then category."""
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), **extra}
    if category:
        body["category"] = category
    return body


BadInput = VendorError  # a request HubSpot answers with a 400, in its envelope


def bad_request(message: str, category: str | None = "VALIDATION_ERROR", **extra: Any) -> BadInput:
    """A 400 in HubSpot's envelope."""
    return BadInput(400, error_body(message, category, **extra))


def api_version(request: web.Request) -> str:
    """`v3` on the legacy paths, else the path's date version (2026-03, 2026-09, ...)."""
    return request.match_info.get("version", "v3")


def enforces_rules(version: str) -> bool:
    """Whether writes on this API version apply the portal's admin-configured validation rules."""
    return version != "v3" and version >= ENFORCING_VERSION


def property_errors(issues: list[tuple[str, str, str, str]], version: str) -> BadInput:
    """HubSpot's `Property values were not valid: [...]` 400, one entry per (name, value, code, message).

    v3 embeds the list in `message` only; the date versions add the structured `errors[]` beside it.
    """
    embedded = [
        {"isValid": False, "message": msg, "error": code, "name": name, "localizedErrorMessage": msg,
         "propertyValue": value}
        for name, value, code, msg in issues
    ]  # fmt: skip
    errors = [{"message": msg, "code": code, "context": {"propertyName": [name]}} for name, _, code, msg in issues]
    extra = {"errors": errors} if version != "v3" else {}
    return bad_request("Property values were not valid: " + orjson.dumps(embedded).decode(), **extra)


def query_list(request: web.Request, name: str) -> list[str] | None:
    """A query list as HubSpot reads it: comma-separated, repeated, or both; None when absent."""
    values = request.query.getall(name, [])
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
