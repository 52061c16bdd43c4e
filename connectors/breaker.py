"""The circuit breaker: per vendor host and account, it stops calling a vendor that keeps failing.

It opens after BREAKER_FAILURE_THRESHOLD consecutive outages (connection errors, timeouts, 5xx; never 4xx),
or when at least BREAKER_MIN_CALLS calls in BREAKER_WINDOW_SECONDS fail at BREAKER_FAILURE_RATIO or more, so a
low-traffic tenant trips it as surely as a busy one; counts older than the window are forgotten. While open
every call is answered at once with 503 `crm_unavailable` (nothing is sent, so no create is doubled); after
BREAKER_OPEN_SECONDS one probe goes through (half-open) and its outcome closes or reopens the circuit.
With Redis the counts live in one hash per account, updated by one Lua script, and only when something failed:
a healthy vendor costs no Redis call. See docs/upstream-etiquette.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from errors import CRMUnavailable, StateUnavailable, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from observability import log_event

MAX_ACCOUNTS = 10_000  # circuits kept per process (one is made on a first failure only)
PROBE_BUSY_RETRY_SECONDS = 1.0  # another request is the probe: its answer comes within one attempt


def is_outage(error: BaseException | None = None, status: int | None = None) -> bool:
    """Whether an attempt's outcome says the vendor is down (transport failure, timeout, 5xx) rather than the call wrong."""
    if error is None:
        return status is not None and status >= 500
    if isinstance(error, (UpstreamTimeout, UpstreamUnavailable)):
        return True
    return isinstance(error, UpstreamError) and (error.upstream_status or 0) >= 500


@dataclass(frozen=True)
class Policy:
    """The thresholds, from settings."""

    failure_threshold: int
    failure_ratio: float
    min_calls: int
    window_seconds: float
    open_seconds: float
    probe_seconds: float  # the longest a probe may take before another request may probe instead


@dataclass
class Circuit:
    """One account's counts in the current window, and until when it stays open (0: closed)."""

    window_start: float = 0.0
    calls: int = 0
    failures: int = 0
    consecutive: int = 0
    last_failure: float = 0.0
    open_until: float = 0.0
    probe_until: float = 0.0

    def advance(self, now: float, ok: bool, policy: Policy) -> None:
        """Count one outcome (RECORD_SCRIPT is this same rule for Redis)."""
        if now - self.window_start >= policy.window_seconds:
            self.window_start, self.calls, self.failures = now, 0, 0
        if now - self.last_failure >= policy.window_seconds:
            self.consecutive = 0
        self.calls += 1
        if ok:
            self.consecutive = 0
            if self.open_until:  # the half-open probe came back: close, and start counting afresh
                self.open_until, self.probe_until, self.calls, self.failures = 0.0, 0.0, 0, 0
            return
        self.failures += 1
        self.consecutive += 1
        self.last_failure = now
        ratio_tripped = self.calls >= policy.min_calls and self.failures >= policy.failure_ratio * self.calls
        if self.open_until or self.consecutive >= policy.failure_threshold or ratio_tripped:
            self.open_until, self.probe_until = now + policy.open_seconds, 0.0


FIELDS = ("window_start", "calls", "failures", "consecutive", "last_failure", "open_until")

# Circuit.advance for the hash of one account; returns the fields in FIELDS order (as strings, for exactness).
RECORD_SCRIPT = """
local now, ok = tonumber(ARGV[1]), ARGV[2] == '1'
local threshold, ratio, min_calls = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local window, open_for = tonumber(ARGV[6]), tonumber(ARGV[7])
local h = redis.call('hmget', KEYS[1], 'window_start', 'calls', 'failures', 'consecutive', 'last_failure', 'open_until')
local ws, calls, fails = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
local consec, lastf, open_until = tonumber(h[4]) or 0, tonumber(h[5]) or 0, tonumber(h[6]) or 0
if now - ws >= window then ws, calls, fails = now, 0, 0 end
if now - lastf >= window then consec = 0 end
calls = calls + 1
if ok then
  consec = 0
  if open_until > 0 then open_until, calls, fails = 0, 0, 0; redis.call('del', KEYS[2]) end
else
  fails, consec, lastf = fails + 1, consec + 1, now
  if open_until > 0 or consec >= threshold or (calls >= min_calls and fails >= ratio * calls) then
    open_until = now + open_for
    redis.call('del', KEYS[2])
  end
end
redis.call('hset', KEYS[1], 'window_start', ws, 'calls', calls, 'failures', fails, 'consecutive', consec,
  'last_failure', lastf, 'open_until', open_until)
redis.call('pexpire', KEYS[1], math.ceil((window + open_for) * 1000))
return {tostring(ws), tostring(calls), tostring(fails), tostring(consec), tostring(lastf), tostring(open_until)}
"""


class Breaker:
    """Circuits keyed by vendor account; `shared` (a RedisState) makes one account's circuit common to all replicas."""

    def __init__(
        self,
        policy: Policy,
        *,
        shared: Any = None,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.circuits: dict[str, Circuit] = {}
        self.shared = shared
        self._record = shared._client.register_script(RECORD_SCRIPT) if shared is not None else None
        self.on_change = on_change or (lambda vendor, state: None)

    def state(self, key: str) -> str:
        """closed, open or half_open, as this process last saw it."""
        circuit = self.circuits.get(key)
        if circuit is None or not circuit.open_until:
            return "closed"
        return "open" if self.clock() < circuit.open_until else "half_open"

    async def allow(self, key: str, *, vendor: str, display: str) -> None:
        """Let one attempt through, or raise CRMUnavailable while open (and to all but the probe when half-open)."""
        circuit = self.circuits.get(key)
        if circuit is None or not circuit.open_until:
            return
        now = self.clock()
        if now < circuit.open_until:
            raise self._unavailable(display, vendor, circuit.open_until - now, "is failing")
        if not await self._take_probe(key, circuit, now):
            raise self._unavailable(display, vendor, PROBE_BUSY_RETRY_SECONDS, "is being probed after failing")
        self.on_change(vendor, "half_open")

    async def _take_probe(self, key: str, circuit: Circuit, now: float) -> bool:
        """Whether this attempt is the half-open probe: one per account, across replicas when shared."""
        if self.shared is not None:
            try:
                return await self.shared.claim(f"breaker_probe:{key}", b"1", self.policy.probe_seconds)
            except StateUnavailable:
                pass  # the store is down: decide for this replica alone
        if now < circuit.probe_until:
            return False
        circuit.probe_until = now + self.policy.probe_seconds
        return True

    def _unavailable(self, display: str, vendor: str, retry_after: float, why: str) -> CRMUnavailable:
        return CRMUnavailable(
            f"{display} {why}, so this account's calls are paused (circuit breaker): nothing was sent; "
            f"retry in {retry_after:.0f}s",
            crm_type=vendor,
            retry_after=max(retry_after, 0.001),
            details={"created": False, "breaker": "open" if why == "is failing" else "half_open"},
        )

    async def record(self, key: str, *, vendor: str, error: BaseException | None = None, status: int | None = None) -> None:
        """Count one attempt's outcome; a success on a circuit with no failures costs nothing."""
        if isinstance(error, CRMUnavailable):
            return  # our own answer, not the vendor's
        ok = not is_outage(error, status)
        circuit = self.circuits.get(key)
        if ok and (circuit is None or (not circuit.failures and not circuit.consecutive and not circuit.open_until)):
            return
        if circuit is None:
            circuit = self.circuits[key] = Circuit()
            if len(self.circuits) > MAX_ACCOUNTS:
                del self.circuits[next(iter(self.circuits))]
        before = self.state(key)
        now = self.clock()
        if not await self._record_shared(key, circuit, now, ok):
            circuit.advance(now, ok, self.policy)
        state = "open" if circuit.open_until else "closed"
        if state != before:  # opened, closed, or a half-open probe failed (calls in flight while open change nothing)
            log_event("circuit_breaker", crm_type=vendor, state=state, failures=circuit.failures, calls=circuit.calls)
            self.on_change(vendor, state)

    async def _record_shared(self, key: str, circuit: Circuit, now: float, ok: bool) -> bool:
        """Count the outcome in Redis and copy the shared circuit back; False when not shared (or the store is down)."""
        if self._record is None:
            return False
        p = self.policy
        keys = [f"{self.shared.prefix}breaker:{key}", f"{self.shared.prefix}breaker_probe:{key}"]
        args = [now, 1 if ok else 0, p.failure_threshold, p.failure_ratio, p.min_calls, p.window_seconds, p.open_seconds]
        try:
            values = await self.shared._call(self._record(keys=keys, args=args))
        except StateUnavailable:
            return False
        for name, value in zip(FIELDS, values, strict=True):
            setattr(circuit, name, float(value) if name not in ("calls", "failures", "consecutive") else int(float(value)))
        return True

