"""The embedded durable queue (no REDIS_URL): the queue's structures as tables in the service's SQLite file.

Same steps and semantics as MemoryQueue (one process), but each step is one SQLite transaction (BEGIN IMMEDIATE),
committed before it returns: a published event and its lanes survive a restart. A lane's lease is marked, so a
new process makes the leases of the one that stopped due at once (`open`). Tables are `events_*`, beside the
connection store's in the same file (https://www.sqlite.org/lang_transaction.html, https://www.sqlite.org/wal.html).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from errors import StateUnavailable

from .queue import subscriber_of

T = TypeVar("T")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events_seen (key TEXT PRIMARY KEY, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_seen_at ON events_seen (at)",
    "CREATE TABLE IF NOT EXISTS events_bodies (event_id TEXT PRIMARY KEY, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events_intake (entry INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,"
    " consumer TEXT)",
    "CREATE TABLE IF NOT EXISTS events_lanes (seq INTEGER PRIMARY KEY AUTOINCREMENT, lane TEXT NOT NULL,"
    " event_id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_lanes_lane ON events_lanes (lane, seq)",
    "CREATE TABLE IF NOT EXISTS events_due (lane TEXT PRIMARY KEY, due REAL NOT NULL, attempts INTEGER NOT NULL"
    " DEFAULT 0, leased INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS events_due_due ON events_due (due)",
    "CREATE TABLE IF NOT EXISTS events_subs (id TEXT PRIMARY KEY, record BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events_dead (seq INTEGER PRIMARY KEY AUTOINCREMENT, sub_id TEXT NOT NULL,"
    " event_id TEXT NOT NULL, record BLOB NOT NULL, UNIQUE (sub_id, event_id))",
)

HEAD = "SELECT event_id FROM events_lanes WHERE lane = ? ORDER BY seq LIMIT 1"


class SQLiteQueue:
    """One process's queue on an SQLite file: durable, each step one committed transaction off the event loop."""

    durable = True

    def __init__(self, path: str, dedupe_ttl: float = 604_800) -> None:
        self.path = path
        self.dedupe_ttl = dedupe_ttl
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def open(self) -> None:
        """Create the tables; a lane leased by a process that stopped is due at once (its delivery is resumed)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")

        def setup(db: sqlite3.Connection) -> None:
            for statement in SCHEMA:
                db.execute(statement)
            db.execute("UPDATE events_due SET due = 0, leased = 0 WHERE leased = 1")
            db.execute("UPDATE events_intake SET consumer = NULL")

        await self._tx(setup)

    async def _tx(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one write transaction in a thread: committed before this returns, rolled back on error."""

        def locked() -> T:
            assert self._db is not None, "queue not opened"
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self._db)
                    self._db.execute("COMMIT")
                    return result
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:  # a locked or unwritable file: retryable, never a 500
            raise StateUnavailable(f"the event queue is unavailable ({type(exc).__name__}); retry shortly") from None

    async def add(self, event_id: str, dedupe_key: str | None, body: bytes) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            if dedupe_key is not None:
                now = time.time()
                db.execute("DELETE FROM events_seen WHERE at < ?", (now - self.dedupe_ttl,))
                if db.execute("INSERT OR IGNORE INTO events_seen VALUES (?, ?)", (dedupe_key, now)).rowcount == 0:
                    return False
            db.execute("INSERT OR REPLACE INTO events_bodies VALUES (?, ?)", (event_id, body))
            db.execute("INSERT INTO events_intake (event_id) VALUES (?)", (event_id,))
            return True

        return await self._tx(work)

    async def take(self, consumer: str, count: int, claim: bool = True) -> list[tuple[str, str, bytes | None]]:
        def work(db: sqlite3.Connection) -> list[tuple[str, str, bytes | None]]:
            rows = db.execute(
                "SELECT i.entry, i.event_id, b.body FROM events_intake i LEFT JOIN events_bodies b USING (event_id)"
                " WHERE i.consumer IS NULL OR (? AND i.consumer != ?) ORDER BY i.entry LIMIT ?",
                (claim, consumer, count)).fetchall()
            db.executemany("UPDATE events_intake SET consumer = ? WHERE entry = ?", [(consumer, r[0]) for r in rows])
            return [(str(entry), event_id, body) for entry, event_id, body in rows]

        return await self._tx(work)

    async def fan_out(self, entry: str, lanes: list[str], event_id: str, now: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            if db.execute("DELETE FROM events_intake WHERE entry = ?", (int(entry),)).rowcount == 0:
                return  # fanned out already
            for lane in lanes:
                _push(db, lane, event_id, now)
            if not lanes:
                db.execute("DELETE FROM events_bodies WHERE event_id = ?", (event_id,))

        await self._tx(work)

    async def append(self, lane: str, event_id: str, body: bytes, now: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO events_bodies VALUES (?, ?)", (event_id, body))
            _push(db, lane, event_id, now)

        await self._tx(work)

    async def lease(self, now: float, count: int, until: float) -> list[str]:
        def work(db: sqlite3.Connection) -> list[str]:
            lanes = [row[0] for row in db.execute(
                "SELECT lane FROM events_due WHERE due <= ? ORDER BY due, lane LIMIT ?", (now, count))]
            db.executemany("UPDATE events_due SET due = ?, leased = 1 WHERE lane = ?", [(until, lane) for lane in lanes])
            return lanes

        return await self._tx(work)

    async def head(self, lane: str) -> tuple[str, int, bytes | None] | None:
        def work(db: sqlite3.Connection) -> tuple[str, int, bytes | None] | None:
            row = db.execute(HEAD, (lane,)).fetchone()
            if row is None:
                db.execute("DELETE FROM events_due WHERE lane = ?", (lane,))
                return None
            state = db.execute("SELECT attempts FROM events_due WHERE lane = ?", (lane,)).fetchone()
            body = db.execute("SELECT body FROM events_bodies WHERE event_id = ?", (row[0],)).fetchone()
            return row[0], state[0] if state else 0, body[0] if body else None

        return await self._tx(work)

    async def retry(self, lane: str, event_id: str, attempts: int, due: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            if _head(db, lane) == event_id:
                db.execute("UPDATE events_due SET attempts = ?, due = ?, leased = 0 WHERE lane = ?", (attempts, due, lane))

        await self._tx(work)

    async def finish(self, lane: str, event_id: str, now: float, dead_letter: bytes | None = None) -> None:
        def work(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT seq, event_id FROM events_lanes WHERE lane = ? ORDER BY seq LIMIT 1", (lane,)).fetchone()
            if row is None or row[1] != event_id:
                return  # another worker finished it after this one's lease ran out
            db.execute("DELETE FROM events_lanes WHERE seq = ?", (row[0],))
            if dead_letter is not None:
                db.execute("INSERT OR REPLACE INTO events_dead (sub_id, event_id, record) VALUES (?, ?, ?)",
                           (subscriber_of(lane), event_id, dead_letter))
            if _head(db, lane) is not None:
                db.execute("UPDATE events_due SET due = ?, attempts = 0, leased = 0 WHERE lane = ?", (now, lane))
            else:
                db.execute("DELETE FROM events_due WHERE lane = ?", (lane,))
            if db.execute("SELECT 1 FROM events_lanes WHERE event_id = ? LIMIT 1", (event_id,)).fetchone() is None:
                db.execute("DELETE FROM events_bodies WHERE event_id = ?", (event_id,))

        await self._tx(work)

    async def save_subscription(self, sub_id: str, record: bytes) -> None:
        await self._tx(lambda db: db.execute("INSERT OR REPLACE INTO events_subs VALUES (?, ?)", (sub_id, record)))

    async def subscription(self, sub_id: str) -> bytes | None:
        row = await self._tx(lambda db: db.execute("SELECT record FROM events_subs WHERE id = ?", (sub_id,)).fetchone())
        return row[0] if row else None

    async def subscriptions(self) -> dict[str, bytes]:
        return dict(await self._tx(lambda db: db.execute("SELECT id, record FROM events_subs").fetchall()))

    async def delete_subscription(self, sub_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM events_dead WHERE sub_id = ?", (sub_id,))
            return db.execute("DELETE FROM events_subs WHERE id = ?", (sub_id,)).rowcount == 1

        return await self._tx(work)

    async def dead_letters(self, sub_id: str) -> list[tuple[str, bytes]]:
        return await self._tx(lambda db: db.execute(
            "SELECT event_id, record FROM events_dead WHERE sub_id = ? ORDER BY seq", (sub_id,)).fetchall())

    async def pop_dead_letter(self, sub_id: str, event_id: str) -> bytes | None:
        def work(db: sqlite3.Connection) -> bytes | None:
            row = db.execute("SELECT record FROM events_dead WHERE sub_id = ? AND event_id = ?", (sub_id, event_id)).fetchone()
            db.execute("DELETE FROM events_dead WHERE sub_id = ? AND event_id = ?", (sub_id, event_id))
            return row[0] if row else None

        return await self._tx(work)

    async def depth(self) -> int:
        return await self._tx(lambda db: db.execute(
            "SELECT (SELECT COUNT(*) FROM events_intake) + (SELECT COUNT(*) FROM events_lanes)").fetchone()[0])

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)


def _head(db: sqlite3.Connection, lane: str) -> str | None:
    row = db.execute(HEAD, (lane,)).fetchone()
    return row[0] if row else None


def _push(db: sqlite3.Connection, lane: str, event_id: str, now: float) -> None:
    """Append to a lane; a lane that was empty is due now."""
    if _head(db, lane) is None:
        db.execute("INSERT OR REPLACE INTO events_due (lane, due, attempts, leased) VALUES (?, ?, 0, 0)", (lane, now))
    db.execute("INSERT INTO events_lanes (lane, event_id) VALUES (?, ?)", (lane, event_id))
