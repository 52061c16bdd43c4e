"""SalesforceConnector against faked HTTP (aioresponses): OAuth, token cache and refresh, mapping, errors, injection."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest
from aioresponses import CallbackResult

from connectors.salesforce import SalesforceConnector
from connectors.salesforce_soql import soql_quote, sosl_phrase
from errors import (
    AuthFailed,
    InvalidConfig,
    InvalidRequest,
    NotFound,
    RateLimited,
    SessionExpired,
    UpstreamError,
    UpstreamUnavailable,
    ValidationFailed,
)
from models import TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import parse_phone
from tests.conftest import sent

INSTANCE = "https://acme.my.salesforce.com"
API = f"{INSTANCE}/services/data/v62.0"
TOKEN_URL = f"{INSTANCE}/services/oauth2/token"
CLIENT = {"instance_url": INSTANCE, "client_id": "cid", "client_secret": "s3cret"}
TOKEN = {"instance_url": INSTANCE, "access_token": "tok-given"}
CASE_ID = "500000000000001AAA"
CONTACT_ID = "003000000000001AAA"
CASE = {
    "attributes": {"type": "Case", "url": f"/services/data/v62.0/sobjects/Case/{CASE_ID}"},
    "Id": CASE_ID, "CaseNumber": "00001000", "Subject": "Product not working", "Description": "Broken",
    "Status": "New", "Priority": "High", "Origin": "Phone", "ContactId": CONTACT_ID, "IsClosed": False,
    "CreatedDate": "2025-11-18T10:30:00.000+0000", "LastModifiedDate": "2025-11-18T11:45:00.000+0000",
}  # fmt: skip
CONTACT = {
    "attributes": {"type": "Contact"}, "Id": CONTACT_ID, "Name": "Ahmed Al-Mansoori", "FirstName": "Ahmed",
    "LastName": "Al-Mansoori", "Email": "ahmed@example.ae", "Phone": "+971 50 123 4567", "MobilePhone": None,
    "AccountId": "001000000000001AAA", "CreatedDate": "2023-01-15T09:00:00.000+0000",
    "Account": {"attributes": {"type": "Account"}, "Name": "Al-Mansoori Trading", "Type": "Customer - Direct",
                "Industry": "Retail", "Tier__c": "Enterprise"},
}  # fmt: skip
EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
CASE_URL = re.compile(rf"^{re.escape(API)}/sobjects/Case/{CASE_ID}\?fields=.*$")
QUERY_URL = re.compile(rf"^{re.escape(API)}/query/\?q=.*$")
SEARCH_URL = re.compile(rf"^{re.escape(API)}/search/\?q=.*$")


def token_answer(token: str) -> dict:
    """The token endpoint's 200 body."""
    return {"access_token": token, "instance_url": INSTANCE, "id": "https://login.salesforce.com/id/00D/005",
            "token_type": "Bearer", "issued_at": "1700000000000", "signature": "c2ln", "scope": "api"}


@pytest.fixture
def salesforce(make_context):
    """Build a connector; pass `context` to share one app-lifetime token cache between connectors."""

    def build(config=None, context=None, **settings):
        return SalesforceConnector.from_request(config or CLIENT, context or make_context(**settings))

    return build




def auth_of(call) -> str:
    return call.kwargs["headers"]["Authorization"]


def soql_of(call) -> str:
    return call.kwargs["params"]["q"]


# --- auth -------------------------------------------------------------------------------------------


async def test_client_credentials_token_is_fetched_then_sent_as_bearer(salesforce, mock_http):
    mock_http.post(TOKEN_URL, payload=token_answer("tok-1"))
    mock_http.get(CASE_URL, payload=CASE)
    await salesforce().get_ticket(CASE_ID)
    form = sent(mock_http, "POST", TOKEN_URL)[0].kwargs["data"]
    assert form == {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "s3cret"}
    assert auth_of(sent(mock_http, "GET", API)[0]) == "Bearer tok-1"


async def test_refresh_token_grant_carries_client_id_and_optional_secret(salesforce, mock_http):
    mock_http.post(TOKEN_URL, payload=token_answer("tok-r"))
    mock_http.get(CASE_URL, payload=CASE)
    await salesforce({"instance_url": INSTANCE, "client_id": "cid", "refresh_token": "rt-1"}).get_ticket(CASE_ID)
    assert sent(mock_http, "POST", TOKEN_URL)[0].kwargs["data"] == {
        "grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "cid"
    }


async def test_a_given_access_token_is_used_without_a_token_call(salesforce, mock_http):
    mock_http.get(CASE_URL, payload=CASE)
    await salesforce(TOKEN).get_ticket(CASE_ID)
    assert not sent(mock_http, "POST", TOKEN_URL)
    assert auth_of(sent(mock_http, "GET", API)[0]) == "Bearer tok-given"


async def test_token_is_cached_per_org_and_client_across_requests(salesforce, make_context, mock_http):
    context = make_context()
    mock_http.post(TOKEN_URL, payload=token_answer("tok-1"))
    mock_http.get(CASE_URL, payload=CASE, repeat=True)
    await salesforce(context=context).get_ticket(CASE_ID)
    await salesforce(context=context).get_ticket(CASE_ID)  # a new request, same app
    assert len(sent(mock_http, "POST", TOKEN_URL)) == 1
    # Another secret is another cache entry: a client id alone never unlocks someone's cached token.
    mock_http.post(TOKEN_URL, payload=token_answer("tok-2"))
    await salesforce({**CLIENT, "client_secret": "other"}, context=context).get_ticket(CASE_ID)
    assert len(sent(mock_http, "POST", TOKEN_URL)) == 2
    assert auth_of(sent(mock_http, "GET", API)[-1]) == "Bearer tok-2"


async def test_expired_session_is_refreshed_once_and_the_call_retried_once(salesforce, mock_http):
    mock_http.get(CASE_URL, status=401, payload=EXPIRED)
    mock_http.post(TOKEN_URL, payload=token_answer("tok-fresh"))
    mock_http.get(CASE_URL, payload=CASE)
    ticket = await salesforce({**CLIENT, "access_token": "tok-stale"}).get_ticket(CASE_ID)
    assert ticket.id == CASE_ID
    assert [auth_of(c) for c in sent(mock_http, "GET", API)] == ["Bearer tok-stale", "Bearer tok-fresh"]
    assert len(sent(mock_http, "POST", TOKEN_URL)) == 1


async def test_a_second_401_after_the_refresh_is_crm_auth_failed(salesforce, mock_http):
    mock_http.get(CASE_URL, status=401, payload=EXPIRED, repeat=True)
    mock_http.post(TOKEN_URL, payload=token_answer("tok-fresh"), repeat=True)
    with pytest.raises(AuthFailed) as caught:
        await salesforce({**CLIENT, "access_token": "tok-stale"}).get_ticket(CASE_ID)
    assert caught.value.code == "crm_auth_failed" and caught.value.upstream_status == 401
    assert len(sent(mock_http, "GET", API)) == 2 and len(sent(mock_http, "POST", TOKEN_URL)) == 1


async def test_a_bare_access_token_is_not_refreshed(salesforce, mock_http):
    mock_http.get(CASE_URL, status=401, payload=EXPIRED)
    with pytest.raises(SessionExpired) as caught:
        await salesforce(TOKEN).get_ticket(CASE_ID)
    assert "Session expired or invalid" in caught.value.message
    assert not sent(mock_http, "POST", TOKEN_URL) and len(sent(mock_http, "GET", API)) == 1


async def test_many_concurrent_calls_meeting_an_expired_token_cause_one_refresh(salesforce, make_context, mock_http):
    callers = 10
    context = make_context()
    rejected = []
    all_rejected = asyncio.Event()

    async def case_endpoint(url, **kwargs):
        if kwargs["headers"]["Authorization"] == "Bearer tok-stale":
            rejected.append(url)
            if len(rejected) == callers:
                all_rejected.set()
            return CallbackResult(status=401, payload=EXPIRED)
        return CallbackResult(payload=CASE)

    async def token_endpoint(url, **kwargs):
        await all_rejected.wait()  # the refresh is in flight while every caller meets the 401
        return CallbackResult(payload=token_answer("tok-fresh"))

    mock_http.get(CASE_URL, callback=case_endpoint, repeat=True)
    mock_http.post(TOKEN_URL, callback=token_endpoint, repeat=True)
    connectors = [salesforce({**CLIENT, "access_token": "tok-stale"}, context=context) for _ in range(callers)]
    tickets = await asyncio.gather(*(c.get_ticket(CASE_ID) for c in connectors))
    assert [t.id for t in tickets] == [CASE_ID] * callers
    assert len(sent(mock_http, "POST", TOKEN_URL)) == 1
    assert len(sent(mock_http, "GET", API)) == 2 * callers


async def test_concurrent_first_calls_fetch_one_token(salesforce, make_context, mock_http):
    context = make_context()
    mock_http.post(TOKEN_URL, payload=token_answer("tok-1"), repeat=True)
    mock_http.get(CASE_URL, payload=CASE, repeat=True)
    await asyncio.gather(*(salesforce(context=context).get_ticket(CASE_ID) for _ in range(5)))
    assert len(sent(mock_http, "POST", TOKEN_URL)) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"error": "invalid_client", "error_description": "invalid client credentials"}, "invalid client credentials"),
        ({"error": "invalid_grant", "error_description": "authentication failure"}, "authentication failure"),
        ({"error": "invalid_client_id", "error_description": "client identifier invalid"}, "client identifier invalid"),
    ],
)
async def test_token_endpoint_errors_are_crm_auth_failed_without_secrets(salesforce, mock_http, answer, expected):
    mock_http.post(TOKEN_URL, status=400, payload=answer)
    with pytest.raises(AuthFailed) as caught:
        await salesforce().get_ticket(CASE_ID)
    assert expected in caught.value.message and "s3cret" not in caught.value.message
    assert "s3cret" not in str(caught.value.details)
    assert not sent(mock_http, "GET", API)


@pytest.mark.parametrize(
    "config",
    [
        {"instance_url": INSTANCE},
        {"instance_url": INSTANCE, "client_id": "cid"},
        {"instance_url": INSTANCE, "refresh_token": "rt"},
        {"access_token": "t"},
    ],
)
async def test_incomplete_credentials_are_invalid_config(salesforce, config):
    with pytest.raises(InvalidConfig) as caught:
        salesforce(config)
    assert "rt" not in caught.value.message.split(":")[-1]


# --- mapping ------------------------------------------------------------------------------------------


async def test_customer_and_account_come_in_one_query_with_the_tier_field(salesforce, mock_http):
    mock_http.get(QUERY_URL, payload={"totalSize": 1, "done": True, "records": [CONTACT]})
    customer = await salesforce({**TOKEN, "tier_field": "Account.Tier__c"}).get_customer(CONTACT_ID)
    assert (customer.id, customer.name, customer.email, customer.phone, customer.tier) == (
        CONTACT_ID, "Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567", "Enterprise"
    )
    assert customer.metadata["account_name"] == "Al-Mansoori Trading"
    assert customer.metadata["account_type"] == "Customer - Direct"
    assert customer.metadata["created_at"] == "2023-01-15T09:00:00Z"
    calls = sent(mock_http, "GET", API)
    assert len(calls) == 1
    assert soql_of(calls[0]) == (
        "SELECT Id, Name, FirstName, LastName, Email, Phone, MobilePhone, AccountId, CreatedDate, LastModifiedDate, "
        f"Account.Name, Account.Type, Account.Industry, Account.Tier__c FROM Contact WHERE Id = '{CONTACT_ID}'"
    )


async def test_no_tier_field_by_default_and_a_contact_without_account(salesforce, mock_http):
    contact = {**CONTACT, "Account": None, "AccountId": None}
    mock_http.get(QUERY_URL, payload={"totalSize": 1, "done": True, "records": [contact]})
    customer = await salesforce(TOKEN).get_customer(CONTACT_ID)
    assert customer.tier is None and "account_name" not in customer.metadata
    assert "Tier__c" not in soql_of(sent(mock_http, "GET", API)[0])


async def test_tier_field_from_settings(salesforce, mock_http):
    mock_http.get(QUERY_URL, payload={"totalSize": 1, "done": True, "records": [CONTACT]})
    customer = await salesforce(TOKEN, salesforce_tier_field="account.tier__c").get_customer(CONTACT_ID)
    assert customer.tier == "Enterprise"  # names are case-insensitive in Salesforce


async def test_no_record_is_not_found(salesforce, mock_http):
    mock_http.get(QUERY_URL, payload={"totalSize": 0, "done": True, "records": []})
    with pytest.raises(NotFound):
        await salesforce(TOKEN).get_customer("003000000000009")


@pytest.mark.parametrize(
    ("status", "priority", "is_closed", "unified_status", "unified_priority"),
    [
        ("New", "High", False, TicketStatus.new, TicketPriority.high),
        ("Working", "Medium", False, TicketStatus.open, TicketPriority.medium),
        ("Escalated", "Low", False, TicketStatus.open, TicketPriority.low),
        ("On Hold", None, False, TicketStatus.pending, TicketPriority.medium),
        ("Closed", "Critical", True, TicketStatus.closed, TicketPriority.urgent),
        ("Resolved by bot", "High", True, TicketStatus.closed, TicketPriority.high),  # unknown: IsClosed decides
        ("Triage", "High", False, TicketStatus.open, TicketPriority.high),
    ],
)
async def test_case_status_and_priority_tables(salesforce, mock_http, status, priority, is_closed, unified_status, unified_priority):
    mock_http.get(CASE_URL, payload={**CASE, "Status": status, "Priority": priority, "IsClosed": is_closed})
    ticket = await salesforce(TOKEN).get_ticket(CASE_ID)
    assert (ticket.status, ticket.priority) == (unified_status, unified_priority)
    assert ticket.metadata["vendor_status"] == status
    assert (ticket.customer_id, ticket.created_at, ticket.metadata["case_number"]) == (CONTACT_ID, "2025-11-18T10:30:00Z", "00001000")


async def test_get_ticket_asks_for_the_case_fields(salesforce, mock_http):
    mock_http.get(re.compile(rf"^{re.escape(API)}/sobjects/Case/500000000000001\?fields=.*$"), payload=CASE)
    await salesforce(TOKEN).get_ticket("500000000000001")  # the 15-character form is accepted as is
    call = sent(mock_http, "GET", API)[0]
    assert "Status" in call.kwargs["params"]["fields"].split(",")


async def test_org_specific_picklists_override_the_tables(salesforce, mock_http):
    overrides = {
        "salesforce_status_map": {"In Progress": "open", "Waiting on Customer": "pending"},
        "salesforce_status_write_map": {"pending": "Waiting on Customer"},
        "salesforce_priority_write_map": {"urgent": "Critical"},
    }
    mock_http.get(CASE_URL, payload={**CASE, "Status": "Waiting on Customer"}, repeat=True)
    mock_http.patch(f"{API}/sobjects/Case/{CASE_ID}", status=204)
    connector = salesforce(TOKEN, **overrides)
    assert (await connector.get_ticket(CASE_ID)).status == TicketStatus.pending
    await connector.update_ticket(TicketUpdateRequest(crm_type="salesforce", ticket_id=CASE_ID, status="pending", priority="urgent"))
    body = orjson.loads(sent(mock_http, "PATCH", API)[0].kwargs["data"])
    assert body == {"Status": "Waiting on Customer", "Priority": "Critical"}


# --- search ---------------------------------------------------------------------------------------------


async def test_phone_search_is_sosl_over_phone_fields_and_keeps_only_the_caller(salesforce, mock_http):
    other = {**CONTACT, "Id": "003000000000002AAA", "Phone": "+1 501 234 567"}
    mock_http.get(SEARCH_URL, payload={"searchRecords": [CONTACT, other]})
    found = await salesforce(TOKEN, default_phone_region="AE").find_customers(
        phone=parse_phone("050 123 4567", "AE"), email=None, limit=5
    )
    assert [c.id for c in found] == [CONTACT_ID]
    sosl = soql_of(sent(mock_http, "GET", API)[0])
    assert sosl.startswith('FIND {"971501234567" OR "0501234567" OR "501234567"} IN PHONE FIELDS RETURNING Contact(Id, Name,')
    assert sosl.endswith(") LIMIT 5")


async def test_mobile_phone_matches_too(salesforce, mock_http):
    mobile_only = {**CONTACT, "Phone": None, "MobilePhone": "+971501234567"}
    mock_http.get(SEARCH_URL, payload={"searchRecords": [mobile_only]})
    found = await salesforce(TOKEN).find_customers(phone=parse_phone("+971501234567", "US"), email=None, limit=5)
    assert [c.phone for c in found] == ["+971501234567"]


async def test_phone_and_email_search_run_together_and_deduplicate(salesforce, mock_http):
    mock_http.get(SEARCH_URL, payload={"searchRecords": [CONTACT]})
    mock_http.get(QUERY_URL, payload={"totalSize": 1, "done": True, "records": [CONTACT]})
    found = await salesforce(TOKEN).find_customers(phone=parse_phone("+971501234567", "US"), email="ahmed@example.ae", limit=5)
    assert [c.id for c in found] == [CONTACT_ID]
    assert len(sent(mock_http, "GET", API)) == 2


# --- injection ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("o'brien@x.com", r"'o\'brien@x.com'"),
        ("x' OR Name != '@x.com", r"'x\' OR Name != \'@x.com'"),
        ("back\\slash@x.com", r"'back\\slash@x.com'"),
        ("a\\' OR Id != '@x.com", r"'a\\\' OR Id != \'@x.com'"),
        ('q"uote\n@x.com', r"'q\"uote\n@x.com'"),
    ],
)
async def test_email_enters_soql_only_as_an_escaped_literal(salesforce, mock_http, value, literal):
    mock_http.get(QUERY_URL, payload={"totalSize": 0, "done": True, "records": []})
    assert await salesforce(TOKEN).find_customers(phone=None, email=value, limit=3) == []
    soql = soql_of(sent(mock_http, "GET", API)[0])
    assert soql.endswith(f"FROM Contact WHERE Email = {literal} LIMIT 3")
    assert soql_quote(value) == literal


def unquote_soql(literal: str) -> str:
    """Read a SOQL literal back the way Salesforce does, to prove the value cannot end it early."""
    assert literal[0] == literal[-1] == "'"
    out, i, body = [], 0, literal[1:-1]
    escapes = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
    while i < len(body):
        if body[i] == "\\":
            out.append(escapes[body[i + 1]])
            i += 2
        else:
            assert body[i] != "'", "an unescaped quote would end the literal"
            out.append(body[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("value", ["'", "\\", "\\'", "''--", "x\\\\' OR Id != null OR Name = '", "\r\n\t\b\f\"", "é ünï"])
def test_soql_literals_round_trip(value):
    assert unquote_soql(soql_quote(value)) == value


@pytest.mark.parametrize("char", list("?&|!{}[]()^~*:\\\"'+-"))
def test_every_sosl_reserved_character_is_escaped(char):
    phrase = sosl_phrase(f"a{char}b")
    assert phrase == f'"a\\{char}b"'


def test_a_sosl_phrase_cannot_close_the_find_clause():
    phrase = sosl_phrase('x"} IN ALL FIELDS RETURNING User(Id) //')
    inner = phrase[1:-1]
    assert re.search(r'(?<!\\)["}{]', inner) is None  # every quote and brace is escaped


@pytest.mark.parametrize(
    "bad_id",
    ["12345", "003000000000001AA", "003000000000001AAAA", "003' OR Id != '", "003000000000001\\'", "../Contact/003000000000001", "", "003000000000001AA!"],
)
async def test_ids_are_checked_before_any_call(salesforce, mock_http, bad_id):
    connector = salesforce(TOKEN)
    with pytest.raises(InvalidRequest):
        await connector.get_customer(bad_id)
    with pytest.raises(InvalidRequest):
        await connector.get_ticket(bad_id)
    with pytest.raises(InvalidRequest):
        await connector.update_ticket(TicketUpdateRequest(crm_type="salesforce", ticket_id=bad_id or "x", subject="s"))
    assert not mock_http.requests


@pytest.mark.parametrize("tier_field", ["Tier__c FROM User --", "Account.Tier__c, (SELECT Id FROM Cases)", "a'b", "Account..Tier", "1Tier"])
async def test_tier_field_must_be_a_plain_field_path(salesforce, tier_field):
    with pytest.raises(InvalidConfig):
        salesforce({**TOKEN, "tier_field": tier_field})


# --- cases ---------------------------------------------------------------------------------------------------


async def test_create_sends_contact_origin_phone_and_mapped_priority_then_reads_back(salesforce, mock_http):
    mock_http.post(f"{API}/sobjects/Case", status=201, payload={"id": "500000000000100AAA", "success": True, "errors": []})
    mock_http.get(re.compile(rf"^{re.escape(API)}/sobjects/Case/500000000000100AAA\?.*$"),
                  payload={**CASE, "Id": "500000000000100AAA", "Subject": "Callback", "Priority": "High"})
    ticket = await salesforce(TOKEN).create_ticket(
        TicketCreateRequest(crm_type="salesforce", subject="Callback", description="Call back", customer_id=CONTACT_ID,
                            priority="urgent", tags=["voice"], metadata={"Type": "Problem", "ignored": 1}),
        idempotency_key="k",
    )
    body = orjson.loads(sent(mock_http, "POST", API)[0].kwargs["data"])
    assert body == {"Subject": "Callback", "Description": "Call back", "Origin": "Phone", "Priority": "High",
                    "ContactId": CONTACT_ID, "Type": "Problem"}
    assert (ticket.id, ticket.priority, ticket.subject) == ("500000000000100AAA", TicketPriority.high, "Callback")


async def test_create_finds_the_contact_by_phone(salesforce, mock_http):
    mock_http.get(SEARCH_URL, payload={"searchRecords": [CONTACT]})
    mock_http.post(f"{API}/sobjects/Case", status=201, payload={"id": CASE_ID, "success": True, "errors": []})
    mock_http.get(CASE_URL, payload=CASE)
    await salesforce(TOKEN).create_ticket(
        TicketCreateRequest(crm_type="salesforce", subject="s", description="d", customer_phone="+971 50 123 4567"),
        idempotency_key="k",
    )
    assert orjson.loads(sent(mock_http, "POST", API)[0].kwargs["data"])["ContactId"] == CONTACT_ID


async def test_create_for_an_unknown_caller_fills_the_web_to_case_fields(salesforce, mock_http):
    mock_http.get(SEARCH_URL, payload={"searchRecords": []})
    mock_http.get(QUERY_URL, payload={"totalSize": 0, "done": True, "records": []})
    mock_http.post(f"{API}/sobjects/Case", status=201, payload={"id": CASE_ID, "success": True, "errors": []})
    mock_http.get(CASE_URL, payload=CASE)
    await salesforce(TOKEN).create_ticket(
        TicketCreateRequest(crm_type="salesforce", subject="s", description="d", customer_phone="+14155552671",
                            customer_email="new@example.com", customer_name="New Caller", status="open"),
        idempotency_key="k",
    )
    body = orjson.loads(sent(mock_http, "POST", API)[0].kwargs["data"])
    assert body["Status"] == "Working" and "ContactId" not in body
    assert (body["SuppliedName"], body["SuppliedEmail"], body["SuppliedPhone"]) == ("New Caller", "new@example.com", "+14155552671")


async def test_create_is_not_retried_after_a_5xx(salesforce, mock_http, sleeps):
    mock_http.post(f"{API}/sobjects/Case", status=503, payload=[{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}])
    with pytest.raises(UpstreamUnavailable):
        await salesforce(TOKEN).create_ticket(TicketCreateRequest(crm_type="salesforce", subject="s", description="d"), idempotency_key="k")
    assert len(sent(mock_http, "POST", API)) == 1 and sleeps.calls == []


async def test_create_is_retried_after_the_rate_limit_and_after_a_refresh(salesforce, mock_http):
    limit = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    mock_http.post(f"{API}/sobjects/Case", status=403, payload=limit)  # refused before any work: safe to resend
    mock_http.post(f"{API}/sobjects/Case", status=401, payload=EXPIRED)
    mock_http.post(TOKEN_URL, payload=token_answer("tok-fresh"))
    mock_http.post(f"{API}/sobjects/Case", status=201, payload={"id": CASE_ID, "success": True, "errors": []})
    mock_http.get(CASE_URL, payload=CASE)
    ticket = await salesforce({**CLIENT, "access_token": "tok-stale"}).create_ticket(
        TicketCreateRequest(crm_type="salesforce", subject="s", description="d"), idempotency_key="k"
    )
    assert ticket.id == CASE_ID
    assert len(sent(mock_http, "POST", f"{API}/sobjects/Case")) == 3


async def test_create_answers_from_what_was_sent_when_the_read_back_fails(salesforce, mock_http):
    mock_http.post(f"{API}/sobjects/Case", status=201, payload={"id": CASE_ID, "success": True, "errors": []})
    mock_http.get(CASE_URL, status=500, payload=[{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}])
    ticket = await salesforce(TOKEN).create_ticket(
        TicketCreateRequest(crm_type="salesforce", subject="Kept", description="d", priority="low"), idempotency_key="k"
    )
    assert (ticket.id, ticket.subject, ticket.status, ticket.priority) == (CASE_ID, "Kept", TicketStatus.new, TicketPriority.low)
    assert len(sent(mock_http, "POST", API)) == 1


async def test_update_patches_fields_adds_an_internal_comment_and_reads_back(salesforce, mock_http):
    mock_http.patch(f"{API}/sobjects/Case/{CASE_ID}", status=204)
    mock_http.post(f"{API}/sobjects/CaseComment", status=201, payload={"id": "00a000000000100AAA", "success": True, "errors": []})
    mock_http.get(CASE_URL, payload={**CASE, "Status": "On Hold", "Subject": "New subject"})
    ticket = await salesforce(TOKEN).update_ticket(TicketUpdateRequest(
        crm_type="salesforce", ticket_id=CASE_ID, status="pending", priority="medium", subject="New subject",
        tags=["ignored"], comment={"body": "verified caller", "public": False},
    ))
    patch = orjson.loads(sent(mock_http, "PATCH", API)[0].kwargs["data"])
    assert patch == {"Status": "On Hold", "Priority": "Medium", "Subject": "New subject"}
    comment = orjson.loads(sent(mock_http, "POST", API)[0].kwargs["data"])
    assert comment == {"ParentId": CASE_ID, "CommentBody": "verified caller", "IsPublished": False}
    assert ticket.status == TicketStatus.pending and ticket.metadata["comment_id"] == "00a000000000100AAA"


async def test_comment_only_update_sends_no_patch_and_a_public_comment_is_published(salesforce, mock_http):
    mock_http.post(f"{API}/sobjects/CaseComment", status=201, payload={"id": "00a000000000100AAA", "success": True, "errors": []})
    mock_http.get(CASE_URL, payload=CASE)
    await salesforce(TOKEN).update_ticket(TicketUpdateRequest(crm_type="salesforce", ticket_id=CASE_ID, comment={"body": "hi"}))
    assert not sent(mock_http, "PATCH", API)
    assert orjson.loads(sent(mock_http, "POST", API)[0].kwargs["data"])["IsPublished"] is True


async def test_comment_is_not_retried_after_a_5xx_but_the_patch_is(salesforce, mock_http):
    mock_http.patch(f"{API}/sobjects/Case/{CASE_ID}", status=503, payload=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}])
    mock_http.patch(f"{API}/sobjects/Case/{CASE_ID}", status=204)
    mock_http.post(f"{API}/sobjects/CaseComment", status=502, body="bad gateway")
    with pytest.raises(UpstreamUnavailable):
        await salesforce(TOKEN).update_ticket(TicketUpdateRequest(
            crm_type="salesforce", ticket_id=CASE_ID, status="open", comment={"body": "x"}))
    assert len(sent(mock_http, "PATCH", API)) == 2 and len(sent(mock_http, "POST", API)) == 1


# --- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "error", "attempts"),
    [
        (404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], NotFound, 1),
        (400, [{"errorCode": "MALFORMED_ID", "message": "Case ID: id value of incorrect type", "fields": ["Id"]}], ValidationFailed, 1),
        (400, [{"errorCode": "INVALID_FIELD", "message": "No such column 'Foo' on sobject of type Case"}], ValidationFailed, 1),
        (400, [{"errorCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Subject]", "fields": ["Subject"]}], ValidationFailed, 1),
        (403, [{"errorCode": "INSUFFICIENT_ACCESS_OR_READONLY", "message": "insufficient access"}], AuthFailed, 1),
        (403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}], RateLimited, 3),
        (503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server temporarily unavailable"}], UpstreamUnavailable, 3),
        (500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error occurred"}], UpstreamError, 1),
        (400, b"<html>not json</html>", ValidationFailed, 1),
    ],
)
async def test_vendor_errors_map_to_contract_errors(salesforce, mock_http, sleeps, status, body, error, attempts):
    kwargs = {"body": body} if isinstance(body, bytes) else {"payload": body}
    mock_http.get(CASE_URL, status=status, repeat=True, **kwargs)
    with pytest.raises(error) as caught:
        await salesforce(TOKEN).get_ticket(CASE_ID)
    assert type(caught.value) is error
    assert caught.value.upstream_status == status
    assert len(sent(mock_http, "GET", API)) == attempts and len(sleeps.calls) == attempts - 1
    if isinstance(body, list):
        assert body[0]["errorCode"] in caught.value.message and caught.value.details == body


async def test_rate_limit_is_waited_out_then_succeeds(salesforce, mock_http, sleeps):
    mock_http.get(CASE_URL, status=403, payload=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "limit"}])
    mock_http.get(CASE_URL, payload=CASE)
    assert (await salesforce(TOKEN).get_ticket(CASE_ID)).id == CASE_ID
    assert len(sleeps.calls) == 1


async def test_vendor_validation_details_carry_the_fields(salesforce, mock_http):
    error = [{"message": "Subject: data value too large", "errorCode": "STRING_TOO_LONG", "fields": ["Subject"]}]
    mock_http.patch(f"{API}/sobjects/Case/{CASE_ID}", status=400, payload=error)
    with pytest.raises(ValidationFailed) as caught:
        await salesforce(TOKEN).update_ticket(TicketUpdateRequest(crm_type="salesforce", ticket_id=CASE_ID, subject="x" * 300))
    assert caught.value.details[0]["fields"] == ["Subject"] and caught.value.status_code == 422


# --- configuration and SSRF ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instance_url",
    [
        "http://acme.my.salesforce.com",
        "https://acme.my.salesforce.com.evil.com",
        "https://evilsalesforce.com",
        "https://acme.my.salesforce.com:8443",
        "https://user:pw@acme.my.salesforce.com",
        "https://169.254.169.254",
        "http://localhost:8080",
        "file:///etc/passwd",
        "https://acme.my.salesforce.com?x=1",
    ],
)
async def test_instance_url_must_be_a_salesforce_host(salesforce, instance_url):
    with pytest.raises(InvalidConfig) as caught:
        salesforce({**TOKEN, "instance_url": instance_url})
    assert caught.value.code == "invalid_config" and "instance_url" in caught.value.message


@pytest.mark.parametrize(
    "instance_url",
    ["https://acme.my.salesforce.com/", "https://na1.salesforce.com", "https://acme--dev.sandbox.my.salesforce.com",
     "https://acme.lightning.force.com", "https://agency.my.salesforce.mil"],
)
async def test_salesforce_domains_are_accepted(salesforce, instance_url):
    assert salesforce({**TOKEN, "instance_url": instance_url}).base_url == instance_url.rstrip("/")


async def test_an_allowed_host_and_the_token_endpoint_share_the_base(salesforce, mock_http):
    base = "http://sf-proxy.internal:9000"
    mock_http.post(f"{base}/services/oauth2/token", payload=token_answer("tok-p"))
    mock_http.get(re.compile(rf"^{re.escape(base)}/services/data/v62\.0/sobjects/Case/.*$"), payload=CASE)
    connector = salesforce({**CLIENT, "instance_url": base}, connectors_allowed_hosts="sf-proxy.internal:9000")
    assert (await connector.get_ticket(CASE_ID)).id == CASE_ID


async def test_api_version_is_configurable_and_checked(salesforce, mock_http):
    mock_http.get(re.compile(rf"^{INSTANCE}/services/data/v57\.0/sobjects/Case/.*$"), payload=CASE)
    await salesforce({**TOKEN, "api_version": "57.0"}).get_ticket(CASE_ID)
    with pytest.raises(InvalidConfig):
        salesforce({**TOKEN, "api_version": "v62.0/../../x"})
