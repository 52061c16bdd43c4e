"""Connections as the service uses them: validated against the vendor's config model, encrypted, cached briefly.

`resolve` is the request path (one store read at most per request, then an in-process TTL cache); the rest serves
the admin API and `python -m connections reencrypt`. Start-up (`open_connections`) refuses a wrong or missing key.
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from pydantic import ValidationError

from connections.crypto import Keyring, KeyProblem, generate_key
from connections.schemas import ConnectionCreate, ConnectionUpdate, ConnectionView
from connections.store import (
    DEFAULT_DATABASE_URL,
    MEMORY_DATABASE_URL,
    ConnectionStore,
    DuplicateId,
    StoredConnection,
    open_store,
)
from connectors.http import UpstreamConnector
from connectors.vendor_config import StoredConfig, secret_fields
from errors import (
    AuthFailed,
    ConnectionConflict,
    ConnectionNotFound,
    ConnectionsUnavailable,
    CRMError,
    InvalidRequest,
    StateUnavailable,
    ValidationFailed,
)
from observability import log_event

KEY_CHECK = "key_check"  # connections_meta row: the check value of the key every row is (or is being) moved to
KIND_FIELD = {"crm": "crm_type", "chat": "chat_type"}
STORE_ERRORS = (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

# The connector class for (kind, vendor); raises UnsupportedCRM for an unknown vendor.
VendorClasses = Callable[[str, str], type[UpstreamConnector]]


class StartupRefused(RuntimeError):
    """The store and the configured keys do not fit together; the service must not start."""


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class ConnectionManager:
    """The stored connections of one process: validation, encryption, the decrypted-config cache, rotation."""

    def __init__(
        self,
        store: ConnectionStore,
        keyring: Keyring | None,
        classes: VendorClasses,
        cache_ttl_seconds: float = 5.0,
        cache_max_entries: int = 1000,
        probe: Callable[[type[UpstreamConnector], dict[str, Any]], Any] | None = None,
    ) -> None:
        self.store = store
        self.probe = probe  # builds the connector from a config: its host guard runs before anything is stored
        self.keyring = keyring
        self.classes = classes
        self.ttl = cache_ttl_seconds
        self.max_entries = cache_max_entries
        # id -> (expires at, row kind, vendor, config, OAuth grant): short-lived, as another replica may change the row.
        self._cache: OrderedDict[str, tuple[float, str, str, dict[str, Any], dict[str, Any]]] = OrderedDict()
        # Set by the OAuth part (oauth/grants.py): the auth strategy of a connection that holds a grant, and the
        # placeholder credentials that let a connection awaiting its first authorization pass validation.
        self.grant_auth: Callable[[str, dict[str, Any], UpstreamConnector], Any] | None = None
        self.pending_credentials: Callable[[str], dict[str, str]] = lambda vendor: {}
        # Set by the routes: checks a saved settings.field_mapping against the vendor's field list (a 422 if unknown).
        self.mapping_check: Callable[[type[UpstreamConnector], dict[str, Any]], Awaitable[None]] | None = None

    # --- the request path -------------------------------------------------------------------------

    async def resolve(self, connection_id: str, kind: str) -> tuple[str, StoredConfig]:
        """(vendor, config) for a request naming a connection: credentials and settings, nothing from the environment."""
        hit = self._cache.get(connection_id)
        if hit is not None and hit[0] > time.monotonic():
            self._cache.move_to_end(connection_id)
            _, row_kind, vendor, config, grant = hit
        else:
            row = await self._get(connection_id)
            if row.status != "active":
                raise AuthFailed(
                    f"connection {connection_id} needs re-authorization (status {row.status}): "
                    f"an admin opens GET /connections/{connection_id}/oauth/start",
                    crm_type=row.vendor,
                    details={"reauth_required": True, "connection_id": connection_id},
                )
            row_kind, vendor = row.kind, row.vendor
            config = {**orjson.loads(row.settings), **self._decrypt(row)}
            grant = self.open_grant(row)
            self._remember(connection_id, (time.monotonic() + self.ttl, row_kind, vendor, config, grant))
        if row_kind != kind:
            raise InvalidRequest(
                f"connection {connection_id} is a {vendor} {row_kind} connection; this endpoint takes a {kind} one",
                crm_type=vendor,
            )
        stored = StoredConfig(config)
        if grant and self.grant_auth is not None:  # its tokens renew through the grant (oauth/grants.py)
            stored.auth_factory = functools.partial(self.grant_auth, connection_id, grant)
        return vendor, stored

    def _remember(self, connection_id: str, entry: tuple[float, str, str, dict[str, Any], dict[str, Any]]) -> None:
        self._cache[connection_id] = entry
        self._cache.move_to_end(connection_id)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    def forget(self, connection_id: str) -> None:
        """Drop a cached config (after an update or delete in this process)."""
        self._cache.pop(connection_id, None)

    # --- admin ------------------------------------------------------------------------------------

    def validate(
        self, kind: str, vendor: str, credentials: Mapping[str, Any], settings: Mapping[str, Any], pending: bool = False
    ) -> str:
        """The vendor's slug when credentials+settings make a valid config for it; else a 422 naming each problem.

        `pending`: a connection awaiting its OAuth authorization, whose token fields the flow fills in later.
        """
        cls = self.classes(kind, vendor)
        if pending:
            credentials = {**self.pending_credentials(cls.vendor), **credentials}
        secret = secret_fields(cls.config_model)
        problems: list[dict[str, Any]] = []
        for name in sorted(settings.keys() & credentials.keys()):
            problems.append({"loc": ["body", "settings", name], "msg": "also given in credentials", "type": "duplicate"})
        for name in sorted(settings.keys() & secret):
            problems.append({"loc": ["body", "settings", name], "msg": "a secret: put it in credentials", "type": "secret"})
        config = {**settings, **credentials}
        try:
            cls.config_model.model_validate(config)
        except ValidationError as exc:
            for error in exc.errors():  # names and reasons only: pydantic's `input` would echo a secret
                field = str(error["loc"][0]) if error["loc"] else None
                part = "credentials" if field in credentials or field in secret else "settings"
                loc = ["body", part, *map(str, error["loc"])] if field else ["body", "credentials"]
                problems.append({"loc": loc, "msg": error["msg"].removeprefix("Value error, "), "type": error["type"]})
        if problems:
            summary = "; ".join(f"{'.'.join(p['loc'][1:])}: {p['msg']}" for p in problems)
            raise ValidationFailed(f"invalid {cls.vendor} connection: {summary}", crm_type=cls.vendor, details=problems)
        if self.probe is not None:
            self.probe(cls, config)
        return cls.vendor

    async def create(self, body: ConnectionCreate) -> ConnectionView:
        """Validate, encrypt and store a new connection."""
        keyring = self._keyring()
        kind = "crm" if body.crm_type is not None else "chat"
        pending = body.status == "needs_reauth"
        vendor = self.validate(kind, body.crm_type or body.chat_type or "", body.credentials, body.settings, pending)
        if "field_mapping" in body.settings and not pending:
            await self._check_mapping(kind, vendor, {**body.settings, **body.credentials})
        stamp = now_iso()
        row = StoredConnection(
            id=body.id or f"conn_{secrets.token_hex(12)}",
            kind=kind,
            vendor=vendor,
            display_name=body.display_name,
            secrets="",
            fingerprints="",
            settings=orjson.dumps(body.settings).decode(),
            status=body.status,
            key_id=keyring.current_id,
            created_at=stamp,
            updated_at=stamp,
        )
        self._seal(row, body.credentials)
        try:
            await self._guard(self.store.insert(row))
        except DuplicateId:
            raise ConnectionConflict(f"connection {row.id} already exists", crm_type=vendor) from None
        return self.view(row)

    async def _check_mapping(self, kind: str, vendor: str, config: dict[str, Any]) -> None:
        """The vendor's own field list decides whether a mapping's names exist (one call per record kind)."""
        if self.mapping_check is not None:
            await self.mapping_check(self.classes(kind, vendor), config)

    async def get(self, connection_id: str) -> ConnectionView:
        return self.view(await self._get(connection_id))

    async def list(self, limit: int, after: str | None) -> list[ConnectionView]:
        return [self.view(row) for row in await self._guard(self.store.list(limit, after))]

    async def update(self, connection_id: str, patch: ConnectionUpdate) -> ConnectionView:
        """Merge the patch (null removes a key), validate the result, store it if no one changed it meanwhile."""
        row = await self._get(connection_id)
        credentials = merged(self._decrypt(row), patch.credentials)
        settings = merged(orjson.loads(row.settings), patch.settings)
        pending = (patch.status or row.status) == "needs_reauth"
        self.validate(row.kind, row.vendor, credentials, settings, pending)
        if "field_mapping" in (patch.settings or {}) and settings.get("field_mapping") and not pending:
            await self._check_mapping(row.kind, row.vendor, {**settings, **credentials})
        expected = row.updated_at
        row.display_name = patch.display_name or row.display_name
        row.status = patch.status or row.status
        row.settings = orjson.dumps(settings).decode()
        row.updated_at = now_iso()
        self._seal(row, credentials)
        if not await self._guard(self.store.update(row, expected)):
            raise ConnectionConflict(f"connection {connection_id} changed meanwhile; read it and try again", crm_type=row.vendor)
        self.forget(connection_id)
        return self.view(row)

    async def delete(self, connection_id: str) -> str:
        """Delete a connection; returns its vendor (for the audit line)."""
        row = await self._get(connection_id)
        await self._guard(self.store.delete(connection_id))
        self.forget(connection_id)
        return row.vendor

    async def stored_config(self, connection_id: str) -> tuple[str, str, dict[str, Any]]:
        """(kind, vendor, config) of a connection, whatever its status, for its credential test."""
        row = await self._get(connection_id)
        return row.kind, row.vendor, {**orjson.loads(row.settings), **self._decrypt(row)}

    async def reencrypt(self) -> int:
        """Move every row to the current key (rows under the previous one); returns how many moved."""
        keyring = self._keyring()
        moved, after = 0, None
        while batch := await self.store.list(500, after):
            for row in batch:
                if row.key_id != keyring.current_id:
                    expected = row.updated_at
                    self._seal(row, self._decrypt(row))
                    if row.oauth_grant:
                        row.oauth_grant = keyring.encrypt(self.open_grant(row))
                    if not await self.store.update(row, expected):
                        raise ConnectionConflict(f"connection {row.id} changed during re-encryption; run it again")
                    moved += 1
            after = batch[-1].id
        await self.store.set_meta(KEY_CHECK, keyring.current_id)
        self._cache.clear()
        return moved

    def view(self, row: StoredConnection) -> ConnectionView:
        """What a read shows: never a secret, only which fields are set and their fingerprints."""
        return ConnectionView(
            id=row.id,
            **{KIND_FIELD[row.kind]: row.vendor},
            display_name=row.display_name,
            status=row.status,  # type: ignore[arg-type]
            credentials=orjson.loads(row.fingerprints),
            settings=orjson.loads(row.settings),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    # --- internals --------------------------------------------------------------------------------

    def _keyring(self) -> Keyring:
        if self.keyring is None:
            raise ConnectionsUnavailable("stored connections are off: set CONNECTIONS_ENCRYPTION_KEY to use them")
        return self.keyring

    def _seal(self, row: StoredConnection, credentials: Mapping[str, Any]) -> None:
        """Encrypt the credentials into the row, under the current key, with their fingerprints."""
        keyring = self._keyring()
        row.secrets = keyring.encrypt(dict(credentials))
        row.fingerprints = orjson.dumps({k: keyring.fingerprint(str(v)) for k, v in sorted(credentials.items())}).decode()
        row.key_id = keyring.current_id

    def credentials(self, row: StoredConnection) -> dict[str, Any]:
        """The row's credentials, decrypted."""
        return self._decrypt(row)

    def open_grant(self, row: StoredConnection) -> dict[str, Any]:
        """The row's OAuth grant ({} when it holds none)."""
        if not row.oauth_grant:
            return {}
        try:
            return self._keyring().decrypt(row.oauth_grant)
        except KeyProblem as exc:
            raise ConnectionsUnavailable(f"connection {row.id}: {exc}", crm_type=row.vendor) from None

    def seal_grant(self, row: StoredConnection, credentials: Mapping[str, Any], grant: Mapping[str, Any]) -> None:
        """Encrypt new credentials and grant into the row (the OAuth flow's write)."""
        self._seal(row, credentials)
        row.oauth_grant = self._keyring().encrypt(dict(grant)) if grant else ""

    async def row(self, connection_id: str) -> StoredConnection:
        """The stored row, read now (never the cache): the OAuth flow's read before it writes."""
        return await self._get(connection_id)

    async def write(self, row: StoredConnection, expected_updated_at: str) -> bool:
        """Store a changed row if no one changed it meanwhile; drops this process's cached config."""
        row.updated_at = now_iso()
        stored = await self._guard(self.store.update(row, expected_updated_at))
        self.forget(row.id)
        return bool(stored)

    def _decrypt(self, row: StoredConnection) -> dict[str, Any]:
        try:
            return self._keyring().decrypt(row.secrets)
        except KeyProblem as exc:
            raise ConnectionsUnavailable(f"connection {row.id}: {exc}", crm_type=row.vendor) from None

    async def _get(self, connection_id: str) -> StoredConnection:
        row = await self._guard(self.store.get(connection_id))
        if row is None:
            raise ConnectionNotFound(f"no connection {connection_id}")
        return row

    @staticmethod
    async def _guard(work: Any) -> Any:
        """A store that fails is a retryable 503 in the contract, never a 500."""
        try:
            return await work
        except CRMError:
            raise
        except STORE_ERRORS as exc:
            log_event("connection_store_failed", logging.WARNING, error=type(exc).__name__)
            raise StateUnavailable("the connection store did not answer; repeat the request") from None


def default_file_exists() -> bool:
    """Whether the default SQLite file is there (it may hold connections a missing key would orphan)."""
    return Path(DEFAULT_DATABASE_URL.removeprefix("sqlite:///")).exists()


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def merged(current: Mapping[str, Any], patch: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON merge patch one level deep: keys replaced, a null value removes the key."""
    result = dict(current)
    for name, value in (patch or {}).items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


async def open_connections(
    settings: Any, classes: VendorClasses, probe: Callable[[type[UpstreamConnector], dict[str, Any]], Any] | None = None
) -> ConnectionManager:
    """Open the store, apply migrations, and check the keys against it; StartupRefused when they do not fit."""
    key = settings.connections_encryption_key.get_secret_value() if settings.connections_encryption_key else None
    previous = settings.connections_encryption_key_previous
    previous_key = previous.get_secret_value() if previous else None
    url = settings.database_url.get_secret_value() if settings.database_url else None
    keyring: Keyring | None = None
    try:
        if key:
            keyring = Keyring(key, previous_key)
        elif previous_key:
            raise StartupRefused("CONNECTIONS_ENCRYPTION_KEY_PREVIOUS is set without CONNECTIONS_ENCRYPTION_KEY")
        elif settings.sandbox:
            keyring = Keyring(generate_key(), ephemeral=True)
            url = url or MEMORY_DATABASE_URL
    except KeyProblem as exc:
        raise StartupRefused(str(exc)) from None
    if keyring is None and url is None and not default_file_exists():
        url = MEMORY_DATABASE_URL  # nothing stored and nothing can be without a key: no file on a read-only disk
    store = open_store(url or DEFAULT_DATABASE_URL, settings.database_pool_size)
    try:
        try:
            await store.open()
        except STORE_ERRORS as exc:
            raise StartupRefused(f"the connection store {safe_url(url or DEFAULT_DATABASE_URL)} cannot be opened: {exc}") from None
        stored_check, count = await store.get_meta(KEY_CHECK), await store.count()
        if (keyring is None or keyring.ephemeral) and count:
            raise StartupRefused(
                f"{count} stored connection(s) but no CONNECTIONS_ENCRYPTION_KEY: set the key they were encrypted with"
            )
        if keyring is not None and not keyring.ephemeral and stored_check and not keyring.known(stored_check):
            raise StartupRefused(
                "CONNECTIONS_ENCRYPTION_KEY (and _PREVIOUS) are not the key the stored connections were encrypted "
                f"with (its check value is {stored_check}; this key's is {keyring.current_id})"
            )
    except BaseException:
        await store.close()
        raise
    if keyring is not None and (stored_check is None or keyring.ephemeral):
        await store.set_meta(KEY_CHECK, keyring.current_id)
    elif keyring is not None and stored_check != keyring.current_id:
        log_event("connections_rotation_pending", logging.WARNING, detail="run `python -m connections reencrypt`")
    if keyring is not None and keyring.ephemeral:
        log_event(
            "connections_ephemeral_key",
            logging.WARNING,
            detail="sandbox without CONNECTIONS_ENCRYPTION_KEY: a throwaway key and an in-memory store; "
            "connections are lost at exit",
        )
    elif keyring is None:
        log_event("connections_off", logging.WARNING, detail="no CONNECTIONS_ENCRYPTION_KEY: stored connections are off")
    return ConnectionManager(
        store, keyring, classes, settings.connections_cache_ttl_seconds, settings.connections_cache_max_entries, probe
    )
