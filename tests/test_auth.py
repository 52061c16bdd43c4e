"""Caller authentication: CONNECTORS_API_KEYS, both header forms, contract 401s, /health open, the caller log field."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

import auth
from auth import identify, parse_keys, presented_key, warn_if_open
from tests.conftest import error_of, make_settings, start_service

KEYS = "ops:ops-key-0123456789,bare-key-abcdef0123"
TICKET = {"crm_type": "zendesk", "ticket_id": "12345"}


@pytest.fixture(scope="module")
def locked() -> Iterator[tuple[str, httpx.Client]]:
    """A sandbox service that requires a key."""
    server, thread, url = start_service(make_settings(connectors_api_keys=KEYS))
    client = httpx.Client(timeout=10, trust_env=False)
    yield url, client
    client.close()
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-key"},
    {"Authorization": "Basic b3BzLWtleS0wMTIzNDU2Nzg5"},  # the right key, but not as Bearer
    {"Authorization": "Bearer"},
    {"X-API-Key": "ops-key-012345678"},  # a prefix of a key
    {"X-API-Key": "ops:ops-key-0123456789"},  # the configured entry, id included
])  # fmt: skip
def test_missing_or_wrong_key_is_a_contract_401(locked, headers):
    url, client = locked
    r = client.post(f"{url}/crm/ticket", json=TICKET, headers=headers)
    err = error_of(r)
    assert r.status_code == 401 and err["code"] == "unauthorized" and err["retryable"] is False
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert "ops-key-0123456789" not in r.text


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer ops-key-0123456789"},
    {"authorization": "bearer bare-key-abcdef0123"},
    {"X-API-Key": "ops-key-0123456789"},
])  # fmt: skip
def test_either_header_form_with_a_configured_key_is_served(locked, headers):
    url, client = locked
    r = client.post(f"{url}/crm/ticket", json=TICKET, headers=headers)
    assert r.status_code == 200, r.text


def test_health_needs_no_key_but_everything_else_does(locked):
    url, client = locked
    assert client.get(f"{url}/health").status_code == 200
    for path in ("/sandbox", "/openapi.json", "/docs", "/nowhere"):
        assert client.get(f"{url}{path}").status_code == 401, path
    assert client.post(f"{url}/handoff/status", json={"chat_type": "livechat", "handoff_id": "X"}).status_code == 401


def test_a_refused_caller_is_refused_before_its_body_is_read(locked):
    url, client = locked
    r = client.post(f"{url}/crm/ticket", content=b"{" * 100_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 401


def test_the_access_line_names_the_caller_by_id_never_by_key(locked, caplog):
    url, client = locked
    caplog.set_level(logging.INFO, logger="connectors")
    client.post(f"{url}/crm/ticket", json=TICKET, headers={"X-API-Key": "ops-key-0123456789"})
    client.post(f"{url}/crm/ticket", json=TICKET, headers={"Authorization": "Bearer bare-key-abcdef0123"})
    # The access line is written just after the answer; the next request on the connection waits for it.
    client.get(f"{url}/health")
    lines = [r.fields for r in caplog.records if r.getMessage() == "request"]
    callers = [f.get("caller") for f in lines if f["path"] == "/crm/ticket"]
    assert callers[-2:] == ["ops", parse_keys([SecretStr("bare-key-abcdef0123")])[0].id]
    assert callers[-1].startswith("k-") and len(callers[-1]) == 10
    assert "ops-key-0123456789" not in caplog.text and "bare-key-abcdef0123" not in caplog.text


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch):
    keys = parse_keys([SecretStr(f"id{i}:key-number-{i}") for i in range(5)])
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    assert identify(keys, "key-number-0") == "id0"  # the first key matches, and still all five are compared
    assert len(compared) == 5 and all(len(a) == len(b) == 32 for a, b in compared)
    compared.clear()
    assert identify(keys, "nope") is None and len(compared) == 5


def test_key_entries_parse_as_id_and_key_or_a_hashed_id():
    keys = parse_keys([SecretStr("voice-nlu:k1-secret-value"), SecretStr("plain-secret-value"), SecretStr("bad id!:x")])
    assert [k.id for k in keys][:1] == ["voice-nlu"]
    assert keys[1].id.startswith("k-") and keys[2].id.startswith("k-")
    assert identify(keys, "k1-secret-value") == "voice-nlu" and identify(keys, "bad id!:x") == keys[2].id
    assert make_settings(connectors_api_keys=" a:1 , b:2 ,").connectors_api_keys[1].get_secret_value() == "b:2"
    assert "b:2" not in repr(make_settings(connectors_api_keys="a:1,b:2"))


def test_api_keys_are_registered_with_the_log_scrubber(locked):
    from observability import redact_secrets

    assert redact_secrets("echo: ops-key-0123456789") == "echo: [redacted]"


def test_presented_key_reads_bearer_or_x_api_key():
    assert presented_key([(b"authorization", b"Bearer  abc ")]) == "abc"
    assert presented_key([(b"x-api-key", b"xyz")]) == "xyz"
    assert presented_key([(b"authorization", b"Basic abc")]) is None


def test_an_open_service_holding_credentials_warns_at_start_up(caplog):
    caplog.set_level(logging.WARNING, logger="connectors")
    warn_if_open((), holds_env_credentials=False)
    assert not caplog.records
    warn_if_open(parse_keys([SecretStr("k:v")]), holds_env_credentials=True)
    assert not caplog.records
    warn_if_open((), holds_env_credentials=True)
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.getMessage() == "auth_disabled"


def test_start_up_warns_when_the_environment_holds_vendor_secrets(caplog):
    caplog.set_level(logging.WARNING, logger="connectors")
    server, thread, _ = start_service(make_settings(sandbox=False, zendesk_subdomain="acme", zendesk_api_token="tok-from-env"))
    server.should_exit = True
    thread.join(timeout=10)
    assert [r for r in caplog.records if r.getMessage() == "auth_disabled"]
    assert "tok-from-env" not in caplog.text

