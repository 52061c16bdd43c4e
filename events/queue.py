"""The event queue's interface, and the embedded backend for one process (no REDIS_URL).

Two stages, each durable in the Redis backend: an intake stream of published events (deduplicated), then one lane
per (subscriber, object) holding that object's events in order. A lane's head is the only delivery in flight
for it; a sorted set says when each lane is next due, and a worker leases a lane by moving its due time past
the lease, so a crashed worker's lane comes due again. The worker (worker.py) holds all the logic; a backend
only keeps these structures, each step atomic.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from typing import Protocol


class Queue(Protocol):
    """Storage for events, subscriptions, lanes and dead letters."""

    durable: bool  # survives a restart of the service

    async def add(self, event_id: str, dedupe_key: str | None, body: bytes) -> bool:
        """Queue a published event (True), or drop it as a duplicate of a dedupe key seen before (False)."""
        ...

    async def take(self, consumer: str, count: int, claim: bool = True) -> list[tuple[str, str, bytes | None]]:
        """New intake entries for this consumer, and (`claim`) entries another consumer left pending too long.

        Each is (entry id, event id, body), the body None once expired.
        """
        ...

    async def fan_out(self, entry: str, lanes: list[str], event_id: str, now: float) -> None:
        """Append the event to each lane (once, even if the entry is taken again), then acknowledge the entry."""
        ...

    async def append(self, lane: str, event_id: str, body: bytes, now: float) -> None:
        """Append an event to a lane again (a dead letter's replay), its body kept anew."""
        ...

    async def lease(self, now: float, count: int, until: float) -> list[str]:
        """Up to `count` lanes due by `now`, each now leased until `until`."""
        ...

    async def head(self, lane: str) -> tuple[str, int, bytes | None] | None:
        """The lane's first event: its id, the attempts made so far and its body (None once expired)."""
        ...

    async def retry(self, lane: str, event_id: str, attempts: int, due: float) -> None:
        """Record a failed attempt and when to try again (ignored if the lane moved on meanwhile)."""
        ...

    async def finish(self, lane: str, event_id: str, now: float, dead_letter: bytes | None = None) -> None:
        """The head is done (delivered, or dead-lettered with this record): the next event of the lane is due now."""
        ...

    async def save_subscription(self, sub_id: str, record: bytes) -> None: ...
    async def subscription(self, sub_id: str) -> bytes | None: ...
    async def subscriptions(self) -> dict[str, bytes]: ...
    async def delete_subscription(self, sub_id: str) -> bool: ...

    async def dead_letters(self, sub_id: str) -> list[tuple[str, bytes]]:
        """A subscriber's dead letters, oldest first: (event id, record)."""
        ...

    async def pop_dead_letter(self, sub_id: str, event_id: str) -> bytes | None:
        """Remove one dead letter and return its record (None if there is none)."""
        ...

    async def depth(self) -> int:
        """Deliveries waiting: intake entries not yet fanned out plus events in lanes (one per subscriber)."""
        ...

    async def close(self) -> None: ...


def lane_of(sub_id: str, ordering_key: str) -> str:
    """The lane of one subscriber and one object; the subscriber id comes first (see `subscriber_of`)."""
    return f"{sub_id}|{ordering_key}"


def subscriber_of(lane: str) -> str:
    return lane.split("|", 1)[0]


class MemoryQueue:
    """One process's queue: the same steps over dicts. Lost on restart (the service says so at start-up)."""

    durable = False

    def __init__(self, dedupe_max: int = 100_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()  # dedupe keys, oldest dropped beyond dedupe_max
        self._dedupe_max = dedupe_max
        self._bodies: dict[str, bytes] = {}
        self._intake: deque[tuple[str, str]] = deque()
        self._entries = itertools.count(1)
        self._lanes: dict[str, deque[str]] = {}
        self._attempts: dict[str, int] = {}
        self._due: dict[str, float] = {}
        self._subs: dict[str, bytes] = {}
        self._dead: dict[str, OrderedDict[str, bytes]] = {}
        self._refs: dict[str, int] = {}  # lanes holding each event: its body goes with the last one

    async def add(self, event_id: str, dedupe_key: str | None, body: bytes) -> bool:
        if dedupe_key is not None:
            if dedupe_key in self._seen:
                return False
            self._seen[dedupe_key] = None
            if len(self._seen) > self._dedupe_max:
                self._seen.popitem(last=False)
        self._bodies[event_id] = body
        self._intake.append((str(next(self._entries)), event_id))
        return True

    async def take(self, consumer: str, count: int, claim: bool = True) -> list[tuple[str, str, bytes | None]]:
        # One process: an entry is fanned out in the same step that takes it, so nothing is left pending.
        taken = [self._intake.popleft() for _ in range(min(count, len(self._intake)))]
        return [(entry, event_id, self._bodies.get(event_id)) for entry, event_id in taken]

    async def fan_out(self, entry: str, lanes: list[str], event_id: str, now: float) -> None:
        for lane in lanes:
            self._push(lane, event_id, now)
        if not lanes:
            self._bodies.pop(event_id, None)  # no subscriber wanted it

    def _push(self, lane: str, event_id: str, now: float) -> None:
        events = self._lanes.setdefault(lane, deque())
        events.append(event_id)
        self._refs[event_id] = self._refs.get(event_id, 0) + 1
        if len(events) == 1:
            self._due[lane] = now

    async def append(self, lane: str, event_id: str, body: bytes, now: float) -> None:
        self._bodies[event_id] = body
        self._push(lane, event_id, now)

    async def lease(self, now: float, count: int, until: float) -> list[str]:
        due = sorted((when, lane) for lane, when in self._due.items() if when <= now)[:count]
        for _, lane in due:
            self._due[lane] = until
        return [lane for _, lane in due]

    async def head(self, lane: str) -> tuple[str, int, bytes | None] | None:
        events = self._lanes.get(lane)
        if not events:
            self._due.pop(lane, None)
            return None
        return events[0], self._attempts.get(lane, 0), self._bodies.get(events[0])

    async def retry(self, lane: str, event_id: str, attempts: int, due: float) -> None:
        events = self._lanes.get(lane)
        if events and events[0] == event_id:
            self._attempts[lane] = attempts
            self._due[lane] = due

    async def finish(self, lane: str, event_id: str, now: float, dead_letter: bytes | None = None) -> None:
        events = self._lanes.get(lane)
        if not events or events[0] != event_id:
            return  # another worker finished it after this one's lease ran out
        events.popleft()
        self._attempts.pop(lane, None)
        if dead_letter is not None:
            self._dead.setdefault(subscriber_of(lane), OrderedDict())[event_id] = dead_letter
        if events:
            self._due[lane] = now
        else:
            del self._lanes[lane]
            self._due.pop(lane, None)
        self._refs[event_id] -= 1
        if self._refs[event_id] <= 0:
            del self._refs[event_id]
            self._bodies.pop(event_id, None)

    async def save_subscription(self, sub_id: str, record: bytes) -> None:
        self._subs[sub_id] = record

    async def subscription(self, sub_id: str) -> bytes | None:
        return self._subs.get(sub_id)

    async def subscriptions(self) -> dict[str, bytes]:
        return dict(self._subs)

    async def delete_subscription(self, sub_id: str) -> bool:
        self._dead.pop(sub_id, None)
        return self._subs.pop(sub_id, None) is not None

    async def dead_letters(self, sub_id: str) -> list[tuple[str, bytes]]:
        return list(self._dead.get(sub_id, {}).items())

    async def pop_dead_letter(self, sub_id: str, event_id: str) -> bytes | None:
        return self._dead.get(sub_id, {}).pop(event_id, None)

    async def depth(self) -> int:
        return len(self._intake) + sum(self._refs.values())

    async def close(self) -> None:
        return None
