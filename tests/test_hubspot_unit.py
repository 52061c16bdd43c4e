"""HubSpotConnector against faked HTTP (aioresponses): wire format, mapping tables, errors, retries, SSRF."""

from __future__ import annotations

import re

import orjson
import pytest

from connectors.hubspot import HubSpotConnector
from connectors.hubspot_tables import (
    NOTE_TO_TICKET,
    PRIORITY_FROM_HUBSPOT,
    PRIORITY_TO_HUBSPOT,
    STAGE_TO_HUBSPOT,
    TICKET_TO_CONTACT,
)
from errors import (
    AuthFailed,
    InvalidConfig,
    InvalidRequest,
    MalformedAnswer,
    NotFound,
    RateLimited,
    UpstreamUnavailable,
    ValidationFailed,
)
from models import TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import parse_phone
from tests.conftest import sent

BASE = "https://api.hubapi.com/crm/objects/2026-09"  # the default HUBSPOT_API_VERSION
CONFIG = {"api_key": "pat-na1-secret"}
CONTACT = re.compile(rf"^{re.escape(BASE)}/contacts/12345\?.*$")
TICKET = re.compile(rf"^{re.escape(BASE)}/tickets/3001\?.*$")
SEARCH = f"{BASE}/contacts/search"
BATCH = f"{BASE}/deals/batch/read"
RATE_BODY = {
    "status": "error",
    "message": "You have reached your ten_secondly_rolling limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": "c0ffee00-0000-4000-8000-000000000000",
    "policyName": "TEN_SECONDLY_ROLLING",
}


@pytest.fixture
def hubspot(make_context):
    def build(config=None, **settings):
        return HubSpotConnector.from_request({**CONFIG, **(config or {})}, make_context(**settings))

    return build




def body_of(call) -> dict:
    """The JSON body a faked call carried."""
    return orjson.loads(call.kwargs["data"])


def contact_json(oid="12345", deals=(), **props):
    """A v3 contact as HubSpot answers it (values are strings)."""
    contact = {
        "id": oid,
        "properties": {"firstname": "Ahmed", "lastname": "Al-Mansoori", "email": "ahmed@example.ae", "hs_object_id": oid, **props},
        "createdAt": "2023-01-15T09:00:00.000Z",
        "updatedAt": "2024-02-01T10:00:00.000Z",
        "archived": False,
    }
    if deals:
        contact["associations"] = {"deals": {"results": [{"id": d, "type": "contact_to_deal"} for d in deals]}}
    return contact


def deal_json(oid, name, stage, amount):
    return {"id": oid, "properties": {"dealname": name, "dealstage": stage, "amount": amount, "pipeline": "default"},
            "createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-01T00:00:00.000Z", "archived": False}


def ticket_json(oid="3001", contacts=("12345",), **props):
    ticket = {
        "id": oid,
        "properties": {"subject": "Product not working", "content": "It broke", "hs_pipeline": "0",
                       "hs_pipeline_stage": "1", "hs_ticket_priority": "HIGH", **props},
        "createdAt": "2025-11-18T10:30:00.000Z",
        "updatedAt": "2025-11-18T11:45:00.000Z",
        "archived": False,
    }
    if contacts:
        ticket["associations"] = {"contacts": {"results": [{"id": c, "type": "ticket_to_contact"} for c in contacts]}}
    return ticket


# --- auth and config -------------------------------------------------------------------------------


async def test_token_is_sent_as_bearer_to_the_fixed_vendor_host(hubspot, mock_http):
    mock_http.get(TICKET, payload=ticket_json())
    connector = hubspot()
    assert connector.base_url == "https://api.hubapi.com"
    await connector.get_ticket("3001")
    assert sent(mock_http, "GET", BASE)[0].kwargs["headers"]["Authorization"] == "Bearer pat-na1-secret"


async def test_access_token_is_an_alias_that_wins_over_the_environment(hubspot, mock_http):
    mock_http.get(TICKET, payload=ticket_json())
    await hubspot({"access_token": "oauth-xyz"}, hubspot_api_key="env-token").get_ticket("3001")
    assert sent(mock_http, "GET", BASE)[0].kwargs["headers"]["Authorization"] == "Bearer oauth-xyz"


async def test_missing_token_is_invalid_config(make_context):
    with pytest.raises(InvalidConfig) as caught:
        HubSpotConnector.from_request({}, make_context())
    assert "api_key" in caught.value.message


@pytest.mark.parametrize(
    "config",
    [{"stage_map": {"done": "4"}}, {"stage_map": {"open": "4/../x"}}, {"pipeline": "0?x=1"}, {"tier_property": "Tier Level"}],
)
async def test_bad_pipeline_settings_are_invalid_config_without_echoing_the_token(hubspot, config):
    with pytest.raises(InvalidConfig) as caught:
        hubspot(config)
    assert "pat-na1-secret" not in caught.value.message


@pytest.mark.parametrize(
    "base_url", ["http://169.254.169.254/latest", "http://localhost:8080", "file:///etc/passwd", "https://u:p@api.hubapi.com"]
)
async def test_base_url_outside_allowed_hosts_is_refused(hubspot, base_url):
    with pytest.raises(InvalidConfig):
        hubspot({"base_url": base_url})


async def test_base_url_of_an_allowed_host_is_used(hubspot, mock_http):
    mock_http.get(re.compile(r"^http://hs\.staging\.internal:9000/crm/objects/2026-09/tickets/3001\?.*$"), payload=ticket_json())
    connector = hubspot({"base_url": "http://hs.staging.internal:9000"}, connectors_allowed_hosts="hs.staging.internal:9000")
    assert (await connector.get_ticket("3001")).id == "3001"


@pytest.mark.parametrize("bad_id", ["12a", "../contacts/1", "1 OR 1", "", "0x1F"])
async def test_ids_are_checked_before_any_call(hubspot, mock_http, bad_id):
    with pytest.raises(InvalidRequest):
        await hubspot().get_ticket(bad_id)
    with pytest.raises(InvalidRequest):
        await hubspot().get_customer(bad_id)
    assert not mock_http.requests


# --- customers -------------------------------------------------------------------------------------


async def test_customer_with_deals_in_one_batch_read(hubspot, mock_http):
    mock_http.get(CONTACT, payload=contact_json(deals=("2002", "2001", "2002"), phone="+971 50 123 4567",
                                                company="Al-Mansoori Trading", lifecyclestage="customer", customer_tier="Gold"))
    mock_http.post(BATCH, payload={"status": "COMPLETE", "results": [deal_json("2001", "Enterprise renewal", "contractsent", "48000"),
                                                                      deal_json("2002", "Support add-on", "closedwon", "12000.50")],
                                   "startedAt": "2025-01-01T00:00:00.000Z", "completedAt": "2025-01-01T00:00:00.010Z"})
    customer = await hubspot({"tier_property": "customer_tier"}).get_customer("12345")
    assert (customer.id, customer.name, customer.email, customer.phone, customer.tier) == (
        "12345", "Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567", "Gold")
    assert customer.metadata["company"] == "Al-Mansoori Trading" and customer.metadata["lifecycle_stage"] == "customer"
    assert [(d["id"], d["name"], d["stage"], d["amount"]) for d in customer.metadata["deals"]] == [
        ("2002", "Support add-on", "closedwon", "12000.50"), ("2001", "Enterprise renewal", "contractsent", "48000")]
    get = sent(mock_http, "GET", BASE)[0]
    assert get.kwargs["params"]["associations"] == "deals"
    assert "customer_tier" in get.kwargs["params"]["properties"].split(",")
    batches = sent(mock_http, "POST", BATCH)
    assert len(batches) == 1
    assert body_of(batches[0]) == {"properties": ["dealname", "dealstage", "amount", "pipeline", "closedate"],
                                   "inputs": [{"id": "2002"}, {"id": "2001"}]}


async def test_customer_without_deals_makes_no_batch_read(hubspot, mock_http):
    mock_http.get(CONTACT, payload=contact_json())
    customer = await hubspot().get_customer("12345")
    assert customer.metadata["deals"] == [] and customer.tier is None
    assert len(mock_http.requests) == 1


async def test_batch_read_207_keeps_the_deals_that_exist(hubspot, mock_http):
    mock_http.get(CONTACT, payload=contact_json(deals=("2001", "2999")))
    mock_http.post(BATCH, status=207, payload={
        "status": "COMPLETE", "results": [deal_json("2001", "Enterprise renewal", "contractsent", "48000")],
        "numErrors": 1, "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": ["2999"]},
                                    "message": "Could not get some DEAL objects, they may be deleted or not exist."}],
        "startedAt": "2025-01-01T00:00:00.000Z", "completedAt": "2025-01-01T00:00:00.010Z"})
    customer = await hubspot().get_customer("12345")
    assert [d["id"] for d in customer.metadata["deals"]] == ["2001"]


async def test_phone_search_lists_spellings_per_property_and_keeps_only_the_caller(hubspot, mock_http):
    mock_http.post(SEARCH, payload={"total": 3, "results": [
        contact_json("1", phone="050 123 4567"),
        contact_json("2", phone="501234567", email="x@y.com"),  # a bare national number: not the caller in US
        contact_json("3", mobilephone="+971-50-123-4567", email="m@y.com"),
    ]}, repeat=True)
    caller = parse_phone("+971 50 123 4567", "US")
    found = await hubspot(default_phone_region="AE").find_customers(phone=caller, email=None, limit=10)
    assert [c.id for c in found] == ["1", "2", "3"]  # in AE the bare number is the caller's
    found = await hubspot().find_customers(phone=caller, email=None, limit=10)
    assert [c.id for c in found] == ["3"]
    body = body_of(sent(mock_http, "POST", SEARCH)[0])
    assert body["filterGroups"] == [
        {"filters": [{"propertyName": "phone", "operator": "IN", "values": list(caller.variants)}]},
        {"filters": [{"propertyName": "mobilephone", "operator": "IN", "values": list(caller.variants)}]},
    ]
    groups = body["filterGroups"]  # within HubSpot's limits: 5 groups, 6 filters a group, 18 in all
    assert len(groups) <= 5 and sum(len(g["filters"]) for g in groups) <= 18
    assert "email" in body["properties"] and body["limit"] == 100


async def test_phone_and_email_share_one_search_and_the_limit_applies_after_filtering(hubspot, mock_http):
    mock_http.post(SEARCH, payload={"total": 2, "results": [contact_json("1", email="Ahmed@Example.ae"),
                                                            contact_json("2", phone="+971501234567", email="b@y.com")]})
    found = await hubspot().find_customers(phone=parse_phone("+971501234567", "US"), email="ahmed@example.ae", limit=1)
    assert [c.id for c in found] == ["1"]
    body = body_of(sent(mock_http, "POST", SEARCH)[0])
    assert body["filterGroups"][-1] == {"filters": [{"propertyName": "email", "operator": "EQ", "value": "ahmed@example.ae"}]}
    assert len(mock_http.requests) == 1


# --- tickets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "priority", "status", "unified_priority"),
    [
        ("1", "LOW", TicketStatus.new, TicketPriority.low),
        ("2", "MEDIUM", TicketStatus.pending, TicketPriority.medium),
        ("3", "HIGH", TicketStatus.open, TicketPriority.high),
        ("4", "URGENT", TicketStatus.closed, TicketPriority.urgent),
        ("123456", None, TicketStatus.open, TicketPriority.medium),  # another pipeline's stage; no priority set
    ],
)
async def test_ticket_stage_and_priority_tables(hubspot, mock_http, stage, priority, status, unified_priority):
    mock_http.get(TICKET, payload=ticket_json(hs_pipeline_stage=stage, hs_ticket_priority=priority))
    ticket = await hubspot().get_ticket("3001")
    assert (ticket.status, ticket.priority, ticket.customer_id) == (status, unified_priority, "12345")
    assert ticket.metadata["vendor_status"] == stage and ticket.created_at == "2025-11-18T10:30:00Z"
    params = sent(mock_http, "GET", BASE)[0].kwargs["params"]
    assert params["associations"] == "contacts"
    assert {"subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority"} <= set(params["properties"].split(","))


def test_tables_go_both_ways():
    assert {PRIORITY_FROM_HUBSPOT[v] for v in PRIORITY_TO_HUBSPOT.values()} == set(TicketPriority)
    assert STAGE_TO_HUBSPOT == {TicketStatus.new: "1", TicketStatus.open: "3", TicketStatus.pending: "2",
                                TicketStatus.solved: "4", TicketStatus.closed: "4"}


async def test_stage_map_overrides_both_ways(hubspot, mock_http):
    connector = hubspot({"stage_map": {"solved": "99", "open": "77"}, "pipeline": "555"})
    assert connector.stage_for[TicketStatus.solved] == "99"
    assert (connector.status_for["99"], connector.status_for["77"], connector.status_for["4"]) == (
        TicketStatus.solved, TicketStatus.open, TicketStatus.closed)
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json("3002", contacts=(), hs_pipeline="555", hs_pipeline_stage="77"))
    ticket = await connector.create_ticket(TicketCreateRequest(crm_type="hubspot", subject="s", description="d", status="open"),
                                           idempotency_key="k")
    assert ticket.status == TicketStatus.open
    props = body_of(sent(mock_http, "POST", f"{BASE}/tickets")[0])["properties"]
    assert (props["hs_pipeline"], props["hs_pipeline_stage"]) == ("555", "77")


async def test_stage_map_from_the_environment(hubspot, monkeypatch):
    monkeypatch.setenv("HUBSPOT_STAGE_MAP", '{"pending": "5"}')
    monkeypatch.setenv("HUBSPOT_PIPELINE", "42")
    connector = hubspot()
    assert connector.stage_for[TicketStatus.pending] == "5" and connector.config.pipeline == "42"


async def test_create_associates_the_contact_and_sends_no_idempotency_key(hubspot, mock_http):
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json("3002", contacts=(), hs_ticket_priority="URGENT"))
    ticket = await hubspot().create_ticket(
        TicketCreateRequest(crm_type="hubspot", subject="Callback", description="Call me", customer_id="12345",
                            priority="urgent", tags=["voice"], metadata={"source_type": "PHONE", "ignored": 1}),
        idempotency_key="key-1",
    )
    call = sent(mock_http, "POST", f"{BASE}/tickets")[0]
    assert "Idempotency-Key" not in call.kwargs["headers"]
    assert body_of(call) == {
        "properties": {"subject": "Callback", "content": "Call me", "hs_pipeline": "0", "hs_pipeline_stage": "1",
                       "hs_ticket_priority": "URGENT", "source_type": "PHONE"},
        "associations": [{"to": {"id": "12345"},
                          "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TICKET_TO_CONTACT}]}],
    }
    assert (ticket.id, ticket.customer_id, ticket.priority) == ("3002", "12345", TicketPriority.urgent)


async def test_create_finds_the_contact_by_email_in_one_search(hubspot, mock_http):
    mock_http.post(SEARCH, payload={"total": 1, "results": [contact_json("777", email="c@x.com")]})
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json("3002", contacts=()))
    ticket = await hubspot().create_ticket(
        TicketCreateRequest(crm_type="hubspot", subject="s", description="d", customer_email="c@x.com", customer_phone="+14155550100"),
        idempotency_key="k")
    assert ticket.customer_id == "777"
    assert len(body_of(sent(mock_http, "POST", SEARCH)[0])["filterGroups"]) == 3
    assert body_of(sent(mock_http, "POST", f"{BASE}/tickets")[0])["associations"][0]["to"] == {"id": "777"}


async def test_create_for_an_unknown_caller_keeps_their_details_in_the_content(hubspot, mock_http):
    mock_http.post(SEARCH, payload={"total": 0, "results": []})
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json("3002", contacts=()))
    ticket = await hubspot().create_ticket(
        TicketCreateRequest(crm_type="hubspot", subject="s", description="d", customer_name="New Caller", customer_phone="+14155550100"),
        idempotency_key="k")
    body = body_of(sent(mock_http, "POST", f"{BASE}/tickets")[0])
    assert "associations" not in body and body["properties"]["content"] == "d\n\nCaller: New Caller, +14155550100"
    assert ticket.customer_id is None


async def test_create_is_not_repeated_after_a_5xx(hubspot, mock_http, sleeps):
    mock_http.post(f"{BASE}/tickets", status=503, payload={"status": "error", "message": "down", "correlationId": "c1"})
    with pytest.raises(UpstreamUnavailable):
        await hubspot().create_ticket(TicketCreateRequest(crm_type="hubspot", subject="s", description="d"), idempotency_key="k")
    assert len(sent(mock_http, "POST", BASE)) == 1 and sleeps.calls == []


async def test_create_is_repeated_after_a_429_which_hubspot_refused_before_acting(hubspot, mock_http, sleeps):
    mock_http.post(f"{BASE}/tickets", status=429, payload=RATE_BODY, headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "1000"})
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json("3002", contacts=()))
    ticket = await hubspot(request_deadline_seconds=10).create_ticket(
        TicketCreateRequest(crm_type="hubspot", subject="s", description="d"), idempotency_key="k")
    assert ticket.id == "3002" and sleeps.calls == [1.0]
    assert len(sent(mock_http, "POST", BASE)) == 2


async def test_update_patches_properties_and_adds_an_internal_note(hubspot, mock_http):
    mock_http.get(TICKET, payload=ticket_json())
    mock_http.patch(f"{BASE}/tickets/3001", payload=ticket_json(contacts=(), hs_pipeline_stage="2", hs_ticket_priority="LOW"))
    mock_http.post(f"{BASE}/notes", status=201, payload={"id": "5001", "properties": {"hs_note_body": "x"}})
    ticket = await hubspot().update_ticket(TicketUpdateRequest(
        crm_type="hubspot", ticket_id="3001", status="pending", priority="low", subject="New",
        comment={"body": "Caller <verified>\nsend logs", "public": True}))
    assert body_of(sent(mock_http, "PATCH", BASE)[0]) == {
        "properties": {"hs_pipeline_stage": "2", "hs_ticket_priority": "LOW", "subject": "New"}}
    note = body_of(sent(mock_http, "POST", f"{BASE}/notes")[0])
    assert note["properties"]["hs_note_body"] == "Caller &lt;verified&gt;<br>send logs"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$", note["properties"]["hs_timestamp"])
    assert note["associations"] == [{"to": {"id": "3001"},
                                     "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_TICKET}]}]
    assert (ticket.status, ticket.priority, ticket.customer_id) == (TicketStatus.pending, TicketPriority.low, "12345")
    assert ticket.metadata["note_id"] == "5001" and ticket.metadata["note_public_requested"] is True


async def test_comment_only_update_reads_then_notes_without_a_patch(hubspot, mock_http):
    mock_http.get(TICKET, payload=ticket_json())
    mock_http.post(f"{BASE}/notes", status=201, payload={"id": "5002", "properties": {}})
    ticket = await hubspot().update_ticket(TicketUpdateRequest(crm_type="hubspot", ticket_id="3001",
                                                               comment={"body": "note", "public": False}))
    assert not sent(mock_http, "PATCH", BASE)
    assert ticket.metadata["note_public_requested"] is False and ticket.subject == "Product not working"


async def test_note_is_not_repeated_after_a_5xx(hubspot, mock_http):
    mock_http.get(TICKET, payload=ticket_json())
    mock_http.post(f"{BASE}/notes", status=502, body="bad gateway")
    with pytest.raises(UpstreamUnavailable):
        await hubspot().update_ticket(TicketUpdateRequest(crm_type="hubspot", ticket_id="3001", comment={"body": "x"}))
    assert len(sent(mock_http, "POST", BASE)) == 1


async def test_tags_only_update_is_refused_before_any_call(hubspot, mock_http):
    with pytest.raises(InvalidRequest):
        await hubspot().update_ticket(TicketUpdateRequest(crm_type="hubspot", ticket_id="3001", tags=["x"]))
    assert not mock_http.requests


# --- errors and retries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [
        (401, {"status": "error", "message": "Authentication credentials not found.", "correlationId": "c1",
               "category": "INVALID_AUTHENTICATION"}, AuthFailed),
        (401, {"status": "error", "message": "The OAuth token used to make this call expired 5 second(s) ago.",
               "correlationId": "c1", "category": "EXPIRED_AUTHENTICATION"}, AuthFailed),
        (403, {"status": "error", "message": "This app hasn't been granted all required scopes to make this call.",
               "correlationId": "c1", "category": "MISSING_SCOPES",
               "errors": [{"message": "One or more of the following scopes are required.",
                           "context": {"requiredGranularScopes": ["tickets"]}}]}, AuthFailed),
        (409, {"status": "error", "message": "Contact already exists. Existing ID: 12345", "correlationId": "c1",
               "category": "CONFLICT"}, ValidationFailed),
    ],
)
async def test_vendor_errors_map_to_contract_errors_without_retry(hubspot, mock_http, status, payload, error):
    mock_http.get(TICKET, status=status, payload=payload)
    with pytest.raises(error) as caught:
        await hubspot().get_ticket("3001")
    assert caught.value.upstream_status == status and caught.value.retry_after is None
    assert payload["category"] in caught.value.message and "correlationId c1" in caught.value.message
    assert "pat-na1-secret" not in caught.value.message
    assert len(sent(mock_http, "GET", BASE)) == 1


async def test_validation_error_details_are_keyed_by_property(hubspot, mock_http):
    mock_http.get(TICKET, payload=ticket_json())
    mock_http.patch(f"{BASE}/tickets/3001", status=400, payload={
        "status": "error", "correlationId": "c2", "category": "VALIDATION_ERROR",
        "message": 'Property values were not valid: [{"isValid":false,"message":"77 was not one of the allowed options"}]',
        "errors": [{"message": "77 was not one of the allowed options", "code": "INVALID_OPTION",
                    "context": {"propertyName": ["hs_pipeline_stage"]}}]})
    with pytest.raises(ValidationFailed) as caught:
        await hubspot({"stage_map": {"open": "77"}}).update_ticket(
            TicketUpdateRequest(crm_type="hubspot", ticket_id="3001", status="open"))
    assert caught.value.details == {"hs_pipeline_stage": [{"message": "77 was not one of the allowed options", "code": "INVALID_OPTION"}]}
    assert caught.value.message.startswith("Property values were not valid: hs_pipeline_stage: 77 was not")


async def test_empty_404_is_a_clean_not_found(hubspot, mock_http):
    mock_http.get(TICKET, status=404, body=b"")
    with pytest.raises(NotFound) as caught:
        await hubspot().get_ticket("3001")
    assert caught.value.message == "HubSpot answered 404" and caught.value.retry_after is None


async def test_404_ignores_the_rate_window_header_on_ordinary_answers(hubspot, mock_http):
    mock_http.get(TICKET, status=404, payload={"status": "error", "message": "resource not found", "correlationId": "c3"},
                  headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    with pytest.raises(NotFound) as caught:
        await hubspot().get_ticket("3001")
    assert caught.value.retry_after is None


async def test_429_with_retry_after_waits_that_long(hubspot, mock_http, sleeps):
    mock_http.get(TICKET, status=429, payload=RATE_BODY, headers={"Retry-After": "1.5", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    mock_http.get(TICKET, payload=ticket_json())
    assert (await hubspot(request_deadline_seconds=10).get_ticket("3001")).id == "3001"
    assert sleeps.calls == [1.5]


async def test_429_without_retry_after_waits_the_rate_window(hubspot, mock_http, sleeps):
    mock_http.get(TICKET, status=429, payload=RATE_BODY,
                  headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "1000", "X-HubSpot-RateLimit-Remaining": "0"})
    mock_http.get(TICKET, payload=ticket_json())
    assert (await hubspot(request_deadline_seconds=10).get_ticket("3001")).id == "3001"
    assert sleeps.calls == [1.0]


async def test_429_with_a_ten_second_window_goes_back_to_the_caller(hubspot, mock_http, sleeps):
    mock_http.get(TICKET, status=429, payload=RATE_BODY, headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    with pytest.raises(RateLimited) as caught:
        await hubspot().get_ticket("3001")
    assert caught.value.retry_after == 10 and sleeps.calls == []
    assert "TEN_SECONDLY_ROLLING" in caught.value.message


async def test_429_without_any_rate_hint_waits_a_second(hubspot, mock_http, sleeps):
    # Search answers carry no X-HubSpot-RateLimit headers; a bare 429 is most likely search's per-second limit.
    mock_http.post(SEARCH, status=429, body=b"")
    mock_http.post(SEARCH, payload={"total": 0, "results": []})
    found = await hubspot(request_deadline_seconds=10).find_customers(phone=None, email="a@b.com", limit=5)
    assert found == [] and sleeps.calls == [1.0]


async def test_5xx_reads_are_retried_then_give_up(hubspot, mock_http, sleeps):
    for _ in range(3):
        mock_http.get(TICKET, status=503, body="upstream down")
    with pytest.raises(UpstreamUnavailable):
        await hubspot().get_ticket("3001")
    assert len(sent(mock_http, "GET", BASE)) == 3 and len(sleeps.calls) == 2


async def test_malformed_json_is_a_crm_error(hubspot, mock_http):
    mock_http.get(TICKET, body=b'{"id": ', content_type="application/json")
    with pytest.raises(MalformedAnswer):
        await hubspot().get_ticket("3001")


async def test_answer_without_an_id_is_a_crm_error(hubspot, mock_http):
    mock_http.get(TICKET, payload={"properties": {}})
    with pytest.raises(MalformedAnswer):
        await hubspot().get_ticket("3001")
