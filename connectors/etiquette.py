"""Upstream etiquette: the circuit breaker and the rate governor around each upstream attempt.

`UpstreamConnector._request` sends every attempt through `Etiquette.send`; the app keeps one Etiquette in
`ctx.shared` (Redis-backed when REDIS_URL is set), and unit tests get an embedded one on first use.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from connectors.breaker import Breaker, Policy
from connectors.governor import Governor, RateBudget, read_window, tightest
from errors import CRMError, RateLimited

if TYPE_CHECKING:  # settings derives its vendor fields from the connectors (registry.py)
    from settings import ServiceSettings as Settings
    from connectors.http import UpstreamConnector
    from connectors.upstream_answers import UpstreamResponse

ETIQUETTE = "etiquette"


class Etiquette:
    """The process's governor and breaker (either may be switched off in settings)."""

    def __init__(self, settings: Settings, *, shared: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.breaker = (
            Breaker(
                Policy(
                    failure_threshold=settings.breaker_failure_threshold,
                    failure_ratio=settings.breaker_failure_ratio,
                    min_calls=settings.breaker_min_calls,
                    window_seconds=settings.breaker_window_seconds,
                    open_seconds=settings.breaker_open_seconds,
                    probe_seconds=settings.http_total_timeout_seconds,
                ),
                shared=shared,
                clock=clock,
                on_change=_record_breaker,
            )
            if settings.breaker_enabled
            else None
        )
        self.default_budget = RateBudget(
            settings.governor_default_limit_per_minute, 60.0, "no published limit: GOVERNOR_DEFAULT_LIMIT_PER_MINUTE"
        )
        self.governor = (
            Governor(low_water_ratio=settings.governor_low_water_ratio, shared=shared, clock=clock, on_wait=_record_wait)
            if settings.governor_enabled
            else None
        )

    async def send(self, connector: UpstreamConnector, attempt: Callable[[], Awaitable[UpstreamResponse]]) -> UpstreamResponse:
        """One attempt: refused while the breaker is open, paced by the governor, its outcome counted by both."""
        key = connector.etiquette_key()
        vendor, display = connector.vendor, connector.display_name
        budget = connector.rate_budget or self.default_budget
        if self.breaker is not None:
            await self.breaker.allow(key, vendor=vendor, display=display)
        if self.governor is not None:
            left = connector.ctx.deadline.remaining()
            wait = await self.governor.acquire(key, budget, vendor=vendor, display=display, deadline_left=left)
            if wait > 0:
                await connector.ctx.sleep(wait)
        try:
            response = await attempt()
        except CRMError as exc:
            if self.breaker is not None:
                await self.breaker.record(key, vendor=vendor, error=exc)
            raise
        # A rate-limit answer's wait belongs to the retry layer (Retry-After); its headers would only double it.
        limited = response.status >= 400 and issubclass(connector._error_type(response), RateLimited)
        if self.governor is not None and not limited:
            now = self.governor.clock()
            windows = [w for spec in connector.rate_limit_headers if (w := read_window(spec, response.headers, now))]
            self.governor.observe(key, budget, tightest(windows))
        if self.breaker is not None:
            await self.breaker.record(key, vendor=vendor, status=response.status)
        return response


def etiquette(shared: dict[str, Any], settings: Settings) -> Etiquette:
    """The app's Etiquette from `ctx.shared`, or (unit tests, no lifespan) an embedded one made on first use."""
    found = shared.get(ETIQUETTE)
    if not isinstance(found, Etiquette):
        found = shared[ETIQUETTE] = Etiquette(settings)
    return found


def _record_wait(vendor: str, seconds: float, rejected: bool) -> None:
    """A governor wait (or fail-fast) as metrics, when telemetry is present."""
    instruments = _instruments()
    if instruments is not None:
        attributes = {"connectors.vendor": vendor, "connectors.outcome": "rejected" if rejected else "sent"}
        if rejected or seconds > 0:
            instruments[0].record(seconds, attributes)


def _record_breaker(vendor: str, state: str) -> None:
    """A breaker state change as a metric, when telemetry is present."""
    instruments = _instruments()
    if instruments is not None:
        instruments[1].add(1, {"connectors.vendor": vendor, "connectors.breaker.state": state})


_INSTRUMENTS: list[Any] = []


def _instruments() -> tuple[Any, Any] | None:
    """The governor-wait histogram and the breaker-transition counter, made once on telemetry's meter provider."""
    if not _INSTRUMENTS:
        try:
            import telemetry
        except ImportError:  # a build without the telemetry module records nothing
            return None
        meter = telemetry.get().meter_provider.get_meter("connectors.etiquette", telemetry.VERSION)
        _INSTRUMENTS.extend(
            [
                meter.create_histogram(
                    "connectors.governor.wait",
                    unit="s",
                    description="Waits the rate governor imposed before an upstream call (rejected: past the deadline).",
                    explicit_bucket_boundaries_advisory=telemetry.DURATION_BUCKETS,
                ),
                meter.create_counter(
                    "connectors.breaker.transitions",
                    unit="{transition}",
                    description="Circuit breaker state changes: open, half_open, closed.",
                ),
            ]
        )
    return _INSTRUMENTS[0], _INSTRUMENTS[1]
