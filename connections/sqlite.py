"""The embedded backend: the stdlib sqlite3 on one connection, each call in a worker thread (off the event loop).

A fresh machine needs no server: DATABASE_URL unset means sqlite:///./data/connectors.db, its folder created.
"""

from __future__ import annotations

import asyncio
import datetime
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from connections.store import (
    INSERT,
    LIST,
    MIGRATIONS,
    SCHEMA_VERSION_TABLE,
    SELECT,
    UPDATE,
    UPSERT_META,
    DuplicateId,
    StoredConnection,
    update_args,
)

T = TypeVar("T")


class SQLiteStore:
    """ConnectionStore on SQLite; one connection behind a lock (writes are rare, reads are cached above)."""

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        path = url.split("://", 1)[1]
        self.path = ":memory:" if path in (":memory:", "/:memory:", "") else path.removeprefix("/")
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            assert self._db is not None, "store not opened"
            with self._lock:
                return work(self._db)

        return await asyncio.to_thread(locked)

    async def open(self) -> None:
        """Open (creating the file and its folder) and apply pending migrations."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below), autocommit otherwise.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")  # readers (other workers) never wait on a writer
        await self._run(_migrate)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def schema_version(self) -> int:
        return await self._run(_version)

    async def get(self, connection_id: str) -> StoredConnection | None:
        row = await self._run(lambda db: db.execute(f"{SELECT} WHERE id = ?", (connection_id,)).fetchone())
        return StoredConnection(*row) if row else None

    async def list(self, limit: int, after: str | None = None) -> list[StoredConnection]:
        rows = await self._run(lambda db: db.execute(LIST, (after, after, limit)).fetchall())
        return [StoredConnection(*row) for row in rows]

    async def count(self) -> int:
        return await self._run(lambda db: db.execute("SELECT COUNT(*) FROM connections").fetchone()[0])

    async def insert(self, row: StoredConnection) -> None:
        try:
            await self._run(lambda db: db.execute(INSERT, row.values()))
        except sqlite3.IntegrityError:
            raise DuplicateId(row.id) from None

    async def update(self, row: StoredConnection, expected_updated_at: str | None = None) -> bool:
        cursor = await self._run(lambda db: db.execute(UPDATE, update_args(row, expected_updated_at)))
        return cursor.rowcount == 1

    async def delete(self, connection_id: str) -> bool:
        cursor = await self._run(lambda db: db.execute("DELETE FROM connections WHERE id = ?", (connection_id,)))
        return cursor.rowcount == 1

    async def get_meta(self, name: str) -> str | None:
        row = await self._run(lambda db: db.execute("SELECT value FROM connections_meta WHERE name = ?", (name,)).fetchone())
        return row[0] if row else None

    async def set_meta(self, name: str, value: str) -> None:
        await self._run(lambda db: db.execute(UPSERT_META, (name, value)))


def _version(db: sqlite3.Connection) -> int:
    db.execute(SCHEMA_VERSION_TABLE)
    return db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]


def _migrate(db: sqlite3.Connection) -> Any:
    """Apply the steps past the recorded version in one write transaction (another process waits on the lock)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        current = _version(db)
        for version, statements in MIGRATIONS:
            if version > current:
                for statement in statements:
                    db.execute(statement)
                now = datetime.datetime.now(datetime.timezone.utc).isoformat()
                db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, now))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
