"""Intercom ticket states per API version, against faked HTTP (aioresponses) and the OpenAPI-shaped fixtures.

2.11: UpdateTicket's `state` takes in_progress, waiting_on_customer, resolved (so `new` is refused before any call).
2.12+: `ticket_state_id` of a state from `GET /ticket_states` (tests/vendor_fixtures/intercom_ticket_states.json),
cached per tenant. Fixture pages: tests/vendor_fixtures/SOURCES.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from aioresponses import CallbackResult

from connectors.intercom import IntercomConnector
from connectors.intercom_api import (
    TICKET_STATES_KEY, TICKET_STATES_TTL_SECONDS, TicketStates, read_ticket_states, state_ids, takes_state_ids,
)
from errors import NotSupported, ValidationFailed
from models import TicketCreateRequest, TicketStatus, TicketUpdateRequest
from tests.conftest import sent
from tests.test_intercom_unit import BASE, CONFIG, CONTACT_ID, TICKET, body_of, exactly

FIXTURES = Path(__file__).parent / "vendor_fixtures"
V214 = {"api_version": "2.14", "ticket_type_id": "1234"}
# What each status is sent as under 2.14 for ticket type 1234 (intercom_ticket_states.json).
STATE_ID_214 = {TicketStatus.open: "7102", TicketStatus.pending: "7103", TicketStatus.solved: "7104", TicketStatus.closed: "7104"}
STATE_211 = {TicketStatus.open: "in_progress", TicketStatus.pending: "waiting_on_customer",
             TicketStatus.solved: "resolved", TicketStatus.closed: "resolved"}  # fmt: skip


def fixture(name: str) -> dict:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


@pytest.fixture
def context(make_context):
    """One connector context, so connectors built on it share the app-lifetime state (the states cache)."""
    return make_context()


@pytest.fixture
def intercom(context):
    def build(config=None):
        return IntercomConnector.from_request({**CONFIG, **(config or {})}, context)

    return build


def update(status: str, **more) -> TicketUpdateRequest:
    return TicketUpdateRequest(crm_type="intercom", ticket_id="494", status=status, **more)


# --- the tables -------------------------------------------------------------------------------------------


def test_versions_from_2_12_and_preview_take_state_ids():
    assert [takes_state_ids(v) for v in ("1.4", "2.9", "2.11", "2.12", "2.14", "Preview")] == [False] * 3 + [True] * 3


def test_the_documented_list_reads_without_archived_states_and_picks_by_type():
    states = read_ticket_states(fixture("intercom_ticket_states")["data"])
    assert "7106" not in {s.id for s in states}  # archived: the list includes archived states
    assert state_ids(states, "submitted", "1234") == ["7101"] and state_ids(states, "submitted", "1235") == ["7101", "7105"]
    assert state_ids(states, "submitted", None) == ["7101", "7105"]  # the type decides
    assert state_ids(states, "in_progress", None) == ["7102"] and state_ids(states, "resolved", "999") == []


def test_the_cache_keeps_states_for_the_ttl_per_tenant():
    now = [1000.0]
    cache = TicketStates({}, clock=lambda: now[0])
    cache.put("a", [])
    assert cache.fresh("a") == [] and cache.fresh("b") is None
    now[0] += TICKET_STATES_TTL_SECONDS
    assert cache.fresh("a") is None


# --- 2.11: the state word -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(STATE_211))
async def test_2_11_sends_the_state_word_it_documents(intercom, mock_http, status):
    mock_http.put(f"{BASE}/tickets/494", payload=TICKET)
    await intercom().update_ticket(update(status.value))
    [put] = sent(mock_http, "PUT", f"{BASE}/tickets/494")
    assert body_of(put) == {"state": STATE_211[status], "open": status is not TicketStatus.closed}
    assert not sent(mock_http, "GET", f"{BASE}/ticket_states")


async def test_2_11_refuses_a_move_back_to_new_before_any_call(intercom, mock_http):
    with pytest.raises(NotSupported) as caught:
        await intercom().update_ticket(update("new", comment={"body": "n", "public": False}))
    assert "submitted" in caught.value.message and "in_progress, resolved, waiting_on_customer" in caught.value.message
    assert caught.value.code == "not_supported" and not mock_http.requests


async def test_2_11_create_as_new_makes_no_put_and_as_pending_puts_the_word(intercom, mock_http):
    mock_http.post(f"{BASE}/tickets", payload={**TICKET, "ticket_state": "submitted"}, repeat=True)
    mock_http.put(f"{BASE}/tickets/494", payload={**TICKET, "ticket_state": "waiting_on_customer"})
    ticket = TicketCreateRequest(crm_type="intercom", subject="s", description="d", customer_id=CONTACT_ID, status="new")
    assert (await intercom().create_ticket(ticket, idempotency_key="k")).status is TicketStatus.new
    assert not sent(mock_http, "PUT", BASE)
    created = await intercom().create_ticket(ticket.model_copy(update={"status": TicketStatus.pending}), idempotency_key="k2")
    [put] = sent(mock_http, "PUT", f"{BASE}/tickets/494")
    assert body_of(put) == {"state": "waiting_on_customer", "open": True} and created.status is TicketStatus.pending


# --- 2.12+: the state id ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(STATE_ID_214))
async def test_2_14_sends_the_state_id_of_the_category(intercom, mock_http, status):
    mock_http.get(f"{BASE}/ticket_states", payload=fixture("intercom_ticket_states"))
    mock_http.put(f"{BASE}/tickets/494", payload=fixture("intercom_ticket_2_14"))
    await intercom(V214).update_ticket(update(status.value))
    [put] = sent(mock_http, "PUT", f"{BASE}/tickets/494")
    assert body_of(put) == {"ticket_state_id": STATE_ID_214[status], "open": status is not TicketStatus.closed}
    assert put.kwargs["headers"]["Intercom-Version"] == "2.14"


async def test_2_14_new_picks_the_submitted_state_of_the_tickets_type(intercom, mock_http):
    # Two live submitted states, here 7101 for type 1234 only and 7105 for type 1235 only: the ticket's type decides.
    listed = fixture("intercom_ticket_states")
    listed["data"][0]["ticket_types"]["data"] = listed["data"][0]["ticket_types"]["data"][:1]
    mock_http.get(f"{BASE}/ticket_states", payload=listed)
    billing = {**fixture("intercom_ticket_2_14"), "ticket_type": {"type": "ticket_type", "id": "1235"}}
    mock_http.get(f"{BASE}/tickets/494", payload=billing)
    mock_http.put(f"{BASE}/tickets/494", payload=billing)
    await intercom(V214).update_ticket(update("new"))
    [put] = sent(mock_http, "PUT", f"{BASE}/tickets/494")
    assert body_of(put) == {"ticket_state_id": "7105", "open": True}
    assert len(exactly(mock_http, "GET", f"{BASE}/tickets/494")) == 1


async def test_2_14_reads_the_state_object(intercom, mock_http):
    mock_http.get(f"{BASE}/tickets/494", payload=fixture("intercom_ticket_2_14"))
    ticket = await intercom(V214).get_ticket("494")
    assert ticket.status is TicketStatus.pending
    assert (ticket.metadata["vendor_status"], ticket.metadata["vendor_state_id"]) == ("waiting_on_customer", "7103")


async def test_2_14_states_are_read_once_per_tenant_and_ttl(intercom, mock_http, context):
    mock_http.get(f"{BASE}/ticket_states", payload=fixture("intercom_ticket_states"), repeat=True)
    mock_http.put(f"{BASE}/tickets/494", payload=fixture("intercom_ticket_2_14"), repeat=True)
    await intercom(V214).update_ticket(update("open"))
    await intercom(V214).update_ticket(update("solved"))
    assert len(sent(mock_http, "GET", f"{BASE}/ticket_states")) == 1
    await intercom({**V214, "access_token": "another_workspace"}).update_ticket(update("open"))
    assert len(sent(mock_http, "GET", f"{BASE}/ticket_states")) == 2
    for tenant, (stored_at, states) in list(context.shared[TICKET_STATES_KEY].items()):  # age the entries
        context.shared[TICKET_STATES_KEY][tenant] = (stored_at - TICKET_STATES_TTL_SECONDS, states)
    await intercom(V214).update_ticket(update("pending"))
    assert len(sent(mock_http, "GET", f"{BASE}/ticket_states")) == 3


async def test_2_14_concurrent_updates_on_an_empty_cache_read_the_states_once(intercom, mock_http):
    released = asyncio.Event()

    async def listed(url, **kwargs):  # Intercom answers only once every update is waiting on the list
        await released.wait()
        return CallbackResult(payload=fixture("intercom_ticket_states"))

    mock_http.get(f"{BASE}/ticket_states", callback=listed, repeat=True)
    mock_http.put(f"{BASE}/tickets/494", payload=fixture("intercom_ticket_2_14"), repeat=True)
    updates = [asyncio.create_task(intercom(V214).update_ticket(update(s))) for s in ("open", "pending", "solved", "closed")]
    for _ in range(50):  # let every update reach the list (event-loop turns, not time)
        await asyncio.sleep(0)
    released.set()
    await asyncio.gather(*updates)
    assert len(sent(mock_http, "GET", f"{BASE}/ticket_states")) == 1
    assert len(sent(mock_http, "PUT", f"{BASE}/tickets/494")) == 4


async def test_2_14_a_failed_states_read_fails_its_updates_and_is_not_kept(intercom, mock_http):
    mock_http.get(f"{BASE}/ticket_states", status=400, payload={"type": "error.list", "errors": [
        {"code": "parameter_invalid", "message": "bad"}]})  # fmt: skip
    mock_http.get(f"{BASE}/ticket_states", payload=fixture("intercom_ticket_states"))
    mock_http.put(f"{BASE}/tickets/494", payload=fixture("intercom_ticket_2_14"), repeat=True)
    with pytest.raises(ValidationFailed):
        await intercom(V214).update_ticket(update("open"))
    await intercom(V214).update_ticket(update("open"))  # read again, not a remembered failure
    assert len(sent(mock_http, "GET", f"{BASE}/ticket_states")) == 2


async def test_2_14_a_refused_state_id_is_a_validation_error_and_drops_the_cache(intercom, mock_http):
    mock_http.get(f"{BASE}/ticket_states", payload=fixture("intercom_ticket_states"), repeat=True)
    refused = {"type": "error.list", "request_id": "28b71de1", "errors": [{"code": "ticket_state_id_invalid",
               "message": "Ticket state id is not valid or is not associated with the ticket type"}]}  # fmt: skip
    mock_http.put(f"{BASE}/tickets/494", status=400, payload=refused)
    mock_http.put(f"{BASE}/tickets/494", payload=fixture("intercom_ticket_2_14"))
    with pytest.raises(ValidationFailed, match="ticket_state_id_invalid"):
        await intercom(V214).update_ticket(update("pending"))
    await intercom(V214).update_ticket(update("pending"))
    assert len(sent(mock_http, "GET", f"{BASE}/ticket_states")) == 2


async def test_2_14_a_type_without_the_category_is_not_supported_naming_it(intercom, mock_http):
    only_submitted = {"type": "list", "data": [s for s in fixture("intercom_ticket_states")["data"] if s["category"] == "submitted"]}
    mock_http.get(f"{BASE}/ticket_states", payload=only_submitted)
    with pytest.raises(NotSupported, match="no resolved ticket state"):
        await intercom(V214).update_ticket(update("solved"))
    assert not sent(mock_http, "PUT", BASE)


async def test_2_14_create_with_a_status_uses_the_created_tickets_type(intercom, mock_http):
    created = {**fixture("intercom_ticket_2_14"), "ticket_state": {"type": "ticket_state", "id": "7101", "category": "submitted"}}
    mock_http.post(f"{BASE}/tickets", payload=created)
    mock_http.get(f"{BASE}/ticket_states", payload=fixture("intercom_ticket_states"))
    mock_http.put(f"{BASE}/tickets/494", payload=fixture("intercom_ticket_2_14"))
    ticket = TicketCreateRequest(crm_type="intercom", subject="s", description="d", customer_id=CONTACT_ID, status="pending")
    result = await intercom(V214).create_ticket(ticket, idempotency_key="k")
    [put] = sent(mock_http, "PUT", f"{BASE}/tickets/494")
    assert body_of(put) == {"ticket_state_id": "7103", "open": True} and result.status is TicketStatus.pending
    assert not exactly(mock_http, "GET", f"{BASE}/tickets/494")
