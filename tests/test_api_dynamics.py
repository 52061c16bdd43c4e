"""The real service against the Dynamics 365 emulator over loopback: Dataverse's calls, Entra ID tokens, resolves."""

from __future__ import annotations

from tests.conftest import Service, error_of

AHMED = "6f1c1c0e-0000-4000-8000-000000001001"
OPEN_CASE = "a1b2c3d4-0000-4000-8000-000000054321"
SOLVED_CASE = "a1b2c3d4-0000-4000-8000-000000054320"


def vendor(svc: Service, method: str, path_part: str = "") -> list[dict]:
    """What the Dynamics emulator received for a method (and path substring)."""
    return [q for q in svc.vendor_requests("dynamics") if q["method"] == method and path_part in q["path"]]


def test_customer_with_its_account_name_and_tier_in_one_call(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "dynamics", "customer_id": AHMED})
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["id"], c["name"], c["email"], c["phone"]) == (AHMED, "Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567")
    assert (c["tier"], c["metadata"]["organization_name"]) == ("Enterprise", "Al-Mansoori Trading")
    [read] = vendor(svc, "GET", "/contacts(")
    assert read["query"]["$expand"] == "parentcustomerid_account($select=name,new_tier)"


def test_caller_id_search_in_any_spelling_is_one_filter(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "dynamics", "phone": "+971-50-123-4567"})
    assert [c["id"] for c in r.json()["customers"]] == [AHMED]
    [search] = vendor(svc, "GET", "/contacts")
    assert "telephone1 eq '+971501234567'" in search["query"]["$filter"]


def test_a_quote_in_an_email_cannot_widen_the_filter(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "dynamics", "email": "x'or'1'eq'1@example.com"})
    assert r.status_code == 200 and r.json() == {"customers": []}


def test_tickets_map_state_reason_and_priority(svc: Service):
    open_case = svc.post("/crm/ticket", {"crm_type": "dynamics", "ticket_id": OPEN_CASE}).json()
    solved = svc.post("/crm/ticket", {"crm_type": "dynamics", "ticket_id": SOLVED_CASE}).json()
    assert (open_case["subject"], open_case["status"], open_case["priority"]) == ("Product not working", "open", "high")
    assert open_case["customer_id"] == AHMED and open_case["metadata"]["ticket_number"] == "CAS-01001-K7Q2M9"
    assert (solved["status"], solved["priority"]) == ("solved", "medium")


def test_create_by_phone_then_note_and_resolve(svc: Service):
    body = {"crm_type": "dynamics", "subject": "Callback", "description": "Call me", "customer_phone": "+971501234567",
            "priority": "low"}
    created = svc.post("/crm/ticket/create", body)
    assert created.status_code == 201, created.text
    case = created.json()
    assert (case["customer_id"], case["priority"], case["status"], case["description"]) == (AHMED, "low", "open", "Call me")
    update = {"crm_type": "dynamics", "ticket_id": case["id"], "status": "solved",
              "comment": {"body": "Sorted on the call", "public": True}}
    r = svc.post("/crm/ticket/update", update)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "solved" and r.json()["metadata"]["vendor_state"] == 1
    assert vendor(svc, "POST", "/CloseIncident") and not vendor(svc, "PATCH")
    [note] = vendor(svc, "POST", "/annotations")
    assert note["body"]["objectid_incident@odata.bind"] == f"/incidents({case['id']})"


def test_a_resolved_case_can_be_reopened(svc: Service):
    r = svc.post("/crm/ticket/update", {"crm_type": "dynamics", "ticket_id": SOLVED_CASE, "status": "pending"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["metadata"]["vendor_state"] == 0


def test_a_note_on_a_resolved_case_is_the_vendors_refusal(svc: Service):
    r = svc.post("/crm/ticket/update", {"crm_type": "dynamics", "ticket_id": SOLVED_CASE, "comment": {"body": "x"}})
    assert r.status_code == 422 and error_of(r)["code"] == "validation_error"
    assert "already been resolved" in error_of(r)["message"]


def test_tags_alone_are_refused_before_any_call(svc: Service):
    r = svc.post("/crm/ticket/update", {"crm_type": "dynamics", "ticket_id": OPEN_CASE, "tags": ["x"]})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_request"
    assert not vendor(svc, "PATCH")


def test_expired_tokens_are_renewed_once(svc: Service):
    assert svc.post("/crm/ticket", {"crm_type": "dynamics", "ticket_id": OPEN_CASE}).status_code == 200
    svc.client.post(f"{svc.sandbox_root}/_sandbox/dynamics/expire_tokens", json={})
    before = len(vendor(svc, "POST", "/oauth2/v2.0/token"))
    r = svc.post("/crm/ticket", {"crm_type": "dynamics", "ticket_id": OPEN_CASE})
    assert r.status_code == 200, r.text
    assert len(vendor(svc, "POST", "/oauth2/v2.0/token")) == before + 1
    calls = vendor(svc, "GET", f"/incidents({OPEN_CASE})")
    assert len(calls) == 3  # warm, refused (401), then with the new token
