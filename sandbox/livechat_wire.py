"""What every part of the LiveChat emulator shares: LiveChat's error envelope, its timestamps, its field checks."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from sandbox.core import VendorError, json_response

# LiveChat error type -> (HTTP status, default message). The docs give no status per type; these follow the
# SDKs' recorded answers (authentication 401) and HTTP sense for the rest.
ERRORS: dict[str, tuple[int, str]] = {
    "authentication": (401, "Invalid access token"),
    "authorization": (403, "Authorization error"),
    "validation": (400, "Wrong format of request"),
    "unsupported_version": (400, "Cannot call unsupported API versions."),
    "not_found": (404, "Not found"),
    "group_not_found": (404, "Group not found"),
    "too_many_requests": (429, "Too many requests"),
    "group_offline": (400, "Group is offline"),
    "agent_offline": (400, "Agent offline"),
    "group_unavailable": (400, "No agent available for group"),
    "chat_inactive": (400, "Chat is inactive"),
    "misdirected_request": (421, "Wrong region"),
    "internal": (500, "Internal server error"),
    "service_unavailable": (503, "Service unavailable"),
    "request_timeout": (504, "Request timed out"),
}

class LiveChatError(VendorError):
    """An answer in LiveChat's error envelope (core's VendorError, so the shared middleware renders it)."""

    def __init__(self, kind: str, message: str | None = None, data: dict[str, Any] | None = None) -> None:
        """An error of this LiveChat type, with its default message unless one is given."""
        self.kind, self.message, self.data = kind, message or ERRORS[kind][1], data
        error: dict[str, Any] = {"type": kind, "message": self.message, **({"data": data} if data else {})}
        super().__init__(ERRORS[kind][0], {"error": error})


def now() -> str:
    """LiveChat's timestamp format (microseconds, Z)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def required(payload: dict[str, Any], key: str) -> Any:
    """A field the method needs, or LiveChat's validation error naming it."""
    if payload.get(key) in (None, "", [], {}):
        raise LiveChatError("validation", f"`{key}` is required")
    return payload[key]


def session_fields(payload: dict[str, Any]) -> list[dict[str, str]]:
    """`session_fields` as LiveChat takes them: an array of one-key objects with string values."""
    fields = payload.get("session_fields") or []
    if not isinstance(fields, list) or not all(
        isinstance(f, dict) and len(f) == 1 and all(isinstance(v, str) for v in f.values()) for f in fields
    ):
        raise LiveChatError("validation", "`session_fields` must be an array of one-key objects")
    return fields


def accounts_error(status: int, error: str, description: str) -> web.Response:
    """The accounts service's OAuth-style error body."""
    return json_response({"error": error, "error_description": description}, status=status)
