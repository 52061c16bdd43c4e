"""The OAuth apps this service is registered as, one per vendor: where to authorize, where to redeem, what to ask.

The table VENDORS holds each vendor's documented authorization-code flow; the app's client id, secret, redirect
URI and scopes come from the environment (`{VENDOR}_OAUTH_CLIENT_ID`, `_CLIENT_SECRET`, `_REDIRECT_URI`,
`_SCOPES`; settings derived from the table). In sandbox mode a vendor without an app gets the sandbox's one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.http import UpstreamConnector
from errors import InvalidConfig, InvalidRequest

SANDBOX_CLIENT_ID = "sandbox-oauth-client"
SANDBOX_CLIENT_SECRET = "sandbox-oauth-secret"


@dataclass(frozen=True)
class OAuthVendor:
    """One vendor's authorization-code flow as its docs page (`docs`) describes it.

    `authorize` and `token` are absolute URLs, or paths on the connector's own host (a Salesforce My Domain,
    a Zendesk subdomain); in the sandbox both go to the vendor's emulator. `token_field` is the config field
    the access token fills, `from_answer` the config fields the token answer fills (Salesforce's instance).
    """

    authorize: str
    token: str
    scopes: str
    pkce: bool
    docs: str
    token_field: str
    json_body: bool = False  # the token endpoint takes JSON (Zendesk's examples), else a form
    from_answer: tuple[tuple[str, str], ...] = ()  # (answer key, config field)
    client_id_field: str | None = None  # a config field that names the app (LiveChat's agent token grant)


VENDORS: dict[str, OAuthVendor] = {
    # Web server flow, PKCE supported (code_challenge S256); no expiry in the answer; rotation is an app option.
    "salesforce": OAuthVendor(
        authorize="/services/oauth2/authorize",
        token="/services/oauth2/token",
        scopes="api refresh_token",
        pkce=True,
        docs="https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_web_server_flow.htm",
        token_field="access_token",
        from_answer=(("instance_url", "instance_url"),),
    ),
    # Legacy public apps: no PKCE in the documented parameters; tokens live 30 minutes; refresh tokens do not rotate.
    "hubspot": OAuthVendor(
        authorize="https://app.hubspot.com/oauth/authorize",
        token="/oauth/v1/token",
        scopes="oauth tickets crm.objects.contacts.read crm.objects.contacts.write",
        pkce=False,
        docs="https://developers.hubspot.com/docs/api/oauth-quickstart-guide",
        token_field="api_key",
    ),
    # Authorization code grant on the account's subdomain, PKCE (developer.zendesk.com/documentation/api-basics/
    # authentication/oauth-pkce), refresh tokens (.../authentication/refresh-token) that are replaced on use.
    "zendesk": OAuthVendor(
        authorize="/oauth/authorizations/new",
        token="/oauth/tokens",
        scopes="read write",
        pkce=True,
        docs="https://support.zendesk.com/hc/en-us/articles/4408845965210",
        token_field="oauth_token",
        json_body=True,
    ),
    # The accounts service (OAuth 2.1: PKCE); its token is the agent's Bearer token and its app the client_id.
    "livechat": OAuthVendor(
        authorize="https://accounts.livechat.com/",
        token="https://accounts.livechat.com/v2/token",
        scopes="chats--all:rw customers:own groups--all:ro agents--all:ro",
        pkce=True,
        docs="https://platform.text.com/docs/authorization/agent-authorization",
        token_field="api_key",
        client_id_field="client_id",
    ),
}


def _settings_model() -> type[BaseSettings]:
    """`{vendor}_oauth_client_id` and friends for each vendor in VENDORS."""
    fields: dict[str, Any] = {}
    for vendor in VENDORS:
        fields[f"{vendor}_oauth_client_id"] = (str | None, None)
        fields[f"{vendor}_oauth_client_secret"] = (SecretStr | None, None)
        fields[f"{vendor}_oauth_redirect_uri"] = (str | None, None)
        fields[f"{vendor}_oauth_scopes"] = (str | None, None)
    fields["oauth_state_ttl_seconds"] = (float, Field(600.0, gt=0, le=3600))
    return create_model(  # type: ignore[call-overload,no-any-return]
        "OAuthSettings",
        __base__=BaseSettings,
        __config__=None,
        **fields,
    )


OAuthSettings = _settings_model()
OAuthSettings.model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)


@dataclass(frozen=True)
class OAuthApp:
    """The app's registration at one vendor, resolved for a request."""

    vendor: str
    flow: OAuthVendor
    client_id: str
    client_secret: str | None
    redirect_uri: str
    scopes: str


def oauth_vendor(vendor: str) -> OAuthVendor:
    """The vendor's flow, or a 400 naming the ones that have one."""
    flow = VENDORS.get(vendor)
    if flow is None:
        raise InvalidRequest(
            f"{vendor} connections take no OAuth flow here (its credentials are an API key); "
            f"OAuth vendors: {', '.join(sorted(VENDORS))}",
            crm_type=vendor,
        )
    return flow


def oauth_app(vendor: str, settings: Any, sandbox: bool, service_url: str) -> OAuthApp:
    """The configured app (or the sandbox's); a 400 `invalid_config` naming the variables when there is none."""
    flow = oauth_vendor(vendor)
    client_id = getattr(settings, f"{vendor}_oauth_client_id")
    secret = getattr(settings, f"{vendor}_oauth_client_secret")
    redirect = getattr(settings, f"{vendor}_oauth_redirect_uri")
    if client_id is None and sandbox:
        client_id, secret = SANDBOX_CLIENT_ID, SecretStr(SANDBOX_CLIENT_SECRET)
    if client_id is None:
        upper = vendor.upper()
        raise InvalidConfig(
            f"no {vendor} OAuth app: set {upper}_OAUTH_CLIENT_ID, {upper}_OAUTH_CLIENT_SECRET and "
            f"{upper}_OAUTH_REDIRECT_URI (the app's callback, https://<this service>/oauth/callback)",
            crm_type=vendor,
        )
    return OAuthApp(
        vendor=vendor,
        flow=flow,
        client_id=client_id,
        client_secret=secret.get_secret_value() if secret else None,
        redirect_uri=redirect or f"{service_url.rstrip('/')}/oauth/callback",
        scopes=getattr(settings, f"{vendor}_oauth_scopes") or flow.scopes,
    )


def vendor_url(connector: UpstreamConnector, target: str, sandbox_url: str | None) -> str:
    """An absolute authorize or token URL: the sandbox's emulator, the vendor's own host, or the connector's."""
    parts = urlsplit(target)
    if sandbox_url:  # every host of the vendor is its one emulator in the sandbox
        return f"{sandbox_url.rstrip('/')}{parts.path or '/'}"
    if parts.scheme:
        return target
    return f"{connector.base_url.rstrip('/')}{target}"
