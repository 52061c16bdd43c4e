"""One delivery attempt to a subscriber, and the SSRF guard its URL passes at registration and before every attempt.

The guard is connectors/hosts.py's: printable ASCII, no credentials, query or odd forms, DNS labels with a named
top-level domain and no IP literal. A subscriber's own domain must be https (no port); http, a port, an IP or a
loopback host only where CONNECTORS_ALLOWED_HOSTS lists it, or loopback in sandbox mode.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import aiohttp

from connectors.hosts import check_vendor_url, host_of
from errors import InvalidConfig

from . import signing

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
ANY_PUBLIC_DOMAIN = ("",)  # every DNS name is some subscriber's own domain; the guard still checks its labels
ERROR_TEXT_MAX = 200


def check_subscriber_url(url: str, *, allowed_hosts: frozenset[str], sandbox: bool) -> str:
    """The canonical URL, or InvalidConfig (400) naming what is wrong."""
    try:
        hostname, netloc = (urlsplit(url).hostname or "").lower(), host_of(url)
    except (ValueError, TypeError):
        raise InvalidConfig("url is not a valid URL") from None
    allowed = allowed_hosts | ({netloc} if sandbox and hostname in LOOPBACK else frozenset())
    try:
        checked = check_vendor_url(url, crm_type="", suffixes=ANY_PUBLIC_DOMAIN, allowed_hosts=allowed, what="url")
    except InvalidConfig as exc:
        raise InvalidConfig(exc.message) from None  # no crm_type: a subscriber is not a vendor
    if netloc not in allowed and hostname not in allowed and (hostname in LOOPBACK or "." not in hostname):
        # One label (localhost, an internal short name) resolves inside the network, never to a subscriber.
        raise InvalidConfig("url host must be a public domain name unless it is in CONNECTORS_ALLOWED_HOSTS")
    return checked


class Outcome(str, Enum):
    """What one attempt came to."""

    delivered = "delivered"  # a 2xx
    gone = "gone"  # 410: the subscriber asks to be disabled
    failed = "failed"  # any other answer, a timeout, a refused connection: retry later


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    detail: str  # e.g. "HTTP 503" or "timeout after 5.0 s", for the dead letter and the log


async def deliver(
    session: aiohttp.ClientSession, url: str, secret: str, event_id: str, body: bytes, timestamp: int, timeout: float
) -> Attempt:
    """POST the signed envelope once; redirects are answers, not followed (a 3xx retries like any other)."""
    headers = signing.headers(secret, event_id, timestamp, body)
    try:
        async with asyncio.timeout(timeout):
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
                await response.read()  # drained, so the connection goes back to the pool
    except TimeoutError:
        return Attempt(Outcome.failed, f"timeout after {timeout} s")
    except aiohttp.ClientError as exc:
        return Attempt(Outcome.failed, f"{type(exc).__name__}")
    if 200 <= status < 300:
        return Attempt(Outcome.delivered, f"HTTP {status}")
    if status == 410:
        return Attempt(Outcome.gone, "HTTP 410 Gone")
    return Attempt(Outcome.failed, f"HTTP {status}")
