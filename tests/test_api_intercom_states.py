"""The real service against the Intercom emulator on API 2.11 and 2.14: ticket states as each version takes them.

2.11 sends UpdateTicket's `state` word (never submitted: a move to `new` is refused before any call); 2.14 sends
`ticket_state_id` from `GET /ticket_states`, read once per tenant. The emulator is also driven directly, to show it
refuses what Intercom refuses.
"""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import Service, error_of

AHMED = "6657a1c2b1e5f2a3c4d50001"
# The emulator's seeded states (sandbox/intercom_states.py) for ticket type 1, by unified status.
STATE_IDS = {"new": "1", "open": "2", "pending": "3", "solved": "4", "closed": "4"}
WORDS = {"open": "in_progress", "pending": "waiting_on_customer", "solved": "resolved", "closed": "resolved"}
EVERY_STATUS = ("open", "pending", "solved", "closed", "open")  # closed, then reopened


TENANTS = itertools.count(1)


@pytest.fixture
def intercom():
    """Request bodies for the Intercom connector on one API version, as a workspace of this test's own (its own
    token), so the service's per-tenant states cache starts empty whatever ran before."""
    token = f"sandbox-token-states-{next(TENANTS)}"

    def body(version: str, **more) -> dict:
        return {"crm_type": "intercom", "config": {"api_version": version, "access_token": token}, **more}

    return body


def puts(svc: Service) -> list[dict]:
    return [q["body"] for q in svc.vendor_requests("intercom") if q["method"] == "PUT"]


def state_reads(svc: Service) -> int:
    return len([q for q in svc.vendor_requests("intercom") if q["path"] == "/ticket_states"])


@pytest.mark.parametrize("version", ["2.11", "2.14"])
def test_create_with_a_status_then_update_through_every_status(svc: Service, intercom, version: str):
    r = svc.post("/crm/ticket/create", intercom(version, subject="Callback", description="Call back",
                                                customer_id=AHMED, status="pending"))  # fmt: skip
    assert r.status_code == 201, r.text
    ticket = r.json()
    assert ticket["status"] == "pending"
    for status in EVERY_STATUS:
        r = svc.post("/crm/ticket/update", intercom(version, ticket_id=ticket["id"], status=status))
        assert r.status_code == 200 and r.json()["status"] == status, r.text
        assert svc.post("/crm/ticket", intercom(version, ticket_id=ticket["id"])).json()["status"] == status
    sent = puts(svc)
    assert [b.get("open") for b in sent] == [True, True, True, True, False, True]
    if version == "2.11":
        assert [b["state"] for b in sent] == [WORDS[s] for s in ("pending", *EVERY_STATUS)]
        assert not any("ticket_state_id" in b for b in sent) and state_reads(svc) == 0
    else:
        assert [b["ticket_state_id"] for b in sent] == [STATE_IDS[s] for s in ("pending", *EVERY_STATUS)]
        assert not any("state" in b for b in sent) and state_reads(svc) == 1  # cached for the tenant


@pytest.mark.parametrize("version", ["2.11", "2.14"])
def test_a_create_as_new_needs_no_update(svc: Service, intercom, version: str):
    r = svc.post("/crm/ticket/create", intercom(version, subject="New", description="d", customer_id=AHMED, status="new"))
    assert r.status_code == 201 and r.json()["status"] == "new", r.text
    assert puts(svc) == [] and state_reads(svc) == 0


def test_2_11_refuses_an_update_to_new_before_any_call(svc: Service, intercom):
    r = svc.post("/crm/ticket/update", intercom("2.11", ticket_id="201", status="new", comment={"body": "x", "public": False}))
    error = error_of(r)
    assert r.status_code == 400 and error["code"] == "not_supported" and error["crm_type"] == "intercom"
    assert "submitted" in error["message"] and "in_progress" in error["message"]
    assert svc.vendor_requests("intercom") == []
    assert svc.post("/crm/ticket", intercom("2.11", ticket_id="201")).json()["status"] == "open"  # unchanged


def test_2_14_takes_new_as_a_submitted_state_of_the_tickets_type(svc: Service, intercom):
    # Two live submitted states in the seed (1: types 1 and 2; 5: type 2 only): the ticket's type is read first.
    r = svc.post("/crm/ticket/update", intercom("2.14", ticket_id="201", status="new"))
    assert r.status_code == 200 and r.json()["status"] == "new", r.text
    assert r.json()["metadata"]["vendor_state_id"] == "1"
    assert [(q["method"], q["path"]) for q in svc.vendor_requests("intercom")] == [
        ("GET", "/ticket_states"), ("GET", "/tickets/201"), ("PUT", "/tickets/201")]


# --- the emulator, driven directly ------------------------------------------------------------------------


def emulator(svc: Service, method: str, path: str, version: str, body: dict | None = None):
    headers = {"Authorization": "Bearer sandbox-token", "Intercom-Version": version}
    return svc.client.request(method, f"{svc.emulators['intercom']}{path}", json=body, headers=headers)


def test_the_emulator_refuses_submitted_in_a_2_11_update_listing_the_allowed_states(svc: Service):
    r = emulator(svc, "PUT", "/tickets/201", "2.11", {"state": "submitted"})
    [error] = r.json()["errors"]
    assert r.status_code == 400 and error["code"] == "parameter_invalid"
    assert error["message"] == "state must be one of in_progress, waiting_on_customer, resolved"
    assert emulator(svc, "PUT", "/tickets/201", "2.11", {"ticket_state_id": "1"}).status_code == 400
    assert emulator(svc, "GET", "/tickets/201", "2.11").json()["ticket_state"] == "in_progress"


def test_the_emulator_lists_ticket_states_from_2_12_only(svc: Service):
    assert emulator(svc, "GET", "/ticket_states", "2.11").status_code == 404
    listed = emulator(svc, "GET", "/ticket_states", "2.14").json()
    assert listed["type"] == "list" and {s["category"] for s in listed["data"]} == {
        "submitted", "in_progress", "waiting_on_customer", "resolved"}
    first = listed["data"][0]
    assert set(first) == {"type", "id", "category", "internal_label", "external_label", "archived", "ticket_types"}
    assert [t["id"] for t in first["ticket_types"]["data"]] == ["1", "2"]


def test_the_emulator_takes_only_state_ids_of_the_tickets_type_from_2_12(svc: Service):
    r = emulator(svc, "PUT", "/tickets/201", "2.14", {"state": "resolved"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "parameter_invalid"
    for wrong in ("5", "6", "999"):  # type 2's, archived, unknown
        r = emulator(svc, "PUT", "/tickets/201", "2.14", {"ticket_state_id": wrong})
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "ticket_state_id_invalid", wrong
    r = emulator(svc, "PUT", "/tickets/201", "2.14", {"ticket_state_id": "3"})
    assert r.status_code == 200 and r.json()["ticket_state"]["category"] == "waiting_on_customer"
    assert emulator(svc, "GET", "/tickets/201", "2.11").json()["ticket_state"] == "waiting_on_customer"
