"""The caller cache: the CallerCache on both backends, then the real service (its own, cache on) over loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
import pytest

from cache import CallerCache, cache_key, customer_keys
from connectors.hosts import host_of
from errors import NotFound, UpstreamUnavailable
from tests.conftest import Service, error_of, make_settings, start_service


def caller_cache(state, **ttls) -> CallerCache:
    return CallerCache(state, **{"fresh": 60.0, "stale": 300.0, "negative": 10.0, "wait": 5.0, **ttls})


class Loads:
    """A fake upstream lookup that counts its calls."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls = 0
        self.fail = fail

    async def __call__(self) -> bytes:
        self.calls += 1
        await asyncio.sleep(0)  # a yield, so concurrent readers arrive while it runs
        if self.fail:
            raise self.fail
        return orjson.dumps({"id": "1001", "n": self.calls})


# --- CallerCache, memory and Redis -----------------------------------------------------------------


async def test_a_miss_fills_and_the_next_read_is_a_hit_of_the_same_bytes(state):
    cache, load = caller_cache(state), Loads()
    first = await cache.read("k", load)
    second = await cache.read("k", load)
    assert (first.outcome, second.outcome, load.calls) == ("miss", "hit", 1)
    assert second.body == first.body and second.age < 60


async def test_concurrent_misses_for_one_key_make_one_upstream_call(state):
    cache, load = caller_cache(state), Loads()
    got = await asyncio.gather(*(cache.read("k", load) for _ in range(50)))
    assert load.calls == 1 and {g.body for g in got} == {got[0].body}


async def test_two_replicas_on_one_redis_single_flight_a_miss(redis_url):
    from state import RedisState

    replicas = [RedisState(redis_url), RedisState(redis_url)]
    caches, load = [caller_cache(s) for s in replicas], Loads()
    got = await asyncio.gather(*(caches[n % 2].read("k", load) for n in range(40)))
    assert load.calls == 1 and {g.body for g in got} == {got[0].body}
    for replica in replicas:
        await replica.close()


async def test_a_stale_entry_is_served_at_once_while_one_refresh_runs(state):
    cache, load = caller_cache(state), Loads()
    await state.set("k", b"%.3f|200|" % (time.time() - 100) + b'{"n":0}', 600)  # stored 100 s ago: past fresh
    got = await asyncio.gather(*(cache.read("k", load) for _ in range(10)))
    # Served at once: the old answer (stale) until the refresh lands (with Redis it may land mid-way: hit).
    assert got[0].outcome == "stale" and got[0].age >= 99
    assert all((g.outcome, g.body) == ("stale", b'{"n":0}') or (g.outcome, g.body) == ("hit", b'{"id":"1001","n":1}') for g in got)
    await asyncio.gather(*cache._refreshing.values())
    assert load.calls == 1  # ONE background refresh for ten stale reads
    again = await cache.read("k", load)
    assert again.outcome == "hit" and orjson.loads(again.body)["n"] == 1


async def test_not_found_is_remembered_briefly_and_other_errors_not_at_all(state):
    cache = caller_cache(state)
    missing = Loads(fail=NotFound("no such customer", crm_type="zendesk"))
    assert [(await cache.read("gone", missing)).status for _ in range(2)] == [404, 404] and missing.calls == 1
    down = Loads(fail=UpstreamUnavailable("down", crm_type="zendesk"))
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await cache.read("k", down)
    assert down.calls == 2


async def test_refresh_reads_afresh_and_forget_drops_a_customers_entries(state):
    cache, load = caller_cache(state), Loads()
    key = cache_key("tenant", "get_customer", "1001")
    await cache.read(key, load)
    assert (await cache.read(key, load, refresh=True)).outcome == "miss" and load.calls == 2
    search = cache_key("tenant", "find_customers", "+971501234567", "", "10")
    await cache.read(search, load)
    await cache.forget(customer_keys("tenant", "1001", "+971501234567", None))
    assert (await cache.read(key, load)).outcome == "miss" and (await cache.read(search, load)).outcome == "miss"


def test_keys_are_per_tenant_and_carry_no_personal_data():
    a, b = cache_key("tenant-a", "find_customers", "", "ahmed@example.ae", "10"), cache_key("tenant-b", "find_customers", "", "ahmed@example.ae", "10")
    assert a != b and "ahmed" not in a


# --- the service -------------------------------------------------------------------------------------


@contextmanager
def running(**overrides) -> Iterator[Service]:
    """A service of its own with its sandbox, settings overridden."""
    server, thread, url = start_service(make_settings(caller_cache_enabled=True, **overrides))
    client = httpx.Client(timeout=10, trust_env=False)
    info = client.get(f"{url}/sandbox").json()
    root = info["control"].removesuffix("/_sandbox")
    try:
        yield Service(url=url, client=client, sandbox_root=root, emulators=info["emulators"])
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def cached_service() -> Iterator[Service]:
    with running() as service:
        yield service


@pytest.fixture
def csvc(cached_service: Service) -> Service:
    cached_service.reset()
    cached_service.post("/crm/ticket/create", {"crm_type": "zendesk", "subject": "s", "description": "d", "customer_id": "1001"})
    cached_service.reset()  # the create above forgot customer 1001 and its searches, whatever earlier tests cached
    return cached_service


def lookups(svc: Service) -> int:
    return sum(1 for r in svc.vendor_requests("zendesk") if "/users" in r["path"])


def test_a_repeated_customer_lookup_is_a_hit_with_its_age(csvc: Service):
    body = {"crm_type": "zendesk", "customer_id": "1001"}
    first, second = csvc.post("/crm/customer", body), csvc.post("/crm/customer", body)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert second.json() == first.json() and second.json()["id"] == "1001"
    assert int(second.headers["Age"]) >= 0 and lookups(csvc) == 1
    fresh = csvc.post("/crm/customer", body, **{"Cache-Control": "no-cache"})
    assert fresh.headers["X-Cache"] == "miss" and lookups(csvc) == 2


def test_a_caller_id_search_is_cached_under_the_e164_number(csvc: Service):
    first = csvc.post("/crm/customer/search", {"crm_type": "zendesk", "phone": "+971 50 123 4567"})
    second = csvc.post("/crm/customer/search", {"crm_type": "zendesk", "phone": "+971501234567"})
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert [c["id"] for c in second.json()["customers"]] == ["1001"]


def test_not_found_is_a_contract_error_remembered_briefly(csvc: Service):
    body = {"crm_type": "zendesk", "customer_id": "999999"}
    first, second = csvc.post("/crm/customer", body), csvc.post("/crm/customer", body)
    assert (first.status_code, second.status_code) == (404, 404)
    assert error_of(second)["code"] == "not_found" and second.headers["X-Cache"] == "hit"
    assert error_of(first)["request_id"] != error_of(second)["request_id"]


def test_a_ticket_create_naming_the_customer_forgets_it(csvc: Service):
    body = {"crm_type": "zendesk", "customer_id": "1001"}
    csvc.post("/crm/customer", body)
    csvc.post("/crm/ticket/create", {"crm_type": "zendesk", "subject": "s", "description": "d", "customer_id": "1001"})
    assert csvc.post("/crm/customer", body).headers["X-Cache"] == "miss"


def test_another_account_never_sees_a_cached_answer(csvc: Service):
    body = {"crm_type": "zendesk", "customer_id": "1001"}
    assert csvc.post("/crm/customer", body).status_code == 200
    other = {**body, "config": {"subdomain": "other", "email": "x@other.example", "api_token": "another"}}
    r = csvc.post("/crm/customer", other)
    assert r.headers.get("X-Cache") != "hit"


def test_an_upstream_failure_is_not_cached(csvc: Service):
    body = {"crm_type": "zendesk", "customer_id": "1002"}
    csvc.fault("zendesk", "error", status=503, count=-1)
    assert csvc.post("/crm/customer", body).status_code == 502
    csvc.reset()
    assert csvc.post("/crm/customer", body).headers["X-Cache"] == "miss"


def test_two_service_instances_share_the_cache_through_redis(redis_url):
    with running(redis_url=redis_url) as first:
        zendesk = first.emulators["zendesk"]
        # A config naming a host brings its own credentials (the environment's never go to a caller's host).
        config = {"base_url": zendesk, "email": "agent@example.com", "api_token": "sandbox-token"}
        body = {"crm_type": "zendesk", "customer_id": "1001", "config": config}
        with running(redis_url=redis_url, connectors_allowed_hosts=host_of(zendesk)) as second:
            assert first.post("/crm/customer", body).headers["X-Cache"] == "miss"
            served = second.post("/crm/customer", body)
            assert served.status_code == 200 and served.headers["X-Cache"] == "hit"
            assert served.json()["id"] == "1001" and lookups(first) == 1
            # An idempotent create on one instance is replayed by the other.
            create = {"crm_type": "zendesk", "subject": "s", "description": "d", "customer_id": "1001", "config": config}
            made = first.post("/crm/ticket/create", create, **{"Idempotency-Key": "call-7"})
            again = second.post("/crm/ticket/create", create, **{"Idempotency-Key": "call-7"})
            assert (made.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
            assert again.json()["id"] == made.json()["id"]


async def test_start_up_fails_fast_when_redis_is_unreachable():
    from server import create_app
    from tests.redis_server import free_port

    app = create_app(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(RuntimeError, match="REDIS_URL redis://127.0.0.1:.* is not reachable"):
        async with app.router.lifespan_context(app):
            pass


async def test_several_workers_without_redis_warn_that_state_is_per_worker(caplog):
    from server import create_app

    settings = make_settings(sandbox=False).model_copy(update={"workers": 4})  # WORKERS comes with another branch
    app = create_app(settings)
    with caplog.at_level(logging.WARNING, logger="connectors"):
        async with app.router.lifespan_context(app):
            pass
    assert any(r.getMessage() == "shared_state_per_worker" for r in caplog.records)


def test_redis_down_mid_request_is_a_retryable_503_not_a_500():
    from tests.redis_server import start_redis_server

    redis_server = start_redis_server()
    with running(redis_url=redis_server.url) as svc:
        body = {"crm_type": "zendesk", "customer_id": "1001"}
        assert svc.post("/crm/customer", body).status_code == 200
        redis_server.stop()
        for path, payload, headers in (
            ("/crm/customer", body, {}),
            ("/crm/ticket/create", {"crm_type": "zendesk", "subject": "s", "description": "d"}, {"Idempotency-Key": "k-1"}),
        ):
            r = svc.post(path, payload, **headers)
            assert r.status_code == 503, r.text
            assert (error_of(r)["code"], error_of(r)["retryable"]) == ("state_unavailable", True)
        assert not svc.vendor_requests("zendesk")[1:]  # nothing reached the vendor after the first lookup
