"""Each vendor's own webhook verification, as its docs describe it: one table from vendor to verifier.

A verifier runs before anything reads the body as JSON; it returns the request's replay key (the same key twice
is a replay, dropped) or raises WebhookUnverified, a 401: nothing of an unverified request is processed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

import orjson

from errors import Unauthorized


class WebhookUnverified(Unauthorized):
    """A webhook without a valid signature (or secret), or signed too long ago: never processed."""

    code = "webhook_unverified"


@dataclass(frozen=True)
class Inbound:
    """A webhook request as the vendor sent it: what the verifiers sign over."""

    method: str
    url: str  # the full URL it was sent to (HubSpot signs it)
    headers: Mapping[str, str]  # case-insensitive (Starlette's Headers)
    query: Mapping[str, str]
    body: bytes
    received_at: float  # Unix seconds


@dataclass(frozen=True)
class Verified:
    """What a verifier proved: the replay key (None: the scheme has none) and how long to remember it."""

    replay_key: str | None
    replay_ttl: float
    strength: str  # "signature", "secret" or "shared-secret": the strength column of docs/events.md#inbound-vendor-webhooks


Verifier = Callable[[Inbound, str, float], Verified]


def b64_hmac(key: str, message: bytes, digest: str = "sha256") -> str:
    return base64.b64encode(hmac.new(key.encode(), message, digest).digest()).decode()


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison (a missing value is simply unequal)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def fresh(sent_at: float, now: float, tolerance: float, vendor: str) -> None:
    """Refuse a timestamp outside the tolerance either way (old: a replay; future: a forged or skewed clock)."""
    if abs(now - sent_at) > tolerance:
        raise WebhookUnverified(f"{vendor} webhook timestamp is more than {tolerance:g} s from now: refused as a replay")


def zendesk(inbound: Inbound, secret: str, tolerance: float) -> Verified:
    """base64 HMAC-SHA256 of timestamp + body, keyed with the webhook's signing secret.

    https://developer.zendesk.com/documentation/webhooks/verifying/
    """
    signature = inbound.headers.get("x-zendesk-webhook-signature")
    stamp = inbound.headers.get("x-zendesk-webhook-signature-timestamp")
    if not signature or not stamp:
        raise WebhookUnverified("zendesk webhook without X-Zendesk-Webhook-Signature(-Timestamp)")
    if not same(signature, b64_hmac(secret, stamp.encode() + inbound.body)):
        raise WebhookUnverified("zendesk webhook signature does not match")
    try:
        sent_at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise WebhookUnverified("zendesk webhook timestamp is not ISO 8601") from None
    fresh(sent_at, inbound.received_at, tolerance, "zendesk")
    return Verified(f"sig:{signature}", 2 * tolerance, "signature")


# HubSpot decodes these in the URI before signing (its validating-requests page lists them).
HUBSPOT_DECODED = ("%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29", "%2A", "%2C", "%3B")
HUBSPOT_MAX_AGE_SECONDS = 300.0  # "reject the request if the timestamp is older than 5 minutes"


def hubspot_uri(url: str) -> str:
    for encoded in HUBSPOT_DECODED:
        url = url.replace(encoded, unquote(encoded)).replace(encoded.lower(), unquote(encoded))
    return url


def hubspot(inbound: Inbound, secret: str, tolerance: float) -> Verified:
    """v3: base64 HMAC-SHA256 of method + URI + body + timestamp (ms), keyed with the app's client secret.

    https://developers.hubspot.com/docs/guides/apps/authentication/validating-requests
    """
    signature = inbound.headers.get("x-hubspot-signature-v3")
    stamp = inbound.headers.get("x-hubspot-request-timestamp")
    if not signature or not stamp or not stamp.isdigit():
        raise WebhookUnverified("hubspot webhook without X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp")
    source = f"{inbound.method}{hubspot_uri(inbound.url)}".encode() + inbound.body + stamp.encode()
    if not same(signature, b64_hmac(secret, source)):
        raise WebhookUnverified("hubspot webhook signature does not match")
    fresh(int(stamp) / 1000, inbound.received_at, min(tolerance, HUBSPOT_MAX_AGE_SECONDS), "hubspot")
    return Verified(f"sig:{signature}", 2 * tolerance, "signature")


def body_digest(inbound: Inbound) -> str:
    return "body:" + hashlib.sha256(inbound.body).hexdigest()


def livechat(inbound: Inbound, secret: str, tolerance: float) -> Verified:
    """The webhook's `secret_key` (set when it was registered) in the body, compared in constant time.

    https://platform.text.com/docs/management/webhooks (webhook payload: `secret_key`)
    """
    try:
        given = orjson.loads(inbound.body).get("secret_key")
    except (orjson.JSONDecodeError, AttributeError):
        given = None
    if not isinstance(given, str) or not same(given, secret):
        raise WebhookUnverified("livechat webhook secret_key does not match")
    # No timestamp is signed: a byte-identical body again is the replay.
    return Verified(body_digest(inbound), 86_400.0, "secret")


def intercom(inbound: Inbound, secret: str, tolerance: float) -> Verified:
    """`X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>`, keyed with the app's client secret.

    https://developers.intercom.com/docs/references/webhooks/webhook-models (signed notifications)
    """
    given = inbound.headers.get("x-hub-signature", "")
    expected = "sha1=" + hmac.new(secret.encode(), inbound.body, hashlib.sha1).hexdigest()
    if not same(given, expected):
        raise WebhookUnverified("intercom webhook X-Hub-Signature does not match")
    return Verified(body_digest(inbound), 86_400.0, "signature")


SECRET_HEADER = "x-webhook-secret"


def shared_secret(inbound: Inbound, secret: str, tolerance: float) -> Verified:
    """Vendors that do not sign (Freshdesk automation webhooks, ServiceNow Business Rules' REST messages): a per-connection secret
    the operator puts in a custom header (X-Webhook-Secret) or the URL (?secret=). Weaker: anyone who sees one
    request can send more, and there is no replay protection (a replay re-publishes the ticket's current state).

    https://support.freshdesk.com/support/solutions/articles/132589-using-webhooks-in-automation-rules (custom headers)
    """
    return _shared(inbound, secret, ("secret",))


def dynamics(inbound: Inbound, secret: str, tolerance: float) -> Verified:
    """A Dataverse webhook registration's authentication: HttpHeader (X-Webhook-Secret: <secret>), WebhookKey
    (?code=<secret>) or HttpQueryString (?secret=<secret>). No signature: as weak as shared_secret.

    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/register-web-hook (authentication options)
    """
    return _shared(inbound, secret, ("code", "secret"))


def _shared(inbound: Inbound, secret: str, query_keys: tuple[str, ...]) -> Verified:
    given = inbound.headers.get(SECRET_HEADER) or next((inbound.query[k] for k in query_keys if inbound.query.get(k)), None)
    if not same(given, secret):
        where = " or ".join(f"?{k}=" for k in query_keys)
        raise WebhookUnverified(f"webhook without the connection's secret (the {SECRET_HEADER} header or {where})")
    return Verified(None, 0.0, "shared-secret")


# Vendor slug -> how its webhooks are verified. A vendor without a row has no inbound webhooks (404).
VERIFIERS: dict[str, Verifier] = {
    "zendesk": zendesk,
    "hubspot": hubspot,
    "livechat": livechat,
    "freshdesk": shared_secret,
    "intercom": intercom,
    "servicenow": shared_secret,
    "dynamics": dynamics,
}
