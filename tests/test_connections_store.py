"""The connection store on both backends: migrations (idempotent, versioned), rows, metadata, conflicts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from connections.store import MIGRATIONS, ConnectionStore, DuplicateId, StoredConnection, open_store


async def fresh_database(server_url: str) -> str:
    """A new empty database on the test server, so each test starts from no schema at all."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Each backend in turn: an SQLite file in a temp dir, and a new database on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/sub/connectors.db"
    return await fresh_database(request.getfixturevalue("postgres_server").url)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ConnectionStore]:
    opened = open_store(database_url)
    await opened.open()
    yield opened
    await opened.close()


def row(connection_id: str = "conn_a", **changes) -> StoredConnection:
    values = dict(
        id=connection_id, kind="crm", vendor="zendesk", display_name="Acme", secrets="token", fingerprints="{}",
        settings="{}", status="active", key_id="k1", created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    return StoredConnection(**{**values, **changes})


async def test_migrations_apply_once_and_again_are_a_no_op(database_url: str):
    first = open_store(database_url)
    await first.open()
    await first.insert(row())
    await first.close()
    again = open_store(database_url)
    await again.open()  # a second start (or a second replica) finds the schema current and keeps the data
    assert await again.schema_version() == MIGRATIONS[-1][0]
    assert (await again.get("conn_a")) == row()
    await again.close()


async def test_rows_round_trip_update_and_delete(store: ConnectionStore):
    await store.insert(row())
    with pytest.raises(DuplicateId):
        await store.insert(row())
    changed = row(display_name="Acme EU", updated_at="2026-01-02T00:00:00Z")
    assert await store.update(changed, expected_updated_at="2026-01-01T00:00:00Z")
    # Someone else's write in between: the stale updated_at matches nothing, so nothing is overwritten.
    assert not await store.update(row(display_name="stale"), expected_updated_at="2026-01-01T00:00:00Z")
    assert (await store.get("conn_a")).display_name == "Acme EU"
    assert await store.delete("conn_a") and not await store.delete("conn_a")
    assert await store.get("conn_a") is None


async def test_list_pages_in_id_order(store: ConnectionStore):
    for name in ("conn_c", "conn_a", "conn_b"):
        await store.insert(row(name))
    assert [r.id for r in await store.list(2)] == ["conn_a", "conn_b"]
    assert [r.id for r in await store.list(2, after="conn_b")] == ["conn_c"]
    assert await store.count() == 3


async def test_meta_is_an_upsert(store: ConnectionStore):
    assert await store.get_meta("key_check") is None
    await store.set_meta("key_check", "one")
    await store.set_meta("key_check", "two")
    assert await store.get_meta("key_check") == "two"
    await store.ping()


def test_unknown_database_scheme_is_refused():
    with pytest.raises(ValueError, match="sqlite:// or postgresql://"):
        open_store("mysql://db/x")
