"""Contract errors for requests that cannot be served as sent: the wrong method, Content-Type or body.

Each message says what to send instead, since the reader is often a person with curl.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from errors import CRMError, InvalidRequest


class MethodNotAllowed(InvalidRequest):
    """A route asked with a method it does not take (every CRM route is a POST): 405 with `Allow`."""

    status_code = 405


class UnsupportedMediaType(InvalidRequest):
    """A body sent without `Content-Type: application/json`, which could not be read as the JSON object it must be."""

    status_code = 415


JSON_TYPES = ("application/json",)  # and any application/*+json


def is_json_type(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON (parameters such as charset ignored)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def body_error(request: Request, problems: list[dict[str, Any]], crm_type: str | None) -> CRMError:
    """A body that is not a JSON object: blame the Content-Type where it is missing or not JSON, else the JSON."""
    content_type = request.headers.get("content-type")
    if not is_json_type(content_type):
        said = f"is {content_type.split(';', 1)[0].strip()!r}" if content_type else "is missing"
        return UnsupportedMediaType(
            f"the Content-Type header {said}: send `Content-Type: application/json` with a JSON object body "
            "(curl: -H 'Content-Type: application/json' -d '{...}')",
            crm_type=crm_type,
            details=problems,
        )
    return InvalidRequest("the body is not a JSON object", crm_type=crm_type, details=problems)


def sent_crm_type(body: Any) -> str | None:
    """The crm_type (or chat_type) a body named, so a validation error can carry it; None when not a short string."""
    if not isinstance(body, dict):
        return None
    value = body.get("crm_type", body.get("chat_type"))
    return value if isinstance(value, str) and len(value) <= 50 else None
