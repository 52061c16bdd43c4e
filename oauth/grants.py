"""A connection's OAuth grant: redeeming the code, and renewing its token single-flight, rotation stored first.

Renewal runs in the shared token store's one-at-a-time round (tokens.py: a local lock, then the state's lock
across replicas), reads the grant from the database (never a cached copy, since another replica may have
rotated it), and writes a rotated refresh token into the row before the new access token is used: a crash
after the vendor answered loses nothing. A refresh the vendor refuses with 400 (RFC 6749 5.2: invalid_grant,
HubSpot's BAD_REFRESH_TOKEN) marks the connection `needs_reauth`; calls then get 502 `crm_auth_failed` with
`details.reauth_required: true`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from connections.manager import ConnectionManager
from connections.store import StoredConnection
from connectors.auth import OAuthAuth, OAuthToken
from connectors.context import ConnectorContext
from connectors.http import UpstreamConnector
from connectors.vendor_config import StoredConfig
from errors import AuthFailed, CRMError, MalformedAnswer, StateUnavailable
from oauth.apps import VENDORS, OAuthApp, vendor_url
from tokens import token_store

PLACEHOLDER = "awaiting-oauth-authorization"  # fills a token field until the flow brings the real token
WRITE_ATTEMPTS = 3  # an admin's PATCH between our read and write is a conflict: read again and re-apply


def pending_credentials(vendor: str) -> dict[str, str]:
    """The token field a connection awaiting its authorization lacks, filled for validation only."""
    flow = VENDORS.get(vendor)
    return {flow.token_field: PLACEHOLDER} if flow else {}


def reauth_error(connection_id: str, vendor: str, why: str) -> AuthFailed:
    """The contract error of a connection whose grant is gone."""
    return AuthFailed(
        f"{why}; connection {connection_id} needs re-authorization: an admin opens "
        f"GET /connections/{connection_id}/oauth/start",
        crm_type=vendor,
        details={"reauth_required": True, "connection_id": connection_id},
    )


def connector_for(
    manager: ConnectionManager, classes: Callable[[str, str], type[UpstreamConnector]], row: StoredConnection,
    ctx: ConnectorContext,
) -> UpstreamConnector:
    """The connection's connector (its token field a placeholder if it has none yet), for the vendor's hosts."""
    config = {**orjson.loads(row.settings), **pending_credentials(row.vendor), **manager.credentials(row)}
    return classes(row.kind, row.vendor).from_request(StoredConfig(config), ctx)


async def token_call(connector: UpstreamConnector, app: OAuthApp, form: Mapping[str, str]) -> dict[str, Any]:
    """POST the grant to the vendor's token endpoint through the upstream layer (no Authorization header)."""
    url = vendor_url(connector, app.flow.token, connector.ctx.sandbox_urls.get(app.vendor))
    body = {"json": dict(form)} if app.flow.json_body else {"data": dict(form)}
    # Not idempotent: a rotated refresh token must not be spent twice by a retry after a lost answer.
    response = await connector._request(
        "POST", url, operation="oauth_token", authenticate=False, idempotent=False, **body
    )
    answer = response.json()
    if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        raise MalformedAnswer(f"{connector.display_name}'s token endpoint answered without an access_token",
                              crm_type=app.vendor)  # fmt: skip
    return answer


def client_form(app: OAuthApp) -> dict[str, str]:
    """The app's client authentication in the form (client_secret_post, which every vendor here documents)."""
    return {"client_id": app.client_id, **({"client_secret": app.client_secret} if app.client_secret else {})}


def expiry(answer: Mapping[str, Any]) -> float | None:
    """The access token's wall-clock expiry from `expires_in`, when the vendor states one."""
    seconds = answer.get("expires_in")
    return time.time() + float(seconds) if isinstance(seconds, (int, float)) and seconds > 0 else None


async def redeem(
    manager: ConnectionManager, connector: UpstreamConnector, app: OAuthApp, connection_id: str, code: str,
    verifier: str | None,
) -> StoredConnection:
    """Exchange the code, store the tokens (encrypted) in the connection and set it active."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri, **client_form(app)}
    if verifier is not None:
        form["code_verifier"] = verifier
    answer = await token_call(connector, app, form)
    for _ in range(WRITE_ATTEMPTS):
        row = await manager.row(connection_id)
        expected = row.updated_at
        credentials = {**manager.credentials(row), app.flow.token_field: answer["access_token"]}
        settings = orjson.loads(row.settings)
        for key, field in app.flow.from_answer:  # e.g. Salesforce's instance_url: where the org's API lives
            if isinstance(answer.get(key), str) and field not in credentials:
                settings[field] = answer[key]
        if app.flow.client_id_field and app.flow.client_id_field not in credentials:
            settings[app.flow.client_id_field] = app.client_id
        manager.validate(row.kind, row.vendor, credentials, settings)
        grant = {
            "id": secrets.token_hex(8),
            "refresh_token": answer.get("refresh_token"),
            "expires_at": expiry(answer),
            "client_id": app.client_id,
        }
        row.status, row.settings = "active", orjson.dumps(settings).decode()
        manager.seal_grant(row, credentials, grant)
        if await manager.write(row, expected):
            return row
    raise StateUnavailable(f"connection {connection_id} kept changing while its tokens were stored; authorize again")


class GrantAuth(OAuthAuth):
    """Bearer with the connection's access token, renewed through its refresh token (see the module docstring)."""

    def __init__(
        self, manager: ConnectionManager, app: Callable[[str], OAuthApp], connection_id: str,
        grant: Mapping[str, Any], connector: UpstreamConnector,
    ) -> None:
        self.manager, self.app, self.connection_id, self.grant_id = manager, app, connection_id, grant["id"]
        self.connector = connector
        self.field = VENDORS[connector.vendor].token_field
        value = getattr(connector.config, self.field)
        self.initial = OAuthToken(value.get_secret_value(), grant.get("expires_at"))
        store = token_store(connector.ctx.shared, connector.ctx.deadline.remaining())
        super().__init__(store, f"oauth-connection:{connection_id}:{self.grant_id}", self._refresh)

    async def _current(self) -> OAuthToken:
        """The shared token, else this connection's stored one (so a new process does not renew at once)."""
        assert self.key is not None
        if await self.store.current(self.key) is None:
            await self.store.seed(self.key, self.initial.pack())
        return await super()._current()

    async def _refresh(self) -> OAuthToken:
        """The refresh_token grant with the stored refresh token; the rotated one is stored before it is used."""
        row = await self.manager.row(self.connection_id)
        grant, vendor = self.manager.open_grant(row), row.vendor
        if row.status != "active":
            raise reauth_error(self.connection_id, vendor, f"the connection's status is {row.status}")
        if grant.get("id") != self.grant_id:  # authorized again meanwhile: its token is the one to use
            return self._stored_token(row, grant)
        refresh = grant.get("refresh_token")
        if not refresh:
            raise reauth_error(self.connection_id, vendor, "the vendor issued no refresh token and the access token expired")
        app = self.app(vendor)
        try:
            answer = await token_call(self.connector, app, {"grant_type": "refresh_token", "refresh_token": refresh,
                                                            **client_form(app)})  # fmt: skip
        except CRMError as exc:
            if exc.upstream_status != 400:  # 401 invalid_client is the app's config; 5xx and timeouts pass
                raise
            return await self._revoked(refresh, exc)
        return await self._store(answer, refresh)

    def _stored_token(self, row: StoredConnection, grant: Mapping[str, Any]) -> OAuthToken:
        return OAuthToken(str(self.manager.credentials(row)[self.field]), grant.get("expires_at"))

    async def _store(self, answer: dict[str, Any], sent_refresh: str) -> OAuthToken:
        """Write the new access token and (rotated) refresh token into the row; only then hand the token out."""
        token = OAuthToken(answer["access_token"], expiry(answer))
        for _ in range(WRITE_ATTEMPTS):
            row = await self.manager.row(self.connection_id)
            expected, grant = row.updated_at, self.manager.open_grant(row)
            if grant.get("id") != self.grant_id:
                return self._stored_token(row, grant)
            grant.update(refresh_token=answer.get("refresh_token") or sent_refresh, expires_at=token.expires_at)
            credentials = {**self.manager.credentials(row), self.field: token.value}
            self.manager.seal_grant(row, credentials, grant)
            if await self.manager.write(row, expected):
                return token
        raise StateUnavailable(f"the renewed token of connection {self.connection_id} could not be stored; repeat")

    async def _revoked(self, sent_refresh: str, exc: CRMError) -> OAuthToken:
        """The vendor refused the refresh token: unless another process rotated it meanwhile, the grant is gone."""
        row = await self.manager.row(self.connection_id)
        grant = self.manager.open_grant(row)
        if grant.get("id") == self.grant_id and grant.get("refresh_token") != sent_refresh:
            return self._stored_token(row, grant)  # a replica without the shared lock renewed first
        if grant.get("id") == self.grant_id and row.status == "active":
            row.status = "needs_reauth"
            await self.manager.write(row, row.updated_at)
        raise reauth_error(self.connection_id, row.vendor, f"{exc.message} (the refresh token was refused)")


def install(manager: ConnectionManager, app: Callable[[str], OAuthApp]) -> None:
    """Give the connection manager the OAuth part's hooks."""
    manager.pending_credentials = pending_credentials
    manager.grant_auth = lambda connection_id, grant, connector: GrantAuth(manager, app, connection_id, grant, connector)
