"""Auth strategies for the upstream layer: `headers()` for the next call, `refresh(stale)` after an expired-token answer.

Static credentials (Basic, Bearer, an API-key header) never refresh. OAuth tokens live in one shared cache
(tokens.py over state.py, so every worker and replica shares them): per tenant and grant, one renewal at a
time, renewed when the vendor says the token expired and, where the vendor states an expiry, shortly before it.
"""

from __future__ import annotations

import base64
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import orjson

from errors import CRMError
from tokens import TokenStore

# Renew this long before a stated expiry, so a call is not sent with a token that dies on the way.
REFRESH_MARGIN_SECONDS = 60.0


class Auth(ABC):
    """How one connector authenticates its calls."""

    @abstractmethod
    async def headers(self) -> dict[str, str]:
        """Authorization (and related) headers for the next call."""

    async def refresh(self, stale: Mapping[str, str]) -> bool:
        """Renew after the vendor rejected `stale` (the headers sent) as expired; False when it cannot be renewed."""
        return False


@dataclass(frozen=True)
class StaticAuth(Auth):
    """Headers that never change: Basic, a Bearer token the caller gave, or a vendor's API-key header."""

    fixed: Mapping[str, str]

    async def headers(self) -> dict[str, str]:
        """The same headers every time."""
        return dict(self.fixed)


def basic(user: str, password: str) -> StaticAuth:
    """HTTP Basic (RFC 7617)."""
    return StaticAuth({"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()})


def bearer(token: str) -> StaticAuth:
    """An OAuth (or private-app) token the caller gave, sent as Bearer (RFC 6750)."""
    return StaticAuth({"Authorization": f"Bearer {token}"})


def api_key(header: str, value: str) -> StaticAuth:
    """An API key in a vendor-named header."""
    return StaticAuth({header: value})


@dataclass(frozen=True)
class OAuthToken:
    """An access token and, when the vendor states one (`expires_in`), its wall-clock expiry."""

    value: str
    expires_at: float | None = None

    def pack(self) -> str:
        """The form the shared cache keeps (an opaque string to tokens.py)."""
        return orjson.dumps({"t": self.value, "e": self.expires_at}).decode()

    @classmethod
    def unpack(cls, raw: str) -> OAuthToken:
        """From the cache's form; a bare string (a configured token) is a token with no stated expiry."""
        if raw.startswith("{"):
            data = orjson.loads(raw)
            return cls(str(data["t"]), data.get("e"))
        return cls(raw)

    def due(self, now: float) -> bool:
        """Whether it expires within the refresh margin."""
        return self.expires_at is not None and now >= self.expires_at - REFRESH_MARGIN_SECONDS


class OAuthAuth(Auth):
    """A Bearer token from the vendor's token endpoint, cached per grant in the shared token store.

    `key` fingerprints tenant and grant (secrets included, so no tenant gets another's token); `given` is a
    configured access token used until it is rejected; `fetch` asks the token endpoint (None: cannot renew).
    """

    def __init__(
        self,
        store: TokenStore,
        key: str | None,
        fetch: Callable[[], Awaitable[OAuthToken]] | None,
        given: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert given or (key and fetch), "a token, or what it takes to get one"
        self.store, self.key, self.fetch, self.given, self.clock = store, key, fetch, given, clock

    async def _fetch_packed(self) -> str:
        assert self.fetch is not None
        return (await self.fetch()).pack()

    async def _renewed(self, stale: str | None) -> OAuthToken:
        """A token newer than `stale`: one caller (across replicas) fetches it; the others reuse it or its error."""
        assert self.key is not None
        return OAuthToken.unpack(await self.store.renewed(self.key, stale, self._fetch_packed))

    async def _current(self) -> OAuthToken:
        """The cached token (this process's, else the shared one), else the configured one, else a fetched one."""
        if self.key is None or self.fetch is None:
            assert self.given is not None
            return OAuthToken(self.given)
        if self.given:
            await self.store.seed(self.key, self.given)
        raw = await self.store.current(self.key)
        if raw is None:
            return await self._renewed(None)
        token = OAuthToken.unpack(raw)
        if token.due(self.clock()):  # proactively, before the vendor's stated expiry
            try:
                return await self._renewed(raw)
            except CRMError:
                if self.clock() >= (token.expires_at or 0):
                    raise
        return token

    async def headers(self) -> dict[str, str]:
        """Bearer with the current token."""
        return {"Authorization": f"Bearer {(await self._current()).value}"}

    async def refresh(self, stale: Mapping[str, str]) -> bool:
        """Renew once after the vendor answered that the token sent (`stale`) expired."""
        if self.key is None or self.fetch is None:
            return False  # a bare access token cannot be renewed
        sent = stale.get("Authorization", "").removeprefix("Bearer ")
        raw = await self.store.current(self.key)
        stale_raw = raw if raw is not None and OAuthToken.unpack(raw).value == sent else sent
        await self._renewed(stale_raw)
        return True
