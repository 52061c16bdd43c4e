"""ServiceNowConnector against faked HTTP (aioresponses): wire format, tables, auth, errors, the query guard.

Answers are shaped as the Table API reference shows them
(https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html:
"Table - GET /now/table/{tableName}/{sys_id}" and its error examples) and the OAuth token endpoint as
https://www.servicenow.com/docs/r/platform-security/authentication/r_OAuthAPIRequestParameters.html.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

import orjson
import pytest
from aioresponses import CallbackResult

from connectors.servicenow import (
    PRIORITY_TO_SERVICENOW,
    STATUS_FROM_SERVICENOW,
    STATUS_TO_SERVICENOW,
    ServiceNowConnector,
    encoded_value,
)
from errors import AuthFailed, InvalidConfig, InvalidRequest, NotFound, RateLimited, ValidationFailed
from models import TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import parse_phone
from sandbox.servicenow import PRIORITY_LOOKUP
from sandbox.servicenow_query import compile_query, split_terms
from tests.conftest import sent

BASE = "https://acme.service-now.com"
TABLE = f"{BASE}/api/now/table"
CONFIG = {"instance": "acme", "username": "voice.integration", "password": "pw-123"}
INCIDENT_ID = "1c741bd70b2322007518478d83673af3"
CALLER = "681ccaf9c0a8016400b98a06818d57c7"
# The Table API reference's GET /now/table/incident/{sys_id} example, trimmed to the fields it shows that we map.
DOCUMENTED_INCIDENT = {
    "result": {
        "sys_id": INCIDENT_ID, "number": "INC0000060", "short_description": "Unable to connect to email",
        "description": "I am unable to connect to the email server. It appears to be down.",
        "caller_id": CALLER, "state": "7", "impact": "2", "urgency": "2", "priority": "3", "category": "network",
        "subcategory": "email", "contact_type": "self-service", "opened_at": "2016-12-12 15:19:57",
        "sys_created_on": "2016-12-12 15:19:57", "sys_updated_on": "2016-01-19 04:52:04",
        "closed_at": "2016-12-14 02:46:44", "resolved_at": "2016-12-13 21:43:14", "assigned_to": "5137153cc611227c000bbd1bd8cd2007",
        "assignment_group": "", "close_code": "", "correlation_id": "",
    }
}  # fmt: skip
DOCUMENTED_USER = {
    "result": {
        "sys_id": CALLER, "name": "Joe Employee", "first_name": "Joe", "last_name": "Employee",
        "email": "employee@example.com", "phone": "", "mobile_phone": "+1 415 555 2671", "user_name": "employee",
        "active": "true", "company": "31bea3d53790200044e0bfc8bcbe5dec", "company.name": "ACME North America",
        "sys_created_on": "2012-02-18 03:04:52", "sys_updated_on": "2020-01-07 18:39:13",
    }
}  # fmt: skip
# "Table API error responses": every failure is {"error":{"message","detail"},"status":"failure"}.
NOT_FOUND = {"error": {"message": "No Record found", "detail": "Record doesn't exist or ACL restricts the record retrieval"},
             "status": "failure"}  # fmt: skip
UNAUTHENTICATED = {"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                   "status": "failure"}  # fmt: skip


@pytest.fixture
def servicenow(make_context):
    def build(config=None, **settings):
        return ServiceNowConnector.from_request(config or CONFIG, make_context(**settings))

    return build


def url(path: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(TABLE + path)}(\?.*)?$")


# --- the encoded query guard --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a^ORemail!=x", "x^NQsys_id!=0", "a^^b", "^", "a=b"])
def test_an_escaped_value_stays_one_condition(value):
    query = f"email={encoded_value(value)}"
    assert split_terms(query) == [f"email={value}"]
    matches, _ = compile_query(query, lambda record, field: record.get(field))
    assert matches({"email": value}) and not matches({"email": "other"})


def test_control_characters_are_refused():
    with pytest.raises(InvalidRequest):
        encoded_value("a\nb")


# --- tables ----------------------------------------------------------------------------------------------


def test_priority_writes_are_impact_and_urgency_whose_lookup_gives_it():
    from connectors.servicenow import PRIORITY_FROM_SERVICENOW

    for priority, (impact, urgency) in PRIORITY_TO_SERVICENOW.items():
        assert PRIORITY_FROM_SERVICENOW[PRIORITY_LOOKUP[(str(impact), str(urgency))]] == priority


def test_every_status_written_reads_back_as_itself():
    assert all(STATUS_FROM_SERVICENOW[code] == status for status, code in STATUS_TO_SERVICENOW.items())


async def test_documented_incident_maps(servicenow, mock_http):
    mock_http.get(url(f"/incident/{INCIDENT_ID}"), payload=DOCUMENTED_INCIDENT)
    ticket = await servicenow().get_ticket(INCIDENT_ID)
    assert (ticket.subject, ticket.status, ticket.priority, ticket.customer_id) == (
        "Unable to connect to email", TicketStatus.closed, TicketPriority.medium, CALLER)
    assert ticket.created_at == "2016-12-12T15:19:57Z" and ticket.metadata["number"] == "INC0000060"
    [call] = sent(mock_http, "GET", f"{TABLE}/incident/{INCIDENT_ID}")
    assert call.kwargs["params"]["sysparm_display_value"] == "false"
    assert call.kwargs["params"]["sysparm_exclude_reference_link"] == "true"


async def test_tenant_tables_override_the_defaults(servicenow, mock_http):
    record = {"result": {**DOCUMENTED_INCIDENT["result"], "state": "10", "priority": "5"}}
    mock_http.get(url(f"/incident/{INCIDENT_ID}"), payload=record)
    config = {**CONFIG, "status_map": {"10": "pending"}, "priority_map": {"5": "medium"}}
    ticket = await servicenow(config).get_ticket(INCIDENT_ID)
    assert (ticket.status, ticket.priority) == (TicketStatus.pending, TicketPriority.medium)


async def test_documented_user_maps_with_its_company(servicenow, mock_http):
    mock_http.get(url(f"/sys_user/{CALLER}"), payload=DOCUMENTED_USER)
    customer = await servicenow().get_customer(CALLER)
    assert (customer.name, customer.phone, customer.metadata["organization_name"]) == (
        "Joe Employee", "+14155552671", "ACME North America")
    [call] = sent(mock_http, "GET", f"{TABLE}/sys_user/{CALLER}")
    assert "company.name" in call.kwargs["params"]["sysparm_fields"].split(",")


async def test_phone_search_is_one_or_query_and_checks_the_answer(servicenow, mock_http):
    stranger = {**DOCUMENTED_USER["result"], "sys_id": "0" * 32, "mobile_phone": "+1 212 555 0000"}
    mock_http.get(url("/sys_user"), payload={"result": [DOCUMENTED_USER["result"], stranger]})
    found = await servicenow().find_customers(phone=parse_phone("+14155552671", "AE"), email=None, limit=5)
    assert [c.id for c in found] == [CALLER]
    [call] = sent(mock_http, "GET", f"{TABLE}/sys_user")
    query = call.kwargs["params"]["sysparm_query"]
    assert query.startswith("phone=+14155552671^ORmobile_phone=+14155552671^OR") and "^NQ" not in query


async def test_create_checks_the_caller_and_writes_impact_urgency_and_marker(servicenow, mock_http):
    mock_http.get(url(f"/sys_user/{CALLER}"), payload={"result": {"sys_id": CALLER}})
    mock_http.post(url("/incident"), payload=DOCUMENTED_INCIDENT, status=201)
    request = TicketCreateRequest(crm_type="servicenow", subject="s", description="d", customer_id=CALLER,
                                  priority=TicketPriority.high)  # fmt: skip
    await servicenow().create_ticket(request, idempotency_key="k", marker="idem" + "a" * 24)
    [post] = sent(mock_http, "POST", f"{TABLE}/incident")
    body = orjson.loads(post.kwargs["data"])
    assert (body["impact"], body["urgency"], body["caller_id"], body["correlation_id"]) == ("1", "2", CALLER, "idem" + "a" * 24)
    assert "priority" not in body


async def test_create_for_a_caller_the_table_lacks_is_refused_before_the_create(servicenow, mock_http):
    mock_http.get(url(f"/sys_user/{CALLER}"), payload=NOT_FOUND, status=404)
    request = TicketCreateRequest(crm_type="servicenow", subject="s", description="d", customer_id=CALLER)
    with pytest.raises(ValidationFailed):
        await servicenow().create_ticket(request, idempotency_key="k")
    assert not sent(mock_http, "POST", f"{TABLE}/incident")


async def test_update_is_one_patch_with_the_journal_field(servicenow, mock_http):
    mock_http.patch(url(f"/incident/{INCIDENT_ID}"), payload=DOCUMENTED_INCIDENT)
    update = TicketUpdateRequest(crm_type="servicenow", ticket_id=INCIDENT_ID, status=TicketStatus.solved,
                                 priority=TicketPriority.urgent, tags=["x"],
                                 comment={"body": "note", "public": False})  # fmt: skip
    await servicenow().update_ticket(update)
    [patch] = sent(mock_http, "PATCH", f"{TABLE}/incident/{INCIDENT_ID}")
    assert orjson.loads(patch.kwargs["data"]) == {"state": "6", "impact": "1", "urgency": "1", "work_notes": "note"}


# --- errors ---------------------------------------------------------------------------------------------


async def test_not_found_keeps_message_and_detail(servicenow, mock_http):
    mock_http.get(url(f"/incident/{INCIDENT_ID}"), payload=NOT_FOUND, status=404)
    with pytest.raises(NotFound) as caught:
        await servicenow().get_ticket(INCIDENT_ID)
    assert "No Record found: Record doesn't exist" in caught.value.message


async def test_basic_401_is_auth_failed_without_the_password(servicenow, mock_http):
    mock_http.get(url(f"/incident/{INCIDENT_ID}"), payload=UNAUTHENTICATED, status=401)
    with pytest.raises(AuthFailed) as caught:
        await servicenow().get_ticket(INCIDENT_ID)
    assert "User Not Authenticated" in caught.value.message and "pw-123" not in caught.value.message


async def test_429_keeps_retry_after(servicenow, mock_http):
    limited = {"error": {"message": "Rate limit exceeded", "detail": None}, "status": "failure"}
    headers = {"Retry-After": "600", "X-RateLimit-Limit": "1000", "X-RateLimit-Rule": "f2b2f7d1c0a8016400b5a1e2b3c4d5e6"}
    mock_http.get(url(f"/incident/{INCIDENT_ID}"), payload=limited, status=429, headers=headers, repeat=True)
    with pytest.raises(RateLimited) as caught:
        await servicenow().get_ticket(INCIDENT_ID)
    assert caught.value.retry_after == 600.0


# --- auth -----------------------------------------------------------------------------------------------


async def test_oauth_password_grant_renews_once_after_a_401(servicenow, mock_http):
    grants: list[dict] = []

    def token(url_, **kwargs):
        grants.append({k: v[0] for k, v in parse_qs(kwargs["data"].decode() if isinstance(kwargs["data"], bytes)
                                                        else _form(kwargs["data"])).items()})  # fmt: skip
        return CallbackResult(payload={"access_token": f"tok{len(grants)}", "refresh_token": "r", "scope": "useraccount",
                                       "token_type": "Bearer", "expires_in": 1799})  # fmt: skip

    mock_http.post(f"{BASE}/oauth_token.do", callback=token, repeat=True)
    mock_http.get(url(f"/incident/{INCIDENT_ID}"), payload=UNAUTHENTICATED, status=401)
    mock_http.get(url(f"/incident/{INCIDENT_ID}"), payload=DOCUMENTED_INCIDENT)
    config = {**CONFIG, "client_id": "cid", "client_secret": "csecret"}
    await servicenow(config).get_ticket(INCIDENT_ID)
    assert [g["grant_type"] for g in grants] == ["password", "password"]
    assert grants[0]["username"] == "voice.integration" and grants[0]["client_id"] == "cid"
    auths = [c.kwargs["headers"]["Authorization"] for c in sent(mock_http, "GET", f"{TABLE}/incident")]
    assert auths == ["Bearer tok1", "Bearer tok2"]


def _form(data) -> str:
    from urllib.parse import urlencode

    return urlencode(data)


async def test_a_refused_grant_is_auth_failed(servicenow, mock_http):
    mock_http.post(f"{BASE}/oauth_token.do", payload={"error_description": "access_denied", "error": "server_error"},
                   status=401)  # fmt: skip
    with pytest.raises(AuthFailed) as caught:
        await servicenow({"instance": "acme", "client_id": "cid", "client_secret": "bad-secret"}).get_ticket(INCIDENT_ID)
    assert "access_denied" in caught.value.message and "bad-secret" not in caught.value.message


@pytest.mark.parametrize("instance", ["acme.service-now.com.evil.io", "169.254.169.254", "a/b", "acme:80", "acme@x"])
def test_instance_must_be_one_label(servicenow, instance):
    with pytest.raises(InvalidConfig):
        servicenow({**CONFIG, "instance": instance})


def test_the_full_host_is_accepted(servicenow):
    assert servicenow({**CONFIG, "instance": "Acme.service-now.com"}).base_url == BASE


def test_naming_the_instance_drops_the_environments_secrets(make_context, monkeypatch):
    monkeypatch.setenv("SERVICENOW_PASSWORD", "operator-secret")
    monkeypatch.setenv("SERVICENOW_USERNAME", "operator")
    from settings import Settings

    merged = ServiceNowConnector.merged_config({"instance": "attacker"}, Settings(_env_file=None))
    assert "password" not in merged
