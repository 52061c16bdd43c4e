"""The emulators' outgoing webhooks: sent in order, signed as each vendor signs, to the target the control API set.

`POST /_sandbox/{vendor}/webhooks {"url", "secret"?}` sets the target (no secret: SANDBOX_WEBHOOK_SECRET, the
sandbox-mode service's default too); `{"url": null}` stops them. The signing here is written from the vendors'
docs on the sender's side, independent of the service's verifiers, so the tests prove one against the other.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

SANDBOX_WEBHOOK_SECRET = "sandbox-webhook-secret"
SEND_TIMEOUT_SECONDS = 10.0

Signed = tuple[bytes, dict[str, str]]


def _b64_hmac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def zendesk(url: str, secret: str, body: Any) -> Signed:
    """https://developer.zendesk.com/documentation/webhooks/verifying/"""
    raw = orjson.dumps(body)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return raw, {"X-Zendesk-Webhook-Signature": _b64_hmac(secret, stamp.encode() + raw),
                 "X-Zendesk-Webhook-Signature-Timestamp": stamp, "X-Zendesk-Webhook-Id": "01SANDBOXWEBHOOK"}


def hubspot(url: str, secret: str, body: Any) -> Signed:
    """https://developers.hubspot.com/docs/guides/apps/authentication/validating-requests (v3)"""
    raw = orjson.dumps(body)
    stamp = str(int(time.time() * 1000))
    return raw, {"X-HubSpot-Signature-v3": _b64_hmac(secret, b"POST" + url.encode() + raw + stamp.encode()),
                 "X-HubSpot-Request-Timestamp": stamp, "X-HubSpot-Signature-Version": "v3"}


def livechat(url: str, secret: str, body: Any) -> Signed:
    """https://platform.text.com/docs/management/webhooks: the registration's secret_key rides in the body."""
    return orjson.dumps({"webhook_id": "sandbox-webhook", "secret_key": secret, **body}), {}


def freshdesk(url: str, secret: str, body: Any) -> Signed:
    """Freshdesk does not sign: the automation rule's webhook sends a custom header the operator set."""
    return orjson.dumps(body), {"X-Webhook-Secret": secret}


def intercom(url: str, secret: str, body: Any) -> Signed:
    """https://developers.intercom.com/docs/webhooks/setting-up-webhooks: X-Hub-Signature, sha1 HMAC (client secret)."""
    raw = orjson.dumps(body)
    return raw, {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()}


def dynamics(url: str, secret: str, body: Any) -> Signed:
    """A webhook registered with HttpHeader authentication, plus the headers Dataverse adds
    (https://learn.microsoft.com/en-us/power-apps/developer/data-platform/use-webhooks)."""
    return orjson.dumps(body), {"X-Webhook-Secret": secret, "x-ms-dynamics-entity-name": str(body.get("PrimaryEntityName")),
                                "x-ms-dynamics-request-name": str(body.get("MessageName"))}


SIGNERS: dict[str, Callable[[str, str, Any], Signed]] = {
    "zendesk": zendesk,
    "hubspot": hubspot,
    "livechat": livechat,
    "freshdesk": freshdesk,
    "intercom": intercom,
    "servicenow": freshdesk,  # a Business Rule's REST message: the operator's header, unsigned, as Freshdesk's
    "dynamics": dynamics,
}


@dataclass
class Target:
    url: str
    secret: str


class WebhookSender:
    """One emulator's webhooks: queued as its objects change, posted one at a time, outcomes kept for tests."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.target: Target | None = None
        self.sent: list[dict[str, Any]] = []  # {"url", "status"} or {"url", "error"}
        self._queue: asyncio.Queue[tuple[str, bytes, dict[str, str]]] | None = None
        self._task: asyncio.Task[None] | None = None

    def configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The control API: set (or, with url null, clear) the target."""
        if self.vendor not in SIGNERS:
            raise ValueError(f"{self.vendor} sends no webhooks (the service polls it)")
        url = payload.get("url")
        if url is None:
            self.target = None
            return {"ok": True, "url": None}
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        self.target = Target(url, str(payload.get("secret") or SANDBOX_WEBHOOK_SECRET))
        return {"ok": True, "url": url}

    def reset(self) -> None:
        self.target = None
        self.sent.clear()

    def emit(self, body: Any) -> None:
        """Queue one webhook (signed now, as the vendor signs at sending); nothing when no target is set."""
        if self.target is None:
            return
        raw, headers = SIGNERS[self.vendor](self.target.url, self.target.secret, body)
        if self._queue is None:
            self._queue = asyncio.Queue()
        self._queue.put_nowait((self.target.url, raw, {"Content-Type": "application/json", **headers}))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._send_all(), name=f"sandbox-{self.vendor}-webhooks")

    async def _send_all(self) -> None:
        assert self._queue is not None
        timeout = aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self._queue.empty():
                url, raw, headers = self._queue.get_nowait()
                try:
                    async with session.post(url, data=raw, headers=headers) as answer:
                        self.sent.append({"url": url, "status": answer.status})
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.sent.append({"url": url, "error": type(exc).__name__})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
