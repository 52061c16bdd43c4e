"""The rate governor: one paced token bucket per vendor account, refilled from the vendor's rate-limit headers.

Far from the limit a call costs a counter decrement (no wait, no Redis). Once what remains of the window falls
below GOVERNOR_LOW_WATER_RATIO of it, the calls left are spread over the time left (one slot every
time_left / remaining seconds), so the service slows itself before the vendor answers 429. A call whose slot
is past its deadline fails fast with 429 `rate_limited` and a Retry-After. With Redis the slots are handed out
by one Lua script (one round trip, only while pacing), so every replica shares the same spacing.
Each connector class says which headers its vendor sends (`rate_limit_headers`) and its published limit
(`rate_budget`); the mechanism is this module. See docs/upstream-etiquette.md.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from errors import RateLimited, StateUnavailable
from observability import log_event

DAY_SECONDS = 86_400.0
MAX_ACCOUNTS = 10_000  # buckets kept per process; callers may bring their own credentials, so bound the map
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass(frozen=True)
class RateBudget:
    """A vendor's published limit (`limit` calls per `window_seconds`), counted locally until headers say more."""

    limit: int
    window_seconds: float
    docs: str


@dataclass(frozen=True)
class RateHeaders:
    """Where one rate window sits in a vendor's answer headers (the first header present of each tuple wins).

    `reset` is delta-seconds until the window refills (epoch seconds are recognised); `window` names a header
    holding the window length in milliseconds (HubSpot); `usage` a `api-usage=N/M` header (Salesforce).
    Without a reset the whole window is assumed left, which paces a little slower than needed: the safe side.
    """

    limit: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()
    reset: tuple[str, ...] = ()
    window: str | None = None
    usage: str | None = None
    window_seconds: float = 60.0
    docs: str = ""


@dataclass(frozen=True)
class RateWindow:
    """One window as an answer stated it: its size, what is left and the seconds until it refills."""

    limit: float
    remaining: float
    seconds_left: float
    window_seconds: float


def _number(headers: Mapping[str, str], names: tuple[str, ...]) -> float | None:
    """The first of `names` that holds a finite number."""
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        try:
            number = float(value.split(",")[0].split(";")[0])
        except ValueError:
            continue
        if number == number and abs(number) != float("inf"):
            return number
    return None


def read_window(spec: RateHeaders, headers: Mapping[str, str], now: float) -> RateWindow | None:
    """The window `spec` describes, read from one answer's headers, or None when the vendor did not send it."""
    if spec.usage is not None:
        match = _USAGE.search(headers.get(spec.usage) or "")
        if not match:
            return None
        used, limit = float(match[1]), float(match[2])
        return RateWindow(limit, max(0.0, limit - used), spec.window_seconds, spec.window_seconds)
    limit, remaining = _number(headers, spec.limit), _number(headers, spec.remaining)
    if remaining is None or not limit or limit <= 0:
        return None
    window = spec.window_seconds
    if spec.window is not None and (ms := _number(headers, (spec.window,))):
        window = ms / 1000.0
    left = _number(headers, spec.reset)
    if left is None:
        left = window
    elif left > 1e9:  # an epoch timestamp, not delta-seconds
        left = left - time.time()
    return RateWindow(limit, max(0.0, remaining), min(max(0.0, left), DAY_SECONDS), window)


def tightest(windows: list[RateWindow]) -> RateWindow | None:
    """Of several windows (HubSpot's ten-second and daily ones), the one nearest its limit."""
    return min(windows, key=lambda w: w.remaining / w.limit, default=None)


@dataclass
class Bucket:
    """One account's window: its size, the calls left (as last told, less those sent since) and its refill time."""

    limit: float
    remaining: float
    resets_at: float
    window_seconds: float
    next_slot: float = 0.0


# Hand out the next paced slot to whichever replica asks: wait = slot - now, or a rejection past max_wait.
RESERVE_SCRIPT = """
local now = tonumber(ARGV[1])
local slot = tonumber(redis.call('get', KEYS[1]) or '0')
if slot < now then slot = now end
local wait = slot - now
if wait > tonumber(ARGV[3]) then return -1 - wait end
redis.call('set', KEYS[1], slot + tonumber(ARGV[2]), 'px', ARGV[4])
return wait
"""


class Governor:
    """Paced token buckets keyed by vendor account; `shared` (a RedisState) spreads one account's slots over replicas."""

    def __init__(
        self,
        *,
        low_water_ratio: float,
        shared: Any = None,
        clock: Callable[[], float] = time.time,
        on_wait: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        self.low_water_ratio = low_water_ratio
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}
        self.shared = shared
        self._reserve = shared._client.register_script(RESERVE_SCRIPT) if shared is not None else None
        self.on_wait = on_wait or (lambda vendor, seconds, rejected: None)

    def _bucket(self, key: str, budget: RateBudget, now: float) -> Bucket:
        """The account's bucket, refilled when its window has passed."""
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(budget.limit, budget.limit, now + budget.window_seconds, budget.window_seconds)
            if len(self.buckets) > MAX_ACCOUNTS:
                del self.buckets[next(iter(self.buckets))]  # the oldest account: it starts again from its budget
        elif now >= bucket.resets_at:
            bucket.remaining, bucket.resets_at = bucket.limit, now + bucket.window_seconds
        return bucket

    def observe(self, key: str, budget: RateBudget, window: RateWindow | None) -> None:
        """Refill the bucket from what the vendor just said (the tightest of its windows)."""
        if window is None:
            return
        now = self.clock()
        bucket = self._bucket(key, budget, now)
        bucket.limit, bucket.remaining, bucket.window_seconds = window.limit, window.remaining, window.window_seconds
        bucket.resets_at = now + window.seconds_left

    async def acquire(self, key: str, budget: RateBudget, *, vendor: str, display: str, deadline_left: float) -> float:
        """Take one call from the bucket: the seconds to wait first, or RateLimited if that is past the deadline."""
        now = self.clock()
        bucket = self._bucket(key, budget, now)
        if bucket.remaining > bucket.limit * self.low_water_ratio:
            bucket.remaining -= 1  # the common case: far from the limit, nothing to wait for or share
            return 0.0
        left = max(0.0, bucket.resets_at - now)
        if bucket.remaining < 1:  # nothing left in this window: the first slot is its refill
            wait, interval = left, 0.0
        else:
            interval = left / bucket.remaining
            wait = await self._slot(key, bucket, now, interval, deadline_left)
        if wait > deadline_left:
            self.on_wait(vendor, wait, True)
            raise RateLimited(
                f"{display}'s rate limit is nearly spent for this account ({bucket.remaining:g} of "
                f"{bucket.limit:g} calls left); the next paced slot is in {wait:.1f}s, past this request's deadline",
                crm_type=vendor,
                retry_after=max(wait, 0.001),
            )
        bucket.remaining -= 1
        self.on_wait(vendor, wait, False)
        return wait

    async def _slot(self, key: str, bucket: Bucket, now: float, interval: float, deadline_left: float) -> float:
        """The wait for this call's paced slot: from Redis when shared (one script call), else from the bucket."""
        if self._reserve is not None:
            ms = int(interval * 1000)
            args = [int(now * 1000), ms, int(deadline_left * 1000), max(1, int((bucket.resets_at - now) * 1000) + ms)]
            try:
                answer = int(await self.shared._call(self._reserve(keys=[f"{self.shared.prefix}governor:{key}"], args=args)))
            except StateUnavailable:
                log_event("governor_shared_state_unavailable", detail="pacing this replica's calls on its own")
            else:
                return (-1 - answer if answer < 0 else answer) / 1000.0
        slot = max(now, bucket.next_slot)
        if slot - now <= deadline_left:
            bucket.next_slot = slot + interval
        return slot - now
