"""FreshdeskConnector against faked HTTP (aioresponses): wire format, mapping tables, errors, retries, SSRF."""

from __future__ import annotations

import base64
import re

import orjson
import pytest
from aioresponses import CallbackResult

from connectors.freshdesk import (
    PRIORITY_FROM_FRESHDESK,
    PRIORITY_TO_FRESHDESK,
    STATUS_FROM_FRESHDESK,
    STATUS_TO_FRESHDESK,
    FreshdeskConnector,
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

BASE = "https://acme.freshdesk.com/api/v2"
CONFIG = {"domain": "acme.freshdesk.com", "api_key": "key123"}
CONTACTS = re.compile(rf"^{re.escape(BASE)}/contacts\?.*$")


@pytest.fixture
def freshdesk(make_context):
    def build(config=None, **settings):
        return FreshdeskConnector.from_request(config or CONFIG, make_context(**settings))

    return build




def body_of(call) -> dict:
    """The JSON body a faked call carried."""
    return orjson.loads(call.kwargs["data"])


def ticket_json(**fields):
    """A bare Freshdesk ticket with the fields a test cares about."""
    return {"id": 7, "subject": "s", "description": "<div>d</div>", "description_text": "d", "status": 2,
            "priority": 1, "source": 3, "requester_id": 1001, "tags": [], **fields}


def contacts_by_filter(stored: list[dict]):
    """A callback answering GET /contacts?{field}=value with Freshdesk's exact-match semantics."""

    def answer(url, **kwargs):
        query = dict(kwargs.get("params") or {})
        query.update(url.query)
        hits = [c for c in stored if any(c.get(f) == query.get(f) for f in ("phone", "mobile", "email") if f in query)]
        return CallbackResult(payload=hits)

    return answer


# --- auth and configuration -----------------------------------------------------------------------


async def test_basic_auth_is_api_key_and_x(freshdesk, mock_http):
    mock_http.get(f"{BASE}/tickets/7", payload=ticket_json())
    await freshdesk().get_ticket("7")
    auth = sent(mock_http, "GET", f"{BASE}/tickets/7")[0].kwargs["headers"]["Authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")).decode() == "key123:X"


@pytest.mark.parametrize("domain", ["acme", "acme.freshdesk.com", "ACME.Freshdesk.com", " acme.freshdesk.com "])
async def test_domain_may_be_the_name_or_the_full_host(freshdesk, domain):
    assert freshdesk({**CONFIG, "domain": domain}).base_url == "https://acme.freshdesk.com"


@pytest.mark.parametrize(
    "domain",
    [
        "evil.com",
        "acme.freshdesk.com.evil.com",
        "a.b.freshdesk.com",
        "https://acme.freshdesk.com",
        "acme.freshdesk.com/api",
        "acme.freshdesk.com:8443",
        "169.254.169.254",
        "acme@evil.com",
        "freshdesk.com",
        "-acme",
        "",
    ],
)
async def test_domain_outside_freshdesk_is_invalid_config(freshdesk, domain):
    with pytest.raises(InvalidConfig):
        freshdesk({**CONFIG, "domain": domain})


@pytest.mark.parametrize(
    "base_url", ["http://169.254.169.254/latest", "http://localhost:8080", "file:///etc/passwd", "https://u:p@acme.freshdesk.com"]
)
async def test_base_url_outside_allowed_hosts_is_refused(freshdesk, base_url):
    with pytest.raises(InvalidConfig):
        freshdesk({**CONFIG, "base_url": base_url})


async def test_base_url_of_an_allowed_host_is_used(freshdesk, mock_http):
    mock_http.get("http://fd.staging.internal:9000/api/v2/tickets/1", payload=ticket_json(id=1))
    connector = freshdesk({**CONFIG, "base_url": "http://fd.staging.internal:9000"},
                          connectors_allowed_hosts="fd.staging.internal:9000")
    assert (await connector.get_ticket("1")).id == "1"


@pytest.mark.parametrize("config", [{"domain": "acme"}, {"api_key": "s3cret-value"}])
async def test_missing_config_is_invalid_config_without_echoing_values(freshdesk, config):
    with pytest.raises(InvalidConfig) as caught:
        freshdesk(config)
    assert "s3cret-value" not in caught.value.message


@pytest.mark.parametrize("bad_id", ["12a", "../contacts/1", "1 OR 1", ""])
async def test_ids_are_checked_before_any_call(freshdesk, mock_http, bad_id):
    with pytest.raises(InvalidRequest):
        await freshdesk().get_ticket(bad_id)
    with pytest.raises(InvalidRequest):
        await freshdesk().get_customer(bad_id)
    assert not mock_http.requests


# --- customers ------------------------------------------------------------------------------------


async def test_customer_comes_with_its_company_name_and_tier(freshdesk, mock_http):
    mock_http.get(f"{BASE}/contacts/1001", payload={
        "id": 1001, "name": "Ahmed", "email": "a@x.ae", "phone": "+971 50 123 4567", "mobile": None,
        "company_id": 2001, "created_at": "2023-01-15T09:00:00Z"})
    mock_http.get(f"{BASE}/companies/2001", payload={"id": 2001, "name": "Al-Mansoori Trading", "account_tier": "Premium"})
    customer = await freshdesk().get_customer("1001")
    assert (customer.id, customer.phone, customer.tier) == ("1001", "+971501234567", "Premium")
    assert customer.metadata["company_name"] == customer.metadata["organization_name"] == "Al-Mansoori Trading"
    assert customer.metadata["company_id"] == 2001 and customer.metadata["vendor_phone"] == "+971 50 123 4567"


async def test_customer_without_company_costs_one_call_and_falls_back_to_mobile(freshdesk, mock_http):
    mock_http.get(f"{BASE}/contacts/5", payload={"id": 5, "name": "Layla", "phone": None,
                                                 "mobile": "+1 415 555 2671", "company_id": None})
    customer = await freshdesk().get_customer("5")
    assert customer.phone == "+14155552671" and customer.metadata["mobile"] == "+14155552671"
    assert "organization_name" not in customer.metadata
    assert len(mock_http.requests) == 1


async def test_a_deleted_company_does_not_hide_the_contact(freshdesk, mock_http):
    mock_http.get(f"{BASE}/contacts/5", payload={"id": 5, "name": "Layla", "company_id": 9})
    mock_http.get(f"{BASE}/companies/9", status=404, body=b"")
    customer = await freshdesk().get_customer("5")
    assert customer.name == "Layla" and customer.tier is None


async def test_phone_search_tries_spellings_on_phone_and_mobile_and_keeps_only_the_caller(freshdesk, mock_http):
    stored = [
        {"id": 1, "name": "Ahmed", "phone": "+971 50 123 4567", "mobile": None},
        {"id": 2, "name": "Also Ahmed", "phone": None, "mobile": "+971 50 123 4567"},
    ]
    for _ in range(14):
        mock_http.get(CONTACTS, callback=contacts_by_filter(stored))
    found = await freshdesk().find_customers(phone=parse_phone("+971501234567", "US"), email=None, limit=10)
    assert [c.id for c in found] == ["1", "2"]
    assert found[1].phone == "+971501234567"
    queries = [c.kwargs["params"] for c in sent(mock_http, "GET", f"{BASE}/contacts")]
    # Batches of four filters, most canonical spelling first; the first batch found the caller, so it stopped.
    assert queries[:4] == [
        {"phone": "+971501234567", "per_page": "10"},
        {"mobile": "+971501234567", "per_page": "10"},
        {"phone": "+971 50 123 4567", "per_page": "10"},
        {"mobile": "+971 50 123 4567", "per_page": "10"},
    ]
    assert len(queries) == 4


async def test_phone_search_drops_another_countrys_number_with_the_same_spelling(freshdesk, mock_http):
    stored = [{"id": 3, "name": "Elsewhere", "phone": "501234567", "mobile": None}]  # national, no country
    for _ in range(14):
        mock_http.get(CONTACTS, callback=contacts_by_filter(stored))
    found = await freshdesk().find_customers(phone=parse_phone("+971501234567", "US"), email=None, limit=10)
    assert found == []
    assert len(sent(mock_http, "GET", f"{BASE}/contacts")) == 14  # every spelling on both fields


async def test_phone_and_email_search_run_together_and_dedupe(freshdesk, mock_http):
    stored = [{"id": 1, "name": "Ahmed", "email": "ahmed@example.ae", "phone": "+971501234567", "company_id": 2001}]
    for _ in range(5):
        mock_http.get(CONTACTS, callback=contacts_by_filter(stored))
    mock_http.get(f"{BASE}/companies/2001", payload={"id": 2001, "name": "Al-Mansoori Trading"})
    found = await freshdesk().find_customers(
        phone=parse_phone("+971501234567", "US"), email="ahmed@example.ae", limit=10
    )
    assert [(c.id, c.metadata["organization_name"]) for c in found] == [("1", "Al-Mansoori Trading")]
    assert len(sent(mock_http, "GET", f"{BASE}/companies/2001")) == 1


async def test_a_contact_list_that_is_not_an_array_is_a_crm_error(freshdesk, mock_http):
    mock_http.get(CONTACTS, payload={"results": []})
    with pytest.raises(MalformedAnswer):
        await freshdesk().find_customers(phone=None, email="a@b.co", limit=5)


# --- tickets: tables -----------------------------------------------------------------------------


def test_tables_cover_every_unified_value_and_round_trip():
    assert set(STATUS_TO_FRESHDESK) == set(TicketStatus)
    assert set(PRIORITY_TO_FRESHDESK) == set(TicketPriority)
    for status, code in STATUS_TO_FRESHDESK.items():
        assert STATUS_FROM_FRESHDESK[code] == (TicketStatus.open if status is TicketStatus.new else status)
    for priority, code in PRIORITY_TO_FRESHDESK.items():
        assert PRIORITY_FROM_FRESHDESK[code] == priority


@pytest.mark.parametrize(
    ("code", "priority_code", "status", "priority"),
    [
        (2, 1, TicketStatus.open, TicketPriority.low),
        (3, 2, TicketStatus.pending, TicketPriority.medium),
        (4, 3, TicketStatus.solved, TicketPriority.high),
        (5, 4, TicketStatus.closed, TicketPriority.urgent),
        (6, 4, TicketStatus.open, TicketPriority.urgent),  # an account's custom status
    ],
)
async def test_ticket_codes_map_to_unified_values(freshdesk, mock_http, code, priority_code, status, priority):
    mock_http.get(f"{BASE}/tickets/9", payload=ticket_json(
        id=9, status=code, priority=priority_code, created_at="2025-01-01T10:00:00Z", updated_at="2025-01-01T14:00:00+04:00"))
    ticket = await freshdesk().get_ticket("9")
    assert (ticket.status, ticket.priority) == (status, priority)
    assert (ticket.metadata["vendor_status"], ticket.metadata["vendor_priority"]) == (code, priority_code)
    assert ticket.created_at == ticket.updated_at == "2025-01-01T10:00:00Z"


async def test_ticket_uses_description_text_and_keeps_the_html(freshdesk, mock_http):
    mock_http.get(f"{BASE}/tickets/9", payload=ticket_json(
        id=9, description="<div>It <b>broke</b></div>", description_text="It broke", tags=["voice"], requester_id=1001))
    ticket = await freshdesk().get_ticket("9")
    assert ticket.description == "It broke"
    assert ticket.metadata["description_html"] == "<div>It <b>broke</b></div>"
    assert (ticket.customer_id, ticket.metadata["channel"], ticket.metadata["tags"]) == ("1001", "phone", ["voice"])


@pytest.mark.parametrize(
    ("status", "priority", "codes"),
    [
        (TicketStatus.new, TicketPriority.low, (2, 1)),
        (TicketStatus.open, TicketPriority.medium, (2, 2)),
        (TicketStatus.pending, TicketPriority.high, (3, 3)),
        (TicketStatus.solved, TicketPriority.urgent, (4, 4)),
        (TicketStatus.closed, TicketPriority.urgent, (5, 4)),
    ],
)
async def test_unified_values_go_out_as_codes(freshdesk, mock_http, status, priority, codes):
    mock_http.put(f"{BASE}/tickets/5", payload=ticket_json(id=5))
    await freshdesk().update_ticket(TicketUpdateRequest(crm_type="freshdesk", ticket_id="5", status=status, priority=priority))
    body = body_of(sent(mock_http, "PUT", f"{BASE}/tickets/5")[0])
    assert (body["status"], body["priority"]) == codes


# --- tickets: writes -----------------------------------------------------------------------------


async def test_create_is_a_phone_ticket_with_defaults_open_and_low(freshdesk, mock_http):
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json(id=77))
    ticket = await freshdesk().create_ticket(
        TicketCreateRequest(crm_type="freshdesk", subject="Hi", description="Line 1\nA <b> & c",
                            customer_id="1001", tags=["voice"], metadata={"type": "Question", "ignored": 1}),
        idempotency_key="k",
    )
    call = sent(mock_http, "POST", f"{BASE}/tickets")[0]
    assert body_of(call) == {"subject": "Hi", "description": "Line 1<br>A &lt;b&gt; &amp; c", "status": 2,
                             "priority": 1, "source": 3, "tags": ["voice"], "requester_id": 1001, "type": "Question"}
    assert "Idempotency-Key" not in call.kwargs["headers"]  # Freshdesk has none
    assert ticket.id == "77"


async def test_create_maps_status_and_priority_and_requester_by_email(freshdesk, mock_http):
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json(id=78, status=3, priority=4))
    ticket = await freshdesk().create_ticket(
        TicketCreateRequest(crm_type="freshdesk", subject="s", description="d", customer_email="c@x.com",
                            customer_name="Cee", status="pending", priority="urgent"),
        idempotency_key="k",
    )
    body = body_of(sent(mock_http, "POST", f"{BASE}/tickets")[0])
    assert (body["status"], body["priority"], body["email"], body["name"]) == (3, 4, "c@x.com", "Cee")
    assert "requester_id" not in body
    assert (ticket.status, ticket.priority) == (TicketStatus.pending, TicketPriority.urgent)


async def test_create_by_phone_uses_the_known_contact(freshdesk, mock_http):
    stored = [{"id": 1001, "name": "Ahmed", "phone": "+971501234567"}]
    mock_http.get(CONTACTS, callback=contacts_by_filter(stored), repeat=True)
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json(id=79))
    await freshdesk().create_ticket(
        TicketCreateRequest(crm_type="freshdesk", subject="s", description="d", customer_phone="+971 50 123 4567"),
        idempotency_key="k",
    )
    body = body_of(sent(mock_http, "POST", f"{BASE}/tickets")[0])
    assert body["requester_id"] == 1001 and "phone" not in body


async def test_create_by_unknown_phone_sends_phone_with_the_name_freshdesk_requires(freshdesk, mock_http):
    mock_http.get(CONTACTS, payload=[], repeat=True)
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json(id=80))
    await freshdesk().create_ticket(
        TicketCreateRequest(crm_type="freshdesk", subject="s", description="d", customer_phone="+971 50 765 4321"),
        idempotency_key="k",
    )
    body = body_of(sent(mock_http, "POST", f"{BASE}/tickets")[0])
    assert (body["phone"], body["name"]) == ("+971507654321", "Caller +971507654321")


async def test_create_without_any_requester_is_refused_before_any_call(freshdesk, mock_http):
    with pytest.raises(ValidationFailed):
        await freshdesk().create_ticket(
            TicketCreateRequest(crm_type="freshdesk", subject="s", description="d", customer_name="Nobody"),
            idempotency_key="k",
        )
    assert not mock_http.requests


async def test_create_is_not_retried_after_a_5xx(freshdesk, mock_http, sleeps):
    mock_http.post(f"{BASE}/tickets", status=503, body="down")
    with pytest.raises(UpstreamUnavailable):
        await freshdesk().create_ticket(
            TicketCreateRequest(crm_type="freshdesk", subject="s", description="d", customer_id="1"), idempotency_key="k"
        )
    assert len(sent(mock_http, "POST", BASE)) == 1 and sleeps.calls == []


async def test_create_is_retried_after_a_429_which_freshdesk_refused_unprocessed(freshdesk, mock_http, sleeps):
    mock_http.post(f"{BASE}/tickets", status=429, headers={"Retry-After": "1"})
    mock_http.post(f"{BASE}/tickets", status=201, payload=ticket_json(id=81))
    ticket = await freshdesk(request_deadline_seconds=10).create_ticket(
        TicketCreateRequest(crm_type="freshdesk", subject="s", description="d", customer_id="1"), idempotency_key="k"
    )
    assert ticket.id == "81" and sleeps.calls == [1.0]


async def test_update_puts_fields_then_posts_a_private_note(freshdesk, mock_http):
    mock_http.put(f"{BASE}/tickets/5", payload=ticket_json(id=5, status=3))
    mock_http.post(f"{BASE}/tickets/5/notes", status=201, payload={"id": 9001, "body": "x", "private": True})
    ticket = await freshdesk().update_ticket(TicketUpdateRequest(
        crm_type="freshdesk", ticket_id="5", status="pending", subject="New", tags=["a"],
        comment={"body": "verified <caller>", "public": False}))
    assert body_of(sent(mock_http, "PUT", f"{BASE}/tickets/5")[0]) == {"status": 3, "subject": "New", "tags": ["a"]}
    assert body_of(sent(mock_http, "POST", f"{BASE}/tickets/5/notes")[0]) == {"body": "verified &lt;caller&gt;", "private": True}
    assert ticket.status == TicketStatus.pending and ticket.metadata["note_id"] == 9001
    assert not sent(mock_http, "GET", BASE)


async def test_a_comment_alone_is_a_public_note_and_then_the_ticket_is_read(freshdesk, mock_http):
    mock_http.post(f"{BASE}/tickets/5/notes", status=201, payload={"id": 9002, "private": False})
    mock_http.get(f"{BASE}/tickets/5", payload=ticket_json(id=5))
    await freshdesk().update_ticket(TicketUpdateRequest(crm_type="freshdesk", ticket_id="5", comment={"body": "hello"}))
    assert body_of(sent(mock_http, "POST", f"{BASE}/tickets/5/notes")[0]) == {"body": "hello", "private": False}
    assert not sent(mock_http, "PUT", BASE)


async def test_note_is_not_retried_after_a_5xx(freshdesk, mock_http, sleeps):
    mock_http.post(f"{BASE}/tickets/5/notes", status=502, body="bad gateway")
    with pytest.raises(UpstreamUnavailable):
        await freshdesk().update_ticket(TicketUpdateRequest(crm_type="freshdesk", ticket_id="5", comment={"body": "x"}))
    assert len(sent(mock_http, "POST", BASE)) == 1


async def test_put_is_retried_after_a_5xx(freshdesk, mock_http):
    mock_http.put(f"{BASE}/tickets/5", status=503, body="down")
    mock_http.put(f"{BASE}/tickets/5", payload=ticket_json(id=5, priority=3))
    ticket = await freshdesk().update_ticket(TicketUpdateRequest(crm_type="freshdesk", ticket_id="5", priority="high"))
    assert ticket.priority == TicketPriority.high and len(sent(mock_http, "PUT", BASE)) == 2


# --- errors ---------------------------------------------------------------------------------------


async def test_400_validation_failed_carries_freshdesk_errors_as_details(freshdesk, mock_http):
    errors = [{"field": "status", "message": "It should be one of these values: '2,3,4,5'", "code": "invalid_value"}]
    mock_http.put(f"{BASE}/tickets/5", status=400, payload={"description": "Validation failed", "errors": errors})
    with pytest.raises(ValidationFailed) as caught:
        await freshdesk().update_ticket(TicketUpdateRequest(crm_type="freshdesk", ticket_id="5", status="open"))
    assert caught.value.upstream_status == 400
    assert caught.value.details == {"status": [{"message": errors[0]["message"], "code": "invalid_value"}]}
    assert "status: It should be one of these values" in caught.value.message
    assert len(sent(mock_http, "PUT", BASE)) == 1


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [
        (401, {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}, AuthFailed),
        (403, {"code": "access_denied", "message": "You are not authorized to perform this action."}, AuthFailed),
        (404, None, NotFound),
    ],
)
async def test_vendor_errors_map_to_contract_errors_without_retry(freshdesk, mock_http, status, payload, error):
    if payload is None:
        mock_http.get(f"{BASE}/tickets/1", status=status, body=b"")  # Freshdesk's 404 has no body
    else:
        mock_http.get(f"{BASE}/tickets/1", status=status, payload=payload)
    with pytest.raises(error) as caught:
        await freshdesk().get_ticket("1")
    assert caught.value.upstream_status == status
    expected = payload["message"] if payload else "Freshdesk has no such record"
    assert expected in caught.value.message and "key123" not in caught.value.message
    assert len(sent(mock_http, "GET", BASE)) == 1


async def test_429_waits_retry_after_then_succeeds(freshdesk, mock_http, sleeps):
    mock_http.get(f"{BASE}/tickets/1", status=429, body=b"",
                  headers={"Retry-After": "2", "X-RateLimit-Total": "700", "X-RateLimit-Remaining": "0"})
    mock_http.get(f"{BASE}/tickets/1", payload=ticket_json(id=1))
    ticket = await freshdesk(request_deadline_seconds=10).get_ticket("1")
    assert ticket.id == "1" and sleeps.calls == [2.0]


async def test_long_retry_after_goes_back_to_the_caller(freshdesk, mock_http, sleeps):
    mock_http.get(f"{BASE}/tickets/1", status=429, body=b"", headers={"Retry-After": "60"})
    with pytest.raises(RateLimited) as caught:
        await freshdesk().get_ticket("1")
    assert caught.value.retry_after == 60 and sleeps.calls == []


async def test_malformed_json_is_a_crm_error(freshdesk, mock_http):
    mock_http.get(f"{BASE}/tickets/1", body=b'{"id": ', content_type="application/json")
    with pytest.raises(MalformedAnswer):
        await freshdesk().get_ticket("1")


async def test_a_ticket_answer_without_an_id_is_a_crm_error(freshdesk, mock_http):
    mock_http.get(f"{BASE}/tickets/1", payload=[])
    with pytest.raises(MalformedAnswer):
        await freshdesk().get_ticket("1")
