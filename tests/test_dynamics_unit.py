"""Dynamics 365 connector on answers shaped as Dataverse and Entra ID document them (tests/vendor_fixtures/SOURCES.md).

The HTTP boundary is faked with aioresponses; nothing here reaches a network.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from connectors.dynamics import DynamicsConnector, any_equal, odata_quote
from errors import AuthFailed, CRMError, InvalidConfig, NotFound, RateLimited, ValidationFailed
from models import TicketComment, TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import parse_phone
from tests.conftest import sent
from tests.test_vendor_documented_shapes import answer, fixture

ORG = "https://contoso.crm4.dynamics.com"
API = f"{ORG}/api/data/v9.2"
TOKEN_URL = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
GRANT = {"instance_url": ORG, "tenant_id": "contoso.onmicrosoft.com", "client_id": "app-1", "client_secret": "s3cr3t-value"}
CONTACT_ID = "49b0be2e-d01c-ed11-b83e-000d3a572421"
CASE_ID = "5d7ce3b1-3c1d-ed11-b83e-000d3a572421"
ERRORS = fixture("dynamics_errors")


@pytest.fixture
def build(make_context):
    def make(config: dict[str, Any] | None = None, context=None) -> DynamicsConnector:
        connector = DynamicsConnector.from_request(config or GRANT, context or make_context())
        assert isinstance(connector, DynamicsConnector)
        return connector

    return make


def token(mock_http, expires_in: int = 3599, value: str = "tok-1") -> None:
    mock_http.post(TOKEN_URL, payload={**ERRORS["token"]["body"], "expires_in": expires_in, "access_token": value})


def query_of(call: Any) -> dict[str, str]:
    return {k: v for k, v in (call.kwargs.get("params") or {}).items()}


def url(path: str) -> re.Pattern[str]:
    return re.compile(re.escape(f"{API}/{path}") + r"(\?.*)?$")


async def test_contact_with_its_account_in_one_round_trip(build, mock_http):
    token(mock_http)
    mock_http.get(url(f"contacts({CONTACT_ID})"), payload=fixture("dynamics_contact"))
    customer = await build().get_customer(CONTACT_ID)
    assert (customer.id, customer.name, customer.email) == (CONTACT_ID, "Yvonne McKay (sample)", "someone_a@example.com")
    assert customer.metadata["organization_name"] == "Fourth Coffee (sample)"
    assert customer.metadata["created_at"] == "2022-08-14T17:10:03Z"
    [call] = sent(mock_http, "GET", API)
    params = query_of(call)
    assert params["$expand"] == "parentcustomerid_account($select=name)"
    assert "telephone1" in params["$select"] and "emailaddress1" in params["$select"]
    headers = call.kwargs["headers"]
    assert headers["OData-MaxVersion"] == "4.0" and headers["OData-Version"] == "4.0"
    assert headers["Authorization"] == "Bearer tok-1"


async def test_the_token_grant_is_client_credentials_with_the_environments_default_scope(build, mock_http):
    token(mock_http)
    mock_http.get(url(f"incidents({CASE_ID})"), payload=fixture("dynamics_incident"))
    await build().get_ticket(CASE_ID)
    [grant] = sent(mock_http, "POST", TOKEN_URL)
    assert grant.kwargs["data"] == {
        "grant_type": "client_credentials", "client_id": "app-1", "client_secret": "s3cr3t-value",
        "scope": f"{ORG}/.default",
    }
    assert "Authorization" not in grant.kwargs["headers"]


async def test_a_token_is_renewed_before_its_stated_expiry(build, mock_http, make_context):
    context = make_context()
    token(mock_http, expires_in=30, value="short")  # inside the refresh margin: due at once
    token(mock_http, expires_in=3599, value="long")
    mock_http.get(url(f"incidents({CASE_ID})"), payload=fixture("dynamics_incident"), repeat=True)
    await build(context=context).get_ticket(CASE_ID)
    await build(context=context).get_ticket(CASE_ID)
    await build(context=context).get_ticket(CASE_ID)
    assert len(sent(mock_http, "POST", TOKEN_URL)) == 2
    auths = [c.kwargs["headers"]["Authorization"] for c in sent(mock_http, "GET", API)]
    assert auths == ["Bearer short", "Bearer long", "Bearer long"]


async def test_an_expired_token_answer_renews_once_and_retries(build, mock_http):
    token(mock_http, value="old")
    token(mock_http, value="new")
    answer(mock_http, "get", f"{API}/incidents({CASE_ID})", ERRORS["expired_token"], repeat=False)
    mock_http.get(url(f"incidents({CASE_ID})"), payload=fixture("dynamics_incident"))
    ticket = await build().get_ticket(CASE_ID)
    assert ticket.id == CASE_ID
    assert [c.kwargs["headers"]["Authorization"] for c in sent(mock_http, "GET", API)] == ["Bearer old", "Bearer new"]


async def test_a_refused_client_secret_is_auth_failed_naming_the_aadsts_code_and_not_the_secret(build, mock_http):
    answer(mock_http, "post", TOKEN_URL, ERRORS["invalid_client"])
    with pytest.raises(AuthFailed) as failed:
        await build().get_ticket(CASE_ID)
    assert "AADSTS7000215" in failed.value.message and "s3cr3t-value" not in failed.value.message
    assert failed.value.upstream_status == 401


async def test_incident_fields_and_codes(build, mock_http):
    token(mock_http)
    mock_http.get(url(f"incidents({CASE_ID})"), payload=fixture("dynamics_incident"))
    ticket = await build().get_ticket(CASE_ID)
    assert (ticket.subject, ticket.status, ticket.priority) == ("Coffee machine leaks", TicketStatus.pending, TicketPriority.high)
    assert ticket.customer_id == CONTACT_ID and ticket.metadata["ticket_number"] == "CAS-01213-P1K4G2"
    assert ticket.metadata["customer_type"] == "contact" and ticket.metadata["vendor_status"] == 2
    assert ticket.metadata["owner_id"] == "7d9a4b1e-0a1c-ed11-b83e-000d3a572421"  # the case's owner (_ownerid_value)


@pytest.mark.parametrize(
    ("case", "error_type"),
    [("not_found", NotFound), ("no_record_by_key", NotFound), ("privilege", AuthFailed), ("invalid_argument", ValidationFailed), ("rate_limited", RateLimited)],
)
async def test_documented_errors(build, mock_http, case, error_type, make_context):
    token(mock_http)
    answer(mock_http, "get", f"{API}/incidents({CASE_ID})", ERRORS[case])
    with pytest.raises(CRMError) as failed:
        await build(context=make_context(retry_after_max_seconds=5)).get_ticket(CASE_ID)
    assert type(failed.value) is error_type
    assert ERRORS[case]["body"]["error"]["code"] in failed.value.message
    if case == "rate_limited":
        assert failed.value.retry_after == 17


async def test_phone_search_is_one_filter_over_both_columns_and_keeps_only_the_caller(build, mock_http):
    token(mock_http)
    mock_http.get(url("contacts"), payload=fixture("dynamics_contacts_query"))
    found = await build().find_customers(phone=parse_phone("+1 206 555 0101", "AE"), email=None, limit=5)
    assert [c.name for c in found] == ["Rene Valdes (sample)"]
    [call] = sent(mock_http, "GET", API)
    where = query_of(call)["$filter"]
    assert "telephone1 eq '+12065550101'" in where and "mobilephone eq '+1 206-555-0101'" in where
    assert query_of(call)["$top"] == "5"


def test_a_quote_in_a_value_is_doubled_so_the_filter_keeps_its_shape():
    assert odata_quote("o'brien@example.com") == "'o''brien@example.com'"
    where = any_equal(("emailaddress1",), ["x' or contactid ne null or 'a' eq 'a"])
    assert where == "emailaddress1 eq 'x'' or contactid ne null or ''a'' eq ''a'"


async def test_email_filter(build, mock_http):
    token(mock_http)
    mock_http.get(url("contacts"), payload={"value": []})
    assert await build().find_customers(phone=None, email="o'brien@example.com", limit=3) == []
    [call] = sent(mock_http, "GET", API)
    assert query_of(call)["$filter"] == "emailaddress1 eq 'o''brien@example.com'"


async def test_create_binds_the_contact_and_answers_with_the_representation(build, mock_http):
    token(mock_http)
    mock_http.post(url("incidents"), status=201, payload=fixture("dynamics_incident"))
    request = TicketCreateRequest(crm_type="dynamics", subject="Coffee machine leaks", description="Water",
                                  customer_id=CONTACT_ID, priority="high")
    ticket = await build().create_ticket(request, idempotency_key="k", marker="idem" + "0" * 24)
    assert ticket.id == CASE_ID
    [call] = sent(mock_http, "POST", API)
    body = call.kwargs["data"]
    assert b'"customerid_contact@odata.bind":"/contacts(' + CONTACT_ID.encode() + b')"' in body
    assert b'"prioritycode":1' in body and b'"caseorigincode":1' in body and b"[ref idem" in body
    assert call.kwargs["headers"]["Prefer"] == "return=representation"


async def test_a_sql_timeout_was_rolled_back_so_a_read_is_made_again(build, mock_http):
    token(mock_http)
    answer(mock_http, "get", f"{API}/incidents({CASE_ID})", ERRORS["sql_timeout"], repeat=False)
    mock_http.get(url(f"incidents({CASE_ID})"), payload=fixture("dynamics_incident"))
    assert (await build().get_ticket(CASE_ID)).id == CASE_ID
    assert len(sent(mock_http, "GET", API)) == 2


async def test_a_create_for_a_missing_contact_is_a_validation_error(build, mock_http):
    token(mock_http)
    missing = {"status": 404, "body": {"error": {"code": "0x80040217", "message": "contact With Id = x Does Not Exist"}}}
    answer(mock_http, "post", f"{API}/incidents", missing)
    request = TicketCreateRequest(crm_type="dynamics", subject="s", description="d", customer_id=CONTACT_ID)
    with pytest.raises(ValidationFailed):
        await build().create_ticket(request, idempotency_key="k")


async def test_resolving_uses_close_incident_and_a_note_is_an_annotation(build, mock_http):
    token(mock_http)
    mock_http.post(url("annotations"), status=201, payload={"annotationid": "aaaaaaaa-0000-4000-8000-000000000001"})
    mock_http.post(url("CloseIncident"), status=204)
    mock_http.get(url(f"incidents({CASE_ID})"), payload={**fixture("dynamics_incident"), "statecode": 1, "statuscode": 5})
    update = TicketUpdateRequest(crm_type="dynamics", ticket_id=CASE_ID, status="solved",
                                 comment=TicketComment(body="Fixed on the call", public=False))
    ticket = await build().update_ticket(update)
    assert ticket.status == TicketStatus.solved and ticket.metadata["note_id"].startswith("aaaaaaaa")
    assert sent(mock_http, "PATCH", API) == []  # a resolve is never a PATCH of statecode
    note, close = sent(mock_http, "POST", API)
    assert b'"objectid_incident@odata.bind":"/incidents(' in note.kwargs["data"]
    assert b'"Status":5' in close.kwargs["data"] and b'"incidentid@odata.bind"' in close.kwargs["data"]


async def test_an_update_never_creates_a_case(build, mock_http):
    token(mock_http)
    mock_http.patch(url(f"incidents({CASE_ID})"), payload=fixture("dynamics_incident"))
    mock_http.get(url(f"incidents({CASE_ID})"), payload=fixture("dynamics_incident"))
    await build().update_ticket(TicketUpdateRequest(crm_type="dynamics", ticket_id=CASE_ID, priority="low"))
    [patch] = sent(mock_http, "PATCH", API)
    assert patch.kwargs["headers"]["If-Match"] == "*" and patch.kwargs["data"] == b'{"prioritycode":3}'


@pytest.mark.parametrize(
    "config",
    [
        {"instance_url": "https://contoso.crm4.dynamics.com.evil.io"},
        {"instance_url": "http://contoso.crm4.dynamics.com"},
        {"instance_url": "https://contoso.crm4.dynamics.com:8443"},
        {"instance_url": "https://contoso.crm4.dynamics.com/api/data/v9.2"},
        {"instance_url": "https://169.254.169.254"},
        {"authority_url": "https://login.microsoftonline.com.evil.io"},
        {"authority_url": "https://evillogin.microsoftonline.com"},
        {"authority_url": "http://login.microsoftonline.com"},
        {"tenant_id": "../../evil"},
        {"tenant_id": "contoso/x"},
    ],
)
def test_hosts_are_guarded(build, config):
    with pytest.raises(InvalidConfig):
        build({**GRANT, **config})


def test_sovereign_clouds_are_accepted(build):
    connector = build({**GRANT, "instance_url": "https://contoso.crm.microsoftdynamics.us",
                       "authority_url": "https://login.microsoftonline.us"})
    assert connector.base_url == "https://contoso.crm.microsoftdynamics.us"
    assert connector.authority == "https://login.microsoftonline.us"


def test_a_request_naming_the_tenant_gets_none_of_the_environments_secrets(make_context):
    context = make_context(dynamics_instance_url=ORG, dynamics_tenant_id="a.onmicrosoft.com",
                           dynamics_client_id="app", dynamics_client_secret="env-secret")
    merged = DynamicsConnector.merged_config({"tenant_id": "other.onmicrosoft.com"}, context.settings)
    assert "client_secret" not in merged and merged["client_id"] == "app"


def test_ids_are_guids(build):
    assert build().ticket_id(CASE_ID.upper()) == CASE_ID.upper()
    for bad in ("12345", CASE_ID + ")", f"{CASE_ID})/contacts({CASE_ID}"):
        with pytest.raises(CRMError):
            build().ticket_id(bad)

