"""Idempotency keys: the same key never performs an operation twice; the first answer is replayed.

Kept behind the small `IdempotencyStore` interface so a shared store (Redis, Postgres) can replace the
embedded one when the service runs as several replicas.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from errors import IdempotencyConflict, UpstreamTimeout


def fingerprint(payload: Any) -> str:
    """A stable hash of a request body (keys sorted), to tell a replay from a different request."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class StoredAnswer:
    """What a finished operation answered, as JSON-ready data."""

    fingerprint: str
    status: int
    body: Any
    expires_at: float


class IdempotencyStore(Protocol):
    """Runs an operation at most once per (scope, key) and replays its answer."""

    async def run(
        self, scope: str, key: str, fingerprint: str, operation: Callable[[], Awaitable[tuple[int, Any]]]
    ) -> tuple[int, Any, bool]:
        """(status, body, replayed). A failed operation stores nothing, so the key may be used again."""
        ...

    async def lookup(self, scope: str, key: str) -> StoredAnswer | None:
        """A stored answer, if any (used to find a handoff again by call id)."""
        ...


class InMemoryIdempotencyStore:
    """The embedded store: a TTL- and size-bounded dict, with concurrent duplicates waiting on the first."""

    def __init__(self, ttl_seconds: float, max_entries: int) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._answers: OrderedDict[tuple[str, str], StoredAnswer] = OrderedDict()
        self._in_flight: dict[tuple[str, str], tuple[str, asyncio.Future[tuple[int, Any]]]] = {}

    def _get(self, slot: tuple[str, str]) -> StoredAnswer | None:
        """The live stored answer for a slot, dropping it when expired."""
        answer = self._answers.get(slot)
        if answer and answer.expires_at < time.monotonic():
            del self._answers[slot]
            return None
        return answer

    async def lookup(self, scope: str, key: str) -> StoredAnswer | None:
        """A stored answer, if any."""
        return self._get((scope, key))

    async def run(
        self, scope: str, key: str, fingerprint: str, operation: Callable[[], Awaitable[tuple[int, Any]]]
    ) -> tuple[int, Any, bool]:
        """Replay, wait for an in-flight twin, or run the operation and store its answer."""
        slot = (scope, key)
        stored = self._get(slot)
        if stored:
            if stored.fingerprint != fingerprint:
                raise IdempotencyConflict("this Idempotency-Key was already used with a different request body")
            return stored.status, stored.body, True
        if slot in self._in_flight:
            running_fp, future = self._in_flight[slot]
            if running_fp != fingerprint:
                raise IdempotencyConflict("this Idempotency-Key is in use by a request with a different body")
            status, body = await asyncio.shield(future)
            return status, body, True
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._in_flight[slot] = (fingerprint, future)
        try:
            status, body = await operation()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                # The first request was interrupted (its caller went away): twins get an answer, not a cancel.
                exc_for_twins: BaseException = UpstreamTimeout(
                    "the first request with this Idempotency-Key was interrupted; its outcome is unknown, so repeat it",
                    details={"created": "unknown"},
                )
            else:
                exc_for_twins = exc
            future.set_exception(exc_for_twins)
            future.exception()  # mark retrieved: waiters re-raise it, and no "never retrieved" warning
            raise
        else:
            future.set_result((status, body))
            self._answers[slot] = StoredAnswer(fingerprint, status, body, time.monotonic() + self.ttl)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)
            return status, body, False
        finally:
            del self._in_flight[slot]
