"""Which upstream failures are retried, how long to wait between tries, when to stop, and reading Retry-After.

The retry loop itself stays in `UpstreamConnector._retry` (connectors/http.py); these are its decisions.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from tenacity import RetryCallState, wait_exponential_jitter

from errors import CRMError, CRMUnavailable

if TYPE_CHECKING:
    from connectors.deadline import Deadline
    from settings import Settings

RETRY_AFTER_CAP_SECONDS = 86_400.0  # a longer (or infinite) pause is reported as a day


def parse_retry_after(value: str | None, *, epoch: bool = False) -> float | None:
    """Retry-After in seconds (vendors here send delta-seconds; an HTTP date or NaN is treated as unknown).

    `inf` and `1e999` parse as floats; capped, they cannot overflow the Retry-After header we send on.
    `epoch`: a value past 1e9 is a Unix time (a rate window's reset, e.g. Intercom's), read as the seconds until it.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if math.isnan(seconds):
        return None
    if epoch and 1e9 < seconds < math.inf:  # before the cap, which would otherwise turn it into a day
        seconds = math.ceil(seconds - time.time())  # whole seconds, as the vendor's reset names them
    return min(max(0.0, seconds), RETRY_AFTER_CAP_SECONDS)


def may_retry(error: BaseException, idempotent: bool, settings: Settings) -> bool:
    """Retry only known-retryable errors, only within the Retry-After cap, and a create only when safe."""
    if not isinstance(error, CRMError) or not error.retryable or isinstance(error, CRMUnavailable):
        return False  # the circuit breaker's answer is already the fast one: not retried against itself
    if error.retry_after is not None and error.retry_after > settings.retry_after_max_seconds:
        return False  # a long vendor pause goes back to the caller instead of holding the line
    return idempotent or error.request_not_processed


def wait_seconds(state: RetryCallState, settings: Settings) -> float:
    """Exponential backoff with jitter, or the vendor's Retry-After when it sent one."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, CRMError) and error.retry_after is not None:
        return error.retry_after
    backoff = wait_exponential_jitter(
        multiplier=settings.retry_backoff_initial_seconds,
        max=settings.retry_backoff_max_seconds,
        jitter=settings.retry_backoff_initial_seconds,
    )
    return backoff(state)


def should_stop(state: RetryCallState, settings: Settings, deadline: Deadline) -> bool:
    """Stop at the attempt budget, or when the next wait would not leave time for another attempt."""
    if state.attempt_number >= settings.retry_max_attempts:
        return True
    return deadline.remaining() <= (state.upcoming_sleep or 0) + 0.05
