"""The caller as a LiveChat customer: the agent token grant's answer, cached per tenant and caller.

LiveChat v3.6 has no agent-side create_customer. A customer identity comes from the accounts service's
agent token grant (https://platform.text.com/docs/authorization/customer-authorization, "Agent token grant";
maintainers' advice: https://github.com/livechat/lc-sdk-go/issues/177). The cache sits behind one small
class over the app-lifetime `ctx.shared`, so it can move to Redis without touching the connector.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from idempotency import fingerprint

ACCOUNTS_URL = "https://accounts.livechat.com"
ACCOUNTS_HOSTS = (".livechat.com",)  # accounts.livechat.com; the SSRF guard allows only these over https
TOKEN_PATH = "/v2/customer/token"
CACHE_KEY = "livechat_customer_tokens"  # key in `ctx.shared`
CACHE_MAX = 10_000
EXPIRY_MARGIN_SECONDS = 60.0  # renew a little early: a token must not expire between the check and the call


@dataclasses.dataclass(frozen=True)
class CustomerToken:
    """One customer identity: LiveChat's customer id (`entity_id`), its access token, and when it stops working."""

    entity_id: str
    access_token: str = dataclasses.field(repr=False)
    expires_at: float


def grant_body(client_id: str, entity_id: str | None) -> dict[str, str]:
    """The agent token grant: a new customer, or (with entity_id) a fresh token for one LiveChat already has."""
    body = {"grant_type": "agent_token", "client_id": client_id, "response_type": "token"}
    return {**body, "entity_id": entity_id} if entity_id else body


def read_grant(data: Any, now: float) -> CustomerToken | None:
    """The grant's answer as a token (expires_in counted from `now`), or None when a field is missing."""
    if not isinstance(data, dict):
        return None
    entity, token, expires = data.get("entity_id"), data.get("access_token"), data.get("expires_in")
    if not (isinstance(entity, str) and entity and isinstance(token, str) and token):
        return None
    lifetime = float(expires) if isinstance(expires, (int, float)) and not isinstance(expires, bool) else 0.0
    return CustomerToken(entity, token, now + max(0.0, lifetime - EXPIRY_MARGIN_SECONDS))


class CustomerTokens:
    """Customer tokens per (tenant, caller) until they expire; expired entries keep the entity id to re-grant."""

    def __init__(self, shared: MutableMapping[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        """The cache lives in the app-lifetime shared state; `clock` is injectable so tests never sleep."""
        self.entries: dict[str, CustomerToken] = shared.setdefault(CACHE_KEY, {})
        self.clock = clock

    @staticmethod
    def key(tenant: str, caller: str) -> str:
        """A hashed key: no phone number or email sits in memory as a key in clear."""
        return fingerprint({"tenant": tenant, "caller": caller})

    def fresh(self, key: str) -> CustomerToken | None:
        """The cached token while it is still valid."""
        entry = self.entries.get(key)
        return entry if entry and entry.expires_at > self.clock() else None

    def known_entity(self, key: str) -> str | None:
        """The customer id from an earlier grant, valid or not, so the caller stays one customer."""
        entry = self.entries.get(key)
        return entry.entity_id if entry else None

    def put(self, key: str, token: CustomerToken) -> None:
        """Keep a token, evicting the oldest entry when full."""
        self.entries.pop(key, None)
        if len(self.entries) >= CACHE_MAX:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = token

    def expire(self, key: str) -> None:
        """Forget that the token works (LiveChat refused it), keeping the customer id for the next grant."""
        entry = self.entries.get(key)
        if entry:
            self.entries[key] = dataclasses.replace(entry, expires_at=float("-inf"))

    def now(self) -> float:
        """The cache's clock."""
        return self.clock()
