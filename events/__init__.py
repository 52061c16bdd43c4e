"""Unified CRM and handoff events delivered to subscribers (docs/events.md): `publish` is the inbound side's API.

    from events import Event, EventType, publish
    await publish(Event.of(EventType.ticket_created, ticket, vendor="zendesk", vendor_event_id="..."))

`open_events`/`close_events` run in the lifespan: the queue (Redis with REDIS_URL, else embedded), the bus and
the background worker.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from errors import StateUnavailable
from observability import log_event
from settings import Settings
from state import redacted

from .bus import EventBus
from .envelope import ChangedField, Event, EventType, FieldChange
from .queue import MemoryQueue, Queue
from .redis_queue import RedisQueue
from .sqlite_queue import SQLiteQueue
from .worker import Worker, WorkerConfig

__all__ = ["ChangedField", "Event", "EventType", "FieldChange", "publish", "open_events", "close_events"]


@dataclass
class Events:
    """What the lifespan keeps in app.state.events."""

    bus: EventBus
    worker: Worker | None


_current: Events | None = None  # the process's pipeline, for `publish`


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        schedule=tuple(settings.events_retry_schedule_seconds),
        jitter=settings.events_retry_jitter,
        timeout=settings.events_delivery_timeout_seconds,
        concurrency=settings.events_concurrency,
        poll_seconds=settings.events_poll_seconds,
    )


def embedded_path(app_state: Any) -> str | None:
    """The connection store's SQLite file, where the embedded queue keeps its tables; None when the store is in
    memory (sandbox, or no key and no file: nothing is written to disk then) or on PostgreSQL."""
    store = getattr(getattr(app_state, "connections", None), "store", None)
    path = getattr(store, "path", None)
    return path if path and path != ":memory:" else None


async def open_queue(settings: Settings, path: str | None = None) -> Queue:
    """Redis Streams when REDIS_URL is set (checked now: fail fast); else SQLite on `path` (the connection store's
    file, durable, one process), else memory (not durable: said so)."""
    if not settings.redis_url and path:
        embedded = SQLiteQueue(path, dedupe_ttl=settings.events_dedupe_ttl_seconds)
        try:
            await embedded.open()
        except (OSError, sqlite3.Error, StateUnavailable) as exc:  # a read-only disk: say so and keep the service up on memory
            await embedded.close()
            log_event("event_queue_file_failed", logging.WARNING, path=path, error=type(exc).__name__)
            return await open_queue(settings, None)
        detail = "one process only; set REDIS_URL to share the queue between replicas"
        log_event("event_queue", backend="sqlite", path=path, detail=detail)
        return embedded
    if not settings.redis_url:
        detail = ("events are queued in this process's memory and lost on restart (the connection store is "
                  "not an SQLite file); set REDIS_URL, or CONNECTIONS_ENCRYPTION_KEY with an SQLite DATABASE_URL "
                  "(the default), for a durable queue")
        if getattr(settings, "workers", 1) > 1:
            detail += "; with WORKERS>1 each worker has its own subscriptions too"
        log_event("event_queue", logging.WARNING, backend="memory", detail=detail)
        return MemoryQueue()
    url = settings.redis_url.get_secret_value()
    queue = RedisQueue(url, dedupe_ttl=settings.events_dedupe_ttl_seconds, retention=settings.events_retention_seconds,
                       claim_idle_ms=int(settings.events_claim_idle_seconds * 1000))
    try:
        await queue.ping()
    except BaseException:
        await queue.close()
        raise
    log_event("event_queue", backend="redis", url=redacted(url))
    return queue


async def open_events(app_state: Any, settings: Settings) -> None:
    """Open the queue, build the bus, start the worker (unless EVENTS_WORKER is off); Redis joins /ready."""
    global _current
    queue = await open_queue(settings, embedded_path(app_state))
    bus = EventBus(queue, allowed_hosts=app_state.allowed_hosts, sandbox=settings.sandbox, clock=time.time)
    worker = Worker(bus, app_state.http, worker_config(settings)) if settings.events_worker else None
    if worker is not None:
        worker.start()
    app_state.events = _current = Events(bus, worker)
    if queue.durable:  # the in-memory queue cannot fail; Redis and SQLite can
        app_state.readiness_checks["event_queue"] = queue.depth


async def close_events(app_state: Any, settings: Settings) -> None:
    """Stop the worker within EVENTS_SHUTDOWN_SECONDS (deliveries in flight finish or come due again), close the queue."""
    global _current
    events: Events | None = getattr(app_state, "events", None)
    if events is None:
        return
    if events.worker is not None:
        await events.worker.stop(settings.events_shutdown_seconds)
    await events.bus.queue.close()
    if _current is events:
        _current = None


async def publish(event: Event) -> bool:
    """Queue an event for every subscriber of its type; returns once it is durably queued (False: a duplicate)."""
    if _current is None:
        raise StateUnavailable("the event pipeline is not running")
    return await _current.bus.publish(event)
