"""IntercomConnector against faked HTTP (aioresponses): wire format, tables, errors, the handoff's calls.

Fixtures are shaped as Intercom's 2.11 reference shows them (https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/):
contacts/showcontact, contacts/searchcontacts, tickets/getticket, tickets/createticket, conversations/createconversation,
conversations/retrieveconversation, admins/listadmins, teams/retrieveteam, and the error object (errors/error-objects).
"""

from __future__ import annotations

import time

import orjson
import pytest

from connectors.intercom import IntercomConnector
from connectors.intercom_api import STATUS_FROM_INTERCOM, STATUS_TO_INTERCOM
from connectors.chat import ChatAttempt
from connectors.retry_policy import parse_retry_after
from errors import AuthFailed, InvalidConfig, InvalidRequest, NotFound, RateLimited, UpstreamError, ValidationFailed
from handoff_text import URGENCY
from models import HandoffContext, HandoffStatus, TicketCreateRequest, TicketPriority, TicketStatus, TicketUpdateRequest
from phone import parse_phone
from tests.conftest import sent

BASE = "https://api.intercom.io"
CONFIG = {"access_token": "tok_123", "ticket_type_id": "1234", "admin_id": "991267883", "priority_attribute": "priority"}
CONTACT_ID = "667d61b78a68186f43bafe8d"

# contacts/showcontact (trimmed to the fields read)
CONTACT = {
    "type": "contact", "id": CONTACT_ID, "workspace_id": "h5vxojoy", "external_id": "70", "role": "user",
    "email": "ahmed@example.ae", "phone": "+971 50 123 4567", "name": "Ahmed Al-Mansoori", "created_at": 1719492535,
    "updated_at": 1719492536,
    "companies": {"type": "list", "data": [{"type": "company", "id": "667d61b88a68186f43bafe92", "url": "/companies/667d61b88a68186f43bafe92"}],
                  "url": f"/contacts/{CONTACT_ID}/companies", "total_count": 1, "has_more": False},
}
# companies/retrieveacompanybyid
COMPANY = {"type": "company", "id": "667d61b88a68186f43bafe92", "name": "Al-Mansoori Trading", "company_id": "6",
           "plan": {"type": "plan", "id": "269", "name": "Enterprise"}, "custom_attributes": {}}
# tickets/getticket (2.11: ticket_state is a string)
TICKET = {
    "type": "ticket", "id": "494", "ticket_id": "22", "category": "Customer",
    "ticket_attributes": {"_default_title_": "Product not working", "_default_description_": "It broke", "priority": "High"},
    "ticket_state": "in_progress", "ticket_type": {"type": "ticket_type", "id": "1234", "name": "Bug"},
    "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": CONTACT_ID, "external_id": "70"}]},
    "admin_assignee_id": "0", "team_assignee_id": "0", "created_at": 1719492872, "updated_at": 1719492873,
    "open": True, "is_shared": True,
}
ERROR_401 = {"type": "error.list", "request_id": "000di5ihn6", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]}


@pytest.fixture
def intercom(make_context):
    def build(config=None, **settings):
        return IntercomConnector.from_request({**CONFIG, **(config or {})}, make_context(**settings))

    return build


def exactly(mock_http, method: str, url: str) -> list:
    """The calls to exactly this URL (`sent` matches a prefix)."""
    return [call for (m, u), calls in mock_http.requests.items() if m == method and str(u) == url for call in calls]


def body_of(call) -> dict:
    return orjson.loads(call.kwargs["data"])


def test_tables_cover_every_unified_status_and_read_back():
    assert set(STATUS_TO_INTERCOM) == set(TicketStatus)
    for status, state in STATUS_TO_INTERCOM.items():
        if status not in (TicketStatus.closed,):
            assert STATUS_FROM_INTERCOM[state] is status


def test_region_picks_the_host_and_nothing_else_can(intercom):
    assert intercom({"region": "eu"}).base_url == "https://api.eu.intercom.io"
    with pytest.raises(InvalidConfig):
        intercom({"region": "eu.evil.com"})
    with pytest.raises(InvalidConfig):
        intercom({"api_version": "2.11\r\nX-Evil: 1"})


async def test_get_customer_sends_bearer_and_version_and_reads_the_company(intercom, mock_http):
    mock_http.get(f"{BASE}/contacts/{CONTACT_ID}", payload=CONTACT)
    mock_http.get(f"{BASE}/companies/{COMPANY['id']}", payload=COMPANY)
    customer = await intercom().get_customer(CONTACT_ID)
    [call] = sent(mock_http, "GET", f"{BASE}/contacts/")
    assert call.kwargs["headers"]["Authorization"] == "Bearer tok_123"
    assert call.kwargs["headers"]["Intercom-Version"] == "2.11"
    assert (customer.name, customer.phone, customer.tier) == ("Ahmed Al-Mansoori", "+971501234567", "Enterprise")
    assert customer.metadata["organization_name"] == "Al-Mansoori Trading"
    assert customer.metadata["created_at"] == "2024-06-27T12:48:55Z"


async def test_bad_contact_id_is_refused_before_any_call(intercom, mock_http):
    with pytest.raises(InvalidRequest, match="24 hexadecimal digits"):
        await intercom().get_customer("1001")
    assert not mock_http.requests


async def test_phone_search_ors_the_spellings_and_keeps_only_the_caller(intercom, mock_http):
    other = {**CONTACT, "id": "667d61b78a68186f43bafe8e", "phone": "+971509999999", "companies": {"data": []}}
    mock_http.post(f"{BASE}/contacts/search", payload={"type": "list", "data": [CONTACT, other], "total_count": 2})
    mock_http.get(f"{BASE}/companies/{COMPANY['id']}", payload=COMPANY)
    found = await intercom().find_customers(phone=parse_phone("+971501234567", "AE"), email=None, limit=5)
    [call] = sent(mock_http, "POST", f"{BASE}/contacts/search")
    query = body_of(call)["query"]
    assert query["operator"] == "OR" and {"field": "phone", "operator": "=", "value": "+971501234567"} in query["value"]
    assert len(query["value"]) <= 15 and [c.id for c in found] == [CONTACT_ID]


async def test_ticket_reads_state_priority_and_closed(intercom, mock_http):
    mock_http.get(f"{BASE}/tickets/494", payload=TICKET)
    ticket = await intercom().get_ticket("494")
    assert (ticket.status, ticket.priority, ticket.customer_id) == (TicketStatus.open, TicketPriority.high, CONTACT_ID)
    assert ticket.metadata["ticket_number"] == "22"
    # 2.12+: the state is an object with a category; open: false is closed whatever the state
    mock_http.get(f"{BASE}/tickets/494", payload={**TICKET, "ticket_state": {"type": "ticket_state", "category": "resolved"}})
    assert (await intercom().get_ticket("494")).status is TicketStatus.solved
    mock_http.get(f"{BASE}/tickets/494", payload={**TICKET, "open": False})
    assert (await intercom().get_ticket("494")).status is TicketStatus.closed


async def test_create_sends_type_contact_attributes_and_marker(intercom, mock_http):
    mock_http.post(f"{BASE}/tickets", payload={**TICKET, "ticket_state": "submitted"})
    ticket = TicketCreateRequest(crm_type="intercom", subject="s", description="d", customer_id=CONTACT_ID, priority="urgent")
    await intercom().create_ticket(ticket, idempotency_key="k", marker="idem" + "0" * 24)
    [call] = exactly(mock_http, "POST", f"{BASE}/tickets")
    body = body_of(call)
    assert body["ticket_type_id"] == "1234" and body["contacts"] == [{"id": CONTACT_ID}]
    assert body["ticket_attributes"]["priority"] == "Urgent" and body["ticket_attributes"]["_default_title_"] == "s"
    assert body["ticket_attributes"]["_default_description_"].endswith("[ref idem" + "0" * 24 + "]")


async def test_create_without_a_ticket_type_names_the_variable(intercom, mock_http):
    ticket = TicketCreateRequest(crm_type="intercom", subject="s", description="d", customer_id=CONTACT_ID)
    with pytest.raises(InvalidConfig, match="ticket_type_id"):
        await intercom({"ticket_type_id": None}).create_ticket(ticket, idempotency_key="k")


async def test_update_puts_state_then_replies_with_a_note(intercom, mock_http):
    mock_http.put(f"{BASE}/tickets/494", payload={**TICKET, "ticket_state": "resolved", "open": False})
    mock_http.post(f"{BASE}/tickets/494/reply", payload={"type": "ticket_part", "id": "9", "part_type": "note"})
    update = TicketUpdateRequest(crm_type="intercom", ticket_id="494", status="closed", comment={"body": "n", "public": False})
    result = await intercom().update_ticket(update)
    [put] = sent(mock_http, "PUT", f"{BASE}/tickets/494")
    assert body_of(put) == {"state": "resolved", "open": False}
    [reply] = sent(mock_http, "POST", f"{BASE}/tickets/494/reply")
    assert body_of(reply) == {"message_type": "note", "type": "admin", "admin_id": "991267883", "body": "n"}
    assert result.status is TicketStatus.closed and result.metadata["note_id"] == "9"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, ERROR_401, AuthFailed),
        (404, {"type": "error.list", "errors": [{"code": "ticket_not_found", "message": "Ticket not found"}]}, NotFound),
        (400, {"type": "error.list", "errors": [{"code": "parameter_invalid", "message": "bad", "field": "x"}]}, ValidationFailed),
        (429, {"type": "error.list", "errors": [{"code": "rate_limit_exceeded", "message": "Exceeded rate limit"}]}, RateLimited),
    ],
)
async def test_error_codes_map_through_the_table(intercom, mock_http, status, body, error):
    for _ in range(3):
        mock_http.get(f"{BASE}/tickets/494", status=status, payload=body, headers={"X-RateLimit-Reset": "0"})
    with pytest.raises(error) as caught:
        await intercom().get_ticket("494")
    assert body["errors"][0]["code"] in caught.value.message and "tok_123" not in caught.value.message


# --- the handoff ------------------------------------------------------------------------------------------

ADMINS = {"type": "admin.list", "admins": [
    {"type": "admin", "id": "991267883", "name": "Sara Ahmed", "away_mode_enabled": False, "has_inbox_seat": True, "team_ids": [814865]},
    {"type": "admin", "id": "991267884", "name": "Away Person", "away_mode_enabled": True, "has_inbox_seat": True, "team_ids": [814865]},
]}
CONTEXT = HandoffContext(call_id="c1", customer_name="Ahmed", customer_phone="+971501234567", reason="Broken device",
                         transcript=[{"role": "user", "text": "It broke"}])


async def test_hand_over_opens_notes_assigns_and_reads_back(intercom, mock_http):
    mock_http.post(f"{BASE}/contacts/search", payload={"type": "list", "data": [CONTACT]})
    mock_http.get(f"{BASE}/admins", payload=ADMINS)
    mock_http.post(f"{BASE}/conversations", payload={"type": "user_message", "id": "403918330", "conversation_id": "5678"})
    mock_http.post(f"{BASE}/conversations/5678/reply", payload={"type": "conversation", "id": "5678"})
    mock_http.post(f"{BASE}/conversations/5678/parts", payload={"type": "conversation", "id": "5678"})
    mock_http.get(f"{BASE}/conversations/5678", payload={"type": "conversation", "id": "5678", "state": "open", "open": True,
                                                         "admin_assignee_id": 991267883, "team_assignee_id": None})
    attempt = ChatAttempt()
    answer = await intercom({"assignee_id": "991267883"}).hand_over(CONTEXT, URGENCY["high"], attempt)
    assert attempt.chat_id == "5678" and answer.status is HandoffStatus.assigned and answer.agent_name == "Sara Ahmed"
    [start] = exactly(mock_http, "POST", f"{BASE}/conversations")
    assert body_of(start)["from"] == {"type": "user", "id": CONTACT_ID} and "It broke" in body_of(start)["body"]
    [note] = sent(mock_http, "POST", f"{BASE}/conversations/5678/reply")
    assert body_of(note)["message_type"] == "note" and body_of(note)["admin_id"] == "991267883"
    [assign] = sent(mock_http, "POST", f"{BASE}/conversations/5678/parts")
    assert body_of(assign) == {"message_type": "assignment", "type": "admin", "admin_id": "991267883", "assignee_id": "991267883"}


async def test_nobody_available_fails_before_any_conversation(intercom, mock_http):
    mock_http.post(f"{BASE}/contacts/search", payload={"type": "list", "data": [CONTACT]})
    mock_http.get(f"{BASE}/admins", payload=ADMINS)
    mock_http.get(f"{BASE}/teams/814865", payload={"type": "team", "id": "814865", "name": "T", "admin_ids": [991267884]})
    connector = intercom({"team_id": "814865"})
    attempt = ChatAttempt()
    with pytest.raises(UpstreamError) as caught:
        await connector.hand_over(CONTEXT, URGENCY["high"], attempt)
    assert connector.failure_reason(caught.value) == "no_teammate_available" and attempt.chat_id is None
    assert not exactly(mock_http, "POST", f"{BASE}/conversations")


def test_an_epoch_rate_limit_reset_is_the_seconds_until_it_not_a_day():
    # Intercom's X-RateLimit-Reset is a Unix time; it used to be capped to a day before being read as one.
    assert parse_retry_after(str(int(time.time()) + 30), epoch=True) == 30
    assert parse_retry_after("30", epoch=True) == 30 and parse_retry_after(str(int(time.time()) - 5), epoch=True) == 0
