"""Helpers for the event tests: a loopback subscriber that fails on demand, a clock tests move by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from events.bus import EventBus
from events.envelope import Event, EventType, SubscriptionRequest
from events.queue import MemoryQueue, Queue
from events.redis_queue import RedisQueue
from events.sqlite_queue import SQLiteQueue
from events.worker import Worker, WorkerConfig
from models import Ticket

START = 1_764_600_000.0


@dataclass
class Clock:
    """The worker's time: moved by the test, never waited for."""

    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Subscriber:
    """A loopback webhook receiver: answers `plan` statuses in turn (then 200) and records every request."""

    url: str = ""
    plan: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    hold: asyncio.Event | None = None  # when set, each request waits for it (a slow subscriber)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.plan.pop(0) if self.plan else 200
        record = {"headers": dict(request.headers), "body": body, "status": status, "event": orjson.loads(body),
                  "answered": False}
        self.received.append(record)
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        record["answered"] = True
        return web.Response(status=status)

    def delivered(self) -> list[str]:
        """Event ids of the 2xx answers sent, in arrival order."""
        return [r["event"]["id"] for r in self.received if r["answered"] and 200 <= r["status"] < 300]


@pytest.fixture(name="subscriber")
async def subscriber_fixture() -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    app = web.Application()
    app.router.add_post("/hook", sub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sub.url = f"http://127.0.0.1:{port}/hook"
    yield sub
    if sub.hold is not None:
        sub.hold.set()
    await runner.cleanup()


def make_queue(kind: str, redis_url: str | None = None, **options: Any) -> Queue:
    if kind == "memory":
        return MemoryQueue()
    if kind == "sqlite":
        return SQLiteQueue(**options)
    assert redis_url is not None
    defaults = {"dedupe_ttl": 3600, "retention": 86400, "claim_idle_ms": 60_000}
    return RedisQueue(redis_url, **{**defaults, **options})


async def open_sqlite(path: str) -> SQLiteQueue:
    """An embedded durable queue on `path`, opened (as a new process would)."""
    queue = SQLiteQueue(path)
    await queue.open()
    return queue


@pytest.fixture(name="queue", params=["memory", "sqlite", "redis"])
async def queue_fixture(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Queue]:
    """Each backend in turn: the in-memory queue, the SQLite one on a fresh file, and a real Redis (emptied first)."""
    if request.param == "sqlite":
        q: Queue = await open_sqlite(str(tmp_path / "events.db"))
    else:
        q = make_queue(request.param, request.getfixturevalue("redis_url") if request.param == "redis" else None)
    yield q
    await q.close()


CONFIG = WorkerConfig(schedule=(0, 5, 300, 1800, 7200, 18000, 36000, 36000), jitter=0.2, timeout=2.0,
                      concurrency=8, poll_seconds=0.05)


def make_worker(queue: Queue, session: Any, clock: Clock, config: WorkerConfig = CONFIG, **bus_options: Any) -> Worker:
    """A worker over `queue` with no jitter (rand 0.5) and the test's clock; loopback allowed as in sandbox mode."""
    options = {"allowed_hosts": frozenset(), "sandbox": True, **bus_options}
    bus = EventBus(queue, clock=clock, **options)
    return Worker(bus, session, config, clock=clock, rand=lambda: 0.5)


def ticket_event(object_id: str = "42", *, status: str = "open", vendor_event_id: str | None = None,
                 connection_id: str = "default", event_type: EventType = EventType.ticket_updated) -> Event:
    ticket = Ticket(id=object_id, subject="Refund", description="Card charged twice", status=status, priority="high")
    changes = {"status": {"old": "new", "new": status}} if event_type is EventType.ticket_updated else None
    return Event.of(event_type, ticket, vendor="zendesk", vendor_event_id=vendor_event_id,
                    connection_id=connection_id, changes=changes)


async def subscribe(worker: Worker, url: str, events: list[EventType] | None = None, secret: str | None = None):
    return await worker.bus.subscribe(SubscriptionRequest(url=url, events=events or list(EventType), secret=secret))


async def drain(worker: Worker, rounds: int = 50) -> int:
    """Step until nothing is due now; the lanes attempted."""
    total = 0
    for _ in range(rounds):
        done = await worker.step()
        if not done:
            return total
        total += done
    raise AssertionError("the worker still had work after many rounds")
