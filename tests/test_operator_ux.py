"""Messages that tell an operator or a newcomer what to do, the sandbox control API's validation, .env.example."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from pydantic import ValidationError

from connectors.messages import host_label
from connectors.salesforce import SalesforceConnector
from connectors.zendesk import ZendeskConnector
from errors import AuthFailed, InvalidConfig, InvalidRequest, UpstreamTimeout, UpstreamUnreachable, UpstreamUnresolvable
from settings import Settings
from tests.conftest import Service, error_of, sent

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://acme.zendesk.com/api/v2"
CONFIG = {"subdomain": "acme", "email": "agent@acme.com", "api_token": "tok123"}
TICKET = re.compile(rf"{BASE}/tickets/7\.json")


# --- the request body and method ---------------------------------------------------------------------


def test_a_body_without_content_type_says_to_send_application_json(svc: Service):
    r = svc.client.post(f"{svc.url}/crm/customer", content=b"crm_type=zendesk&customer_id=1")
    err = error_of(r)
    assert r.status_code == 415 and err["code"] == "invalid_request"
    assert err["message"].startswith("the Content-Type header is missing: send `Content-Type: application/json`")


def test_a_form_body_names_its_content_type(svc: Service):
    r = svc.client.post(f"{svc.url}/crm/customer", data={"crm_type": "zendesk", "customer_id": "1"})  # curl -d
    err = error_of(r)
    assert r.status_code == 415
    assert "the Content-Type header is 'application/x-www-form-urlencoded'" in err["message"]
    assert "-H 'Content-Type: application/json'" in err["message"]


def test_broken_json_with_the_right_content_type_is_still_a_json_error(svc: Service):
    r = svc.client.post(f"{svc.url}/crm/customer", content=b"{oops", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and error_of(r)["message"] == "the body is not a JSON object"


def test_get_on_a_post_route_is_405_with_allow_and_use_post(svc: Service):
    r = svc.client.get(f"{svc.url}/crm/customer")
    err = error_of(r)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert err["message"] == "GET is not allowed on /crm/customer; use POST"


def test_validation_errors_carry_the_crm_type_sent(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "zendesk"})
    err = error_of(r)
    assert r.status_code == 422 and err["crm_type"] == "zendesk" and "customer_id" in err["message"]


def test_a_non_json_body_carries_no_crm_type(svc: Service):
    r = svc.client.post(f"{svc.url}/crm/customer", content=b"[1]", headers={"Content-Type": "application/json"})
    assert error_of(r)["crm_type"] is None


# --- ids say what they must look like ----------------------------------------------------------------


def test_a_17_character_salesforce_id_says_15_or_18(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "salesforce", "customer_id": "0030000000000001A"})
    err = error_of(r)
    assert r.status_code == 400 and err["crm_type"] == "salesforce"
    assert err["message"] == (
        "customer_id '0030000000000001A' (17 characters) is not a valid Salesforce id: "
        "Salesforce customer_ids are 15 or 18 letters and digits, e.g. 003000000000001AAA"
    )


def test_a_numeric_vendor_id_says_digits(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "zendesk", "ticket_id": "T-7"})
    assert error_of(r)["message"].endswith("Zendesk ticket_ids are 1 to 20 digits, e.g. 12345")


def test_every_id_pattern_has_its_description():
    from crm import CRMFactory

    for vendor in CRMFactory.supported():
        cls = CRMFactory.connector_class(vendor)
        assert cls.customer_id_form and cls.ticket_id_form
    assert SalesforceConnector.customer_id_form.startswith("15 or 18")


# --- transport failures --------------------------------------------------------------------------------


@pytest.fixture
def zendesk(make_context):
    def build(config=None, **settings):
        return ZendeskConnector.from_request(config or CONFIG, make_context(**settings))

    return build


async def test_a_timeout_reports_the_time_actually_waited(zendesk, mock_http):
    connector = zendesk(retry_max_attempts=1)
    connector.ctx.deadline.started_at -= 9.3  # as if the earlier attempts had used 9.3 s of the deadline
    mock_http.get(TICKET, exception=asyncio.TimeoutError())
    with pytest.raises(UpstreamTimeout) as caught:
        await connector.get_ticket("7")
    message = caught.value.message
    assert message.startswith("Zendesk (acme.zendesk.com:443) did not answer: waited 0.0s on attempt 1, 9.3s in all")
    assert "HTTP_TOTAL_TIMEOUT_SECONDS=0.8 per attempt, REQUEST_DEADLINE_SECONDS=1.5 per request" in message


def test_a_slow_vendor_reports_the_whole_time_waited(svc: Service):
    svc.fault("zendesk", "latency", seconds=2.0, count=-1)
    r = svc.post("/crm/ticket", {"crm_type": "zendesk", "ticket_id": "1"})
    err = error_of(r)
    assert r.status_code == 504 and err["code"] == "crm_timeout"
    waited = float(re.search(r"([0-9.]+)s in all", err["message"]).group(1))
    assert waited >= 1.3  # the whole 1.5 s deadline, not the last attempt's share of it


def connector_error(kind: type[aiohttp.ClientConnectorError], errno: int, reason: str) -> aiohttp.ClientConnectorError:
    key = SimpleNamespace(host="acme.zendesk.com", port=443, ssl=True)
    return kind(key, OSError(errno, reason))  # type: ignore[arg-type]


async def test_dns_failure_names_the_host_and_is_not_retried(zendesk, mock_http):
    mock_http.get(TICKET, exception=connector_error(aiohttp.ClientConnectorDNSError, -2, "Name or service not known"))
    mock_http.get(TICKET, payload={"ticket": {"id": 7}})
    with pytest.raises(UpstreamUnresolvable) as caught:
        await zendesk().get_ticket("7")
    assert caught.value.retryable is False and caught.value.code == "crm_error"
    assert caught.value.message == (
        "the host name of Zendesk (acme.zendesk.com:443) does not resolve: check the configured subdomain, domain or base_url"
    )
    assert len(sent(mock_http, "GET", BASE)) == 1


async def test_an_unreachable_host_is_named_and_retryable(zendesk, mock_http):
    for _ in range(3):
        mock_http.get(TICKET, exception=connector_error(aiohttp.ClientConnectorError, 111, "Connection refused"))
    with pytest.raises(UpstreamUnreachable) as caught:
        await zendesk().get_ticket("7")
    assert caught.value.retryable is True
    assert caught.value.message == "could not connect to Zendesk at acme.zendesk.com:443: Connection refused"


async def test_rejected_credentials_say_which_variables_to_check(zendesk, mock_http):
    mock_http.get(TICKET, status=401, payload={"error": "Couldn't authenticate you"})
    with pytest.raises(AuthFailed) as caught:
        await zendesk().get_ticket("7")
    assert caught.value.message.endswith("; check the credentials in the request's `config` or ZENDESK_API_TOKEN")
    assert "tok123" not in caught.value.message


def test_host_label_never_shows_credentials_or_query():
    assert host_label("https://user:pw@h.example.com:8443/p?token=s#f") == "h.example.com:8443"
    assert host_label("http://127.0.0.1/x?a=b") == "127.0.0.1:80"


# --- config errors say where a value comes from -------------------------------------------------------


def test_missing_credentials_name_the_environment_variables_and_sandbox(make_context):
    with pytest.raises(InvalidConfig) as caught:
        ZendeskConnector.from_request(None, make_context())
    message = caught.value.message
    assert message.startswith("invalid zendesk config: config: give email and api_token, or oauth_token; ")
    assert "give api_token, email, oauth_token in the request's `config`" in message
    assert "or set ZENDESK_API_TOKEN, ZENDESK_EMAIL, ZENDESK_OAUTH_TOKEN in the service's environment" in message
    assert "--sandbox (SANDBOX=true)" in message and caught.value.crm_type == "zendesk"


def test_a_missing_subdomain_names_zendesk_subdomain(zendesk):
    with pytest.raises(InvalidConfig) as caught:
        zendesk({"oauth_token": "o"})
    assert caught.value.message.startswith("invalid zendesk config: subdomain is required; give subdomain")
    assert "ZENDESK_SUBDOMAIN" in caught.value.message and "--sandbox" in caught.value.message


def test_a_missing_required_field_names_its_variable(make_context):
    from connectors.freshdesk import FreshdeskConnector

    with pytest.raises(InvalidConfig) as caught:
        FreshdeskConnector.from_request(None, make_context(freshdesk_domain="acme"))
    assert caught.value.message.startswith("invalid freshdesk config: api_key: is required; give api_key in the")
    assert "or set FRESHDESK_API_KEY in the service's environment" in caught.value.message


def test_a_request_naming_its_own_host_is_told_env_secrets_are_not_used(make_context):
    context = make_context(zendesk_email="a@b.c", zendesk_api_token="env-token")
    with pytest.raises(InvalidConfig) as caught:
        ZendeskConnector.from_request({"subdomain": "other"}, context)
    message = caught.value.message
    assert "gets none of the environment's secrets" in message and "env-token" not in message


def test_a_typo_key_lists_valid_keys_and_a_near_match(zendesk):
    with pytest.raises(InvalidConfig) as caught:
        zendesk({**CONFIG, "subdomian": "acme"})
    assert caught.value.message == (
        "invalid zendesk config: unknown key 'subdomian'; did you mean 'subdomain'? "
        "(valid keys: api_token, base_url, email, field_mapping, oauth_token, subdomain, tier_field, webhook_secret)"
    )


def test_a_typo_key_over_the_api_is_invalid_config(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "zendesk", "ticket_id": "1", "config": {"api_tokn": "x"}})
    err = error_of(r)
    assert r.status_code == 400 and err["code"] == "invalid_config" and "did you mean 'api_token'?" in err["message"]


# --- start-up checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("zendesk_subdomain", "acme.zendesk.com", "give only the subdomain, one DNS label of letters, digits and hyphens ('acme' for acme.zendesk.com)"),
        ("zendesk_subdomain", "https://acme.zendesk.com", "('acme' for acme.zendesk.com)"),
        ("freshdesk_domain", "acme.example.com", "('acme' for acme.freshdesk.com)"),
        ("salesforce_instance_url", "acme.my.salesforce.com", "give the org's https URL, e.g. https://acme.my.salesforce.com"),
    ],
)
def test_start_up_checks_vendor_values(name, value, hint):
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **{name: value})
    assert hint in caught.value.errors()[0]["msg"]


def test_start_up_keeps_good_vendor_values():
    settings = Settings(_env_file=None, zendesk_subdomain="Acme", freshdesk_domain="acme.freshdesk.com")
    assert settings.zendesk_subdomain == "acme" and settings.freshdesk_domain == "acme.freshdesk.com"


def test_the_server_refuses_to_start_with_a_dotted_subdomain():
    env = {"PATH": "/usr/bin:/bin", "ZENDESK_SUBDOMAIN": "acme.zendesk.com"}
    done = subprocess.run([sys.executable, "server.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "bad configuration:\n  ZENDESK_SUBDOMAIN: give only the subdomain" in done.stderr
    assert "Value error" not in done.stderr


# --- the sandbox's control API ---------------------------------------------------------------------------


def control_error(r) -> str:
    assert r.headers["Content-Type"].startswith("application/json") and "Traceback" not in r.text
    return r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (None, 400, "send a JSON object body"),
        (b"kind=error", 400, "the body is not JSON"),
        (b"[1]", 400, "the body must be a JSON object"),
        (b'{"kind": "error"}', 400, "name the vendor: one of "),
        (b'{"vendor": "nope", "kind": "error"}', 404, "no emulator 'nope'; the vendors are "),
        (b'{"vendor": "zendesk", "kind": "slow"}', 400, "kind must be one of latency, rate_limit"),
        (b'{"vendor": "zendesk", "kind": "error", "stauts": 500}', 400, "unknown fault field(s) ['stauts']"),
        (b'{"vendor": "zendesk", "kind": "latency", "seconds": "3"}', 400, "fault field 'seconds' must be float"),
    ],
)
def test_fault_input_is_validated_in_json(svc: Service, body, status, said):
    r = svc.client.post(f"{svc.sandbox_root}/_sandbox/faults", content=body)
    assert r.status_code == status and said in control_error(r)


def test_requests_without_vendor_is_a_json_400(svc: Service):
    r = svc.client.get(f"{svc.sandbox_root}/_sandbox/requests")
    assert r.status_code == 400 and "?vendor=" in control_error(r)


def test_a_wrong_method_on_the_control_api_is_a_json_405(svc: Service):
    r = svc.client.get(f"{svc.sandbox_root}/_sandbox/reset")
    assert r.status_code == 405 and r.headers["Allow"] == "POST" and "use POST" in control_error(r)


def test_a_vendor_action_missing_its_field_is_a_json_400(svc: Service):
    r = svc.client.post(f"{svc.sandbox_root}/_sandbox/freshdesk/require_for_closure", json={})
    assert r.status_code == 400 and control_error(r) == "freshdesk require_for_closure needs 'field' in the JSON body"


def test_an_unknown_action_is_a_json_404(svc: Service):
    r = svc.client.post(f"{svc.sandbox_root}/_sandbox/zendesk/explode")
    assert r.status_code == 404 and "zendesk has no control action 'explode'" in control_error(r)


def test_emulators_still_answer_as_their_vendors(svc: Service):
    r = svc.client.get(f"{svc.emulators['zendesk']}/api/v2/no-such-thing", headers={"Authorization": "Bearer t"})
    assert r.status_code == 404 and r.json() == {"error": "RecordNotFound", "description": "Not found"}


def test_reset_clears_the_services_idempotency_memory(svc: Service):
    body = {"crm_type": "zendesk", "subject": "Once", "description": "d"}
    first = svc.post("/crm/ticket/create", body, **{"Idempotency-Key": "k-reset"})
    again = svc.post("/crm/ticket/create", body, **{"Idempotency-Key": "k-reset"})
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    svc.reset()
    fresh = svc.post("/crm/ticket/create", body, **{"Idempotency-Key": "k-reset"})
    assert fresh.status_code == 201 and fresh.headers["Idempotent-Replayed"] == "false"
    assert len([q for q in svc.vendor_requests("zendesk") if q["method"] == "POST"]) == 1  # created anew


# --- .env.example ------------------------------------------------------------------------------------------

ENV_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=")


def test_env_example_lists_every_setting_once_with_a_comment():
    lines = (ROOT / ".env.example").read_text().splitlines()
    names = [m.group(1) for m in map(ENV_LINE.match, lines) if m]
    assert sorted(names) == sorted(name.upper() for name in Settings.model_fields)
    assert len(names) == len(set(names))
    for i, line in enumerate(lines):
        if ENV_LINE.match(line):
            above = lines[i - 1]
            assert above.startswith("# ") and not ENV_LINE.match(above), f"{line} has no comment line above it"


def test_env_example_defaults_are_the_settings_defaults(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    defaults = Settings(_env_file=None)
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = ENV_LINE.match(line)
        if match and line[match.end():]:
            monkeypatch.setenv(match.group(1), line[match.end():])
    assert Settings(_env_file=None) == defaults


def test_unknown_key_errors_need_no_values(zendesk):
    with pytest.raises(InvalidRequest) as caught:
        zendesk({**CONFIG, "api_tokn": "secret-value"})
    assert "secret-value" not in caught.value.message
