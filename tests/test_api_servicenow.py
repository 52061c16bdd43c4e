"""The real service against the ServiceNow emulator over loopback: every operation, both auth kinds, the query guard."""

from __future__ import annotations

import pytest

from sandbox import SANDBOX_CREDENTIALS
from tests.conftest import Service, error_of

AHMED = "a8f98bb0eb32010045e1a5115206fe3a"
LAYLA = "62826bf03710200044e0bfc8bcbe5df1"
INCIDENT = "9d385017c611228701d22104cc95c371"
SOLVED = "e8caedcbc0a80164017df472f39eaed1"


def vendor(svc: Service, method: str, path_part: str = "") -> list[dict]:
    """What the ServiceNow emulator received for a method (and path substring)."""
    return [q for q in svc.vendor_requests("servicenow") if q["method"] == method and path_part in q["path"]]


def oauth(svc: Service, client: str, **extra: str) -> dict:
    """A config with an OAuth client of its own (its own token in the shared cache)."""
    return {"base_url": svc.emulators["servicenow"], "instance": "sandbox", "client_id": client,
            "client_secret": "s3cret", **extra}  # fmt: skip


def test_customer_with_company_and_tier_in_one_call(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "servicenow", "customer_id": AHMED})
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["name"], c["email"], c["phone"], c["tier"]) == (
        "Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567", "Enterprise")
    assert c["metadata"]["organization_name"] == "Al-Mansoori Trading"
    [call] = vendor(svc, "GET")
    assert call["path"] == f"/api/now/table/sys_user/{AHMED}" and call["authorization_scheme"] == "Basic"
    assert "company.name" in call["query"]["sysparm_fields"] and call["query"]["sysparm_display_value"] == "false"


def test_customer_contact_table_is_configurable(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "servicenow", "customer_id": AHMED,
                                   "config": {"customer_table": "customer_contact", "tier_field": "account.u_tier"}})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["organization_name"] == "Al-Mansoori Trading" and r.json()["tier"] == "Enterprise"
    assert vendor(svc, "GET")[0]["path"] == f"/api/now/table/customer_contact/{AHMED}"
    # Layla is a plain sys_user, not a CSM contact.
    r = svc.post("/crm/customer", {"crm_type": "servicenow", "customer_id": LAYLA,
                                   "config": {"customer_table": "customer_contact"}})
    assert (r.status_code, error_of(r)["code"]) == (404, "not_found")


@pytest.mark.parametrize("phone", ["+971501234567", "+971 50 123 4567", "(+971) 50-123-4567"])
def test_caller_id_lookup_is_one_query_over_phone_and_mobile(svc: Service, phone: str):
    r = svc.post("/crm/customer/search", {"crm_type": "servicenow", "phone": phone})
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["customers"]] == [AHMED]
    [call] = vendor(svc, "GET")
    assert "phone=+971501234567^ORmobile_phone=+971501234567" in call["query"]["sysparm_query"]


def test_lookup_finds_a_mobile_in_national_form_and_by_email(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "servicenow", "phone": "+1 415 555 2671"})
    assert [c["name"] for c in r.json()["customers"]] == ["Layla Hassan"]
    r = svc.post("/crm/customer/search", {"crm_type": "servicenow", "email": "AHMED@example.ae"})
    assert [c["id"] for c in r.json()["customers"]] == [AHMED]


@pytest.mark.parametrize("email", ["x^ORemail!=nobody@example.com", "a^NQsys_id!=0@example.com", "a=b^^ORx@example.com"])
def test_a_search_value_cannot_change_the_query(svc: Service, email: str):
    r = svc.post("/crm/customer/search", {"crm_type": "servicenow", "email": email})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert r.json()["customers"] == []
    sent = [q["query"]["sysparm_query"] for q in vendor(svc, "GET")]
    assert all(q.startswith("email=") and "^OR" not in q.replace("^^", "") for q in sent)


def test_ticket_reads_priority_and_state(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "servicenow", "ticket_id": INCIDENT})
    assert r.status_code == 200, r.text
    t = r.json()
    assert (t["subject"], t["status"], t["priority"], t["customer_id"]) == ("Product not working", "open", "high", AHMED)
    assert t["metadata"]["number"] == "INC0010001" and t["created_at"] == "2025-11-18T10:30:00Z"
    solved = svc.post("/crm/ticket", {"crm_type": "servicenow", "ticket_id": SOLVED}).json()
    assert (solved["status"], solved["priority"]) == ("solved", "low")


def test_create_writes_impact_and_urgency_and_the_marker(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "servicenow", "subject": "Callback", "description": "d",
                                        "customer_id": AHMED, "priority": "urgent"}, **{"Idempotency-Key": "sn-1"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["priority"], t["status"], t["customer_id"]) == ("urgent", "new", AHMED)
    [create] = vendor(svc, "POST", "/api/now/table/incident")
    body = create["body"]
    assert (body["impact"], body["urgency"], body["contact_type"]) == ("1", "1", "phone") and "priority" not in body
    assert body["correlation_id"].startswith("idem")


def test_create_for_an_unknown_caller_keeps_who_called(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "servicenow", "subject": "s", "description": "d",
                                        "customer_phone": "+971 55 000 0000", "customer_name": "New Caller"})
    assert r.status_code == 201, r.text
    assert r.json()["customer_id"] is None and "New Caller, +971 55 000 0000" in r.json()["description"]


def test_create_by_phone_finds_the_caller(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "servicenow", "subject": "s", "description": "d",
                                        "customer_phone": "+971501234567"})
    assert r.json()["customer_id"] == AHMED


def test_update_is_one_patch_with_a_work_note_or_comment(svc: Service):
    r = svc.post("/crm/ticket/update", {"crm_type": "servicenow", "ticket_id": INCIDENT, "status": "pending",
                                        "priority": "low", "comment": {"body": "internal", "public": False}})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["priority"]) == ("pending", "low")
    [patch] = vendor(svc, "PATCH")
    assert patch["body"] == {"state": "3", "impact": "2", "urgency": "3", "work_notes": "internal"}
    svc.post("/crm/ticket/update", {"crm_type": "servicenow", "ticket_id": INCIDENT, "comment": {"body": "hi"}})
    assert vendor(svc, "PATCH")[-1]["body"] == {"comments": "hi"}
    journal = svc.app.state.sandbox.emulators["servicenow"].journal
    assert [(j["element"], j["value"]) for j in journal] == [("work_notes", "internal"), ("comments", "hi")]


def test_oauth_password_grant_is_cached_and_renewed_after_expiry(svc: Service):
    config = oauth(svc, "voice-app", username="integration", password="pw")
    for _ in range(2):
        r = svc.post("/crm/ticket", {"crm_type": "servicenow", "ticket_id": INCIDENT, "config": config})
        assert r.status_code == 200, r.text
    [grant] = vendor(svc, "POST", "/oauth_token.do")
    assert "grant_type=password" in grant["body"] and "client_id=voice-app" in grant["body"]
    assert {q["authorization_scheme"] for q in vendor(svc, "GET")} == {"Bearer"}
    svc.control("servicenow", "expire_tokens")
    r = svc.post("/crm/ticket", {"crm_type": "servicenow", "ticket_id": INCIDENT, "config": config})
    assert r.status_code == 200, r.text
    assert len(vendor(svc, "POST", "/oauth_token.do")) == 2


def test_oauth_client_credentials_and_a_refused_client(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "servicenow", "ticket_id": INCIDENT, "config": oauth(svc, "cc-app")})
    assert r.status_code == 200, r.text
    assert "grant_type=client_credentials" in vendor(svc, "POST", "/oauth_token.do")[0]["body"]
    bad = oauth(svc, "bad-app", client_secret="invalid")
    r = svc.post("/crm/ticket", {"crm_type": "servicenow", "ticket_id": INCIDENT, "config": bad})
    err = error_of(r)
    assert (r.status_code, err["code"]) == (502, "crm_auth_failed") and "invalid" not in err["message"]


@pytest.mark.parametrize("instance", ["169.254.169.254", "evil.com#", "acme.service-now.com.evil.io", "a/../x", ""])
def test_instance_is_one_dns_label(svc: Service, instance: str):
    r = svc.post("/crm/ticket", {"crm_type": "servicenow", "ticket_id": INCIDENT,
                                 "config": {"instance": instance, "username": "u", "password": "p"}})
    assert (r.status_code, error_of(r)["code"]) == (400, "invalid_config")


def test_the_sandbox_credentials_are_basic():
    assert SANDBOX_CREDENTIALS["servicenow"]["username"] and "client_id" not in SANDBOX_CREDENTIALS["servicenow"]
