"""The rate governor: each vendor's documented rate-limit headers, pacing as the window runs out, failing fast.

Unit tests: the clock is injected, waits are recorded (never slept), vendor answers are faked (aioresponses).
"""

from __future__ import annotations

import re

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from connectors.etiquette import ETIQUETTE, Etiquette
from connectors.freshdesk import FreshdeskConnector
from connectors.governor import Governor, RateBudget, read_window, tightest
from connectors.hubspot import HubSpotConnector
from connectors.salesforce import SalesforceConnector
from connectors.zendesk import ZendeskConnector
from errors import RateLimited
from livechat_connector import LiveChatConnector
from tests.conftest import make_settings, sent

ZENDESK = "https://acme.zendesk.com/api/v2"
ZENDESK_CONFIG = {"subdomain": "acme", "email": "agent@acme.com", "api_token": "tok123"}
BUDGET = RateBudget(100, 60.0, "test")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def headers(**values: str) -> CIMultiDictProxy[str]:
    """Answer headers as aiohttp gives them (case-insensitive); `_` in a name stands for `-`."""
    return CIMultiDictProxy(CIMultiDict({name.replace("_", "-"): value for name, value in values.items()}))


# Header shapes as each vendor documents them (see the URLs on each connector's rate_limit_headers).
DOCUMENTED = [
    pytest.param(
        ZendeskConnector,
        headers(ratelimit_limit="700", ratelimit_remaining="42", ratelimit_reset="17"),
        (700, 42, 17, 60),
        id="zendesk-ratelimit",
    ),
    pytest.param(
        ZendeskConnector, headers(X_Rate_Limit="400", X_Rate_Limit_Remaining="12"), (400, 12, 60, 60), id="zendesk-x-rate-limit"
    ),
    pytest.param(
        FreshdeskConnector,
        headers(X_RateLimit_Total="400", X_RateLimit_Remaining="20", X_RateLimit_Used_CurrentRequest="1"),
        (400, 20, 60, 60),
        id="freshdesk",
    ),
    pytest.param(
        HubSpotConnector,
        headers(
            X_HubSpot_RateLimit_Max="190",
            X_HubSpot_RateLimit_Remaining="5",
            X_HubSpot_RateLimit_Interval_Milliseconds="10000",
            X_HubSpot_RateLimit_Daily="500000",
            X_HubSpot_RateLimit_Daily_Remaining="400000",
        ),
        (190, 5, 10, 10),
        id="hubspot-ten-secondly",
    ),
    pytest.param(
        HubSpotConnector,
        headers(
            X_HubSpot_RateLimit_Max="190",
            X_HubSpot_RateLimit_Remaining="180",
            X_HubSpot_RateLimit_Interval_Milliseconds="10000",
            X_HubSpot_RateLimit_Daily="250000",
            X_HubSpot_RateLimit_Daily_Remaining="1000",
        ),
        (250000, 1000, 86400, 86400),
        id="hubspot-daily",
    ),
    pytest.param(SalesforceConnector, headers(Sforce_Limit_Info="api-usage=14990/15000"), (15000, 10, 86400, 86400), id="salesforce"),
]


@pytest.mark.parametrize(("connector", "answer", "expected"), DOCUMENTED)
def test_each_vendor_table_reads_its_documented_headers(connector, answer, expected):
    window = tightest([w for spec in connector.rate_limit_headers if (w := read_window(spec, answer, 0.0))])
    assert window is not None
    assert (window.limit, window.remaining, window.seconds_left, window.window_seconds) == expected


def test_livechat_states_nothing_so_the_default_budget_counts_its_calls():
    assert LiveChatConnector.rate_limit_headers == () and LiveChatConnector.rate_budget is None
    assert Etiquette(make_settings(governor_default_limit_per_minute=120)).default_budget.limit == 120


@pytest.mark.parametrize(
    "answer",
    [headers(), headers(ratelimit_limit="0", ratelimit_remaining="0"), headers(ratelimit_limit="x", ratelimit_remaining="nan")],
)
def test_missing_or_garbled_headers_say_nothing(answer):
    assert read_window(ZendeskConnector.rate_limit_headers[0], answer, 0.0) is None


def observed(remaining: float, seconds_left: float, clock: Clock, limit: float = 100) -> Governor:
    from connectors.governor import RateWindow

    governor = Governor(low_water_ratio=0.2, clock=clock)
    governor.observe("k", BUDGET, RateWindow(limit, remaining, seconds_left, 60.0))
    return governor


async def take(governor: Governor, deadline_left: float = 100.0) -> float:
    return await governor.acquire("k", BUDGET, vendor="zendesk", display="Zendesk", deadline_left=deadline_left)


async def test_far_from_the_limit_calls_do_not_wait():
    governor = observed(50, 30, Clock())
    assert [await take(governor) for _ in range(29)] == [0.0] * 29
    assert governor.buckets["k"].remaining == 21


async def test_the_calls_are_spread_wider_as_remaining_falls():
    spacing = []
    for remaining in (20, 10, 5, 2):
        clock = Clock()
        governor = observed(remaining, 60, clock)
        waits = [await take(governor) for _ in range(2)]
        assert waits[0] == 0.0  # the first slot is now
        spacing.append(waits[1])
    assert spacing == [3.0, 6.0, 12.0, 30.0]  # time left / calls left


async def test_waits_are_counted_from_the_clock():
    clock = Clock()
    governor = observed(10, 60, clock)
    assert await take(governor) == 0.0
    clock.now += 4.0
    assert await take(governor) == pytest.approx(2.0)  # slot 6 s after the first, 4 s of it already gone


async def test_nothing_left_waits_for_the_refill_and_fails_fast_past_the_deadline():
    clock = Clock()
    governor = observed(0, 30, clock)
    with pytest.raises(RateLimited) as caught:
        await take(governor, deadline_left=1.5)
    assert caught.value.retry_after == 30.0 and caught.value.upstream_status is None
    assert "past this request's deadline" in caught.value.message
    assert await take(governor, deadline_left=31) == 30.0
    clock.now += 30.0
    assert await take(governor) == 0.0  # the window refilled


async def test_a_slot_past_the_deadline_is_refused_and_not_spent():
    clock = Clock()
    governor = observed(4, 60, clock)  # a slot every 15 s
    assert await take(governor, deadline_left=2) == 0.0
    with pytest.raises(RateLimited) as caught:
        await take(governor, deadline_left=2)
    assert caught.value.retry_after == 15.0
    assert await take(governor, deadline_left=20) == 15.0  # the refused call did not push the next slot out


# --- through the connector: the upstream layer's hook --------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def zendesk(make_context, clock):
    def build(**settings):
        ctx = make_context(**settings)
        ctx.shared[ETIQUETTE] = Etiquette(ctx.settings, clock=clock)
        return ZendeskConnector.from_request(ZENDESK_CONFIG, ctx)

    return build


def ticket_answer(remaining: int, reset: int = 60) -> dict:
    rate = {"ratelimit-limit": "700", "ratelimit-remaining": str(remaining), "ratelimit-reset": str(reset)}
    return {"payload": {"ticket": {"id": 7, "status": "open"}}, "headers": rate}


async def test_the_answers_headers_pace_the_next_calls(zendesk, mock_http, sleeps):
    connector = zendesk()
    url = re.compile(rf"{ZENDESK}/tickets/7\.json")
    mock_http.get(url, **ticket_answer(699))
    mock_http.get(url, **ticket_answer(20, reset=10))
    mock_http.get(url, **ticket_answer(19, reset=10))
    mock_http.get(url, **ticket_answer(18, reset=10))
    for _ in range(4):
        await connector.get_ticket("7")
    # 699 left: no wait; then 20 of 700 left with 10 s to go: one call every 10/20 = 0.5 s
    assert sleeps.calls == [pytest.approx(0.5)]
    assert len(sent(mock_http, "GET", ZENDESK)) == 4


async def test_a_call_that_would_wait_past_its_deadline_is_not_sent(zendesk, mock_http, sleeps):
    connector = zendesk()
    url = re.compile(rf"{ZENDESK}/tickets/7\.json")
    mock_http.get(url, **ticket_answer(0, reset=45))
    await connector.get_ticket("7")
    with pytest.raises(RateLimited) as caught:
        await connector.get_ticket("7")
    assert caught.value.retry_after == 45.0 and caught.value.crm_type == "zendesk"
    assert len(sent(mock_http, "GET", ZENDESK)) == 1 and sleeps.calls == []


async def test_a_429s_wait_is_the_retry_layers_alone(make_context, clock, mock_http, sleeps):
    ctx = make_context()
    ctx.shared[ETIQUETTE] = Etiquette(ctx.settings, clock=clock)
    connector = FreshdeskConnector.from_request({"domain": "acme.freshdesk.com", "api_key": "k"}, ctx)
    url = re.compile(r"https://acme\.freshdesk\.com/api/v2/tickets/7")
    limited = {"Retry-After": "1", "X-RateLimit-Total": "400", "X-RateLimit-Remaining": "0"}
    mock_http.get(url, status=429, headers=limited, body="")
    mock_http.get(url, payload={"id": 7, "status": 2}, headers={"X-RateLimit-Total": "400", "X-RateLimit-Remaining": "399"})
    await connector.get_ticket("7")
    assert sleeps.calls == [1.0]  # Retry-After, once: the 429's remaining=0 does not add a governor wait


async def test_the_governor_can_be_switched_off(zendesk, mock_http, sleeps):
    connector = zendesk(governor_enabled=False)
    url = re.compile(rf"{ZENDESK}/tickets/7\.json")
    mock_http.get(url, **ticket_answer(0, reset=45))
    mock_http.get(url, **ticket_answer(0, reset=45))
    await connector.get_ticket("7")
    await connector.get_ticket("7")
    assert sleeps.calls == []


async def test_accounts_have_their_own_buckets(make_context, clock, mock_http, sleeps):
    ctx = make_context()
    ctx.shared[ETIQUETTE] = Etiquette(ctx.settings, clock=clock)
    first = ZendeskConnector.from_request(ZENDESK_CONFIG, ctx)
    other = ZendeskConnector.from_request({**ZENDESK_CONFIG, "api_token": "another"}, ctx)
    assert first.etiquette_key() != other.etiquette_key()
    url = re.compile(rf"{ZENDESK}/tickets/7\.json")
    mock_http.get(url, **ticket_answer(0, reset=45))
    mock_http.get(url, **ticket_answer(600))
    await first.get_ticket("7")
    await other.get_ticket("7")  # the first account's spent window does not hold the other back
    assert sleeps.calls == []
