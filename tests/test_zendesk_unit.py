"""ZendeskConnector against faked HTTP (aioresponses): wire format, mapping, errors, retries."""

from __future__ import annotations

import base64
import re

import pytest

from connectors.zendesk import ZendeskConnector
from errors import AuthFailed, InvalidConfig, InvalidRequest, MalformedAnswer, NotFound, RateLimited, UpstreamUnavailable, ValidationFailed
from models import TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import parse_phone
from tests.conftest import sent

BASE = "https://acme.zendesk.com/api/v2"
CONFIG = {"subdomain": "acme", "email": "agent@acme.com", "api_token": "tok123"}


@pytest.fixture
def zendesk(make_context):
    def build(config=None, **settings):
        return ZendeskConnector.from_request(config or CONFIG, make_context(**settings))

    return build




async def test_basic_auth_uses_email_slash_token(zendesk, mock_http):
    mock_http.get(re.compile(rf"{BASE}/tickets/7\.json"), payload={"ticket": {"id": 7, "status": "open"}})
    await zendesk().get_ticket("7")
    auth = sent(mock_http, "GET", f"{BASE}/tickets/7.json")[0].kwargs["headers"]["Authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")).decode() == "agent@acme.com/token:tok123"


async def test_oauth_token_is_sent_as_bearer(zendesk, mock_http):
    mock_http.get(re.compile(rf"{BASE}/tickets/7\.json"), payload={"ticket": {"id": 7, "status": "open"}})
    await zendesk({"subdomain": "acme", "oauth_token": "oauth-abc"}).get_ticket("7")
    assert sent(mock_http, "GET", BASE)[0].kwargs["headers"]["Authorization"] == "Bearer oauth-abc"


async def test_customer_comes_with_its_organization_in_one_call(zendesk, mock_http):
    mock_http.get(
        re.compile(rf"{BASE}/users/1001\.json\?include=organizations"),
        payload={
            "user": {"id": 1001, "name": "Ahmed", "email": "a@x.ae", "phone": "+971 50 123 4567", "organization_id": 5, "role": "end-user"},
            "organizations": [{"id": 5, "name": "Al-Mansoori Trading", "organization_fields": {"tier": "Gold"}}],
        },
    )
    customer = await zendesk().get_customer("1001")
    assert customer.phone == "+971501234567"
    assert customer.tier == "Gold"
    assert customer.metadata["organization_name"] == "Al-Mansoori Trading"
    assert customer.metadata["vendor_phone"] == "+971 50 123 4567"
    assert len(mock_http.requests) == 1


@pytest.mark.parametrize(
    ("vendor_status", "vendor_priority", "status", "priority"),
    [
        ("new", "low", TicketStatus.new, TicketPriority.low),
        ("hold", "normal", TicketStatus.pending, TicketPriority.medium),
        ("solved", None, TicketStatus.solved, TicketPriority.medium),
        ("closed", "urgent", TicketStatus.closed, TicketPriority.urgent),
    ],
)
async def test_ticket_status_and_priority_tables(zendesk, mock_http, vendor_status, vendor_priority, status, priority):
    mock_http.get(
        f"{BASE}/tickets/9.json",
        payload={"ticket": {"id": 9, "subject": "s", "status": vendor_status, "priority": vendor_priority,
                            "created_at": "2025-01-01T10:00:00Z", "requester_id": 1}},
    )
    ticket = await zendesk().get_ticket("9")
    assert (ticket.status, ticket.priority) == (status, priority)
    assert ticket.metadata["vendor_status"] == vendor_status
    assert ticket.created_at == "2025-01-01T10:00:00Z"


async def test_phone_search_uses_wildcard_digits_and_keeps_only_the_caller(zendesk, mock_http):
    mock_http.get(
        re.compile(rf"{BASE}/users/search\.json.*"),
        payload={"users": [
            {"id": 1, "name": "Ahmed", "phone": "050 123 4567"},
            {"id": 2, "name": "Other", "phone": "+1 501 234 567"},
        ], "count": 2},
    )
    found = await zendesk(default_phone_region="AE").find_customers(
        phone=parse_phone("+971501234567", "US"), email=None, limit=10
    )
    assert [c.id for c in found] == ["1"]
    query = sent(mock_http, "GET", f"{BASE}/users/search.json")[0].kwargs["params"]["query"]
    assert query == "phone:*501234567"


async def test_create_sends_comment_requester_and_idempotency_key(zendesk, mock_http):
    mock_http.post(f"{BASE}/tickets.json", status=201, payload={"ticket": {"id": 77, "subject": "Hi", "status": "new", "priority": "normal"}})
    ticket = await zendesk().create_ticket(
        TicketCreateRequest(crm_type="zendesk", subject="Hi", description="Body", customer_email="c@x.com",
                            customer_name="Cee", priority="medium", tags=["voice"]),
        idempotency_key="key-1",
    )
    call = sent(mock_http, "POST", f"{BASE}/tickets.json")[0]
    assert call.kwargs["headers"]["Idempotency-Key"] == "key-1"
    import orjson
    body = orjson.loads(call.kwargs["data"])["ticket"]
    assert body == {"subject": "Hi", "comment": {"body": "Body", "public": True}, "tags": ["voice"],
                    "requester": {"name": "Cee", "email": "c@x.com"}, "priority": "normal"}
    assert ticket.id == "77" and ticket.priority == TicketPriority.medium


async def test_update_with_private_comment_is_an_internal_note(zendesk, mock_http):
    mock_http.put(f"{BASE}/tickets/5.json", payload={"ticket": {"id": 5, "status": "hold"}})
    await zendesk().update_ticket(TicketUpdateRequest(crm_type="zendesk", ticket_id="5", status="pending",
                                                      comment={"body": "note", "public": False}))
    import orjson
    body = orjson.loads(sent(mock_http, "PUT", f"{BASE}/tickets/5.json")[0].kwargs["data"])
    assert body == {"ticket": {"status": "pending", "comment": {"body": "note", "public": False}}}


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [
        (401, {"error": "Couldn't authenticate you"}, AuthFailed),
        (403, {"error": "Forbidden", "description": "You do not have access"}, AuthFailed),
        (404, {"error": "RecordNotFound", "description": "Not found"}, NotFound),
        (422, {"error": "RecordInvalid", "description": "Record validation errors", "details": {"status": [{"description": "bad"}]}}, ValidationFailed),
    ],
)
async def test_vendor_errors_map_to_contract_errors_without_retry(zendesk, mock_http, status, payload, error):
    mock_http.get(f"{BASE}/tickets/1.json", status=status, payload=payload)
    with pytest.raises(error) as caught:
        await zendesk().get_ticket("1")
    assert caught.value.upstream_status == status
    assert len(sent(mock_http, "GET", BASE)) == 1
    if status == 422:
        assert caught.value.details == {"status": [{"description": "bad"}]}


async def test_429_waits_retry_after_then_succeeds(zendesk, mock_http, sleeps):
    mock_http.get(f"{BASE}/tickets/1.json", status=429, body="Rate limited", headers={"Retry-After": "1.5"})
    mock_http.get(f"{BASE}/tickets/1.json", payload={"ticket": {"id": 1, "status": "open"}})
    ticket = await zendesk(request_deadline_seconds=10).get_ticket("1")
    assert ticket.id == "1"
    assert sleeps.calls == [1.5]


async def test_retry_after_past_the_deadline_is_not_waited_out(zendesk, mock_http, sleeps):
    mock_http.get(f"{BASE}/tickets/1.json", status=429, body="Rate limited", headers={"Retry-After": "1.5"})
    with pytest.raises(RateLimited):
        await zendesk(request_deadline_seconds=1.0).get_ticket("1")
    assert sleeps.calls == []


async def test_long_retry_after_goes_back_to_the_caller(zendesk, mock_http, sleeps):
    mock_http.get(f"{BASE}/tickets/1.json", status=429, body="Rate limited", headers={"Retry-After": "60"})
    with pytest.raises(RateLimited) as caught:
        await zendesk().get_ticket("1")
    assert caught.value.retry_after == 60
    assert sleeps.calls == []


async def test_5xx_backs_off_exponentially_then_gives_up(zendesk, mock_http, sleeps):
    for _ in range(3):
        mock_http.get(f"{BASE}/tickets/1.json", status=503, body="down")
    with pytest.raises(UpstreamUnavailable):
        await zendesk(retry_backoff_initial_seconds=0.1, retry_backoff_max_seconds=1.0).get_ticket("1")
    assert len(sleeps.calls) == 2
    assert 0.1 <= sleeps.calls[0] <= 0.2 and sleeps.calls[1] >= 0.2  # exponential, with jitter on top


async def test_update_with_comment_is_not_retried_after_a_5xx(zendesk, mock_http, sleeps):
    mock_http.put(f"{BASE}/tickets/5.json", status=502, body="bad gateway")
    with pytest.raises(UpstreamUnavailable):
        await zendesk().update_ticket(TicketUpdateRequest(crm_type="zendesk", ticket_id="5", comment={"body": "x"}))
    assert len(sent(mock_http, "PUT", BASE)) == 1


async def test_create_is_retried_with_the_same_key(zendesk, mock_http):
    mock_http.post(f"{BASE}/tickets.json", status=503, body="down")
    mock_http.post(f"{BASE}/tickets.json", status=201, payload={"ticket": {"id": 8, "status": "new"}})
    await zendesk().create_ticket(TicketCreateRequest(crm_type="zendesk", subject="s", description="d"), idempotency_key="k")
    keys = [c.kwargs["headers"]["Idempotency-Key"] for c in sent(mock_http, "POST", BASE)]
    assert keys == ["k", "k"]


async def test_malformed_json_is_a_crm_error(zendesk, mock_http):
    mock_http.get(f"{BASE}/tickets/1.json", body=b'{"ticket": ', content_type="application/json")
    with pytest.raises(MalformedAnswer):
        await zendesk().get_ticket("1")


@pytest.mark.parametrize("subdomain", ["evil.com/x", "a.b", "169.254.169.254", "acme:80", "-bad", ""])
async def test_subdomain_must_be_one_dns_label(zendesk, subdomain):
    with pytest.raises(InvalidConfig):
        zendesk({**CONFIG, "subdomain": subdomain})


@pytest.mark.parametrize("base_url", ["http://169.254.169.254/latest", "http://localhost:8080", "file:///etc/passwd", "https://user:pw@acme.zendesk.com"])
async def test_base_url_outside_allowed_hosts_is_refused(zendesk, base_url):
    with pytest.raises(InvalidConfig):
        zendesk({**CONFIG, "base_url": base_url})


async def test_base_url_of_an_allowed_host_is_used(zendesk, mock_http):
    mock_http.get("http://zd.staging.internal:9000/api/v2/tickets/1.json", payload={"ticket": {"id": 1, "status": "open"}})
    connector = zendesk({**CONFIG, "base_url": "http://zd.staging.internal:9000"}, connectors_allowed_hosts="zd.staging.internal:9000")
    assert (await connector.get_ticket("1")).id == "1"


async def test_missing_credentials_is_invalid_config_without_echoing_values(zendesk):
    with pytest.raises(InvalidConfig) as caught:
        zendesk({"subdomain": "acme", "api_token": "s3cret-value"})
    assert "s3cret-value" not in caught.value.message


@pytest.mark.parametrize("bad_id", ["12a", "../users/1", "1 OR 1", ""])
async def test_ids_are_checked_before_any_call(zendesk, mock_http, bad_id):
    with pytest.raises(InvalidRequest):
        await zendesk().get_ticket(bad_id)
    assert not mock_http.requests


# --- email search: the caller's address can never change the query, and only exact matches come back -----


@pytest.mark.parametrize("email", ['a@b.com"role:admin', 'a@b.com" -email:x', "a*@b.com", "a\\@b.com", "a@b.com\x00"])
async def test_email_that_could_change_the_query_is_refused_before_any_call(zendesk, mock_http, email):
    with pytest.raises(InvalidRequest) as caught:
        await zendesk().find_customers(phone=parse_phone("+971501234567", "US"), email=email, limit=5)
    assert email not in caught.value.message
    assert not mock_http.requests


async def test_email_search_is_quoted_and_keeps_only_exact_matches_ignoring_case(zendesk, mock_http):
    mock_http.get(
        re.compile(rf"{BASE}/users/search\.json.*"),
        payload={"users": [
            {"id": 1, "name": "Exact", "email": "Ahmed@Example.AE"},
            {"id": 2, "name": "Similar", "email": "ahmed.other@example.ae"},
            {"id": 3, "name": "No email", "email": None},
        ], "count": 3},
    )
    found = await zendesk().find_customers(phone=None, email="ahmed@example.ae", limit=10)
    assert [c.id for c in found] == ["1"]
    query = sent(mock_http, "GET", f"{BASE}/users/search.json")[0].kwargs["params"]["query"]
    assert query == 'email:"ahmed@example.ae"'
