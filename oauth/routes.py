"""The OAuth routes: `GET /connections/{id}/oauth/start` (admin) and `GET /oauth/callback` (the state authenticates).

Start redirects the admin's browser to the vendor's authorize page with a signed, expiring state and (where the
vendor supports it) a PKCE challenge; the callback redeems the code, stores the tokens in the connection, sets
it active and shows a small page without secrets. docs/connections.md walks through it.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from admin import AdminCaller
from audit import note
from connections.routes import Manager, vendor_class
from deps import ERROR_RESPONSES, app_context
from errors import CRMError, InvalidRequest
from observability import log_event, register_secrets
from oauth.apps import OAuthApp, OAuthSettings, fill, oauth_app, oauth_vendor, vendor_url
from oauth.grants import connector_for, install, redeem
from oauth.state import BadState, StateSigner, s256

router = APIRouter(tags=["oauth"], responses=ERROR_RESPONSES)
STATE_KEY_LABEL = b"connectors-service/oauth/state-key/v1"


def start(app: FastAPI) -> None:
    """Read the OAuth apps' settings and hook the grant renewal into the connection manager (after its start)."""
    settings = OAuthSettings()
    app.state.oauth_settings = settings
    register_secrets([value.get_secret_value() for name, value in settings if name.endswith("_secret") and value])
    manager = app.state.connections
    install(manager, lambda vendor: resolve_app(app, vendor, ""))
    keyring = manager.keyring
    app.state.oauth_signer = (
        StateSigner(keyring.derived_key(STATE_KEY_LABEL), settings.oauth_state_ttl_seconds) if keyring else None
    )


def resolve_app(app: FastAPI, vendor: str, service_url: str) -> OAuthApp:
    """The vendor's OAuth app from the environment (or the sandbox's)."""
    return oauth_app(vendor, app.state.oauth_settings, app.state.settings.sandbox, service_url)


def signer(request: Request) -> StateSigner:
    found = request.app.state.oauth_signer
    if found is None:
        request.app.state.connections._keyring()  # raises the 503 that says to set the key
    return found


@router.get("/connections/{connection_id}/oauth/start", status_code=302, response_model=None,
            responses={302: {"description": "To the vendor's authorize page (Location)."}})  # fmt: skip
async def oauth_start(connection_id: str, request: Request, manager: Manager, admin: AdminCaller) -> Response:
    """Send the admin's browser to the vendor's consent page for this connection (a 302 with a signed state)."""
    note(operation="connection_oauth_start", connection_id=connection_id)
    row = await manager.row(connection_id)
    note(crm_type=row.vendor)
    oauth_vendor(row.vendor)
    app = resolve_app(request.app, row.vendor, str(request.base_url))
    ctx = app_context(request.app.state)
    connector = connector_for(manager, vendor_class, row, ctx)
    state, flow = signer(request).issue(connection_id, row.vendor)
    params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri,
              "scope": fill(app.scopes, connector), "state": state}  # fmt: skip
    if not params["scope"]:  # Intercom: the app's settings hold its permissions
        del params["scope"]
    if app.flow.pkce:
        params |= {"code_challenge": s256(signer(request).verifier(flow)), "code_challenge_method": "S256"}
    target = vendor_url(connector, app.flow.authorize, ctx.sandbox_urls.get(row.vendor))
    return RedirectResponse(f"{target}?{urlencode(params)}", status_code=302)


PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1 id="result" data-status="{status}">{title}</h1><p>{text}</p></body></html>"""


def page(status: int, title: str, text: str) -> Response:
    """The small result page a browser shows (names and codes only: no token reaches it)."""
    body = PAGE.format(title=html.escape(title), text=html.escape(text), status=status)
    return HTMLResponse(body, status_code=status)


HTML_PAGE = {200: {"description": "The result page (HTML).", "content": {"text/html": {"schema": {"type": "string"}}}}}


@router.get("/oauth/callback", response_model=None, responses=HTML_PAGE)
async def oauth_callback(
    request: Request,
    manager: Manager,
    state: Annotated[str, Query(max_length=4096)] = "",
    code: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """The vendor sends the browser back here: check the state, redeem the code, store the tokens."""
    note(operation="connection_oauth_callback")
    try:
        try:
            flow = signer(request).check(state)
        except BadState as exc:
            raise InvalidRequest(str(exc)) from None
        note(connection_id=flow.connection_id, crm_type=flow.vendor)
        if error or not code:
            reason = error_description or error or "no code"
            raise InvalidRequest(f"the authorization was not granted ({reason})", crm_type=flow.vendor)
        row = await manager.row(flow.connection_id)
        if row.vendor != flow.vendor:
            raise InvalidRequest("the state names another vendor than the connection's", crm_type=row.vendor)
        app = resolve_app(request.app, row.vendor, str(request.base_url))
        connector = connector_for(manager, vendor_class, row, app_context(request.app.state))
        verifier = signer(request).verifier(flow) if app.flow.pkce else None
        row = await redeem(manager, connector, app, flow.connection_id, code, verifier)
    except CRMError as exc:
        log_event("oauth_callback_failed", logging.WARNING, code=exc.code, detail=exc.message)
        if "text/html" not in request.headers.get("accept", ""):
            raise  # a script or curl gets the contract error body
        return page(exc.status_code, "Not connected", f"{exc.code}: {exc.message}")
    note(outcome="connected")
    text = f"{row.display_name} ({row.vendor}) is connected: connection {row.id} is active. You can close this page."
    return page(200, "Connected", text)
