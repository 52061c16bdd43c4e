"""Shared state: one small key-value interface (TTL, atomic claim, lock) under the cache, idempotency and tokens.

`MemoryState` serves one process; `RedisState` (REDIS_URL) is shared by every worker and replica, with the
same semantics. Both are chosen once, in the lifespan (`open_state`). A store down mid-request is a
retryable contract error (`StateUnavailable`), never a 500.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from errors import StateUnavailable, UpstreamTimeout

ENTRY_OVERHEAD_BYTES = 120  # dict slot, tuple and key object: what one entry costs beyond its key and value
POLL_FIRST_SECONDS = 0.005
POLL_MAX_SECONDS = 0.05
T = TypeVar("T")


class State(Protocol):
    """Key-value with TTLs, an atomic claim (set if absent) and release of one's own claim."""

    async def get(self, key: str) -> bytes | None:
        """The live value of a key, or None."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store a value for `ttl` seconds."""
        ...

    async def claim(self, key: str, value: bytes, ttl: float) -> bool:
        """Store a value only where the key is absent (SET NX): True if this caller got it."""
        ...

    async def delete(self, *keys: str) -> None:
        """Drop keys (absent ones are ignored)."""
        ...

    async def release(self, key: str, value: bytes) -> None:
        """Drop a key only while it still holds `value`: a lock is released by its owner only."""
        ...

    async def close(self) -> None:
        """Let go of connections."""
        ...


class MemoryState:
    """The embedded store for one process: an LRU bounded in bytes, with per-key expiry."""

    def __init__(self, max_bytes: int, max_entries: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def _size(self, key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD_BYTES

    def _live(self, key: str) -> bytes | None:
        """The value if present and unexpired (an expired one is dropped on the way)."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            self._drop(key)
            return None
        return entry[0]

    def _drop(self, key: str) -> None:
        value, _ = self._data.pop(key)
        self.bytes -= self._size(key, value)

    async def get(self, key: str) -> bytes | None:
        value = self._live(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        # An exact-size copy: orjson's output keeps its whole working buffer (~16 KiB for a 1.5 KB answer),
        # which would make the byte bound a tenth of the truth.
        value = memoryview(value).tobytes()
        if key in self._data:
            self._drop(key)
        size = self._size(key, value)
        if size > self.max_bytes:
            return  # larger than the whole budget: not kept, rather than emptying the store for it
        self._data[key] = (value, time.monotonic() + ttl)
        self.bytes += size
        while self.bytes > self.max_bytes or (self.max_entries and len(self._data) > self.max_entries):
            self._drop(next(iter(self._data)))  # least recently used first

    async def claim(self, key: str, value: bytes, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            if key in self._data:
                self._drop(key)

    async def release(self, key: str, value: bytes) -> None:
        if self._live(key) == value:
            self._drop(key)

    async def close(self) -> None:
        self._data.clear()
        self.bytes = 0


# Compare-and-delete in one step, so a lock that expired and was taken by another is not released by us.
RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def redacted(url: str) -> str:
    """A Redis URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    return urlunsplit(parts._replace(netloc=netloc))


class RedisState:
    """The shared store: the same interface over redis.asyncio, keys under one prefix."""

    def __init__(self, url: str, *, prefix: str = "connectors:", timeout_seconds: float = 0.5) -> None:
        import redis.asyncio as redis

        self.url = url
        self.prefix = prefix
        self._errors = (redis.RedisError, OSError)
        self._client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds, health_check_interval=30
        )
        self._release = self._client.register_script(RELEASE_SCRIPT)

    async def _call(self, command: Any) -> Any:
        """Await a Redis command; an unreachable or failing Redis is a retryable contract error."""
        try:
            return await command
        except self._errors as exc:
            raise StateUnavailable(
                f"the shared state store is unavailable ({type(exc).__name__}); retry shortly"
            ) from None

    async def ping(self) -> None:
        """Start-up check: fail fast, with the URL (password hidden), when Redis does not answer."""
        try:
            await self._client.ping()
        except self._errors as exc:
            raise RuntimeError(f"REDIS_URL {redacted(self.url)} is not reachable: {exc}") from None

    async def get(self, key: str) -> bytes | None:
        return await self._call(self._client.get(self.prefix + key))

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._call(self._client.set(self.prefix + key, value, px=max(1, int(ttl * 1000))))

    async def claim(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(await self._call(self._client.set(self.prefix + key, value, px=max(1, int(ttl * 1000)), nx=True)))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._call(self._client.delete(*(self.prefix + key for key in keys)))

    async def release(self, key: str, value: bytes) -> None:
        await self._call(self._release(keys=[self.prefix + key], args=[value]))

    async def close(self) -> None:
        await self._client.aclose()


async def poll(check: Callable[[], Awaitable[T | None]], seconds: float) -> T | None:
    """The first non-None answer of `check`, asked a little less often each time, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    pause = POLL_FIRST_SECONDS
    while True:
        found = await check()
        left = deadline - time.monotonic()
        if found is not None or left <= 0:
            return found
        await asyncio.sleep(min(pause, left))  # another process holds the answer: nothing to await but time
        pause = min(pause * 2, POLL_MAX_SECONDS)


class Locks:
    """Single flight for a key across processes: a short lock in the state, waited for by polling.

    Within a process an asyncio.Lock queues callers first, so only one of them polls the shared store.
    """

    def __init__(self, state: State) -> None:
        self.state = state
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str, *, ttl: float, wait: float) -> AsyncIterator[None]:
        """Hold `lock:<key>` (it expires after `ttl` should its holder die); UpstreamTimeout after `wait`."""
        local, users = self._local.get(key, (None, 0))
        local = local or asyncio.Lock()
        self._local[key] = (local, users + 1)
        try:
            try:
                async with asyncio.timeout(wait):
                    await local.acquire()
            except TimeoutError:
                raise UpstreamTimeout("another request for the same thing is still running; repeat shortly") from None
            try:
                token = uuid.uuid4().bytes

                async def take() -> bool | None:
                    return True if await self.state.claim(f"lock:{key}", token, ttl) else None

                if not await poll(take, wait):
                    raise UpstreamTimeout("another replica holds the same work and has not finished; repeat shortly")
                try:
                    yield
                finally:
                    await self.state.release(f"lock:{key}", token)
            finally:
                local.release()
        finally:
            lock, users = self._local[key]
            if users <= 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)


async def open_state(redis_url: str | None, memory_max_bytes: int) -> State:
    """The state chosen once at start-up: Redis when REDIS_URL is set (checked now), else the embedded store."""
    if not redis_url:
        return MemoryState(memory_max_bytes)
    state = RedisState(redis_url)
    try:
        await state.ping()
    except BaseException:
        await state.close()
        raise
    return state
