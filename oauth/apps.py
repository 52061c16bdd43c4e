"""The OAuth apps this service is registered as, one per vendor: where to authorize, where to redeem, what to ask.

The table VENDORS holds each vendor's documented authorization-code flow; the app's client id, secret, redirect
URI and scopes come from the environment (`{VENDOR}_OAUTH_CLIENT_ID`, `_CLIENT_SECRET`, `_REDIRECT_URI`,
`_SCOPES`; settings derived from the table). In sandbox mode a vendor without an app gets the sandbox's one.
"""

from __future__ import annotations

import re
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
        docs="https://platform.text.com/docs/authorization/oauth-authorization",
        token_field="api_key",
        client_id_field="client_id",
    ),
    # Microsoft Entra ID's v2.0 endpoints for Dynamics 365 (Dataverse): PKCE, the environment's `.default` scope
    # and offline_access for a refresh token; learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow.
    "dynamics": OAuthVendor(
        authorize="https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/authorize",
        token="https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token",
        scopes="{instance_url}/.default offline_access",
        pkce=True,
        docs="https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow",
        token_field="access_token",
    ),
    # The instance's own OAuth server (an Application Registry entry); access tokens 30 minutes, refresh tokens
    # 100 days, not replaced on use.
    "servicenow": OAuthVendor(
        authorize="/oauth_auth.do",
        token="/oauth_token.do",
        scopes="useraccount",
        pkce=False,
        docs="https://www.servicenow.com/docs/r/platform-security/authentication/c_OAuthAuthorizationCodeFlow.html",
        token_field="access_token",
    ),
    # Public apps: the code redeems for a token that does not expire; Intercom issues no refresh tokens, so a
    # revoked or refused token means authorizing again. Scopes are the app's settings, not a request parameter.
    "intercom": OAuthVendor(
        authorize="https://app.intercom.com/oauth",
        token="https://api.intercom.io/auth/eagle/token",
        scopes="",
        pkce=False,
        docs="https://developers.intercom.com/docs/build-an-integration/learn-more/authentication/setting-up-oauth",
        token_field="access_token",
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


def fill(template: str, connector: UpstreamConnector) -> str:
    """A URL or scope with the connection's `{field}`s (Entra ID's tenant, the Dynamics environment) filled in."""
    if "{" not in template:
        return template
    fields = {name: value for name, value in connector.config if isinstance(value, str)}  # never a SecretStr
    missing = [name for name in re.findall(r"{(\w+)}", template) if not fields.get(name)]
    if missing:
        raise InvalidConfig(f"the connection's settings lack {', '.join(missing)}", crm_type=connector.vendor)
    return template.format_map(fields)


def vendor_url(connector: UpstreamConnector, target: str, sandbox_url: str | None) -> str:
    """An absolute authorize or token URL: the sandbox's emulator, the vendor's own host, or the connector's."""
    parts = urlsplit(fill(target, connector))
    if sandbox_url:  # every host of the vendor is its one emulator in the sandbox
        return f"{sandbox_url.rstrip('/')}{parts.path or '/'}"
    if parts.scheme:
        return parts.geturl()
    return f"{connector.base_url.rstrip('/')}{parts.path}"
