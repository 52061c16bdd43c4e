"""The caller cache: read-through, with a TTL, for get_customer and find_customers (caller-ID lookups mid-call).

A fresh entry is served as it was stored (serialized bytes, no model work); a stale one is served at once
while ONE background refresh runs; concurrent misses for a key make one upstream call (single flight, across
replicas through the state's lock); a not-found answer is remembered briefly. Keys are scoped to the vendor
account by `tenant_fingerprint()` (a hash: never the secret) and hashed again, so no email or phone appears
in a key. Ticket creates forget the customer they name (see `customer_keys`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request, Response

from errors import CRMError, NotFound, UpstreamTimeout
from idempotency import pack_error, unpack_error
from observability import log_event, request_fields_var
from phone import parse_phone
from state import Locks, State

MAX_SEARCH_LIMIT = 100  # models.CustomerSearchRequest.limit's bound: a search is cached per limit
LOCK_TTL_SECONDS = 15.0  # longer than any request deadline: a dead filler's lock lapses soon after


@dataclass(frozen=True)
class Cached:
    """An answer and how it was got: `hit`, `miss` or `stale`, and its age in seconds."""

    status: int
    body: bytes
    outcome: str
    age: float


def entry(status: int, body: bytes) -> bytes:
    """What is stored: when (wall clock, so replicas agree on age), the status, then the body bytes."""
    return b"%.3f|%d|" % (time.time(), status) + body


def read_entry(raw: bytes) -> tuple[float, int, bytes]:
    """(stored_at, status, body) of a stored entry."""
    stored_at, status, body = raw.split(b"|", 2)
    return float(stored_at), int(status), body


def cache_key(tenant: str, operation: str, *args: str) -> str:
    """The entry's key: the tenant's fingerprint, the operation and its arguments, hashed."""
    digest = hashlib.blake2b("\x1f".join((tenant, operation, *args)).encode(), digest_size=16).hexdigest()
    return f"cc:{digest}"


def customer_keys(tenant: str, customer_id: str | None, e164: str | None, email: str | None) -> list[str]:
    """Every entry a write naming this customer may have made stale: the id, and searches by its phone/email."""
    keys = [cache_key(tenant, "get_customer", customer_id)] if customer_id else []
    queries = {(e164 or "", ""), ("", email or ""), (e164 or "", email or "")} - {("", "")}
    for phone, mail in queries:
        keys += [cache_key(tenant, "find_customers", phone, mail, str(n)) for n in range(1, MAX_SEARCH_LIMIT + 1)]
    return keys


class CallerCache:
    """Read-through cache over a `state.State`, with stale-while-revalidate and single flight."""

    def __init__(self, state: State, *, fresh: float, stale: float, negative: float, wait: float) -> None:
        self.state = state
        self.fresh, self.stale, self.negative, self.wait = fresh, stale, negative, wait
        self.locks = Locks(state)
        self._filling: dict[str, asyncio.Future[Cached]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    async def read(self, key: str, load: Callable[[], Awaitable[bytes]], *, refresh: bool = False) -> Cached:
        """The answer for a key; `load` gives the serialized answer or raises (NotFound is remembered)."""
        if not refresh:
            raw = await self.state.get(key)
            if raw is not None:
                got = self._served(raw)
                if got.outcome == "stale":
                    self._revalidate(key, load)
                return got
        return await self._fill(key, load, refresh)

    async def fresh_hit(self, key: str) -> Cached | None:
        """A fresh found answer for a key, or None (missing, stale or not-found): the fast path's read."""
        raw = await self.state.get(key)
        got = self._served(raw) if raw is not None else None
        return got if got is not None and got.outcome == "hit" and got.status == 200 else None

    def _served(self, raw: bytes) -> Cached:
        """A stored entry as served: a hit while fresh (the negative TTL for a not-found), else stale."""
        stored_at, status, body = read_entry(raw)
        age = max(0.0, time.time() - stored_at)
        return Cached(status, body, "hit" if age < (self.fresh if status == 200 else self.negative) else "stale", age)

    async def _fill(self, key: str, load: Callable[[], Awaitable[bytes]], refresh: bool) -> Cached:
        """One upstream call per key however many ask at once: here a future, across replicas a lock."""
        if key in self._filling:
            return await asyncio.shield(self._filling[key])
        future: asyncio.Future[Cached] = asyncio.get_running_loop().create_future()
        self._filling[key] = future
        try:
            async with self.locks.hold(f"cache:{key}", ttl=LOCK_TTL_SECONDS, wait=self.wait):
                raw = None if refresh else await self.state.get(key)  # filled by another replica meanwhile?
                if raw is not None:
                    stored_at, status, body = read_entry(raw)
                    result = Cached(status, body, "hit", max(0.0, time.time() - stored_at))
                else:
                    status, body = await self._load_and_store(key, load)
                    result = Cached(status, body, "miss", 0.0)
        except BaseException as exc:
            interrupted = UpstreamTimeout("the same lookup, run for another request, was interrupted; repeat it")
            future.set_exception(exc if isinstance(exc, Exception) else interrupted)
            future.exception()  # retrieved: waiters re-raise it, and no "never retrieved" warning
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._filling[key]

    async def _load_and_store(self, key: str, load: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes]:
        """Call upstream and store the answer (a not-found one for the negative TTL); other errors store nothing."""
        try:
            body = await load()
        except NotFound as exc:
            await self.state.set(key, entry(404, pack_error(exc)), self.negative)
            return 404, pack_error(exc)
        await self.state.set(key, entry(200, body), self.fresh + self.stale)
        return 200, body

    def _revalidate(self, key: str, load: Callable[[], Awaitable[bytes]]) -> None:
        """Start the one background refresh of a stale entry (per process; the state's claim, per fleet)."""
        if key in self._refreshing:
            return

        async def refresh() -> None:
            marker = f"refresh:{key}"
            try:
                if await self.state.claim(marker, b"1", LOCK_TTL_SECONDS):
                    try:
                        await self._load_and_store(key, load)
                    finally:
                        await self.state.delete(marker)
            except CRMError as exc:  # the stale entry stays until it expires; the next reader tries again
                log_event("cache_refresh_failed", logging.WARNING, code=exc.code, detail=exc.message)
            finally:
                self._refreshing.pop(key, None)

        self._refreshing[key] = asyncio.get_running_loop().create_task(refresh())

    async def forget(self, keys: Iterable[str]) -> None:
        """Drop entries a write made stale."""
        await self.state.delete(*keys)

    async def close(self) -> None:
        """Stop background refreshes (at shutdown)."""
        for task in list(self._refreshing.values()):
            task.cancel()
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)


def hit_headers(got: Cached) -> dict[str, str]:
    """The headers of an answer through the cache (the route's and the fast path's alike)."""
    return {"X-Cache": got.outcome, "Age": str(int(got.age))}


async def cached_answer(request: Request, key: str, load: Callable[[], Awaitable[bytes]]) -> Response:
    """A route's answer through the caller cache, with `X-Cache` and `Age`; `Cache-Control: no-cache` reads afresh."""
    cache: CallerCache | None = request.app.state.cache
    if cache is None:
        return Response(await load(), media_type="application/json")
    refresh = "no-cache" in request.headers.get("cache-control", "")
    got = await cache.read(key, load, refresh=refresh)
    known = getattr(request.app.state, "known_bodies", None)
    if known is not None:  # the body is valid and keyed: the fast path may answer its next fresh hit
        known.learn(request, key)
    headers = hit_headers(got)
    fields = request_fields_var.get()
    if fields is not None:
        fields["cache"] = got.outcome
    if got.status != 200:
        error = unpack_error(got.body)
        error.headers = headers  # the error handler adds them to the contract error
        raise error
    return Response(got.body, media_type="application/json", headers=headers)


class Requester(Protocol):
    """The customer fields of a ticket create."""

    customer_id: str | None
    customer_email: str | None
    customer_phone: str | None


async def forget_requester(request: Request, tenant: str, ticket: Requester) -> None:
    """After a ticket create (done or failed: it may have created or linked the requester), forget that customer."""
    cache: CallerCache | None = request.app.state.cache
    if cache is None:
        return
    try:
        region = request.app.state.settings.default_phone_region
        phone = parse_phone(ticket.customer_phone, region) if ticket.customer_phone else None
    except CRMError:
        phone = None  # no number a search could have been cached under
    keys = customer_keys(tenant, ticket.customer_id and ticket.customer_id.strip(), phone and phone.e164, ticket.customer_email)
    try:
        await cache.forget(keys)
    except CRMError as exc:  # the store is down: the entries expire by themselves
        log_event("cache_forget_failed", logging.WARNING, code=exc.code)
