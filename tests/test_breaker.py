"""The circuit breaker: opening for a low-traffic tenant, the failure ratio, half-open probes, no create while open.

Unit tests: the clock is injected and vendor answers are faked (aioresponses); nothing sleeps.
"""

from __future__ import annotations

import re

import pytest

from connectors.breaker import Breaker, Policy, is_outage
from connectors.etiquette import ETIQUETTE, Etiquette
from connectors.zendesk import ZendeskConnector
from deps import with_create_outcome
from errors import CRMUnavailable, NotFound, UpstreamError, UpstreamTimeout, UpstreamUnavailable, UpstreamUnreachable
from models import TicketCreateRequest
from tests.conftest import sent
from tests.test_governor import Clock

POLICY = Policy(failure_threshold=5, failure_ratio=0.5, min_calls=10, window_seconds=60, open_seconds=30, probe_seconds=8)
ZENDESK = "https://acme.zendesk.com/api/v2"
ZENDESK_CONFIG = {"subdomain": "acme", "email": "agent@acme.com", "api_token": "tok123"}


def breaker(clock: Clock, **policy) -> Breaker:
    changes: list[str] = []
    made = Breaker(Policy(**{**POLICY.__dict__, **policy}), clock=clock, on_change=lambda vendor, state: changes.append(state))
    made.changes = changes  # type: ignore[attr-defined]
    return made


async def allow(b: Breaker) -> None:
    await b.allow("k", vendor="zendesk", display="Zendesk")


async def fail(b: Breaker) -> None:
    await b.record("k", vendor="zendesk", status=503)


async def succeed(b: Breaker) -> None:
    await b.record("k", vendor="zendesk", status=200)


@pytest.mark.parametrize(
    ("error", "status", "outage"),
    [
        (UpstreamUnreachable("x"), None, True),
        (UpstreamTimeout("x"), None, True),
        (UpstreamUnavailable("x", upstream_status=503), None, True),
        (UpstreamError("x", upstream_status=500), None, True),
        (UpstreamError("x"), None, False),  # an unreadable answer: the vendor is up
        (NotFound("x", upstream_status=404), None, False),
        (None, 500, True),
        (None, 503, True),
        (None, 404, False),
        (None, 429, False),
        (None, 200, False),
    ],
)
def test_only_outages_count(error, status, outage):
    assert is_outage(error, status) is outage


async def test_a_low_traffic_tenant_opens_it_after_consecutive_failures():
    clock = Clock()
    b = breaker(clock)
    for _ in range(4):
        await allow(b)
        await fail(b)
        clock.now += 10  # one call every ten seconds: no window would ever see 100 calls
    assert b.state("k") == "closed"
    await allow(b)
    await fail(b)
    assert b.state("k") == "open" and b.changes == ["open"]
    with pytest.raises(CRMUnavailable) as caught:
        await allow(b)
    error = caught.value
    assert (error.status_code, error.code, error.retryable, error.retry_after) == (503, "crm_unavailable", True, 30)
    assert error.details == {"created": False, "breaker": "open"} and "nothing was sent" in error.message


async def test_a_failure_ratio_opens_it_once_the_window_has_enough_calls():
    clock = Clock()
    b = breaker(clock)
    for _ in range(4):  # fail, succeed, ...: never two failures in a row
        await fail(b)
        await succeed(b)
        clock.now += 1
    await fail(b)
    assert b.state("k") == "closed"  # 5 of 9: the window is still below its minimum of 10 calls
    await succeed(b)
    await fail(b)
    assert b.state("k") == "open"  # 6 of 11 failed


async def test_client_errors_never_open_it():
    b = breaker(Clock())
    for _ in range(20):
        await b.record("k", vendor="zendesk", error=NotFound("gone", upstream_status=404))
        await b.record("k", vendor="zendesk", status=422)
    assert b.state("k") == "closed" and "k" not in b.circuits  # a healthy vendor costs no bookkeeping


async def test_failures_older_than_the_window_are_forgotten():
    clock = Clock()
    b = breaker(clock)
    for _ in range(4):
        await fail(b)
    clock.now += 61
    await fail(b)
    assert b.state("k") == "closed" and b.circuits["k"].consecutive == 1


async def opened(clock: Clock) -> Breaker:
    b = breaker(clock)
    for _ in range(5):
        await fail(b)
    return b


async def test_half_open_lets_one_probe_through_and_its_success_closes_it():
    clock = Clock()
    b = await opened(clock)
    clock.now += 29.5
    with pytest.raises(CRMUnavailable) as caught:
        await allow(b)
    assert caught.value.retry_after == pytest.approx(0.5)
    clock.now += 0.5
    await allow(b)  # the probe
    assert b.state("k") == "half_open"
    with pytest.raises(CRMUnavailable) as busy:
        await allow(b)  # a second caller while the probe is out
    assert busy.value.details["breaker"] == "half_open" and busy.value.retry_after == 1.0
    await succeed(b)
    assert b.state("k") == "closed" and b.changes == ["open", "half_open", "closed"]
    await allow(b)
    await allow(b)


async def test_a_failed_probe_opens_it_again():
    clock = Clock()
    b = await opened(clock)
    clock.now += 30
    await allow(b)
    await fail(b)
    assert b.state("k") == "open"
    with pytest.raises(CRMUnavailable) as caught:
        await allow(b)
    assert caught.value.retry_after == 30


async def test_a_probe_that_never_answers_lets_another_probe_later():
    clock = Clock()
    b = await opened(clock)
    clock.now += 30
    await allow(b)
    clock.now += 8  # the probe's attempt timeout has passed without an outcome
    await allow(b)


# --- through the connector ---------------------------------------------------------------------------


@pytest.fixture
def zendesk(make_context):
    def build(**settings):
        ctx = make_context(**{"breaker_enabled": True, "retry_max_attempts": 1, **settings})
        ctx.shared[ETIQUETTE] = Etiquette(ctx.settings, clock=Clock())
        return ZendeskConnector.from_request(ZENDESK_CONFIG, ctx)

    return build


async def test_no_create_is_sent_while_open(zendesk, mock_http):
    connector = zendesk()
    mock_http.get(re.compile(rf"{ZENDESK}/tickets/7\.json"), status=503, repeat=True)
    for _ in range(5):
        with pytest.raises(UpstreamUnavailable):
            await connector.get_ticket("7")
    ticket = TicketCreateRequest(crm_type="zendesk", subject="s", description="d", customer_id="1001")
    with pytest.raises(CRMUnavailable) as caught:
        await connector.create_ticket(ticket, idempotency_key="k1")
    assert sent(mock_http, "POST", ZENDESK) == []
    assert with_create_outcome(caught.value, "ticket", True).details["created"] is False


async def test_retries_stop_at_the_open_breaker(zendesk, mock_http, sleeps):
    connector = zendesk(retry_max_attempts=10, breaker_failure_threshold=3)
    mock_http.get(re.compile(rf"{ZENDESK}/tickets/7\.json"), status=503, repeat=True)
    with pytest.raises(CRMUnavailable):
        await connector.get_ticket("7")
    assert len(sent(mock_http, "GET", ZENDESK)) == 3 and len(sleeps.calls) == 3  # the 4th attempt was not sent


async def test_the_breaker_can_be_switched_off(zendesk, mock_http):
    connector = zendesk(breaker_enabled=False)
    mock_http.get(re.compile(rf"{ZENDESK}/tickets/7\.json"), status=503, repeat=True)
    for _ in range(8):
        with pytest.raises(UpstreamUnavailable):
            await connector.get_ticket("7")
    assert len(sent(mock_http, "GET", ZENDESK)) == 8
