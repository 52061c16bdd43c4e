"""The PostgreSQL backend (DATABASE_URL=postgresql://...): asyncpg with a small pool, the same SQL as SQLite.

Migrations run in one transaction under an advisory lock, so replicas starting together apply each step once.
"""

from __future__ import annotations

import datetime
import re

import asyncpg

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

MIGRATION_LOCK = 0x636F6E6E  # pg_advisory_xact_lock id of this service's migrations ("conn")


def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's $1, $2, ... (the SQL here has no `?` inside literals)."""
    count = 0

    def next_number(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    return re.sub(r"\?", next_number, sql)


class PostgresStore:
    """ConnectionStore on PostgreSQL."""

    dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "store not opened"
        return self._pool

    async def open(self) -> None:
        """Connect (a small pool) and apply pending migrations."""
        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size, command_timeout=10)
        async with self.pool.acquire() as db, db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await db.execute(SCHEMA_VERSION_TABLE)
            current = await db.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements:
                        await db.execute(statement)
                    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
                    await db.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", version, now)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def schema_version(self) -> int:
        return await self.pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")

    async def get(self, connection_id: str) -> StoredConnection | None:
        row = await self.pool.fetchrow(numbered(f"{SELECT} WHERE id = ?"), connection_id)
        return StoredConnection(*row) if row else None

    async def list(self, limit: int, after: str | None = None) -> list[StoredConnection]:
        rows = await self.pool.fetch(numbered(LIST), after, after, limit)
        return [StoredConnection(*row) for row in rows]

    async def count(self) -> int:
        return await self.pool.fetchval("SELECT COUNT(*) FROM connections")

    async def insert(self, row: StoredConnection) -> None:
        try:
            await self.pool.execute(numbered(INSERT), *row.values())
        except asyncpg.UniqueViolationError:
            raise DuplicateId(row.id) from None

    async def update(self, row: StoredConnection, expected_updated_at: str | None = None) -> bool:
        status = await self.pool.execute(numbered(UPDATE), *update_args(row, expected_updated_at))
        return status == "UPDATE 1"

    async def delete(self, connection_id: str) -> bool:
        return await self.pool.execute("DELETE FROM connections WHERE id = $1", connection_id) == "DELETE 1"

    async def get_meta(self, name: str) -> str | None:
        return await self.pool.fetchval("SELECT value FROM connections_meta WHERE name = $1", name)

    async def set_meta(self, name: str, value: str) -> None:
        await self.pool.execute(numbered(UPSERT_META), name, value)
