"""The mappings on answers shaped exactly as each vendor documents them (tests/vendor_fixtures/SOURCES.md names the
page each fixture follows), independent of the sandbox's emulators: fields, nesting, nulls, and the real error shapes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.freshdesk import FreshdeskConnector
from connectors.salesforce import SalesforceConnector
from connectors.zendesk import ZendeskConnector
from errors import AuthFailed, CRMError, NotFound, RateLimited, SessionExpired, ValidationFailed
from models import TicketPriority, TicketStatus

FIXTURES = Path(__file__).parent / "vendor_fixtures"
ZENDESK = "https://acme.zendesk.com/api/v2"
SALESFORCE = "https://acme.my.salesforce.com/services/data/v62.0"
FRESHDESK = "https://acme.freshdesk.com/api/v2"


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def answer(mock_http, method: str, url: str, case: dict[str, Any], repeat: bool = True) -> None:
    """Serve one documented error case (`status`, and `body` JSON or `text`, with `headers`)."""
    kwargs: dict[str, Any] = {"status": case["status"], "headers": case.get("headers") or {}, "repeat": repeat}
    if "body" in case:
        kwargs["payload"] = case["body"]
    else:
        kwargs["body"] = case.get("text", "")
    getattr(mock_http, method)(re.compile(re.escape(url) + r".*"), **kwargs)


@pytest.fixture
def zendesk(make_context):
    config = {"subdomain": "acme", "email": "agent@acme.com", "api_token": "tok"}
    return lambda: ZendeskConnector.from_request(config, make_context())


@pytest.fixture
def salesforce(make_context):
    config = {"instance_url": "https://acme.my.salesforce.com", "access_token": "tok"}
    return lambda: SalesforceConnector.from_request(config, make_context())


@pytest.fixture
def freshdesk(make_context):
    config = {"domain": "acme.freshdesk.com", "api_key": "key"}
    return lambda: FreshdeskConnector.from_request(config, make_context())


# --- Zendesk ------------------------------------------------------------------------------------------


async def test_zendesk_documented_user_with_sideloaded_organization(zendesk, mock_http):
    mock_http.get(re.compile(rf"{ZENDESK}/users/35436\.json.*"), payload=fixture("zendesk_user"))
    customer = await zendesk().get_customer("35436")
    assert (customer.id, customer.name, customer.email, customer.phone) == (
        "35436", "Johnny Agent", "johnny@example.com", "+15551234567",
    )
    assert customer.tier == "Gold"  # the user's own field is null, so the organization's counts
    assert customer.metadata["organization_name"] == "Acme Corp"
    assert customer.metadata["tags"] == ["vip"]
    assert customer.metadata["created_at"] == "2009-07-20T22:55:29Z"
    assert "external_id" not in customer.metadata  # documented null stays out


async def test_zendesk_documented_ticket_with_null_priority_and_hold(zendesk, mock_http):
    mock_http.get(f"{ZENDESK}/tickets/35436.json", payload=fixture("zendesk_ticket"))
    ticket = await zendesk().get_ticket("35436")
    assert ticket.status is TicketStatus.pending  # hold: waiting on a third party
    assert ticket.priority is TicketPriority.medium  # null until an agent sets it
    assert ticket.customer_id == "20978392"
    assert ticket.metadata["channel"] == "voice"
    assert ticket.metadata["vendor_status"] == "hold"
    assert ticket.metadata["tags"] == ["enterprise", "other_tag"]


@pytest.mark.parametrize(
    ("case", "error_type", "in_message"),
    [
        ("not_found", NotFound, "Not found"),
        ("unauthorized", AuthFailed, "Couldn't authenticate you"),
        ("record_invalid", ValidationFailed, "Record validation errors"),
    ],
)
async def test_zendesk_documented_errors(zendesk, mock_http, case, error_type, in_message):
    answer(mock_http, "get", f"{ZENDESK}/tickets/1.json", fixture("zendesk_errors")[case])
    with pytest.raises(error_type) as caught:
        await zendesk().get_ticket("1")
    assert in_message in caught.value.message
    if case == "record_invalid":
        assert caught.value.details["requester"][0]["error"] == "InvalidValue"


async def test_zendesk_plain_text_429_keeps_its_reason_and_wait(zendesk, mock_http, sleeps):
    answer(mock_http, "get", f"{ZENDESK}/tickets/1.json", fixture("zendesk_errors")["rate_limited_text"])
    with pytest.raises(RateLimited) as caught:
        await zendesk().get_ticket("1")
    assert caught.value.retry_after == 93  # over RETRY_AFTER_MAX_SECONDS: back to the caller at once
    assert "Rate limit for ticket updates exceeded" in caught.value.message
    assert sleeps.calls == []


async def test_zendesk_html_429_without_retry_after_reads_the_reset_header(zendesk, mock_http):
    answer(mock_http, "get", f"{ZENDESK}/tickets/1.json", fixture("zendesk_errors")["rate_limited_headers_only"])
    with pytest.raises(RateLimited) as caught:
        await zendesk().get_ticket("1")
    assert caught.value.retry_after == 17
    assert "Too Many Requests" in caught.value.message
    assert "<" not in caught.value.message  # the page's text, not its markup


# --- Salesforce ---------------------------------------------------------------------------------------


async def test_salesforce_documented_query_answer_with_parent_account(salesforce, mock_http):
    mock_http.get(re.compile(rf"{SALESFORCE}/query/.*"), payload=fixture("salesforce_contact_query"))
    customer = await salesforce().get_customer("003D000000QV9n2IAD")
    assert customer.name == "Rose Gonzalez"
    assert customer.phone == "+15127576000"
    assert customer.metadata["account_name"] == "Edge Communications"
    assert customer.metadata["account_type"] == "Customer - Direct"
    assert customer.metadata["created_at"] == "2024-03-01T10:15:00Z"
    assert "mobile_phone" not in customer.metadata


async def test_salesforce_documented_case_with_null_description(salesforce, mock_http):
    mock_http.get(re.compile(rf"{SALESFORCE}/sobjects/Case/500D000000J3lIIIAZ.*"), payload=fixture("salesforce_case"))
    ticket = await salesforce().get_ticket("500D000000J3lIIIAZ")
    assert ticket.description == ""
    assert (ticket.status, ticket.priority) == (TicketStatus.open, TicketPriority.low)  # Working, Low
    assert ticket.metadata["case_number"] == "00001001"
    assert ticket.updated_at == "2024-03-02T08:00:00Z"


async def test_salesforce_request_limit_is_a_429_with_a_wait(salesforce, mock_http, sleeps):
    answer(mock_http, "get", f"{SALESFORCE}/sobjects/Case/", fixture("salesforce_errors")["request_limit"])
    with pytest.raises(RateLimited) as caught:
        await salesforce().get_ticket("500D000000J3lIIIAZ")
    assert caught.value.retry_after == SalesforceConnector.rate_limit_window_seconds
    assert "TotalRequests Limit exceeded" in caught.value.message
    assert "no wait was stated" in caught.value.message


@pytest.mark.parametrize(
    ("case", "error_type"),
    [("invalid_session", SessionExpired), ("not_found", NotFound), ("required_field", ValidationFailed)],
)
async def test_salesforce_documented_errors(salesforce, mock_http, case, error_type):
    answer(mock_http, "get", f"{SALESFORCE}/sobjects/Case/", fixture("salesforce_errors")[case])
    with pytest.raises(error_type) as caught:
        await salesforce().get_ticket("500D000000J3lIIIAZ")
    errors = fixture("salesforce_errors")[case]["body"]
    assert errors[0]["errorCode"] in caught.value.message
    assert caught.value.details == errors


# --- Freshdesk ----------------------------------------------------------------------------------------


async def test_freshdesk_documented_contact(freshdesk, mock_http):
    mock_http.get(f"{FRESHDESK}/contacts/432", payload=fixture("freshdesk_contact"))
    mock_http.get(f"{FRESHDESK}/companies/23", payload={"id": 23, "name": "Daily Planet", "custom_fields": {}})
    customer = await freshdesk().get_customer("432")
    assert (customer.name, customer.email, customer.phone) == ("Super Man", "superman@freshdesk.com", "+15551234567")
    assert customer.metadata["company_name"] == "Daily Planet"


async def test_freshdesk_documented_ticket(freshdesk, mock_http):
    mock_http.get(f"{FRESHDESK}/tickets/20", payload=fixture("freshdesk_ticket"))
    ticket = await freshdesk().get_ticket("20")
    assert (ticket.status, ticket.priority) == (TicketStatus.open, TicketPriority.low)
    assert ticket.description == "Details about the issue..."  # the text form, not the HTML
    assert ticket.customer_id == "1"


@pytest.mark.parametrize(
    ("case", "error_type"),
    [("validation", ValidationFailed), ("credentials", AuthFailed), ("access_denied", AuthFailed), ("not_found", NotFound)],
)
async def test_freshdesk_documented_errors(freshdesk, mock_http, case, error_type):
    answer(mock_http, "get", f"{FRESHDESK}/tickets/20", fixture("freshdesk_errors")[case])
    with pytest.raises(error_type) as caught:
        await freshdesk().get_ticket("20")
    if case == "validation":
        assert set(caught.value.details) == {"email", "requester_id"}
        assert caught.value.details["email"][0]["code"] == "invalid_value"


async def test_freshdesk_429_keeps_its_retry_after(freshdesk, mock_http):
    answer(mock_http, "get", f"{FRESHDESK}/tickets/20", fixture("freshdesk_errors")["rate_limited"])
    with pytest.raises(RateLimited) as caught:
        await freshdesk().get_ticket("20")
    assert caught.value.retry_after == 30


def test_every_429_body_and_header_carry_a_wait():
    """However a rate limit arose, the contract answer says when to come back."""
    from http_errors import error_response

    response = error_response(RateLimited("slow down"))
    assert response.headers["Retry-After"] == "1"
    assert orjson.loads(response.body)["error"]["retry_after_seconds"] == 1.0
    assert "Retry-After" not in error_response(CRMError("other")).headers
