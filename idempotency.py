"""Idempotency keys: the same key never performs an operation twice; the first answer is replayed.

Kept behind the small `IdempotencyStore` interface; `StateIdempotencyStore` keeps answers in a `state.State`
(the embedded byte-bounded store, or Redis shared by every replica), claiming each key atomically.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

import errors
from errors import CRMError, IdempotencyConflict, UpstreamTimeout
from state import MemoryState, State, poll

LONG_TEXT_CHARS = 1024  # a replay keeps this much of a long text (the caller sent the whole of it)
FAILURE_TTL_SECONDS = 30.0  # how long a failed first attempt stays readable for its twins on other replicas


def fingerprint(payload: Any) -> str:
    """A stable hash of a request body (keys sorted), to tell a replay from a different request."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class StoredAnswer:
    """What a finished operation answered, as JSON-ready data."""

    fingerprint: str
    status: int
    body: Any
    expires_at: float = 0.0  # kept for callers of the old interface; the state owns expiry now


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

    async def remember_unknown(self, scope: str, key: str, record: dict[str, Any]) -> None:
        """Note a create whose outcome is unknown (fingerprint, marker, when), so a repeat looks before creating."""
        ...

    async def unknown_outcome(self, scope: str, key: str) -> dict[str, Any] | None:
        """The record `remember_unknown` kept for this key, if any."""
        ...

    async def forget_unknown(self, scope: str, key: str) -> None:
        """The outcome is known now (found, or created again)."""
        ...


def compact(body: Any, max_bytes: int) -> Any:
    """The answer as kept for replays: whole when small, else long texts cut, else its top-level scalars (id...)."""
    if len(orjson.dumps(body)) <= max_bytes:
        return body

    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > LONG_TEXT_CHARS:
            return value[:LONG_TEXT_CHARS] + "…"
        if isinstance(value, dict):
            return {k: cut(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cut(v) for v in value]
        return value

    shorter = cut(body)
    if len(orjson.dumps(shorter)) <= max_bytes or not isinstance(shorter, dict):
        return shorter
    return {k: v for k, v in shorter.items() if isinstance(v, (str, int, float, bool)) or v is None}


def pack_error(exc: BaseException) -> bytes:
    """A failure as bytes, so a waiter in another process can raise the same contract error."""
    if not isinstance(exc, CRMError):
        # Interrupted (cancelled) or a bug: the outcome is unknown, which is what the twins are told.
        exc = UpstreamTimeout(
            "the first request with this Idempotency-Key was interrupted; its outcome is unknown, so repeat it",
            details={"created": "unknown"},
        )
    fields = {"message": exc.message, "crm_type": exc.crm_type, "upstream_status": exc.upstream_status}
    return orjson.dumps({"type": type(exc).__name__, **fields, "retry_after": exc.retry_after, "details": exc.details})


def unpack_error(raw: bytes) -> CRMError:
    """The contract error `pack_error` wrote (its class looked up by name in errors.py)."""
    data = orjson.loads(raw)
    kind = getattr(errors, data.pop("type"), CRMError)
    return (kind if isinstance(kind, type) and issubclass(kind, CRMError) else CRMError)(data.pop("message"), **data)


class StateIdempotencyStore:
    """Keys claimed atomically (SET NX of an in-progress marker with a TTL); twins wait for the answer.

    Twins in this process await the first one's future; twins on other replicas poll the key until the
    answer (or the failure) appears, bounded by `wait_seconds`. A claimant that dies leaves a marker that
    expires after `claim_ttl`, after which the key may be used again.
    """

    def __init__(
        self, state: State, ttl_seconds: float, *, wait_seconds: float, claim_ttl: float, max_answer_bytes: int
    ) -> None:
        self.state = state
        self.ttl = ttl_seconds
        self.wait_seconds = wait_seconds
        self.claim_ttl = claim_ttl
        self.max_answer_bytes = max_answer_bytes
        self._in_flight: dict[str, tuple[str, asyncio.Future[tuple[int, Any]]]] = {}

    @staticmethod
    def _slot(scope: str, key: str) -> str:
        return f"idem:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"  # a fixed-size key, whatever was sent

    async def _record(self, slot: str) -> dict[str, Any] | None:
        raw = await self.state.get(slot)
        return orjson.loads(raw) if raw is not None else None

    async def lookup(self, scope: str, key: str) -> StoredAnswer | None:
        """A stored (finished) answer, if any."""
        record = await self._record(self._slot(scope, key))
        if record is None or "status" not in record:
            return None
        return StoredAnswer(record["fp"], record["status"], record["body"])

    async def remember_unknown(self, scope: str, key: str, record: dict[str, Any]) -> None:
        """Kept as long as answers are: beside the key's slot, which a failure frees for the repeat."""
        await self.state.set(f"{self._slot(scope, key)}:unknown", orjson.dumps(record), self.ttl)

    async def unknown_outcome(self, scope: str, key: str) -> dict[str, Any] | None:
        """The unknown-outcome record of this key, if any."""
        raw = await self.state.get(f"{self._slot(scope, key)}:unknown")
        return orjson.loads(raw) if raw is not None else None

    async def forget_unknown(self, scope: str, key: str) -> None:
        """Drop the unknown-outcome record."""
        await self.state.delete(f"{self._slot(scope, key)}:unknown")

    async def run(
        self, scope: str, key: str, fingerprint: str, operation: Callable[[], Awaitable[tuple[int, Any]]]
    ) -> tuple[int, Any, bool]:
        """Replay, wait for a twin (here or on another replica), or claim the key and run the operation."""
        slot = self._slot(scope, key)
        if slot in self._in_flight:  # a twin in this process: wait for its outcome, without asking the store
            running_fp, future = self._in_flight[slot]
            if running_fp != fingerprint:
                raise IdempotencyConflict("this Idempotency-Key is in use by a request with a different body")
            status, body = await asyncio.shield(future)
            return status, body, True
        future = asyncio.get_running_loop().create_future()
        self._in_flight[slot] = (fingerprint, future)
        try:
            status, body, replayed = await self._run_shared(slot, fingerprint, operation)
        except BaseException as exc:
            # An interrupted first request (its caller went away) gives its twins an answer, not a cancel.
            future.set_exception(exc if isinstance(exc, CRMError) else unpack_error(pack_error(exc)))
            future.exception()  # mark retrieved: waiters re-raise it, and no "never retrieved" warning
            raise
        else:
            future.set_result((status, body))
            return status, body, replayed
        finally:
            del self._in_flight[slot]

    async def _run_shared(
        self, slot: str, fingerprint: str, operation: Callable[[], Awaitable[tuple[int, Any]]]
    ) -> tuple[int, Any, bool]:
        """Across processes: replay a stored answer, wait for another replica's claim, or claim and run."""
        while True:
            record = await self._record(slot)
            if record is not None:
                if record["fp"] != fingerprint:
                    raise IdempotencyConflict("this Idempotency-Key was already used with a different request body")
                if "status" in record:
                    return record["status"], record["body"], True
                record = await self._await_twin(slot, record["token"])
                if record is not None:
                    return record["status"], record["body"], True
                continue  # its claim expired without an answer: the key is free again
            token = uuid.uuid4().hex
            if await self.state.claim(slot, orjson.dumps({"fp": fingerprint, "token": token}), self.claim_ttl):
                return *(await self._run_claimed(slot, token, fingerprint, operation)), False

    async def _await_twin(self, slot: str, token: str) -> dict[str, Any] | None:
        """Poll until the twin's answer is stored (returned), its failure is (raised), or its claim is gone."""

        async def settled() -> dict[str, Any] | bool | None:
            record = await self._record(slot)
            if record is not None and record.get("token") == token and "status" not in record:
                return None  # still running
            failure = await self.state.get(f"{slot}:failed:{token}")
            if failure is not None:
                raise unpack_error(failure)
            return record if record is not None and "status" in record else False

        outcome = await poll(settled, self.wait_seconds)
        if outcome is None:
            raise UpstreamTimeout(
                "a request with this Idempotency-Key is still running on another replica; repeat it shortly",
                details={"created": "unknown"},
            )
        return outcome or None

    async def _run_claimed(
        self, slot: str, token: str, fingerprint: str, operation: Callable[[], Awaitable[tuple[int, Any]]]
    ) -> tuple[int, Any]:
        """Run the operation under our claim; store its compact answer, or publish its failure and free the key."""
        try:
            status, body = await operation()
        except BaseException as exc:
            await asyncio.shield(self._publish_failure(slot, token, pack_error(exc)))
            raise
        answer = {"fp": fingerprint, "token": token, "status": status, "body": compact(body, self.max_answer_bytes)}
        await self.state.set(slot, orjson.dumps(answer), self.ttl)
        return status, body

    async def _publish_failure(self, slot: str, token: str, packed: bytes) -> None:
        """Twins elsewhere read the failure; the key itself is freed, so a later repeat runs again."""
        try:
            await self.state.set(f"{slot}:failed:{token}", packed, FAILURE_TTL_SECONDS)
            await self.state.delete(slot)
        except CRMError:
            pass  # the store is down: the claim expires by itself after claim_ttl


class InMemoryIdempotencyStore(StateIdempotencyStore):
    """The embedded store for one process, bounded in bytes (and entries)."""

    def __init__(
        self, ttl_seconds: float, max_entries: int, *, max_bytes: int = 64 * 1024 * 1024, max_answer_bytes: int = 8192
    ) -> None:
        super().__init__(
            MemoryState(max_bytes, max_entries),
            ttl_seconds,
            wait_seconds=60.0,
            claim_ttl=300.0,
            max_answer_bytes=max_answer_bytes,
        )
