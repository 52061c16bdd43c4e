"""HubSpot's error answers and rate limits: property errors keyed by property, and the wait a 429 implies.

Docs: https://developers.hubspot.com/docs/faq/api-error-responses (the error body),
https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details (rate limit policies and headers)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from connectors.retry_policy import parse_retry_after
from connectors.upstream_answers import UpstreamResponse

def _listed_errors(body: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """(property, message, code) from `errors[]`: `{"message","code","context":{"propertyName":[...]}}`."""
    found = []
    for error in body.get("errors") or []:
        names = ((error.get("context") or {}).get("propertyName") or []) if isinstance(error, dict) else []
        found += [(str(name), error.get("message"), error.get("code")) for name in names]
    return found


def _embedded_errors(body: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """(property, message, code) from the JSON list v3 embeds in `message`: `Property values were not valid: [...]`."""
    text = str(body.get("message") or "")
    start = text.find("[")
    try:
        entries = orjson.loads(text[start:]) if start >= 0 else []
    except orjson.JSONDecodeError:
        return []
    if not isinstance(entries, list):
        return []
    return [(str(e["name"]), e.get("message"), e.get("error")) for e in entries if isinstance(e, dict) and e.get("name")]


def property_errors(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A VALIDATION_ERROR's problems keyed by property, from `errors[]` or else from the list inside `message`."""
    fields: dict[str, list[dict[str, Any]]] = {}
    for name, message, code in _listed_errors(body) or _embedded_errors(body):
        fields.setdefault(name, []).append({"message": message, "code": code})
    return fields


def _header_number(response: UpstreamResponse, name: str) -> float | None:
    """A numeric X-HubSpot-RateLimit-* header, or None when absent or unreadable."""
    return parse_retry_after(response.headers.get(name))


def _rolling_wait(response: UpstreamResponse) -> float:
    """TEN_SECONDLY_ROLLING: the window (10 s unless the interval header says otherwise), 1 s if it has room again."""
    remaining = _header_number(response, "X-HubSpot-RateLimit-Remaining")
    if remaining:  # other callers' burst has already rolled out of the window
        return 1.0
    interval_ms = _header_number(response, "X-HubSpot-RateLimit-Interval-Milliseconds")
    return (interval_ms if interval_ms is not None else 10_000) / 1000


def _daily_wait(response: UpstreamResponse) -> float:
    """DAILY: until the daily reset, midnight (UTC here: the portal's time zone is not on the wire)."""
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return round((midnight - now).total_seconds(), 1)


# 429 `policyName` -> the wait it implies. https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details
RATE_POLICY_WAITS: dict[str, Callable[[UpstreamResponse], float]] = {
    "TEN_SECONDLY_ROLLING": _rolling_wait,
    "SECONDLY": lambda response: 1.0,
    "DAILY": _daily_wait,
}


def rate_limit_wait(response: UpstreamResponse) -> float:
    """The wait a 429 without Retry-After implies: its policy, else what its headers show.

    With neither, it is most likely the search API's per-second limit (search answers carry no rate headers): 1 s.
    """
    body = response.error_json()
    policy = str(body.get("policyName") or "").upper() if isinstance(body, dict) else ""
    if policy not in RATE_POLICY_WAITS:
        if _header_number(response, "X-HubSpot-RateLimit-Daily-Remaining") == 0:
            policy = "DAILY"
        elif response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"):
            policy = "TEN_SECONDLY_ROLLING"
        else:
            policy = "SECONDLY"
    return RATE_POLICY_WAITS[policy](response)
