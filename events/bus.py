"""The event bus: `publish` for the inbound side, and the subscriptions and dead letters the admin API manages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from errors import CRMError, NotFound
from observability import register_secrets

from . import metrics, signing
from .delivery import check_subscriber_url
from .envelope import DeadLetter, Event, Subscription, SubscriptionRequest, utc_now_iso
from .queue import Queue, lane_of


class SubscriptionDisabled(CRMError):
    """A dead letter of a disabled subscription cannot be replayed: register the subscriber again."""

    status_code = 409
    code = "subscription_disabled"


class EventBus:
    """Publishing, subscriptions and dead letters over one queue backend; the worker (worker.py) delivers."""

    def __init__(self, queue: Queue, *, allowed_hosts: frozenset[str], sandbox: bool,
                 clock: Callable[[], float]) -> None:
        self.queue = queue
        self.allowed_hosts = allowed_hosts
        self.sandbox = sandbox
        self.clock = clock
        self.published = asyncio.Event()  # wakes this process's worker at once

    async def publish(self, event: Event) -> bool:
        """Queue an event durably before returning: True if queued, False if its vendor event id was seen already."""
        queued = await self.queue.add(event.id, event.dedupe_key(), event.model_dump_json(exclude_none=True).encode())
        metrics.published(event.type.value, queued)
        if queued:
            self.published.set()
        return queued

    def check_url(self, url: str) -> str:
        return check_subscriber_url(url, allowed_hosts=self.allowed_hosts, sandbox=self.sandbox)

    async def subscribe(self, request: SubscriptionRequest) -> Subscription:
        """Register a subscriber; the answer is the only one that shows its secret."""
        secret = request.secret or signing.new_secret()
        register_secrets([secret])  # never in a log line or an error body
        sub = Subscription(id=f"sub_{uuid.uuid4().hex[:24]}", url=self.check_url(request.url),
                           events=list(dict.fromkeys(request.events)), created_at=utc_now_iso(), secret=secret)
        await self.queue.save_subscription(sub.id, sub.model_dump_json().encode())
        return sub

    async def record(self, sub_id: str) -> Subscription | None:
        """A subscription with its secret (the worker's view), or None."""
        found = await self.queue.subscription(sub_id)
        if found is None:
            return None
        sub = Subscription.model_validate_json(found)
        register_secrets([sub.secret])
        return sub

    async def get(self, sub_id: str) -> Subscription:
        """A subscription as the admin API shows it (no secret), or NotFound."""
        sub = await self.record(sub_id)
        if sub is None:
            raise NotFound(f"no subscription {sub_id}")
        return sub.model_copy(update={"secret": None})

    async def all(self) -> list[Subscription]:
        """Every subscription, with secrets (the worker's view)."""
        subs = [Subscription.model_validate_json(raw) for raw in (await self.queue.subscriptions()).values()]
        return sorted(subs, key=lambda sub: sub.created_at)

    async def delete(self, sub_id: str) -> None:
        """Forget a subscription and its dead letters; its queued events are dropped as they come up."""
        if not await self.queue.delete_subscription(sub_id):
            raise NotFound(f"no subscription {sub_id}")

    async def disable(self, sub: Subscription, reason: str) -> None:
        """Stop delivering to a subscriber (it answered 410 Gone)."""
        update = sub.model_copy(update={"enabled": False, "disabled_reason": reason})
        await self.queue.save_subscription(sub.id, update.model_dump_json().encode())

    async def dead_letters(self, sub_id: str) -> list[DeadLetter]:
        await self.get(sub_id)
        letters = [DeadLetter.model_validate_json(raw) for _, raw in await self.queue.dead_letters(sub_id)]
        return sorted(letters, key=lambda letter: letter.dead_at)

    async def replay(self, sub_id: str, event_id: str) -> DeadLetter:
        """Queue a dead letter again for its subscriber, at the end of its object's order."""
        sub = await self.get(sub_id)
        if not sub.enabled:
            raise SubscriptionDisabled(f"subscription {sub_id} is disabled ({sub.disabled_reason}); register it again")
        raw = await self.queue.pop_dead_letter(sub_id, event_id)
        if raw is None:
            raise NotFound(f"no dead letter {event_id} for subscription {sub_id}")
        letter = DeadLetter.model_validate_json(raw)
        body = letter.event.model_dump_json(exclude_none=True).encode()
        await self.queue.append(lane_of(sub_id, letter.event.ordering_key()), event_id, body, self.clock())
        self.published.set()
        return letter
