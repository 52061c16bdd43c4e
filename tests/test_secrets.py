"""A vendor or proxy that echoes what it was sent never puts a credential into an error body or a log line."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aioresponses import CallbackResult

import observability
from connectors.http import UpstreamConnector
from crm import CRMFactory
from errors import CRMError
from livechat_connector import LiveChatConnector
from observability import JSONFormatter, redact_secrets
from tests.conftest import error_of, make_settings, start_service
from tests.test_api_contract import VENDORS


def echo(url: Any, **kwargs: Any) -> CallbackResult:
    """An emulator-style fake that answers 401 with everything it was sent, headers and body."""
    sent = {"headers": dict(kwargs.get("headers") or {}), "body": str(kwargs.get("data") or kwargs.get("json") or "")}
    text = json.dumps(sent)
    payload = {
        "error": {"message": text, "type": "authentication"},  # LiveChat
        "description": text,  # Zendesk
        "message": text,  # HubSpot
        "errors": [{"message": text}],  # Freshdesk
    }
    return CallbackResult(status=401, payload=payload, headers={"WWW-Authenticate": text})


def forms(*secrets: str) -> list[str]:
    """Each secret, and its base64 forms as an Authorization value may carry it."""
    out = list(secrets)
    out += [base64.b64encode(s.encode()).decode().rstrip("=") for s in secrets]
    return out


CASES = [
    ("zendesk", {"subdomain": "acme", "email": "agent@acme.com", "api_token": "zd-token-0123456789"},
     ["zd-token-0123456789", "agent@acme.com/token:zd-token-0123456789"]),
    ("zendesk", {"subdomain": "acme", "oauth_token": "zd-oauth-0123456789"}, ["zd-oauth-0123456789"]),
    ("hubspot", {"api_key": "pat-na1-0123456789abcdef"}, ["pat-na1-0123456789abcdef"]),
    ("freshdesk", {"domain": "acme", "api_key": "fd-key-0123456789"}, ["fd-key-0123456789", "fd-key-0123456789:X"]),
    ("servicenow", {"instance": "acme", "username": "svc.voice", "password": "sn-pass-0123456789"},
     ["sn-pass-0123456789", "svc.voice:sn-pass-0123456789"]),
    ("servicenow", {"instance": "acme", "client_id": "cid", "client_secret": "sn-secret-0123456789"},
     ["sn-secret-0123456789"]),
    ("salesforce", {"instance_url": "https://acme.my.salesforce.com", "client_id": "cid",
                    "client_secret": "sf-secret-0123456789"}, ["sf-secret-0123456789"]),
    ("salesforce", {"instance_url": "https://acme.my.salesforce.com", "access_token": "00Dxx!sf-access-0123456789",
                    "refresh_token": "5Aep-sf-refresh-0123456789", "client_id": "cid"},
     ["00Dxx!sf-access-0123456789", "5Aep-sf-refresh-0123456789"]),
    ("dynamics", {"instance_url": "https://acme.crm4.dynamics.com", "tenant_id": "acme.onmicrosoft.com",
                  "client_id": "cid", "client_secret": "dyn-secret-0123456789"}, ["dyn-secret-0123456789"]),
]  # fmt: skip


def build(crm_type: str, config: dict, make_context) -> UpstreamConnector:
    return CRMFactory.create(crm_type, config, make_context(retry_max_attempts=1))


@pytest.mark.parametrize(("crm_type", "config", "secrets"), CASES)
async def test_an_echoing_vendor_gets_no_credential_into_the_error(make_context, mock_http, caplog, crm_type, config, secrets):
    caplog.set_level(logging.DEBUG, logger="connectors")
    mock_http.get(re.compile(r".*"), callback=echo, repeat=True)
    mock_http.post(re.compile(r".*"), callback=echo, repeat=True)
    crm = build(crm_type, config, make_context)
    ticket_id = CRMFactory.connector_class(crm_type).sandbox_seed["ticket_id"]  # well-formed: the request is sent
    with pytest.raises(CRMError) as caught:
        await crm.get_ticket(ticket_id)
    body = json.dumps(caught.value.to_body("r"))
    assert "[redacted]" in body  # the echo did come back, cleaned
    leaked = [s for s in forms(*secrets) if s in body]
    assert not leaked
    formatted = "\n".join(JSONFormatter().format(r) for r in caplog.records)
    assert not [s for s in forms(*secrets) if s in formatted]


async def test_livechat_echo_is_cleaned_too(make_context, mock_http):
    mock_http.post(re.compile(r".*"), callback=echo, repeat=True)
    config = {"license_id": "lic", "account_id": "bot@example.com", "api_key": "fra:lc-pat-0123456789"}
    chat = LiveChatConnector.from_request(config, make_context(retry_max_attempts=1))
    with pytest.raises(CRMError) as caught:
        await chat._json("POST", "/v3.5/agent/action/list_chats", json={}, operation="list_chats")
    body = json.dumps(caught.value.to_body("r"))
    basic = base64.b64encode(b"bot@example.com:fra:lc-pat-0123456789").decode()
    assert "fra:lc-pat-0123456789" not in body and basic not in body and "[redacted]" in body


def test_the_log_formatter_cleans_free_text_of_known_and_echoed_credentials(monkeypatch):
    monkeypatch.setattr(observability, "_process_secrets", set())
    observability.register_secrets(["env-secret-0123456789"])
    record = logging.LogRecord("connectors", logging.WARNING, __file__, 1, "error", None, None)
    record.fields = {"detail": "vendor said env-secret-0123456789 and Authorization: Bearer abcdefgh12345678 ok"}
    line = json.loads(JSONFormatter().format(record))
    assert line["detail"] == "vendor said [redacted] and Authorization: Bearer [redacted] ok"


def test_short_values_are_not_treated_as_secrets():
    assert redact_secrets("invalid X credentials", {"X"}) == "invalid X credentials"


# --- the whole service, its environment credentials sent to an echoing proxy on loopback ------------------


class EchoHandler(BaseHTTPRequestHandler):
    """A proxy that answers every call with a 401 quoting the request's headers."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        text = json.dumps({"error": "Unauthorized", "description": f"you sent {dict(self.headers)}"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_proxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_environment_credentials_echoed_by_a_proxy_stay_out_of_answers_and_logs(echo_proxy, caplog):
    caplog.set_level(logging.DEBUG, logger="connectors")
    token = "env-zendesk-token-0123456789"
    settings = make_settings(
        sandbox=False,
        zendesk_subdomain="acme",
        zendesk_email="ops@acme.com",
        zendesk_api_token=token,
        zendesk_base_url=f"http://{echo_proxy}",
        connectors_allowed_hosts=echo_proxy,
    )
    server, thread, url = start_service(settings)
    try:
        import httpx

        with httpx.Client(timeout=10, trust_env=False) as client:
            r = client.post(f"{url}/crm/ticket", json={"crm_type": "zendesk", "ticket_id": "1"})
            client.get(f"{url}/health")  # the access line of the first request is written before this is served
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "crm_auth_failed" and "[redacted]" in err["message"]
    basic = base64.b64encode(f"ops@acme.com/token:{token}".encode()).decode()
    formatted = "\n".join(JSONFormatter().format(rec) for rec in caplog.records)
    for text in (r.text, formatted):
        assert token not in text and basic not in text


# --- the sandbox's echo_auth fault through the whole service, and the session-wide audit itself ------------


@pytest.mark.parametrize("vendor", [v.crm_type for v in VENDORS if v.echo_auth_audited])
def test_a_vendor_echoing_the_authorization_header_gets_nothing_into_the_answer(svc, vendor):
    from sandbox import SANDBOX_CREDENTIALS

    v = next(x for x in VENDORS if x.crm_type == vendor)
    if "client_secret" in SANDBOX_CREDENTIALS[vendor]:  # a client-credentials grant: its token fetch is echoed too
        svc.control(vendor, "expire_tokens")  # the token fetch is echoed too
    svc.fault(vendor, "echo_auth", count=-1)
    r = svc.post("/crm/ticket", v.read())
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "crm_auth_failed" and "[redacted]" in err["message"]
    creds = SANDBOX_CREDENTIALS[vendor]
    secrets = [value for key, value in creds.items() if key in ("api_token", "api_key", "client_secret")]
    user = creds.get("email")
    assert not [s for s in forms(*secrets, *([f"{user}/token:{secrets[0]}"] if user else [])) if s in r.text]


def test_the_audit_names_the_test_and_the_secret_id_never_the_secret():
    from tests.secrets_audit import SecretsAudit

    audit = SecretsAudit(current="tests/x.py::test_y")
    audit.register_config({"email": "a@b.co", "api_token": "tok-0123456789"}, "request")
    basic = base64.b64encode(b"a@b.co/token:tok-0123456789").decode()
    audit.check(f"upstream said Basic {basic}", "log")
    audit.check("short words like X or invalid are not secrets", "answer to /crm/ticket")
    [(test, secret_id, where)] = audit.leaks
    assert (test, where) == ("tests/x.py::test_y", "log") and secret_id.startswith("secret#1 (request config.api_token)")
    assert "tok-0123456789" not in audit.summary() + secret_id
