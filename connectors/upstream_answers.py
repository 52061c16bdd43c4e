"""Vendor answers as the upstream layer reads them: the body, error bodies, and the default status table.

Kept apart from the request loop (connectors/http.py) so connectors, the etiquette guard and tests read
answers without the machinery that fetched them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from multidict import CIMultiDictProxy

from errors import (
    AuthFailed,
    CRMError,
    MalformedAnswer,
    NotFound,
    RateLimited,
    UpstreamUnavailable,
    ValidationFailed,
)

# Vendor status -> contract error. Connectors override single entries (Salesforce's 403 is a rate limit).
DEFAULT_STATUS_ERRORS: Mapping[int, type[CRMError]] = {
    400: ValidationFailed,
    401: AuthFailed,
    403: AuthFailed,
    404: NotFound,
    409: ValidationFailed,
    422: ValidationFailed,
    429: RateLimited,
    502: UpstreamUnavailable,
    503: UpstreamUnavailable,
    504: UpstreamUnavailable,
}


# Tags, and the <head>/<script>/<style> blocks whose text is no reason, of an HTML error page.
_HTML_TAG = re.compile(r"<(head|script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class UpstreamResponse:
    """A vendor answer, read in full."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when empty); an unreadable body is a contract `crm_error`."""
        if not self.body.strip():
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise MalformedAnswer("the vendor's answer could not be read as JSON", upstream_status=self.status) from None

    def error_json(self) -> Any:
        """An error answer's body as JSON, or None where it is empty or not JSON (429s may be HTML or text)."""
        try:
            return self.json()
        except MalformedAnswer:
            return None

    def text_reason(self, limit: int = 200) -> str | None:
        """What a text or HTML error body says, as one trimmed line (None for JSON or empty bodies)."""
        if not self.body.strip() or self.error_json() is not None:
            return None
        text = _HTML_TAG.sub(" ", self.body[:4096].decode("utf-8", "replace"))
        text = " ".join(html.unescape(text).split())
        return (text[: limit - 1] + "…" if len(text) > limit else text) or None
