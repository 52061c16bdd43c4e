"""The real service against the Intercom emulator over loopback: the CRM operations and the handoff."""

from __future__ import annotations

from tests.conftest import Service, error_of

AHMED = "6657a1c2b1e5f2a3c4d50001"


def handoff(call_id: str, **config) -> dict:
    """A handoff of the seeded caller to Intercom."""
    return {
        "chat_type": "intercom",
        "context": {
            "call_id": call_id, "customer_name": "Ahmed Al-Mansoori", "customer_phone": "+971501234567",
            "transcript": [{"role": "user", "text": "My device broke"}, {"role": "bot", "text": "Let me get someone"}],
            "reason": "device_fault", "urgency": "high",
        },
        **({"config": config} if config else {}),
    }


def test_the_seeded_caller_and_tickets_read_as_the_other_vendors(svc: Service):
    customer = svc.post("/crm/customer", {"crm_type": "intercom", "customer_id": AHMED}).json()
    assert (customer["name"], customer["email"], customer["phone"], customer["tier"]) == (
        "Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567", "Enterprise")
    assert customer["metadata"]["organization_name"] == "Al-Mansoori Trading"
    ticket = svc.post("/crm/ticket", {"crm_type": "intercom", "ticket_id": "201"}).json()
    assert (ticket["subject"], ticket["status"], ticket["priority"]) == ("Product not working", "open", "high")
    solved = svc.post("/crm/ticket", {"crm_type": "intercom", "ticket_id": "202"}).json()
    assert solved["status"] == "closed"
    found = svc.post("/crm/customer/search", {"crm_type": "intercom", "email": "ahmed@example.ae"}).json()
    assert [c["id"] for c in found["customers"]] == [AHMED]


def test_create_by_phone_then_update_with_a_note(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "intercom", "subject": "Callback", "description": "Call back",
                                        "customer_phone": "+971 50 123 4567", "priority": "urgent", "status": "pending"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["customer_id"], created["priority"], created["status"]) == (AHMED, "urgent", "pending")
    r = svc.post("/crm/ticket/update", {"crm_type": "intercom", "ticket_id": created["id"], "status": "solved",
                                        "comment": {"body": "Resolved on the call", "public": False}})
    assert r.status_code == 200 and r.json()["status"] == "solved", r.text
    [reply] = [q for q in svc.vendor_requests("intercom") if q["path"].endswith("/reply")]
    assert reply["body"]["message_type"] == "note" and reply["body"]["admin_id"] == "991267001"


def test_handoff_opens_a_conversation_assigned_to_a_teammate_who_is_there_and_reads_it_back(svc: Service):
    r = svc.post("/handoff/create", handoff("ic-1"))
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["status"], answer["agent_id"], answer["agent_name"]) == ("assigned", "991267001", "Sara Ahmed")
    paths = [(q["method"], q["path"]) for q in svc.vendor_requests("intercom")]
    conversation = answer["handoff_id"]
    assert ("POST", f"/conversations/{conversation}/reply") in paths
    [assignment] = [q for q in svc.vendor_requests("intercom") if q["path"] == f"/conversations/{conversation}/parts"]
    assert assignment["body"]["message_type"] == "assignment" and assignment["body"]["assignee_id"] == "991267001"
    assert not [p for _, p in paths if p.endswith("/run_assignment_rules")]  # deprecated from 2.12, removed 2026-12-31
    state = svc.post("/handoff/status", {"chat_type": "intercom", "handoff_id": conversation}).json()
    assert state["status"] == "assigned" and state["agent_name"] == "Sara Ahmed"


def test_handoff_to_a_team_is_queued_until_someone_takes_it(svc: Service):
    r = svc.post("/handoff/create", handoff("ic-2", team_id="5001", access_token="sandbox-token", admin_id="991267001"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "queued"


def test_everyone_away_files_the_fallback_ticket_and_opens_no_conversation(svc: Service):
    svc.control("intercom", "away", {"away": True})
    r = svc.post("/handoff/create", handoff("ic-3"))
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["status"] == "fallback_ticket" and answer["fallback"]["reason"] == "no_teammate_available"
    assert not [q for q in svc.vendor_requests("intercom") if q["path"] == "/conversations"]


def test_invalid_token_on_the_handoff_is_a_contract_error_or_fallback(svc: Service):
    r = svc.post("/handoff/status", {"chat_type": "intercom", "handoff_id": "999", "config": {"access_token": "invalid"}})
    assert r.status_code == 502 and error_of(r)["code"] == "crm_auth_failed" and "invalid" not in error_of(r)["message"].split(":")[0]
