"""The event pipeline on both backends: signatures, retries, 410, dead letters, duplicates, order, SSRF, restarts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

import pytest

from errors import InvalidConfig
from events.bus import SubscriptionDisabled
from events.delivery import check_subscriber_url
from events.envelope import Event, EventType
from events.queue import Queue
from events.signing import sign
from events.sqlite_queue import SQLiteQueue
from events.worker import WorkerConfig
from models import Customer, HandoffResponse
from tests.events_helpers import (
    CONFIG,
    Clock,
    drain,
    make_queue,
    make_worker,
    open_sqlite,
    subscribe,
    ticket_event,
)
from tests.events_helpers import queue_fixture  # noqa: F401  (the `queue` fixture)
from tests.events_helpers import subscriber_fixture  # noqa: F401  (the `subscriber` fixture)

# The Standard Webhooks specification's published test vector (standard-webhooks/standard-webhooks, libraries' tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_reproduces_the_specs_test_vector():
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


async def test_a_delivery_is_signed_per_the_spec(queue, subscriber, http_session):
    clock = Clock()
    worker = make_worker(queue, http_session, clock)
    sub = await subscribe(worker, subscriber.url, secret=SPEC_SECRET)
    event = ticket_event()
    assert await worker.bus.publish(event)
    assert await drain(worker) == 1
    [got] = subscriber.received
    headers, body = got["headers"], got["body"]
    assert headers["webhook-id"] == event.id and headers["webhook-timestamp"] == str(int(clock.now))
    assert headers["Content-Type"] == "application/json"
    # Computed here from the spec's text, not with the service's code: HMAC-SHA256 over "{id}.{timestamp}.{body}".
    key = base64.b64decode(sub.secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == expected
    assert Event.model_validate_json(body) == event


async def test_a_subscriber_down_for_a_while_gets_the_event_once_it_recovers(queue, subscriber, http_session):
    clock = Clock()
    worker = make_worker(queue, http_session, clock)
    await subscribe(worker, subscriber.url)
    subscriber.plan = [503, 500, 502]
    event = ticket_event()
    await worker.bus.publish(event)
    assert await drain(worker) == 1  # attempt 1 (immediately): 503
    for wait in (5, 300):  # the schedule's waits (no jitter in the test: rand() = 0.5)
        clock.advance(wait - 0.01)
        assert await worker.step() == 0  # not due yet
        clock.advance(0.01)
        assert await drain(worker) == 1
    clock.advance(1800)
    assert await drain(worker) == 1  # attempt 4: 200
    assert [r["status"] for r in subscriber.received] == [503, 500, 502, 200]
    assert {r["headers"]["webhook-id"] for r in subscriber.received} == {event.id}  # the same message each time
    assert len({r["headers"]["webhook-timestamp"] for r in subscriber.received}) == 4  # each attempt signed anew
    assert await queue.depth() == 0
    assert await worker.bus.dead_letters((await worker.bus.all())[0].id) == []


def test_retry_waits_follow_the_schedule_with_jitter():
    worker = make_worker(make_queue("memory"), None, Clock())
    assert [worker.delay(n) for n in range(1, 9)] == [5, 300, 1800, 7200, 18000, 36000, 36000, None]
    worker.rand = lambda: 0.0
    assert worker.delay(1) == pytest.approx(4.0)
    worker.rand = lambda: 1.0
    assert worker.delay(2) == pytest.approx(360.0)


async def test_410_gone_disables_the_subscription(queue, subscriber, http_session):
    worker = make_worker(queue, http_session, Clock())
    sub = await subscribe(worker, subscriber.url)
    subscriber.plan = [410]
    first = ticket_event("1")
    await worker.bus.publish(first)
    await drain(worker)
    assert (await worker.bus.get(sub.id)).enabled is False
    [letter] = await worker.bus.dead_letters(sub.id)
    assert letter.event.id == first.id and letter.attempts == 1 and "410" in letter.last_error
    await worker.bus.publish(ticket_event("2"))
    await drain(worker)
    assert len(subscriber.received) == 1  # nothing more goes to a disabled subscriber
    with pytest.raises(SubscriptionDisabled):
        await worker.bus.replay(sub.id, first.id)


async def test_dead_letter_after_the_last_attempt_then_replay(queue, subscriber, http_session):
    clock = Clock()
    worker = make_worker(queue, http_session, clock, WorkerConfig(**{**CONFIG.__dict__, "schedule": (0, 10, 20)}))
    sub = await subscribe(worker, subscriber.url)
    subscriber.plan = [500, 500, 504]
    event = ticket_event()
    later = ticket_event()  # the same object: waits behind the dead one, then goes
    await worker.bus.publish(event)
    await worker.bus.publish(later)
    await drain(worker)
    clock.advance(10)
    await drain(worker)
    clock.advance(20)
    await drain(worker)  # attempt 3 fails: dead letter; the next event of the object is delivered
    [letter] = await worker.bus.dead_letters(sub.id)
    assert letter.event == event and letter.attempts == 3 and letter.last_error == "HTTP 504"
    assert subscriber.delivered() == [later.id]
    replayed = await worker.bus.replay(sub.id, event.id)
    assert replayed.event.id == event.id
    await drain(worker)
    assert subscriber.delivered() == [later.id, event.id]
    assert await worker.bus.dead_letters(sub.id) == []
    assert await queue.depth() == 0


async def test_duplicates_of_a_vendor_event_are_dropped_per_connection(queue, subscriber, http_session):
    worker = make_worker(queue, http_session, Clock())
    await subscribe(worker, subscriber.url)
    assert await worker.bus.publish(ticket_event(vendor_event_id="v-1"))
    assert not await worker.bus.publish(ticket_event(vendor_event_id="v-1"))  # the vendor's retry
    assert await worker.bus.publish(ticket_event(vendor_event_id="v-1", connection_id="acme"))  # another tenant
    assert await worker.bus.publish(ticket_event())  # no vendor id: never a duplicate
    await drain(worker)
    assert len(subscriber.delivered()) == 3


async def test_events_of_one_object_arrive_in_order_while_others_pass(queue, subscriber, http_session):
    clock = Clock()
    worker = make_worker(queue, http_session, clock)
    await subscribe(worker, subscriber.url)
    subscriber.plan = [503]  # the first request fails: object 1's first event
    a1, a2, a3 = (ticket_event("1", status=s) for s in ("open", "pending", "solved"))
    b1 = ticket_event("2")
    for event in (a1, a2, a3, b1):
        await worker.bus.publish(event)
    await drain(worker)
    assert subscriber.delivered() == [b1.id]  # object 2 is not held up by object 1's retry
    clock.advance(5)
    await drain(worker)
    assert subscriber.delivered() == [b1.id, a1.id, a2.id, a3.id]


async def test_subscribers_get_only_the_types_they_asked_for(queue, subscriber, http_session):
    worker = make_worker(queue, http_session, Clock())
    await subscribe(worker, subscriber.url, events=[EventType.ticket_created])
    created = ticket_event(event_type=EventType.ticket_created)
    await worker.bus.publish(ticket_event())
    await worker.bus.publish(created)
    await drain(worker)
    assert subscriber.delivered() == [created.id]
    assert await queue.depth() == 0


@pytest.mark.parametrize("url", [
    "http://hooks.example.com/x",  # not https
    "https://169.254.169.254/latest/meta-data",
    "https://10.0.0.5/hook",
    "https://localhost/hook",
    "https://internal/hook",  # one label: an internal name
    "https://user:pw@hooks.example.com/x",
    "https://hooks.example.com/x?token=1",
    "https://hooks.example.com:8443/x",  # a port only for a listed host
    "http://127.0.0.1:9000/hook",  # loopback outside sandbox mode
    "ftp://hooks.example.com/x",
    "https://hooks.example.com\x00.evil.com/",
    "https://2130706433/",
])
def test_subscriber_urls_are_refused_by_the_ssrf_guard(url):
    with pytest.raises(InvalidConfig):
        check_subscriber_url(url, allowed_hosts=frozenset(), sandbox=False)


def test_subscriber_urls_accepted():
    assert check_subscriber_url("https://hooks.example.com/a/b", allowed_hosts=frozenset(), sandbox=False)
    assert check_subscriber_url("http://127.0.0.1:9000/hook", allowed_hosts=frozenset(), sandbox=True)
    listed = frozenset({"hooks.internal:8080"})
    assert check_subscriber_url("http://hooks.internal:8080/x", allowed_hosts=listed, sandbox=False)


async def test_the_guard_runs_again_at_delivery(queue, subscriber, http_session):
    clock = Clock()
    registered = make_worker(queue, http_session, clock)
    await subscribe(registered, subscriber.url)
    restarted = make_worker(queue, http_session, clock, sandbox=False)  # the next start no longer allows loopback
    await restarted.bus.publish(ticket_event())
    await drain(restarted)
    assert subscriber.received == []
    assert await queue.depth() == 1  # kept for a retry: the operator may list the host again
    clock.advance(5)
    await drain(registered)
    assert len(subscriber.delivered()) == 1


async def test_a_deleted_subscription_gets_nothing_more(queue, subscriber, http_session):
    worker = make_worker(queue, http_session, Clock())
    sub = await subscribe(worker, subscriber.url)
    await worker.bus.publish(ticket_event())
    await worker.fan_out()
    await worker.bus.delete(sub.id)
    await drain(worker)
    assert subscriber.received == [] and await queue.depth() == 0


async def test_a_worker_stopped_mid_way_leaves_the_rest_to_the_next_exactly_once(request, queue, subscriber, http_session):
    events = [ticket_event(str(n % 4), status="open") for n in range(20)]
    first = make_worker(queue, http_session, Clock(), WorkerConfig(**{**CONFIG.__dict__, "concurrency": 2}))
    await subscribe(first, subscriber.url)
    for event in events:
        await first.bus.publish(event)
    gate = subscriber.hold = asyncio.Event()
    first.start()
    while len(subscriber.received) < 2:  # both deliveries in flight are held by the subscriber
        subscriber.arrived.clear()
        await subscriber.arrived.wait()
    stopping = asyncio.create_task(first.stop(timeout=5))
    gate.set()  # the two in flight finish during the graceful stop, and are recorded
    subscriber.hold = None
    await stopping
    assert 2 <= len(subscriber.delivered()) < 20
    # The next process: a new client on the same server (Redis) or a new queue on the same file (SQLite); for
    # memory the same queue (one process).
    if isinstance(queue, SQLiteQueue):
        await queue.close()
        second_queue: Queue = await open_sqlite(queue.path)
    else:
        second_queue = queue if queue.durable is False else make_queue("redis", request.getfixturevalue("redis_url"))
    try:
        second = make_worker(second_queue, http_session, Clock())
        await drain(second)
    finally:
        if second_queue is not queue:
            await second_queue.close()
    delivered = subscriber.delivered()
    assert sorted(delivered) == sorted(e.id for e in events)  # every event exactly once
    for obj in "0123":  # and each object's in order
        assert [i for i in delivered if i in {e.id for e in events if e.object_id == obj}] == [
            e.id for e in events if e.object_id == obj]


async def test_a_crashed_replicas_work_is_claimed_by_another(redis_url, subscriber, http_session):
    clock = Clock()
    crashed_queue = make_queue("redis", redis_url)
    crashed = make_worker(crashed_queue, http_session, clock)
    await subscribe(crashed, subscriber.url)
    intake, leased = ticket_event("1"), ticket_event("2")
    await crashed.bus.publish(leased)
    await crashed.fan_out()
    assert await crashed_queue.lease(clock(), 10, clock() + CONFIG.lease_seconds)  # took a lane, then died
    await crashed.bus.publish(intake)
    assert await crashed_queue.take(crashed.consumer, 10)  # read from the stream, then died before fanning out
    await crashed_queue.close()
    survivor_queue = make_queue("redis", redis_url, claim_idle_ms=0)  # the idle timeout has passed
    try:
        survivor = make_worker(survivor_queue, http_session, clock)
        await drain(survivor)
        assert subscriber.delivered() == [intake.id]  # claimed from the crashed consumer's pending entries
        clock.advance(CONFIG.lease_seconds)
        await drain(survivor)
        assert sorted(subscriber.delivered()) == sorted([intake.id, leased.id])
        assert await survivor_queue.depth() == 0
    finally:
        await survivor_queue.close()


async def test_publish_survives_a_restart_of_the_service(redis_url, subscriber, http_session):
    """publish returns after Redis has the event: a new process (new client) delivers it."""
    before = make_queue("redis", redis_url)
    worker = make_worker(before, http_session, Clock())
    await subscribe(worker, subscriber.url)
    event = ticket_event(vendor_event_id="v-9")
    await worker.bus.publish(event)
    await before.close()
    after = make_queue("redis", redis_url)
    try:
        restarted = make_worker(after, http_session, Clock())
        assert not await restarted.bus.publish(ticket_event(vendor_event_id="v-9"))  # still known as a duplicate
        await drain(restarted)
    finally:
        await after.close()
    assert subscriber.delivered() == [event.id]


async def test_the_embedded_queue_survives_a_restart_mid_delivery(tmp_path, subscriber, http_session):
    """SQLite: publish commits; a process that died holding leases and an unfanned entry is resumed by the next."""
    path = str(tmp_path / "connectors.db")
    clock = Clock()
    before = await open_sqlite(path)
    crashed = make_worker(before, http_session, clock)
    await subscribe(crashed, subscriber.url)
    leased, intake = ticket_event("1", vendor_event_id="v-1"), ticket_event("2", vendor_event_id="v-2")
    await crashed.bus.publish(leased)
    await crashed.fan_out()
    assert await before.lease(clock(), 10, clock() + CONFIG.lease_seconds)  # took a lane, then died
    await crashed.bus.publish(intake)
    assert await before.take(crashed.consumer, 10)  # took the entry, then died before fanning out
    await before.close()
    after = await open_sqlite(path)
    try:
        restarted = make_worker(after, http_session, clock)  # the same clock: leases resumed, not waited out
        assert not await restarted.bus.publish(ticket_event(vendor_event_id="v-1"))  # still known as a duplicate
        await drain(restarted)
        assert sorted(subscriber.delivered()) == sorted([leased.id, intake.id])  # each once
        assert await after.depth() == 0
    finally:
        await after.close()


def test_the_envelope_holds_the_object_its_type_names():
    event = ticket_event()
    assert event.object_id == "42" and set(event.data) == {"ticket"}
    assert event.ordering_key() == "default|zendesk|ticket|42"
    with pytest.raises(ValueError):
        Event(type=EventType.customer_updated, vendor="zendesk", object_id="1", data=event.data)
    handoff = Event.of(EventType.handoff_queued, HandoffResponse(handoff_id="PJ0M", status="queued", queue_position=2),
                       vendor="livechat", vendor_event_id="lc-1")
    assert handoff.object_id == "PJ0M" and handoff.data["handoff"]["queue_position"] == 2
    customer = Event.of(EventType.customer_updated, Customer(id="501", name="Maria"), vendor="hubspot", connection_id="acme")
    assert customer.ordering_key() == "acme|hubspot|customer|501" and customer.dedupe_key() is None


async def test_an_unreadable_intake_entry_is_acknowledged_not_left_to_block(queue, subscriber, http_session):
    worker = make_worker(queue, http_session, Clock())
    await subscribe(worker, subscriber.url)
    await queue.add("evt_broken", None, b'{"not": "an envelope"}')
    good = ticket_event()
    await worker.bus.publish(good)
    await drain(worker)
    assert subscriber.delivered() == [good.id] and await queue.depth() == 0


async def test_stop_is_bounded_by_a_hung_subscriber_and_the_delivery_comes_due_again(queue, subscriber, http_session):
    clock = Clock()
    first = make_worker(queue, http_session, clock)
    await subscribe(first, subscriber.url)
    event = ticket_event()
    await first.bus.publish(event)
    gate = subscriber.hold = asyncio.Event()  # never answers while the first worker runs
    first.start()
    await subscriber.arrived.wait()
    await first.stop(timeout=0.05)  # the bound: the hung delivery is cancelled, nothing recorded
    assert first._task is not None and first._task.done() and not first._inflight
    subscriber.hold = None
    second = make_worker(queue, http_session, clock)
    assert await drain(second) == 0  # still leased by the first
    clock.advance(CONFIG.lease_seconds)
    assert await drain(second) == 1
    assert subscriber.delivered() == [event.id] and len(subscriber.received) == 2  # the hung try was never answered
    gate.set()  # the abandoned request's handler may end now


async def test_without_redis_the_queue_lives_in_the_connection_stores_sqlite_file(tmp_path):
    """The lifespan's choice: the store's file (durable); an in-memory store keeps the queue in memory."""
    from types import SimpleNamespace

    from events import embedded_path, open_queue
    from tests.conftest import make_settings

    settings = make_settings(sandbox=True)
    on_file = SimpleNamespace(connections=SimpleNamespace(store=SimpleNamespace(path=str(tmp_path / "c.db"))))
    in_memory = SimpleNamespace(connections=SimpleNamespace(store=SimpleNamespace(path=":memory:")))
    assert embedded_path(in_memory) is None and embedded_path(SimpleNamespace()) is None
    queue = await open_queue(settings, embedded_path(on_file))
    try:
        assert isinstance(queue, SQLiteQueue) and queue.durable and (tmp_path / "c.db").exists()
    finally:
        await queue.close()
    assert not (await open_queue(settings, None)).durable
