"""The OAuth `state` parameter: signed, expiring, naming the connection and the PKCE verifier's reference.

No server-side session: the state is `payload.mac`, the MAC an HMAC-SHA256 under a key derived from
CONNECTIONS_ENCRYPTION_KEY, so any replica can check it. The PKCE verifier (RFC 7636) is derived from the same
key and the state's nonce, so it never travels to the browser and needs no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

STATE_LABEL = b"connectors-service/oauth/state/v1"
VERIFIER_LABEL = b"connectors-service/oauth/pkce-verifier/v1:"


def b64(raw: bytes) -> str:
    """base64url without padding (the state and PKCE alphabet)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of a verifier (RFC 7636 section 4.2)."""
    return b64(hashlib.sha256(verifier.encode()).digest())


class BadState(ValueError):
    """A state that is forged, altered, expired or unreadable; the message says which, never why in detail."""


@dataclass(frozen=True)
class FlowState:
    """What a verified state names."""

    connection_id: str
    vendor: str
    nonce: str
    expires_at: float


class StateSigner:
    """Signs and checks states, and derives each flow's PKCE verifier."""

    def __init__(self, key: bytes, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.key, self.ttl, self.clock = key, ttl_seconds, clock

    def _mac(self, payload: str) -> str:
        return b64(hmac.new(self.key, STATE_LABEL + payload.encode(), hashlib.sha256).digest())

    def issue(self, connection_id: str, vendor: str) -> tuple[str, FlowState]:
        """A new state for one authorization attempt."""
        flow = FlowState(connection_id, vendor, secrets.token_urlsafe(16), round(self.clock() + self.ttl, 3))
        body = {"c": flow.connection_id, "v": flow.vendor, "n": flow.nonce, "e": flow.expires_at}
        payload = b64(orjson.dumps(body))
        return f"{payload}.{self._mac(payload)}", flow

    def check(self, state: str) -> FlowState:
        """The flow a state names, or BadState."""
        payload, _, mac = state.partition(".")
        if not payload or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            raise BadState("the state parameter is not one this service signed")
        try:
            body = orjson.loads(unb64(payload))
            flow = FlowState(str(body["c"]), str(body["v"]), str(body["n"]), float(body["e"]))
        except (ValueError, KeyError, TypeError):
            raise BadState("the state parameter cannot be read") from None
        if self.clock() > flow.expires_at:
            raise BadState("the authorization took too long (the state expired): start it again")
        return flow

    def verifier(self, flow: FlowState) -> str:
        """The flow's PKCE code verifier: 43 characters of base64url, derived, never stored."""
        return b64(hmac.new(self.key, VERIFIER_LABEL + flow.nonce.encode(), hashlib.sha256).digest())
