"""The delivery worker: fans published events out to subscribers' lanes and delivers each lane's head in order.

It runs in the lifespan as one background task per process, with at most `concurrency` deliveries in flight;
every replica runs one against the same Redis. The clock, the sleep and the jitter's randomness are injected,
so tests drive it step by step with no timing sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import aiohttp

from errors import CRMError, InvalidConfig
from observability import log_event

from . import metrics
from .bus import EventBus
from .delivery import Attempt, Outcome, deliver
from .envelope import DeadLetter, Event
from .queue import lane_of, subscriber_of

FAN_OUT_BATCH = 100


@dataclass(frozen=True)
class WorkerConfig:
    """The delivery policy (settings.py EVENTS_*)."""

    schedule: tuple[float, ...]  # seconds before each attempt after a failure; its length is the number of attempts
    jitter: float  # each wait is stretched or shrunk by up to this share
    timeout: float  # one attempt
    concurrency: int
    poll_seconds: float  # how often an idle worker looks for work other replicas published or retries now due

    @property
    def lease_seconds(self) -> float:
        """Long enough for any attempt to finish; after that a crashed worker's lane is due again."""
        return self.timeout * 2 + 5


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Worker:
    """Fan-out and delivery for one process; `step` does one round (tests), `start`/`stop` run it in the background."""

    def __init__(
        self, bus: EventBus, session: aiohttp.ClientSession, config: WorkerConfig, *,
        clock: Callable[[], float] = time.time, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random, consumer: str | None = None,
    ) -> None:
        self.bus, self.queue, self.session, self.config = bus, bus.queue, session, config
        self.clock, self.sleep, self.rand = clock, sleep, rand
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()

    def delay(self, attempts: int) -> float | None:
        """Seconds to wait after `attempts` failed attempts, jittered; None when the schedule is used up."""
        if attempts >= len(self.config.schedule):
            return None
        base = self.config.schedule[attempts]
        return max(0.0, base * (1 + self.config.jitter * (2 * self.rand() - 1)))

    async def fan_out(self, claim: bool = True) -> int:
        """Put newly published events (and with `claim`, any a crashed replica left pending) into subscribers' lanes."""
        entries = await self.queue.take(self.consumer, FAN_OUT_BATCH, claim)
        if not entries:
            return 0
        subs = [sub for sub in await self.bus.all() if sub.enabled]
        for entry, event_id, body in entries:
            lanes: list[str] = []
            try:
                event = Event.model_validate_json(body) if body is not None else None
            except ValueError:  # written by a different version: acknowledged, not left to block the stream
                log_event("event_unreadable", logging.ERROR, event_id=event_id)
                event = None
            if event is not None:
                lanes = [lane_of(sub.id, event.ordering_key()) for sub in subs if event.type in sub.events]
            await self.queue.fan_out(entry, lanes, event_id, self.clock())
        return len(entries)

    async def deliver_lane(self, lane: str) -> None:
        """Attempt the head of one leased lane and record the outcome: done, retry later, or dead letter."""
        head = await self.queue.head(lane)
        if head is None:
            return
        event_id, attempts, body = head
        sub = await self.bus.record(subscriber_of(lane))
        if sub is None or body is None:  # the subscription was deleted, or the event outlived EVENTS_RETENTION
            await self.queue.finish(lane, event_id, self.clock())
            metrics.delivery("dropped")
            return
        if not sub.enabled:
            result = Attempt(Outcome.gone, f"subscription disabled: {sub.disabled_reason}")
        else:
            try:
                url = self.bus.check_url(sub.url)  # again at delivery: CONNECTORS_ALLOWED_HOSTS may have changed
            except InvalidConfig as exc:
                result = Attempt(Outcome.failed, exc.message)
            else:
                result = await deliver(self.session, url, sub.secret or "", event_id, body, int(self.clock()),
                                       self.config.timeout)
            attempts += 1
            metrics.delivery(result.outcome.value)
        now = self.clock()
        wait = self.delay(attempts) if result.outcome is Outcome.failed else None
        if result.outcome is Outcome.delivered:
            await self.queue.finish(lane, event_id, now)
            return
        if wait is not None:
            await self.queue.retry(lane, event_id, attempts, now + wait)
            return
        if result.outcome is Outcome.gone and sub.enabled:
            await self.bus.disable(sub, "410 Gone")
        letter = DeadLetter(event=Event.model_validate_json(body), attempts=attempts, last_error=result.detail, dead_at=iso(now))
        await self.queue.finish(lane, event_id, now, letter.model_dump_json(exclude_none=True).encode())
        metrics.delivery("dead_lettered")
        log_event("event_dead_lettered", logging.WARNING, subscription=sub.id, event_id=event_id,
                  attempts=attempts, detail=result.detail)

    async def _deliver_safely(self, lane: str) -> None:
        """A store outage or a bug in one delivery is logged; the lane's lease runs out and it is tried again."""
        try:
            await self.deliver_lane(lane)
        except CRMError as exc:
            log_event("event_delivery_deferred", logging.WARNING, lane=lane, detail=exc.message)
        except Exception:
            logging.getLogger("connectors").exception("event delivery failed")

    async def _lease(self, count: int) -> list[str]:
        now = self.clock()
        return await self.queue.lease(now, count, now + self.config.lease_seconds)

    async def step(self) -> int:
        """One round: fan out, then deliver every lane that is due (up to `concurrency`); the lanes attempted."""
        await self.fan_out()
        lanes = await self._lease(self.config.concurrency)
        await asyncio.gather(*(self._deliver_safely(lane) for lane in lanes))
        return len(lanes)

    async def run(self) -> None:
        """Loop until stopped: keep up to `concurrency` deliveries in flight; idle, wait for a publish or the poll."""
        last_poll, backlog = float("-inf"), False
        while not self._stopping:
            # The stream is read on a local publish, while a batch came back full, and at each poll (other
            # replicas' events, crashed consumers' entries): not after every delivery.
            polling = time.monotonic() - last_poll >= self.config.poll_seconds
            try:
                if polling or backlog or self.bus.published.is_set():
                    self.bus.published.clear()
                    backlog = await self.fan_out(claim=polling) >= FAN_OUT_BATCH
                for lane in await self._lease(self.config.concurrency - len(self._inflight)):
                    task = asyncio.create_task(self._deliver_safely(lane))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                if polling:
                    last_poll = time.monotonic()
                    metrics.depth(await self.queue.depth())
            except CRMError as exc:  # Redis away: keep trying at the poll interval
                log_event("event_worker_waiting", logging.WARNING, detail=exc.message)
            except Exception:  # a bug must not end deliveries for the life of the process
                logging.getLogger("connectors").exception("event worker round failed")
            if self._stopping:
                break
            waits = {asyncio.create_task(self.bus.published.wait()), asyncio.create_task(self.sleep(self.config.poll_seconds))}
            await asyncio.wait(waits | self._inflight, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="event-worker")

    async def stop(self, timeout: float) -> None:
        """Stop taking work, let deliveries in flight finish for up to `timeout`, cancel the rest (their lanes come due again)."""
        self._stopping = True
        self.bus.published.set()
        deadline = time.monotonic() + timeout  # one bound for the loop and the deliveries together
        if self._task is not None:
            await asyncio.wait([self._task], timeout=timeout)
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=max(0.0, deadline - time.monotonic()))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
