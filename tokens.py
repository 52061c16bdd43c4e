"""OAuth tokens shared by every worker and replica: one renewal at a time per grant, and its failure shared.

A token is kept in the state (Redis, or the embedded store) under a hash of the grant, never the secret
itself, and mirrored in a process-local slot so the common path makes no store call. One caller renews
(a local lock, then the state's short lock across processes); callers queued behind it take its token, or,
if the renewal failed, its error (remembered for a second): a token endpoint that is down is asked once, not
once per waiter.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from errors import CRMError
from idempotency import pack_error, unpack_error
from state import Locks, MemoryState, State

TOKEN_TTL_SECONDS = 12 * 3600.0  # a Salesforce token lives until its first 401; this only bounds the store
# A failed renewal answers for the grant this long (its waiters, and callers right behind them), so a token
# endpoint that is down is asked once per second per fleet, not once per caller.
FAILURE_TTL_SECONDS = 1.0
LOCK_TTL_SECONDS = 15.0
LOCAL_SLOTS_MAX = 1000
TOKEN_STATE = "token_store"  # the key in the app-lifetime `ctx.shared`


@dataclass
class TokenSlot:
    """One grant's token in this process, with the lock its renewals queue on and the last round's outcome."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    token: str | None = None
    rounds: int = 0  # renewals finished (done or failed): a waiter that sees it move knows its round is over
    failure: CRMError | None = None
    failed_at: float = 0.0  # time.monotonic() of the last failed renewal


class TokenStore:
    """Tokens per grant fingerprint, over a `State`."""

    def __init__(self, state: State, *, wait_seconds: float) -> None:
        self.state = state
        self.locks = Locks(state)
        self.wait = wait_seconds
        self._slots: OrderedDict[str, TokenSlot] = OrderedDict()

    def slot(self, key: str) -> TokenSlot:
        """This process's slot for a grant (the oldest is dropped past LOCAL_SLOTS_MAX; a holder keeps its own)."""
        if key not in self._slots:
            if len(self._slots) >= LOCAL_SLOTS_MAX:
                self._slots.popitem(last=False)
            self._slots[key] = TokenSlot()
        return self._slots[key]

    async def current(self, key: str) -> str | None:
        """The token for a grant: this process's copy, else the shared one."""
        slot = self.slot(key)
        if slot.token is None:
            raw = await self.state.get(f"token:{key}")
            slot.token = raw.decode() if raw is not None else None
        return slot.token

    async def seed(self, key: str, token: str) -> None:
        """Use a configured token until it is rejected (kept locally only: it is the caller's, not renewed)."""
        slot = self.slot(key)
        slot.token = slot.token or token

    async def renewed(self, key: str, stale: str | None, fetch: Callable[[], Awaitable[str]]) -> str:
        """A token newer than `stale`: fetched once however many ask, its failure raised to all of that round."""
        slot = self.slot(key)
        if slot.failure is not None and time.monotonic() - slot.failed_at < FAILURE_TTL_SECONDS:
            raise slot.failure
        round_seen = slot.rounds
        async with slot.lock:
            if slot.rounds != round_seen:  # a renewal finished while this caller waited: take its outcome
                if slot.failure is not None:
                    raise slot.failure
                if slot.token and slot.token != stale:
                    return slot.token
            try:
                token = await self._renew_shared(key, stale, fetch)
            except CRMError as exc:
                slot.failure, slot.failed_at = exc, time.monotonic()
                raise
            else:
                slot.failure, slot.token = None, token
                return token
            finally:
                slot.rounds += 1

    async def _renew_shared(self, key: str, stale: str | None, fetch: Callable[[], Awaitable[str]]) -> str:
        """Across processes: under the state's lock, reuse a newer token or a fresh failure, else fetch."""
        async with self.locks.hold(f"token:{key}", ttl=LOCK_TTL_SECONDS, wait=self.wait):
            failed = await self.state.get(f"token_failed:{key}")
            if failed is not None:  # another replica's renewal failed a moment ago (the key lives FAILURE_TTL)
                raise unpack_error(failed)
            shared = await self.state.get(f"token:{key}")
            if shared is not None and shared.decode() != stale:
                return shared.decode()
            try:
                token = await fetch()
            except CRMError as exc:
                await self.state.set(f"token_failed:{key}", pack_error(exc), FAILURE_TTL_SECONDS)
                raise
            await self.state.set(f"token:{key}", token.encode(), TOKEN_TTL_SECONDS)
            return token


def token_store(shared: dict[str, object], wait_seconds: float) -> TokenStore:
    """The app's token store from `ctx.shared`, or (unit tests, no lifespan) an embedded one made on first use."""
    store = shared.get(TOKEN_STATE)
    if not isinstance(store, TokenStore):
        store = shared[TOKEN_STATE] = TokenStore(MemoryState(4 * 1024 * 1024), wait_seconds=wait_seconds)
    return store

