"""The real service against the Freshdesk emulator over loopback: every operation, error code and fault."""

from __future__ import annotations

import pytest

from tests.conftest import Service, error_of

FD = {"domain": "yourcompany.freshdesk.com", "api_key": "your_api_key"}




def vendor(svc: Service, method: str, path_part: str = "") -> list[dict]:
    """What the Freshdesk emulator received for a method (and path substring)."""
    return [q for q in svc.vendor_requests("freshdesk") if q["method"] == method and path_part in q["path"]]


def emulator_get(svc: Service, path: str, key: str = "sandbox-key", **params):
    """Call the emulator directly, as a Freshdesk client would."""
    return svc.client.get(f"{svc.emulators['freshdesk']}{path}", params=params, auth=(key, "X"))


# --- customers ------------------------------------------------------------------------------------


def test_customer_with_company_name_and_tier(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "freshdesk", "customer_id": "1001", "config": FD})
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["id"], c["name"], c["email"], c["phone"]) == ("1001", "Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567")
    assert (c["tier"], c["metadata"]["company_name"], c["metadata"]["company_id"]) == ("Enterprise", "Al-Mansoori Trading", 2001)
    assert [q["path"] for q in vendor(svc, "GET")] == ["/api/v2/contacts/1001", "/api/v2/companies/2001"]
    assert {q["authorization_scheme"] for q in vendor(svc, "GET")} == {"Basic"}


def test_customer_without_company_is_one_call_and_phone_falls_back_to_mobile(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "freshdesk", "customer_id": "1002"})
    assert r.status_code == 200
    assert r.json()["phone"] == "+14155552671" and "company_name" not in r.json()["metadata"]
    assert len(vendor(svc, "GET")) == 1


@pytest.mark.parametrize("phone", ["+971501234567", "+971 50 123 4567", "011 971 50 123 4567", "+971-50-123-4567"])
def test_caller_id_lookup_finds_the_contact_in_any_spelling(svc: Service, phone: str):
    r = svc.post("/crm/customer/search", {"crm_type": "freshdesk", "phone": phone})
    assert r.status_code == 200, r.text
    customers = r.json()["customers"]
    assert [c["id"] for c in customers] == ["1001"]
    assert customers[0]["metadata"]["organization_name"] == "Al-Mansoori Trading"
    # The stored spelling is the E.164 one, tried first: one batch of filters was enough.
    assert {q["query"].get("phone") or q["query"].get("mobile") for q in vendor(svc, "GET", "/contacts")} >= {"+971501234567"}


def test_lookup_finds_a_mobile_stored_in_national_form(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "freshdesk", "phone": "+1 415 555 2671"})
    assert [c["name"] for c in r.json()["customers"]] == ["Layla Hassan"]
    assert any(q["query"].get("mobile") == "(415) 555-2671" for q in vendor(svc, "GET", "/contacts"))


def test_lookup_finds_a_phone_stored_with_spaces(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "freshdesk", "phone": "+442079460958"})
    assert [c["id"] for c in r.json()["customers"]] == ["1003"]


def test_search_by_email(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "freshdesk", "email": "AHMED@example.ae"})
    assert [c["id"] for c in r.json()["customers"]] == ["1001"]
    assert vendor(svc, "GET", "/contacts")[0]["query"]["email"] == "AHMED@example.ae"


# --- tickets --------------------------------------------------------------------------------------


def test_design_example_returns_the_seeded_ticket(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "freshdesk", "ticket_id": "54321", "config": FD})
    assert r.status_code == 200, r.text
    t = r.json()
    assert (t["subject"], t["status"], t["priority"], t["customer_id"]) == ("Product not working", "open", "high", "1001")
    assert t["description"] == "Customer reports the device stopped working after the latest update."
    assert (t["metadata"]["vendor_status"], t["metadata"]["vendor_priority"], t["metadata"]["channel"]) == (2, 3, "phone")
    assert t["created_at"] == "2025-11-18T10:30:00Z"


def test_create_then_get_then_update_with_private_note(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "freshdesk", "subject": "Callback", "description": "Call me back\nafter 5",
                                        "customer_id": "1001", "priority": "urgent", "tags": ["voice"]})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["status"], created["priority"], created["customer_id"]) == ("open", "urgent", "1001")
    post = vendor(svc, "POST", "/tickets")[0]["body"]
    assert (post["source"], post["status"], post["priority"], post["requester_id"]) == (3, 2, 4, 1001)

    r = svc.post("/crm/ticket", {"crm_type": "freshdesk", "ticket_id": created["id"]})
    assert r.json()["description"] == "Call me back\nafter 5" and r.json()["metadata"]["tags"] == ["voice"]

    r = svc.post("/crm/ticket/update", {"crm_type": "freshdesk", "ticket_id": created["id"], "status": "pending",
                                        "priority": "medium", "subject": "Callback (verified)",
                                        "comment": {"body": "verified caller", "public": False}})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert (updated["status"], updated["priority"], updated["subject"]) == ("pending", "medium", "Callback (verified)")
    assert vendor(svc, "PUT")[0]["body"] == {"status": 3, "priority": 2, "subject": "Callback (verified)"}
    assert vendor(svc, "POST", "/notes")[0]["body"] == {"body": "verified caller", "private": True}
    notes = emulator_get(svc, f"/api/v2/tickets/{created['id']}/conversations").json()
    assert [(n["body_text"], n["private"], n["id"]) for n in notes] == [("verified caller", True, updated["metadata"]["note_id"])]


def test_public_comment_alone_is_a_public_note(svc: Service):
    r = svc.post("/crm/ticket/update", {"crm_type": "freshdesk", "ticket_id": "54321", "comment": {"body": "We are on it"}})
    assert r.status_code == 200 and r.json()["status"] == "open"
    assert vendor(svc, "POST", "/notes")[0]["body"] == {"body": "We are on it", "private": False}
    assert vendor(svc, "PUT") == []


def test_solved_and_closed_round_trip(svc: Service):
    for status in ("solved", "closed"):
        r = svc.post("/crm/ticket/update", {"crm_type": "freshdesk", "ticket_id": "54321", "status": status})
        assert r.json()["status"] == status
    assert [q["body"]["status"] for q in vendor(svc, "PUT")] == [4, 5]


def test_create_by_phone_of_a_known_caller_reuses_the_contact(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "freshdesk", "subject": "s", "description": "d",
                                        "customer_phone": "+971 50 123 4567"})
    assert r.status_code == 201 and r.json()["customer_id"] == "1001"


def test_create_by_unknown_phone_creates_the_contact_with_a_name(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "freshdesk", "subject": "s", "description": "d",
                                        "customer_phone": "+971 50 765 4321", "customer_name": "New Caller"})
    assert r.status_code == 201, r.text
    new_id = r.json()["customer_id"]
    assert new_id not in (None, "1001")
    c = svc.post("/crm/customer", {"crm_type": "freshdesk", "customer_id": new_id}).json()
    assert (c["name"], c["phone"]) == ("New Caller", "+971507654321")


def test_create_by_new_email(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "freshdesk", "subject": "s", "description": "d",
                                        "customer_email": "new@example.com", "customer_name": "New Person", "status": "new"})
    assert r.status_code == 201 and r.json()["status"] == "open"
    assert vendor(svc, "POST", "/tickets")[0]["body"]["email"] == "new@example.com"


# --- error contract -------------------------------------------------------------------------------


def test_access_denied_is_crm_auth_failed(svc: Service):
    svc.fault("freshdesk", "error", status=403)
    r = svc.post("/crm/ticket", {"crm_type": "freshdesk", "ticket_id": "54321"})
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "crm_auth_failed" and err["upstream_status"] == 403


def test_vendor_validation_error_is_422_with_freshdesk_errors(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "freshdesk", "subject": "s", "description": "d", "customer_id": "999999"})
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error" and err["upstream_status"] == 400
    assert err["details"]["requester_id"] == [
        {"message": "There is no contact matching the given requester_id", "code": "invalid_value"}
    ]
    assert err["details"]["created"] is False


def test_vendor_validation_error_on_update_keeps_freshdesk_field_errors(svc: Service):
    # An admin made "type" mandatory when resolving: Freshdesk then refuses the status change.
    svc.control("freshdesk", "require_for_closure", {"field": "type"})
    r = svc.post("/crm/ticket/update", {"crm_type": "freshdesk", "ticket_id": "54321", "status": "solved"})
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error" and err["upstream_status"] == 400
    assert err["details"] == {"type": [{"message": "It should be a/an String", "code": "missing_field"}]}
    assert svc.post("/crm/ticket", {"crm_type": "freshdesk", "ticket_id": "54321"}).json()["status"] == "open"


def test_create_without_requester_is_422_before_any_vendor_call(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "freshdesk", "subject": "s", "description": "d"})
    assert r.status_code == 422 and error_of(r)["code"] == "validation_error"
    assert svc.vendor_requests("freshdesk") == []


def test_note_is_not_retried_after_a_dropped_connection(svc: Service):
    svc.fault("freshdesk", "reset", method="POST", path="/notes")
    r = svc.post("/crm/ticket/update", {"crm_type": "freshdesk", "ticket_id": "54321", "comment": {"body": "x"}})
    assert r.status_code == 502 and error_of(r)["code"] == "crm_error"
    assert len(vendor(svc, "POST", "/notes")) == 1


def test_reads_are_retried_after_a_5xx(svc: Service):
    svc.fault("freshdesk", "error", status=502)
    r = svc.post("/crm/customer", {"crm_type": "freshdesk", "customer_id": "1001"})
    assert r.status_code == 200


# --- the emulator answers as Freshdesk does -------------------------------------------------------


def test_emulator_401_body_and_rate_limit_headers(svc: Service):
    r = emulator_get(svc, "/api/v2/tickets/54321", key="invalid")
    assert r.status_code == 401
    assert r.json() == {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}
    ok = emulator_get(svc, "/api/v2/tickets/54321")
    assert ok.status_code == 200 and "results" not in ok.json() and ok.json()["id"] == 54321  # bare object
    assert ok.headers["X-RateLimit-Total"] and ok.headers["X-RateLimit-Remaining"]
    assert ok.headers["X-RateLimit-Used-CurrentRequest"] == "1"


def test_emulator_404_is_empty_and_429_has_retry_after(svc: Service):
    r = emulator_get(svc, "/api/v2/contacts/424242")
    assert r.status_code == 404 and r.content == b""
    svc.fault("freshdesk", "rate_limit", retry_after=7)
    r = emulator_get(svc, "/api/v2/contacts/1001")
    assert r.status_code == 429 and r.headers["Retry-After"] == "7" and r.headers["X-RateLimit-Remaining"] == "0"


def test_emulator_contact_filters_are_exact_and_paged_with_a_link_header(svc: Service):
    assert emulator_get(svc, "/api/v2/contacts", phone="+971501234567").json()[0]["id"] == 1001
    assert emulator_get(svc, "/api/v2/contacts", phone="+971 50 123 4567").json() == []
    first = emulator_get(svc, "/api/v2/contacts", per_page="2")
    assert [c["id"] for c in first.json()] == [1001, 1002]
    assert 'rel="next"' in first.headers["link"] and "page=2" in first.headers["link"]
    last = emulator_get(svc, "/api/v2/contacts", per_page="2", page="2")
    assert [c["id"] for c in last.json()] == [1003] and "link" not in last.headers
    bad = emulator_get(svc, "/api/v2/contacts", per_page="500", nickname="x")
    assert bad.status_code == 400 and {e["field"] for e in bad.json()["errors"]} == {"nickname", "per_page"}


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"subject": "s", "description": "d", "status": 9, "priority": 1, "email": "a@b.co"}, "status", "invalid_value"),
        ({"subject": "s", "description": "d", "status": 2, "priority": 7, "email": "a@b.co"}, "priority", "invalid_value"),
        ({"subject": "s", "description": "d", "status": 2, "priority": 1}, "requester_id", "missing_field"),
        ({"subject": "s", "description": "d", "status": 2, "priority": 1, "phone": "+971500000000"}, "name", "missing_field"),
        ({"description": "d", "status": 2, "priority": 1, "email": "a@b.co"}, "subject", "missing_field"),
        ({"subject": "s", "description": "d", "status": 2, "priority": 1, "email": "a@b.co", "junk": 1}, "junk", "invalid_field"),
    ],
)
def test_emulator_validation_errors(svc: Service, body: dict, field: str, code: str):
    r = svc.client.post(f"{svc.emulators['freshdesk']}/api/v2/tickets", json=body, auth=("sandbox-key", "X"))
    assert r.status_code == 400
    assert r.json()["description"] == "Validation failed"
    assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in r.json()["errors"]]


def test_emulator_wants_json_content_type(svc: Service):
    r = svc.client.post(f"{svc.emulators['freshdesk']}/api/v2/tickets", data={"subject": "s"}, auth=("sandbox-key", "X"))
    assert r.status_code == 415 and r.json()["code"] == "invalid_content_type"
