"""Each emulator's OAuth 2.0 authorization server: an authorize page with an Allow button, and the token endpoint.

The authorization-code grant with PKCE (RFC 7636, S256) where the vendor supports it, the refresh_token grant
(rotating the refresh token where the vendor does), and sandbox switches: `oauth_expire` (access tokens answer
401, the refresh still works) and `oauth_revoke` (the grant is gone: refreshes answer the vendor's invalid_grant).
Each emulator names its vendor's paths and answer shapes as its `oauth_wire`; the service's side is oauth/apps.py.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from sandbox.core import bearer_token, json_response

if TYPE_CHECKING:
    from sandbox.core import Emulator

CODE_TTL_SECONDS = 600.0


def rfc_error(error: str, description: str) -> dict[str, Any]:
    """RFC 6749 section 5.2's error body, as Salesforce, Zendesk and LiveChat send it."""
    return {"error": error, "error_description": description}


def hubspot_error(error: str, description: str) -> dict[str, Any]:
    """HubSpot's token endpoint error: BAD_REFRESH_TOKEN / BAD_AUTH_CODE in its usual error shape."""
    status = {"invalid_grant": "BAD_REFRESH_TOKEN", "invalid_client": "BAD_CLIENT_ID"}.get(error, "BAD_REQUEST")
    return {"status": status, "message": description, "correlationId": secrets.token_hex(8)}


def hubspot_expired(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    """HubSpot's 401 for an expired OAuth access token."""
    body = {"status": "error", "message": "The OAuth token used to make this call expired 0 second(s) ago.",
            "correlationId": secrets.token_hex(8), "category": "EXPIRED_AUTHENTICATION"}  # fmt: skip
    return json_response(body, status=401)


def salesforce_extra(request: web.Request, name: str) -> dict[str, Any]:
    """Salesforce's token answer names the org's instance and the user's identity URL."""
    base = f"{request.scheme}://{request.host}/{name}"
    return {"instance_url": base, "id": f"{base}/id/00D000000000001AAA/005000000000001AAA",
            "issued_at": str(int(time.time() * 1000)), "signature": secrets.token_urlsafe(24)}  # fmt: skip


def livechat_extra(request: web.Request, name: str) -> dict[str, Any]:
    """LiveChat's accounts service names the agent's account and organization."""
    return {"account_id": "sandbox-agent-account", "organization_id": "sandbox-organization"}


@dataclass(frozen=True)
class Wire:
    """Where one vendor's authorization server lives and how it answers."""

    authorize_path: str
    token_path: str
    rotates: bool  # a refresh returns a new refresh token and ends the old one
    expires_in: int | None  # None: the vendor states no lifetime (Salesforce)
    error: Callable[[str, str], dict[str, Any]] = rfc_error
    expired: Callable[[Emulator, web.Request], web.StreamResponse] | None = None
    extra: Callable[[web.Request, str], dict[str, Any]] | None = None
    refreshes: bool = True  # False: the vendor issues no refresh token (Intercom)
    delegates: bool = False  # the emulator's own token handler passes these grants on to `token`


PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}: authorize</title></head><body>
<h1>{title}</h1><p>The app <b>{client}</b> asks for access ({scope}).</p>
<form method="post" action="{action}">{fields}<button id="allow" type="submit" name="decision" value="allow">Allow</button>
<button id="deny" type="submit" name="decision" value="deny">Deny</button></form></body></html>"""


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 section 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class Grant:
    """What a code or a refresh token stands for."""

    client_id: str
    redirect_uri: str
    scope: str
    challenge: str | None = None
    expires_at: float = 0.0


@dataclass
class AuthorizationServer:
    """One emulator's issued codes and tokens; outlives a data reset, as a vendor's grants do."""

    emulator: Emulator
    wire: Wire
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, bool] = field(default_factory=dict)  # issued token -> still valid

    def add_routes(self, app: web.Application) -> None:
        """The authorize page (GET shows it, POST is the Allow button) and the token endpoint."""
        app.router.add_get(self.wire.authorize_path, self.authorize_page)
        app.router.add_post(self.wire.authorize_path, self.authorize_decision)
        # Salesforce's, ServiceNow's and Entra ID's handlers serve other grants too and delegate to `token`.
        if self.wire.token_path not in self.emulator.auth_exempt and not self.wire.delegates:
            app.router.add_post(self.wire.token_path, self.token)

    def exempt(self, subpath: str) -> bool:
        """Paths that take no Authorization header: the browser's page and the client's token call."""
        return any(re.fullmatch(re.sub(r"{\w+}", "[^/]+", path), subpath)
                   for path in (self.wire.authorize_path, self.wire.token_path))  # fmt: skip

    def rejects(self, request: web.Request) -> web.StreamResponse | None:
        """The vendor's 401 for an access token this server issued and then expired or revoked."""
        token = bearer_token(request)
        if token is None or self.access_tokens.get(token, True):
            return None
        return (self.wire.expired or type(self.emulator).unauthorized)(self.emulator, request)

    def control(self, action: str) -> dict[str, Any] | None:
        """`oauth_expire`: access tokens end; `oauth_revoke`: refresh tokens end too (the user removed the app)."""
        if action not in ("oauth_expire", "oauth_revoke"):
            return None
        live = [token for token, valid in self.access_tokens.items() if valid]
        self.access_tokens.update(dict.fromkeys(live, False))
        revoked = len(self.refresh_tokens) if action == "oauth_revoke" else 0
        if action == "oauth_revoke":
            self.refresh_tokens.clear()
        return {"expired": len(live), "revoked": revoked}

    # --- the browser's side ---------------------------------------------------------------------------

    async def authorize_page(self, request: web.Request) -> web.StreamResponse:
        """The consent page: the request's parameters carried in hidden fields to the Allow button."""
        query = request.query
        if not query.get("client_id") or query.get("response_type") != "code" or not query.get("redirect_uri"):
            return web.Response(status=400, text="client_id, response_type=code and redirect_uri are required")
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items()
        )
        page = PAGE.format(
            title=html.escape(type(self.emulator).__name__.removesuffix("Emulator")),
            client=html.escape(query["client_id"]),
            scope=html.escape(query.get("scope", "")),
            action=html.escape(request.path),
            fields=hidden,
        )
        return web.Response(text=page, content_type="text/html")

    async def authorize_decision(self, request: web.Request) -> web.StreamResponse:
        """Allow: back to redirect_uri with `code` and `state`; Deny: with `error=access_denied`."""
        form = await request.post()
        redirect_uri, state = str(form.get("redirect_uri", "")), str(form.get("state", ""))
        if not redirect_uri.startswith(("http://", "https://")):
            return web.Response(status=400, text="redirect_uri must be an absolute http(s) URL")
        if form.get("decision") != "allow":
            answer = {"error": "access_denied", "state": state}
        else:
            code = secrets.token_urlsafe(24)
            challenge = str(form["code_challenge"]) if form.get("code_challenge") else None
            if challenge and form.get("code_challenge_method", "plain") != "S256":
                return web.Response(status=400, text="code_challenge_method must be S256")
            self.codes[code] = Grant(str(form.get("client_id", "")), redirect_uri, str(form.get("scope", "")),
                                     challenge, time.time() + CODE_TTL_SECONDS)  # fmt: skip
            answer = {"code": code, "state": state}
        raise web.HTTPFound(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(answer)}")

    # --- the client's side ----------------------------------------------------------------------------

    def refuse(self, error: str, description: str, status: int = 400) -> web.Response:
        return json_response(self.wire.error(error, description), status=status)

    async def token(self, request: web.Request, form: dict[str, Any] | None = None) -> web.StreamResponse:
        """authorization_code (PKCE checked) and refresh_token grants; a form or (Zendesk) a JSON body."""
        if form is None:
            raw = await request.read()
            form = orjson.loads(raw) if raw.strip().startswith(b"{") else dict(await request.post())
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if not client_id or client_id == "invalid" or secret == "invalid":
            return self.refuse("invalid_client", "client identifier or secret invalid", 401)
        if form.get("grant_type") == "authorization_code":
            grant = self.codes.pop(str(form.get("code", "")), None)
            if grant is None or grant.expires_at < time.time() or grant.client_id != client_id:
                return self.refuse("invalid_grant", "authorization code is invalid, expired or already used")
            if grant.redirect_uri != form.get("redirect_uri"):
                return self.refuse("invalid_grant", "redirect_uri does not match the authorization request")
            if grant.challenge and s256(str(form.get("code_verifier", ""))) != grant.challenge:
                return self.refuse("invalid_grant", "code_verifier does not match the code_challenge")
            return self.issue(request, grant, None)
        if form.get("grant_type") == "refresh_token":
            old = str(form.get("refresh_token", ""))
            grant = self.refresh_tokens.get(old)
            if grant is None or grant.client_id != client_id:
                return self.refuse("invalid_grant", "refresh token is invalid, expired or revoked")
            return self.issue(request, grant, old)
        return self.refuse("unsupported_grant_type", "grant type not supported")

    def issue(self, request: web.Request, grant: Grant, old_refresh: str | None) -> web.Response:
        """A new access token, and a refresh token (a new one where the vendor rotates, else the same)."""
        access = secrets.token_urlsafe(32)
        self.access_tokens[access] = True
        refresh = old_refresh
        if self.wire.refreshes and (old_refresh is None or self.wire.rotates):
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens.pop(old_refresh or "", None)
            self.refresh_tokens[refresh] = grant
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "scope": grant.scope}
        if refresh is not None:
            body["refresh_token"] = refresh
        if self.wire.expires_in is not None:
            body["expires_in"] = self.wire.expires_in
        if self.wire.extra is not None:
            body.update(self.wire.extra(request, self.emulator.name))
        return json_response(body)


def authorization_server(emulator: Emulator) -> AuthorizationServer | None:
    """The emulator's authorization server, when its vendor uses OAuth here."""
    wire = emulator.oauth_wire
    return AuthorizationServer(emulator, wire) if wire else None
