"""The connection store's interface, its row, its migrations, and which backend a DATABASE_URL names.

Both backends run the same SQL (TEXT columns, ISO timestamps, JSON as text) with `?` placeholders, so a
migration is written once for SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

DEFAULT_DATABASE_URL = "sqlite:///./data/connectors.db"
MEMORY_DATABASE_URL = "sqlite://:memory:"

# Versioned schema steps, applied in order at start-up; a step is never edited once released, only added.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE connections (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                vendor TEXT NOT NULL,
                display_name TEXT NOT NULL,
                secrets TEXT NOT NULL,
                fingerprints TEXT NOT NULL,
                settings TEXT NOT NULL,
                status TEXT NOT NULL,
                key_id TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX connections_created ON connections (created_at, id)",
            "CREATE TABLE connections_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    # The OAuth grant (refresh token, expiry, grant id) of a connection authorized by the flow, Fernet-sealed.
    (2, ("ALTER TABLE connections ADD COLUMN oauth_grant TEXT NOT NULL DEFAULT ''",)),
)
SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
COLUMNS = tuple(
    "id kind vendor display_name secrets fingerprints settings status key_id created_at updated_at oauth_grant".split()
)


class DuplicateId(Exception):
    """An insert named an id that is already stored."""


@dataclasses.dataclass
class StoredConnection:
    """One row: `secrets` is the Fernet token of the credentials, `fingerprints` their names and HMAC prefixes."""

    id: str
    kind: str  # "crm" or "chat"
    vendor: str
    display_name: str
    secrets: str
    fingerprints: str  # JSON {field: fingerprint}
    settings: str  # JSON object of the connector's non-secret config keys
    status: str  # active | needs_reauth
    key_id: str
    created_at: str
    updated_at: str
    oauth_grant: str = ""  # Fernet token of the OAuth grant ({} when none); oauth/grants.py reads and writes it

    def values(self) -> tuple[Any, ...]:
        """The row's values in COLUMNS order."""
        return dataclasses.astuple(self)


class ConnectionStore(Protocol):
    """What the manager needs from storage; each backend applies MIGRATIONS in `open`."""

    dialect: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def schema_version(self) -> int: ...
    async def get(self, connection_id: str) -> StoredConnection | None: ...
    async def list(self, limit: int, after: str | None = None) -> list[StoredConnection]: ...
    async def count(self) -> int: ...
    async def insert(self, row: StoredConnection) -> None: ...
    async def update(self, row: StoredConnection, expected_updated_at: str | None = None) -> bool: ...
    async def delete(self, connection_id: str) -> bool: ...
    async def get_meta(self, name: str) -> str | None: ...
    async def set_meta(self, name: str, value: str) -> None: ...


SELECT = f"SELECT {', '.join(COLUMNS)} FROM connections"
INSERT = f"INSERT INTO connections ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
# Optimistic: an update names the updated_at it read, so two admins' concurrent PATCHes cannot lose one.
UPDATE = (
    "UPDATE connections SET "
    + ", ".join(f"{c} = ?" for c in COLUMNS[1:])
    + " WHERE id = ? AND (CAST(? AS TEXT) IS NULL OR updated_at = ?)"
)
LIST = f"{SELECT} WHERE (CAST(? AS TEXT) IS NULL OR id > ?) ORDER BY id LIMIT ?"
UPSERT_META = (
    "INSERT INTO connections_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


def update_args(row: StoredConnection, expected: str | None) -> tuple[Any, ...]:
    """UPDATE's parameters for a row."""
    values = row.values()
    return (*values[1:], row.id, expected, expected)


def open_store(url: str, pool_size: int = 5) -> ConnectionStore:
    """The backend a DATABASE_URL names: sqlite:///path (or sqlite://:memory:), or postgresql://..."""
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        from connections.sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme in ("postgres", "postgresql"):
        from connections.postgres import PostgresStore

        return PostgresStore(url, pool_size)
    raise ValueError(f"DATABASE_URL must start with sqlite:// or postgresql:// (got {scheme or 'no'} scheme)")
