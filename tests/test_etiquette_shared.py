"""The governor and the breaker shared by replicas through a real Redis (tests/redis_server.py): two store instances.

Each "replica" is its own RedisState (its own connection pool) and its own Breaker or Governor; the clock is
injected and shared, as the replicas' wall clocks would be.
"""

from __future__ import annotations

import pytest
import redis

from connectors.breaker import Breaker
from connectors.governor import Governor, RateWindow
from errors import CRMUnavailable, RateLimited
from state import RedisState
from tests.redis_server import free_port
from tests.test_breaker import POLICY
from tests.test_governor import BUDGET, Clock

KEY = "zendesk:tenant"


@pytest.fixture
async def stores(redis_url):
    made = [RedisState(redis_url), RedisState(redis_url)]
    yield made
    for store in made:
        await store.close()


def keys(redis_url: str) -> list[bytes]:
    with redis.Redis.from_url(redis_url) as client:
        return sorted(client.keys("*"))


async def fail(b: Breaker) -> None:
    await b.record(KEY, vendor="zendesk", status=502)


async def allow(b: Breaker) -> None:
    await b.allow(KEY, vendor="zendesk", display="Zendesk")


async def test_replicas_add_up_their_failures_and_share_the_open_circuit(stores, redis_url):
    clock = Clock()
    a, b = (Breaker(POLICY, shared=store, clock=clock) for store in stores)
    for _ in range(3):
        await fail(a)
    await fail(b)
    assert a.state(KEY) == b.state(KEY) == "closed"
    await fail(b)  # the fifth consecutive failure, counted across both replicas
    assert b.state(KEY) == "open"
    with pytest.raises(CRMUnavailable):
        await allow(b)
    await fail(a)  # a's call in flight fails too: a learns the shared state from the same script call
    with pytest.raises(CRMUnavailable) as caught:
        await allow(a)
    assert caught.value.retry_after == 30


async def test_one_probe_for_all_replicas_and_its_success_closes_it_for_all(stores):
    clock = Clock()
    a, b = (Breaker(POLICY, shared=store, clock=clock) for store in stores)
    for _ in range(5):
        await fail(a)
    await fail(b)
    clock.now += 30
    await allow(a)  # a is the probe
    with pytest.raises(CRMUnavailable) as caught:
        await allow(b)
    assert caught.value.details["breaker"] == "half_open"
    await a.record(KEY, vendor="zendesk", status=200)
    assert a.state(KEY) == "closed"
    await allow(b)  # b's view is stale until its next outcome, but the probe key is free again: it goes through
    await b.record(KEY, vendor="zendesk", status=200)
    assert b.state(KEY) == "closed"


async def test_a_healthy_vendor_costs_no_redis_call(stores, redis_url):
    clock = Clock()
    breaker = Breaker(POLICY, shared=stores[0], clock=clock)
    governor = Governor(low_water_ratio=0.2, shared=stores[0], clock=clock)
    governor.observe(KEY, BUDGET, RateWindow(700, 600, 60, 60))
    for _ in range(20):
        await allow(breaker)
        assert await governor.acquire(KEY, BUDGET, vendor="zendesk", display="Zendesk", deadline_left=5) == 0
        await breaker.record(KEY, vendor="zendesk", status=200)
    assert keys(redis_url) == []


async def test_replicas_share_the_paced_slots(stores, redis_url):
    clock = Clock()
    a, b = (Governor(low_water_ratio=0.2, shared=store, clock=clock) for store in stores)
    for governor in (a, b):  # both saw the same answer headers: 10 calls left, 60 s to go
        governor.observe(KEY, BUDGET, RateWindow(100, 10, 60, 60))

    async def take(governor: Governor, deadline_left: float = 100) -> float:
        return await governor.acquire(KEY, BUDGET, vendor="zendesk", display="Zendesk", deadline_left=deadline_left)

    waits = [await take(a), await take(b), await take(a)]
    assert waits[0] == 0.0
    assert waits[1] == pytest.approx(6.0, abs=0.01)  # not 0: b's slot comes after a's
    assert waits[2] == pytest.approx(12.0, abs=0.01)  # b's slot (at 6 s) was followed by its own 60/10 s spacing
    with pytest.raises(RateLimited):
        await take(b, deadline_left=1.0)
    assert keys(redis_url) == [b"connectors:governor:" + KEY.encode()]


async def test_without_redis_each_replica_carries_on_alone():
    down = RedisState(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.2)
    try:
        clock = Clock()
        breaker = Breaker(POLICY, shared=down, clock=clock)
        for _ in range(5):
            await fail(breaker)
        with pytest.raises(CRMUnavailable):
            await allow(breaker)
        governor = Governor(low_water_ratio=0.2, shared=down, clock=clock)
        governor.observe(KEY, BUDGET, RateWindow(100, 10, 60, 60))
        waits = [await governor.acquire(KEY, BUDGET, vendor="zendesk", display="Zendesk", deadline_left=100) for _ in range(2)]
        assert waits == [0.0, 6.0]
    finally:
        await down.close()


def test_the_service_shares_them_through_its_own_redis_client(redis_url):
    from connectors.etiquette import ETIQUETTE
    from tests.conftest import make_settings, start_service

    server, thread, _ = start_service(make_settings(redis_url=redis_url, breaker_enabled=True))
    try:
        app = server.config.app
        etiquette = app.state.shared[ETIQUETTE]
        assert etiquette.breaker.shared is etiquette.governor.shared is app.state.states[0]
        assert isinstance(etiquette.breaker.shared, RedisState)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
