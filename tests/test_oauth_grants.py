"""A connection's grant on both stores (SQLite, PostgreSQL), the token endpoint faked at the HTTP boundary.

Redeeming stores the tokens sealed; renewals are single-flight and store a rotated refresh token before the
new access token is handed out; a refused refresh marks the connection needs_reauth. Also the signed state.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import orjson
import pytest
from aioresponses import CallbackResult, aioresponses

from connections.crypto import Keyring, generate_key
from connections.manager import ConnectionManager
from connections.routes import vendor_class
from connections.schemas import ConnectionCreate
from connections.store import open_store
from errors import AuthFailed
from oauth.apps import VENDORS, OAuthApp
from oauth.grants import GrantAuth, connector_for, install, redeem
from oauth.state import BadState, StateSigner, s256
from tests.conftest import sent
from tests.test_connections_store import database_url  # noqa: F401  (fixture: each backend in turn)

TOKEN_URL = "https://acme.zendesk.com/oauth/tokens"  # https://support.zendesk.com/hc/en-us/articles/4408845965210
APP = OAuthApp("zendesk", VENDORS["zendesk"], "client-1", "secret-1", "https://svc.example/oauth/callback", "read")


def body_of(call) -> dict:
    """The JSON body the layer sent (Zendesk's token endpoint takes JSON)."""
    return orjson.loads(call.kwargs["data"])


@pytest.fixture
async def manager(database_url: str) -> AsyncIterator[ConnectionManager]:  # noqa: F811
    store = open_store(database_url)
    await store.open()
    made = ConnectionManager(store, Keyring(generate_key()), vendor_class)
    install(made, lambda vendor: APP)
    yield made
    await store.close()


async def connected(manager: ConnectionManager, mock_http: aioresponses, make_context, rotate: str = "rt-1") -> str:
    body = ConnectionCreate(crm_type="zendesk", display_name="Acme", credentials={}, settings={"subdomain": "acme"},
                            status="needs_reauth")  # fmt: skip
    cid = (await manager.create(body)).id
    row = await manager.row(cid)
    mock_http.post(TOKEN_URL, payload={"access_token": "at-1", "refresh_token": rotate, "expires_in": 7200,
                                       "token_type": "Bearer", "scope": "read"})  # fmt: skip
    await redeem(manager, connector_for(manager, vendor_class, row, make_context()), APP, cid, "code-1", "v" * 43)
    return cid


async def test_redeeming_stores_the_tokens_sealed_and_activates_the_connection(manager, mock_http, make_context):
    cid = await connected(manager, mock_http, make_context)
    row = await manager.row(cid)
    assert row.status == "active"
    assert "at-1" not in row.secrets and "rt-1" not in row.oauth_grant  # both Fernet-sealed
    assert manager.open_grant(row)["refresh_token"] == "rt-1"
    form = body_of(sent(mock_http, "POST", TOKEN_URL)[0])
    assert form["grant_type"] == "authorization_code" and form["code_verifier"] == "v" * 43
    assert form["redirect_uri"] == APP.redirect_uri
    vendor, config = await manager.resolve(cid, "crm")
    assert config["oauth_token"] == "at-1" and config.auth_factory is not None


async def test_concurrent_renewals_ask_once_and_the_rotated_token_is_stored_before_use(manager, mock_http, make_context):
    cid = await connected(manager, mock_http, make_context)
    stored_at_answer: list[str | None] = []

    def answer(url, **kwargs):
        return CallbackResult(payload={"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 7200})

    mock_http.post(TOKEN_URL, callback=answer)
    vendor, config = await manager.resolve(cid, "crm")
    ctx = make_context()
    connectors = [vendor_class("crm", vendor).from_request(config, ctx) for _ in range(20)]

    async def renew(connector) -> str:
        stale = await connector.auth.headers()
        assert await connector.auth.refresh(stale)
        token = await connector.auth.headers()
        stored_at_answer.append(manager.open_grant(await manager.row(cid))["refresh_token"])
        return token["Authorization"]

    tokens = await asyncio.gather(*(renew(c) for c in connectors))
    assert set(tokens) == {"Bearer at-2"}
    refreshes = [c for c in sent(mock_http, "POST", TOKEN_URL) if body_of(c)["grant_type"] == "refresh_token"]
    assert len(refreshes) == 1 and body_of(refreshes[0])["refresh_token"] == "rt-1"
    assert set(stored_at_answer) == {"rt-2"}  # every caller that saw at-2 found rt-2 already stored
    assert (await manager.row(cid)).status == "active"


async def test_a_refused_refresh_marks_the_connection_needs_reauth(manager, mock_http, make_context):
    cid = await connected(manager, mock_http, make_context)
    mock_http.post(TOKEN_URL, status=400, payload={"error": "invalid_grant", "error_description": "revoked"})
    vendor, config = await manager.resolve(cid, "crm")
    connector = vendor_class("crm", vendor).from_request(config, make_context())
    assert isinstance(connector.auth, GrantAuth)
    with pytest.raises(AuthFailed) as caught:
        await connector.auth.refresh(await connector.auth.headers())
    assert caught.value.details["reauth_required"] is True
    assert (await manager.row(cid)).status == "needs_reauth"
    manager.forget(cid)
    with pytest.raises(AuthFailed) as again:
        await manager.resolve(cid, "crm")
    assert again.value.details["reauth_required"] is True


def test_the_state_is_signed_expiring_and_derives_the_pkce_verifier():
    now = [1000.0]
    signer = StateSigner(b"k" * 32, 600, clock=lambda: now[0])
    state, flow = signer.issue("conn_1", "zendesk")
    assert signer.check(state) == flow
    verifier = signer.verifier(flow)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", verifier) and len(s256(verifier)) == 43
    assert verifier not in state
    payload, mac = state.split(".")
    for forged in (f"{payload}x.{mac}", f"{payload}.{mac[:-2]}AA", "e30.", ""):
        with pytest.raises(BadState):
            signer.check(forged)
    with pytest.raises(BadState):
        StateSigner(b"other" * 8, 600, clock=lambda: now[0]).check(state)
    now[0] += 601
    with pytest.raises(BadState, match="expired"):
        signer.check(state)
