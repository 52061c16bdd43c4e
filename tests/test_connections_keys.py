"""Keys and start-up: encryption at rest, rotation, fingerprints, refusing a wrong or missing key, the cache."""

from __future__ import annotations

import sqlite3

import pytest

from connections.crypto import Keyring, KeyProblem, generate_key
from connections.manager import ConnectionManager, StartupRefused, open_connections
from connections.routes import vendor_class
from connections.schemas import ConnectionCreate, ConnectionUpdate
from errors import ConnectionsUnavailable, StateUnavailable, ValidationFailed
from tests.conftest import make_settings

ZENDESK = {"subdomain": "acme", "email": "agent@acme.com", "api_token": "tok-secret-123"}


def settings(tmp_path, **overrides):
    return make_settings(**{"sandbox": False, "database_url": f"sqlite:///{tmp_path}/c.db", **overrides})


async def opened(tmp_path, **overrides) -> ConnectionManager:
    return await open_connections(settings(tmp_path, **overrides), vendor_class)


async def with_one_connection(tmp_path, key: str) -> str:
    manager = await opened(tmp_path, connections_encryption_key=key)
    view = await manager.create(ConnectionCreate(crm_type="zendesk", display_name="Acme", credentials=ZENDESK))
    await manager.store.close()
    return view.id


def test_keyring_round_trip_rotation_and_fingerprints():
    old, new = generate_key(), generate_key()
    token = Keyring(old).encrypt({"api_token": "tok"})
    assert "tok" not in token
    assert Keyring(new, old).decrypt(token) == {"api_token": "tok"}  # the previous key still opens it
    with pytest.raises(KeyProblem):
        Keyring(new).decrypt(token)
    with pytest.raises(KeyProblem, match="not a Fernet key"):
        Keyring("not-a-key")
    fingerprint = Keyring(old).fingerprint("tok")
    assert len(fingerprint) == 8 and fingerprint == Keyring(old).fingerprint("tok") != Keyring(new).fingerprint("tok")


async def test_secrets_are_encrypted_at_rest(tmp_path):
    await with_one_connection(tmp_path, generate_key())
    with sqlite3.connect(tmp_path / "c.db") as db:
        dump = "\n".join(db.iterdump())
    assert "tok-secret-123" not in dump and "agent@acme.com" not in dump
    assert "CREATE TABLE schema_version" in dump


async def test_a_wrong_key_refuses_to_start(tmp_path):
    await with_one_connection(tmp_path, generate_key())
    with pytest.raises(StartupRefused, match="not the key the stored connections were encrypted with"):
        await opened(tmp_path, connections_encryption_key=generate_key())


async def test_no_key_with_stored_connections_refuses_to_start_even_in_the_sandbox(tmp_path):
    await with_one_connection(tmp_path, generate_key())
    with pytest.raises(StartupRefused, match="1 stored connection"):
        await opened(tmp_path)
    with pytest.raises(StartupRefused, match="1 stored connection"):
        await opened(tmp_path, sandbox=True)


async def test_bad_key_settings_refuse_to_start(tmp_path):
    with pytest.raises(StartupRefused, match="not a Fernet key"):
        await opened(tmp_path, connections_encryption_key="short")
    with pytest.raises(StartupRefused, match="_PREVIOUS is set without"):
        await opened(tmp_path, connections_encryption_key_previous=generate_key())


async def test_without_a_key_connections_are_off_and_say_so(tmp_path):
    manager = await opened(tmp_path)
    with pytest.raises(ConnectionsUnavailable, match="CONNECTIONS_ENCRYPTION_KEY"):
        await manager.create(ConnectionCreate(crm_type="zendesk", display_name="Acme", credentials=ZENDESK))
    await manager.store.close()


async def test_sandbox_without_a_key_gets_an_ephemeral_key_and_an_in_memory_store():
    manager = await open_connections(make_settings(sandbox=True), vendor_class)
    assert manager.keyring is not None and manager.keyring.ephemeral
    assert manager.store.path == ":memory:"  # type: ignore[attr-defined]
    await manager.store.close()


async def test_rotation_then_reencrypt_moves_every_row_to_the_new_key(tmp_path):
    old, new = generate_key(), generate_key()
    cid = await with_one_connection(tmp_path, old)
    manager = await opened(tmp_path, connections_encryption_key=new, connections_encryption_key_previous=old)
    assert (await manager.resolve(cid, "crm"))[1]["api_token"] == "tok-secret-123"  # during the rotation
    assert await manager.reencrypt() == 1 and await manager.reencrypt() == 0
    await manager.store.close()
    alone = await opened(tmp_path, connections_encryption_key=new)
    assert (await alone.resolve(cid, "crm"))[1]["api_token"] == "tok-secret-123"
    await alone.store.close()
    with pytest.raises(StartupRefused):
        await opened(tmp_path, connections_encryption_key=old)


class CountingStore:
    """Counts the reads that reach the store."""

    def __init__(self, store) -> None:
        self.store, self.gets = store, 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def get(self, connection_id):
        self.gets += 1
        return await self.store.get(connection_id)


async def test_resolve_reads_the_store_once_then_the_cache_until_an_update(tmp_path):
    manager = await opened(tmp_path, connections_encryption_key=generate_key())
    view = await manager.create(ConnectionCreate(crm_type="zendesk", display_name="Acme", credentials=ZENDESK))
    counting = CountingStore(manager.store)
    manager.store = counting  # type: ignore[assignment]
    for _ in range(3):
        assert (await manager.resolve(view.id, "crm"))[0] == "zendesk"
    assert counting.gets == 1
    await manager.update(view.id, ConnectionUpdate(credentials={"email": "ops@acme.com"}))
    assert (await manager.resolve(view.id, "crm"))[1]["email"] == "ops@acme.com"  # invalidated by the update
    manager.max_entries = 1
    manager._remember("other", (float("inf"), "crm", "zendesk", {}))
    assert list(manager._cache) == ["other"]  # bounded: the oldest entry went
    await counting.store.close()


async def test_validation_names_problems_and_never_echoes_values(tmp_path):
    manager = await opened(tmp_path, connections_encryption_key=generate_key())
    with pytest.raises(ValidationFailed) as raised:
        manager.validate("crm", "hubspot", {"api_key": "tok-secret-999"}, {"stage_map": {"nonsense": "1"}})
    assert "tok-secret-999" not in str(raised.value.details) and "stage_map" in raised.value.message
    await manager.store.close()


async def test_a_store_that_fails_is_a_retryable_503(tmp_path):
    manager = await opened(tmp_path, connections_encryption_key=generate_key())
    await manager.store.close()
    manager.store._db = sqlite3.connect(":memory:")  # type: ignore[attr-defined]  (no tables: every query fails)
    with pytest.raises(StateUnavailable):
        await manager.resolve("conn_x", "crm")


async def test_a_store_that_cannot_be_opened_refuses_to_start_without_showing_the_password(tmp_path):
    from tests.redis_server import free_port

    url = f"postgresql://svc:hunter2-secret@127.0.0.1:{free_port()}/connectors"  # nothing listens there
    with pytest.raises(StartupRefused, match=r"svc:\*\*\*@127\.0\.0\.1") as raised:
        await opened(tmp_path, database_url=url, connections_encryption_key=generate_key())
    assert "hunter2" not in str(raised.value)


async def test_without_a_key_or_database_url_no_file_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a fresh machine (or a read-only image): the default ./data must not be made
    manager = await open_connections(make_settings(sandbox=False), vendor_class)
    assert manager.keyring is None and not (tmp_path / "data").exists()
    await manager.store.close()
    key = generate_key()
    manager = await open_connections(make_settings(sandbox=False, connections_encryption_key=key), vendor_class)
    assert (tmp_path / "data" / "connectors.db").exists()  # with a key: the default file
    await manager.create(ConnectionCreate(crm_type="zendesk", display_name="Acme", credentials=ZENDESK))
    await manager.store.close()
    with pytest.raises(StartupRefused, match="1 stored connection"):  # and then the key goes missing
        await open_connections(make_settings(sandbox=False), vendor_class)
