"""Connect-your-CRM over loopback: start -> the emulator's authorize page -> Allow -> callback -> calls by connection_id.

Then the grant's life: an expired access token renews once (rotated refresh token stored first), a revoked
grant marks the connection needs_reauth and calls answer 502 crm_auth_failed with reauth_required.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oauth.apps import VENDORS, OAuthSettings
from registry import CRMS
from sandbox import SANDBOX_CREDENTIALS
from tests.conftest import Service, error_of

SEED = {cls.vendor: cls.sandbox_seed["customer_id"] for cls in CRMS}
HOSTS = {"salesforce": {"instance_url": "https://acme.my.salesforce.com"}, "zendesk": {"subdomain": "acme"},
         "hubspot": {}, "servicenow": {"instance": "acme"}, "intercom": {},
         "dynamics": {"instance_url": "https://acme.crm4.dynamics.com", "tenant_id": "acme.onmicrosoft.com"}}  # fmt: skip
OAUTH_CRMS = sorted(vendor for vendor in VENDORS if vendor in SEED)  # every CRM in the apps table


def token_path(vendor: str) -> re.Pattern[str]:
    """The emulator's token path (Entra ID's names the tenant), as a pattern."""
    module, name = next(cls for cls in CRMS if cls.vendor == vendor).emulator.split(":")
    wire = getattr(importlib.import_module(module), name).oauth_wire
    return re.compile(re.sub(r"{\w+}", "[^/]+", wire.token_path))


class Form(HTMLParser):
    """The authorize page's form: its action and fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action, self.fields = "", {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values["action"] or ""
        if tag == "input":
            self.fields[values["name"] or ""] = values["value"] or ""


def pending(svc: Service, vendor: str) -> str:
    """A connection awaiting its first authorization: only where the vendor lives, no token."""
    body = {"crm_type": vendor, "display_name": f"Acme {vendor}", "credentials": {}, "settings": HOSTS[vendor],
            "status": "needs_reauth"}  # fmt: skip
    r = svc.post("/connections", body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def authorize(svc: Service, cid: str, *, decision: str = "allow") -> httpx.Response:
    """Walk the flow as a browser would: start (302), the vendor's page, its Allow button, back to the callback."""
    start = svc.client.get(f"{svc.url}/connections/{cid}/oauth/start", follow_redirects=False)
    assert start.status_code == 302, start.text
    target = start.headers["location"]
    assert target.startswith(svc.sandbox_root), target  # the sandbox's emulator, never a real vendor
    page = svc.client.get(target)
    assert page.status_code == 200 and 'id="allow"' in page.text
    form = Form()
    form.feed(page.text)
    root = f"{urlsplit(target).scheme}://{urlsplit(target).netloc}"
    allowed = svc.client.post(f"{root}{form.action}", data={**form.fields, "decision": decision},
                              follow_redirects=False)  # fmt: skip
    assert allowed.status_code == 302
    back = allowed.headers["location"]
    assert back.startswith(f"{svc.url}/oauth/callback?")
    return svc.client.get(back, headers={"Accept": "text/html"})


@pytest.mark.parametrize("vendor", OAUTH_CRMS)
def test_a_crm_connected_by_oauth_is_active_and_serves_calls(svc: Service, vendor: str):
    cid = pending(svc, vendor)
    refused = svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED[vendor]})
    assert refused.status_code == 502 and error_of(refused)["details"]["reauth_required"] is True

    done = authorize(svc, cid)
    assert done.status_code == 200 and "is connected" in done.text, done.text
    shown = svc.client.get(f"{svc.url}/connections/{cid}").json()
    assert shown["status"] == "active"
    assert not re.search(r"token=|access_token|refresh_token\":", done.text)

    r = svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED[vendor]})
    assert r.status_code == 200, r.text
    grant = [q for q in svc.vendor_requests(vendor) if token_path(vendor).fullmatch(q["path"])]
    sent = grant[-1]["body"]
    form = sent if isinstance(sent, dict) else parse_qs(sent)
    assert "authorization_code" in str(form.get("grant_type"))
    assert ("code_verifier" in form) == VENDORS[vendor].pkce  # PKCE where the vendor documents it


def test_an_expired_access_token_renews_once_and_the_rotated_refresh_token_is_kept(svc: Service):
    cid = pending(svc, "zendesk")  # Zendesk rotates refresh tokens on use
    assert authorize(svc, cid).status_code == 200
    assert svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED["zendesk"]}).status_code == 200
    for _ in range(2):  # two expiries in a row: the second refresh must use the first one's rotated token
        svc.control("zendesk", "oauth_expire")
        r = svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED["zendesk"]})
        assert r.status_code == 200, r.text
    refreshes = [q for q in svc.vendor_requests("zendesk")
                 if q["path"] == "/oauth/tokens" and q["body"].get("grant_type") == "refresh_token"]  # fmt: skip
    assert len(refreshes) == 2
    assert refreshes[0]["body"]["refresh_token"] != refreshes[1]["body"]["refresh_token"]


def test_a_revoked_grant_marks_the_connection_needs_reauth_and_calls_say_so(svc: Service):
    cid = pending(svc, "hubspot")
    assert authorize(svc, cid).status_code == 200
    svc.control("hubspot", "oauth_revoke")
    r = svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED["hubspot"]})
    assert r.status_code == 502, r.text
    error = error_of(r)
    assert error["code"] == "crm_auth_failed" and error["details"]["reauth_required"] is True
    assert svc.client.get(f"{svc.url}/connections/{cid}").json()["status"] == "needs_reauth"
    again = svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED["hubspot"]})
    assert again.status_code == 502 and error_of(again)["details"]["reauth_required"] is True
    assert authorize(svc, cid).status_code == 200  # authorizing again brings it back
    assert svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED["hubspot"]}).status_code == 200


@pytest.mark.parametrize("vendor", ["dynamics", "servicenow"])
def test_an_expired_token_renews_by_the_refresh_grant(svc: Service, vendor: str):
    cid = pending(svc, vendor)
    assert authorize(svc, cid).status_code == 200
    svc.control(vendor, "oauth_expire")
    r = svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED[vendor]})
    assert r.status_code == 200, r.text
    sent = [q["body"] for q in svc.vendor_requests(vendor) if token_path(vendor).fullmatch(q["path"])]
    forms = [body if isinstance(body, dict) else parse_qs(body) for body in sent]
    assert "refresh_token" in str(forms[-1].get("grant_type"))


def test_the_entra_id_authorize_url_names_the_tenant_and_the_environment_scope(svc: Service):
    cid = pending(svc, "dynamics")
    start = svc.client.get(f"{svc.url}/connections/{cid}/oauth/start", follow_redirects=False)
    target = urlsplit(start.headers["location"])
    assert target.path.endswith("/acme.onmicrosoft.com/oauth2/v2.0/authorize")
    query = parse_qs(target.query)
    assert query["scope"] == ["https://acme.crm4.dynamics.com/.default offline_access"]
    assert query["code_challenge_method"] == ["S256"]


def test_an_intercom_grant_has_no_refresh_token_so_a_refused_token_asks_for_reauthorization(svc: Service):
    cid = pending(svc, "intercom")  # Intercom documents no refresh tokens and no expiry
    assert authorize(svc, cid).status_code == 200
    redeemed = [q for q in svc.vendor_requests("intercom") if q["path"] == "/auth/eagle/token"]
    assert len(redeemed) == 1
    svc.control("intercom", "oauth_expire")
    r = svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED["intercom"]})
    assert r.status_code == 502 and error_of(r)["details"]["reauth_required"] is True, r.text
    assert len([q for q in svc.vendor_requests("intercom") if q["path"] == "/auth/eagle/token"]) == 1  # no refresh
    assert authorize(svc, cid).status_code == 200  # authorizing again brings it back
    assert svc.post("/crm/customer", {"connection_id": cid, "customer_id": SEED["intercom"]}).status_code == 200


def test_a_denied_or_forged_callback_is_a_contract_error_and_changes_nothing(svc: Service):
    cid = pending(svc, "zendesk")
    denied = authorize(svc, cid, decision="deny")
    assert denied.status_code == 400 and "access_denied" in denied.text
    forged = svc.client.get(f"{svc.url}/oauth/callback", params={"code": "x", "state": "e30.bad"})
    assert forged.status_code == 400 and error_of(forged)["code"] == "invalid_request"
    assert svc.client.get(f"{svc.url}/connections/{cid}").json()["status"] == "needs_reauth"


def test_a_livechat_connection_authorized_by_oauth_passes_its_credential_check(svc: Service):
    body = {"chat_type": "livechat", "display_name": "Acme agents", "credentials": {},
            "settings": {"license_id": SANDBOX_CREDENTIALS["livechat"]["license_id"]}, "status": "needs_reauth"}  # fmt: skip
    cid = svc.post("/connections", body).json()["id"]
    assert authorize(svc, cid).status_code == 200
    shown = svc.client.get(f"{svc.url}/connections/{cid}").json()
    assert shown["status"] == "active" and shown["settings"]["client_id"] == "sandbox-oauth-client"
    check = svc.post(f"/connections/{cid}/test", {}).json()
    assert check["ok"] is True, check


def test_every_oauth_setting_is_documented():
    page = (Path(__file__).resolve().parent.parent / "docs" / "connections.md").read_text()
    generic = {re.sub(r"^[a-z]+_oauth_", "{VENDOR}_OAUTH_", name).upper() for name in OAuthSettings.model_fields}
    assert not [name for name in generic if name.upper() not in page.upper()]


def test_an_api_key_vendor_has_no_oauth_flow(svc: Service):
    body = {"crm_type": "freshdesk", "display_name": "Acme desk", "credentials": {"domain": "acme.freshdesk.com",
            "api_key": "k"}}  # fmt: skip
    cid = svc.post("/connections", body).json()["id"]
    r = svc.client.get(f"{svc.url}/connections/{cid}/oauth/start", follow_redirects=False)
    assert r.status_code == 400 and "OAuth vendors" in error_of(r)["message"]
