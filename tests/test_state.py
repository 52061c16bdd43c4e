"""The State interface, the idempotency store and the token store, on both backends (memory and a real Redis)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from errors import NotFound, StateUnavailable, UpstreamUnavailable
from idempotency import InMemoryIdempotencyStore, StateIdempotencyStore, compact
from state import Locks, MemoryState, RedisState, open_state, redacted
from tokens import TokenStore
from tests.redis_server import free_port


def idempotency(state, **overrides) -> StateIdempotencyStore:
    options = {"wait_seconds": 5.0, "claim_ttl": 10.0, "max_answer_bytes": 8192, **overrides}
    return StateIdempotencyStore(state, 3600, **options)


class Creates:
    """A fake create that counts how often it really ran."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls = 0
        self.fail = fail

    async def __call__(self) -> tuple[int, dict]:
        self.calls += 1
        await asyncio.sleep(0)  # a yield, so twins arrive while it runs
        if self.fail:
            raise self.fail
        return 201, {"id": f"T{self.calls}", "subject": "s"}


# --- State ----------------------------------------------------------------------------------------


async def test_claim_is_atomic_and_release_is_the_owners_only(state):
    assert await state.claim("k", b"mine", 10)
    assert not await state.claim("k", b"theirs", 10)
    await state.release("k", b"theirs")
    assert await state.get("k") == b"mine"
    await state.release("k", b"mine")
    assert await state.get("k") is None
    await state.set("a", b"1", 10)
    await state.delete("a", "never-set")
    assert await state.get("a") is None


async def test_the_lock_lets_one_holder_in_at_a_time(state):
    locks, inside, most = Locks(state), 0, 0

    async def work() -> None:
        nonlocal inside, most
        async with locks.hold("job", ttl=10, wait=5):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(work() for _ in range(20)))
    assert most == 1 and await state.get("lock:job") is None


def test_memory_state_is_bounded_in_bytes_least_recently_used_first():
    state = MemoryState(max_bytes=10_000)

    async def fill() -> None:
        await state.set("keep", b"x" * 100, 60)
        for n in range(200):
            await state.get("keep")  # used, so it stays
            await state.set(f"k{n}", b"y" * 500, 60)

    asyncio.run(fill())
    assert state.bytes <= 10_000
    assert asyncio.run(state.get("keep")) is not None and asyncio.run(state.get("k0")) is None


async def test_an_unreachable_redis_fails_fast_at_start_up_with_the_password_hidden():
    url = f"redis://user:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(RuntimeError, match="is not reachable") as raised:
        await open_state(url, 0)
    assert "hunter2" not in str(raised.value) and "***" in str(raised.value)
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


async def test_redis_going_away_mid_request_is_a_retryable_contract_error():
    from tests.redis_server import start_redis_server

    server = start_redis_server()
    state = RedisState(server.url)
    await state.set("k", b"v", 10)
    server.stop()
    with pytest.raises(StateUnavailable) as raised:
        await state.get("k")
    assert raised.value.status_code == 503 and raised.value.retryable
    await state.close()


# --- idempotency -------------------------------------------------------------------------------------


async def test_fifty_concurrent_creates_with_one_key_create_once(state):
    store, create = idempotency(state), Creates()
    answers = await asyncio.gather(*(store.run("scope", "key-1", "fp", create) for _ in range(50)))
    assert create.calls == 1
    assert {(status, body["id"]) for status, body, _ in answers} == {(201, "T1")}
    assert sum(not replayed for _, _, replayed in answers) == 1
    assert (await store.lookup("scope", "key-1")).body["id"] == "T1"


async def test_two_replicas_on_one_redis_create_once(redis_url):
    """Two independent stores (two "replicas", each with its own connection) share one Redis."""
    replicas = [RedisState(redis_url), RedisState(redis_url)]
    stores, create = [idempotency(s) for s in replicas], Creates()
    answers = await asyncio.gather(*(stores[n % 2].run("scope", "call-9", "fp", create) for n in range(50)))
    assert create.calls == 1
    assert {body["id"] for _, body, _ in answers} == {"T1"}
    assert sum(replayed for _, _, replayed in answers) == 49
    for replica in replicas:
        await replica.close()


async def test_another_body_with_the_same_key_is_a_conflict_and_a_failure_frees_the_key(state):
    store = idempotency(state)
    await store.run("scope", "k", "fp-1", Creates())
    with pytest.raises(Exception, match="different request body"):
        await store.run("scope", "k", "fp-2", Creates())
    failing = Creates(fail=UpstreamUnavailable("down", crm_type="zendesk"))
    results = await asyncio.gather(*(store.run("scope", "k2", "fp", failing) for _ in range(5)), return_exceptions=True)
    assert failing.calls == 1 and all(isinstance(r, UpstreamUnavailable) for r in results)
    again = Creates()
    assert (await store.run("scope", "k2", "fp", again))[2] is False and again.calls == 1


class WatchedRedis(RedisState):
    """A real RedisState that says when it has read the key's in-progress marker (so the twin is waiting)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.saw_claim = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        value = await super().get(key)
        if value is not None and b'"status"' not in value:
            self.saw_claim.set()
        return value


async def test_a_twin_on_another_replica_gets_the_first_ones_failure(redis_url):
    first, second = RedisState(redis_url), WatchedRedis(redis_url)
    gate = asyncio.Event()

    async def failing() -> tuple[int, dict]:
        await gate.wait()
        raise NotFound("no such requester", crm_type="zendesk")

    running = asyncio.create_task(idempotency(first).run("scope", "k", "fp", failing))
    while await first.get(idempotency(first)._slot("scope", "k")) is None:
        await asyncio.sleep(0)  # until the first replica holds the claim
    twin = asyncio.create_task(idempotency(second).run("scope", "k", "fp", Creates()))
    await second.saw_claim.wait()
    gate.set()
    for task in (running, twin):
        with pytest.raises(NotFound, match="no such requester"):
            await task
    await first.close()
    await second.close()


def test_two_thousand_large_creates_stay_within_the_byte_bound():
    """Issue 9: 2,000 creates with 60 KB descriptions once held +288 MB; answers are compact and bytes bounded."""
    store = InMemoryIdempotencyStore(86400, 100_000, max_bytes=8 * 1024 * 1024, max_answer_bytes=4096)

    async def run() -> None:
        for n in range(2000):

            async def create(n: int = n) -> tuple[int, dict]:
                return 201, {"id": str(n), "subject": "s", "description": "d" * 60_000, "tags": ["a"]}

            await store.run("scope", f"k{n}", "fp", create)

    asyncio.run(run())
    held = store.state.bytes
    assert held <= 8 * 1024 * 1024
    kept = asyncio.run(store.lookup("scope", "k1999"))
    assert kept.body["id"] == "1999" and len(orjson.dumps(kept.body)) <= 4096


def test_compact_keeps_small_answers_whole_and_cuts_long_texts():
    small = {"id": "1", "subject": "s"}
    assert compact(small, 1000) is small
    cut = compact({"id": "1", "description": "x" * 5000}, 2000)
    assert cut["id"] == "1" and len(cut["description"]) < 1100
    assert compact({"id": "1", "notes": ["y" * 900] * 20}, 2000) == {"id": "1"}


# --- tokens ------------------------------------------------------------------------------------------


async def test_one_failed_renewal_answers_every_waiter(state):
    """Issue 9: with the token endpoint down, 40 waiters once made 65 token requests; now one renewal."""
    tokens, asked = TokenStore(state, wait_seconds=5), []

    async def fetch() -> str:
        asked.append(1)
        await asyncio.sleep(0)
        raise UpstreamUnavailable("token endpoint down", crm_type="salesforce")

    results = await asyncio.gather(*(tokens.renewed("grant", None, fetch) for _ in range(40)), return_exceptions=True)
    assert len(asked) == 1 and all(isinstance(r, UpstreamUnavailable) for r in results)


async def test_a_token_renewed_on_one_replica_is_used_by_the_other(redis_url):
    first, second = RedisState(redis_url), RedisState(redis_url)
    asked = []

    async def fetch() -> str:
        asked.append(1)
        return "tok-new"

    assert await TokenStore(first, wait_seconds=5).renewed("grant", "tok-old", fetch) == "tok-new"
    other = TokenStore(second, wait_seconds=5)
    assert await other.current("grant") == "tok-new"
    assert await other.renewed("grant", "tok-old", fetch) == "tok-new" and len(asked) == 1
    await first.close()
    await second.close()
