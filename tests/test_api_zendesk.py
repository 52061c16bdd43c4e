"""The real service against the Zendesk emulator over loopback: every endpoint, error code and fault."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Service, error_of

ZD = {"subdomain": "your-company", "email": "admin@yourcompany.com", "api_token": "your_token"}




def test_health(svc: Service):
    r = svc.client.get(f"{svc.url}/health")
    assert r.status_code == 200 and r.json()["status"] == "healthy"
    assert r.headers["X-Request-ID"]


def test_readme_example_returns_the_seeded_ticket(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "zendesk", "ticket_id": "12345", "config": ZD})
    assert r.status_code == 200
    ticket = r.json()
    assert ticket["subject"] == "Product not working"
    assert (ticket["status"], ticket["priority"], ticket["customer_id"]) == ("open", "high", "1001")
    assert ticket["metadata"]["tags"] == ["technical", "urgent"]
    assert ticket["created_at"].endswith("Z")


def test_customer_with_organization_and_tier(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "zendesk", "customer_id": "1001"})
    assert r.status_code == 200
    c = r.json()
    assert (c["name"], c["email"], c["phone"], c["tier"]) == ("Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567", "Enterprise")
    assert c["metadata"]["organization_name"] == "Al-Mansoori Trading"


@pytest.mark.parametrize("phone", ["+971501234567", "+971 50 123 4567", "011 971 50 123 4567", "+971-50-123-4567"])
def test_caller_id_lookup_finds_the_customer_in_any_spelling(svc: Service, phone: str):
    r = svc.post("/crm/customer/search", {"crm_type": "zendesk", "phone": phone})
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["customers"]] == ["1001"]


def test_search_by_email(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "zendesk", "email": "ahmed@example.ae"})
    assert [c["id"] for c in r.json()["customers"]] == ["1001"]


def test_create_then_get_then_update_with_internal_note(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "zendesk", "subject": "Callback", "description": "Call me back",
                                        "customer_id": "1001", "priority": "urgent", "tags": ["voice"]})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["status"], created["priority"], created["customer_id"]) == ("new", "urgent", "1001")
    r = svc.post("/crm/ticket/update", {"crm_type": "zendesk", "ticket_id": created["id"], "status": "pending",
                                        "priority": "medium", "comment": {"body": "verified caller", "public": False}})
    assert r.status_code == 200
    updated = r.json()
    assert (updated["status"], updated["priority"]) == ("pending", "medium")
    put = [q for q in svc.vendor_requests("zendesk") if q["method"] == "PUT"][0]
    assert put["body"]["ticket"]["comment"] == {"body": "verified caller", "public": False}
    assert put["body"]["ticket"]["priority"] == "normal"


def test_create_with_new_requester_by_name_and_email(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "zendesk", "subject": "New caller", "description": "d",
                                        "customer_email": "new@example.com", "customer_name": "New Person"})
    assert r.status_code == 201
    assert r.json()["customer_id"] not in (None, "1001")


def test_idempotency_key_with_another_body_is_409(svc: Service):
    body = {"crm_type": "zendesk", "subject": "Once", "description": "only once"}
    svc.post("/crm/ticket/create", body, **{"Idempotency-Key": "k-409"})
    r = svc.post("/crm/ticket/create", {**body, "subject": "Other"}, **{"Idempotency-Key": "k-409"})
    assert r.status_code == 409 and error_of(r)["code"] == "idempotency_conflict"


def test_create_survives_a_dropped_connection_without_a_duplicate(svc: Service):
    svc.fault("zendesk", "error", status=503, method="POST")
    r = svc.post("/crm/ticket/create", {"crm_type": "zendesk", "subject": "Retry", "description": "d"})
    assert r.status_code == 201
    posts = [q for q in svc.vendor_requests("zendesk") if q["method"] == "POST"]
    assert len(posts) == 2 and posts[0]["idempotency_key"] == posts[1]["idempotency_key"]


# --- error contract ------------------------------------------------------------------------------


def test_unknown_crm_lists_supported(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "pipedrive", "ticket_id": "1"})
    err = error_of(r)
    assert r.status_code == 400 and err["code"] == "unsupported_crm" and "zendesk" in err["message"]


def test_vendor_validation_error_is_422_with_details(svc: Service):
    svc.post("/crm/ticket/update", {"crm_type": "zendesk", "ticket_id": "12345", "status": "closed"})
    r = svc.post("/crm/ticket/update", {"crm_type": "zendesk", "ticket_id": "12345", "status": "open"})
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error" and "status" in err["details"]


def test_body_validation_error_is_422(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "zendesk", "subject": "", "description": "d", "priority": "asap"})
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error"


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'"text"'])
def test_malformed_body_is_400(svc: Service, raw: bytes):
    r = svc.client.post(f"{svc.url}/crm/ticket", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422) and error_of(r)["code"] in ("invalid_request", "validation_error")


def test_bad_phone_is_400(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "zendesk", "phone": "not-a-number"})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_request"


def test_caller_request_id_is_echoed(svc: Service):
    r = svc.client.post(f"{svc.url}/crm/ticket", json={"crm_type": "zendesk", "ticket_id": "404404"},
                        headers={"X-Request-ID": "call-abc-123"})
    assert r.headers["X-Request-ID"] == "call-abc-123" and error_of(r)["request_id"] == "call-abc-123"


def test_unknown_route_is_contract_404(svc: Service):
    r = svc.client.get(f"{svc.url}/nope")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


# --- faults ---------------------------------------------------------------------------------------


def test_create_that_times_out_says_the_outcome_is_unknown(svc: Service):
    svc.fault("zendesk", "latency", seconds=5, count=-1, method="POST")
    r = svc.post("/crm/ticket/create", {"crm_type": "zendesk", "subject": "s", "description": "d"})
    err = error_of(r)
    assert r.status_code == 504 and err["details"]["created"] == "unknown" and "Idempotency-Key" in err["message"]


# --- documentation and request size -----------------------------------------------------------------


def test_openapi_docs_have_an_example_for_every_endpoint(svc: Service):
    spec = svc.client.get(f"{svc.url}/openapi.json").json()
    for path in ("/crm/customer", "/crm/customer/search", "/crm/ticket", "/crm/ticket/create", "/crm/ticket/update"):
        ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = spec["components"]["schemas"][ref.split("/")[-1]]
        assert "example" in schema, path
    assert svc.client.get(f"{svc.url}/docs").status_code == 200


def test_oversized_body_is_413_before_it_is_read(svc: Service):
    big = {"crm_type": "zendesk", "subject": "s", "description": "x" * (3 * 1024 * 1024)}
    r = svc.post("/crm/ticket/create", big)
    assert r.status_code == 413 and error_of(r)["code"] == "invalid_request"


def test_oversized_chunked_body_is_refused(svc: Service):
    def chunks():
        yield b'{"crm_type": "zendesk", "subject": "s", "description": "'
        for _ in range(40):
            yield b"x" * 100_000
        yield b'"}'

    r = svc.client.post(f"{svc.url}/crm/ticket/create", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and error_of(r)["code"] == "invalid_request"
    assert [q for q in svc.vendor_requests("zendesk") if q["method"] == "POST"] == []


# --- the emulator speaks Zendesk's wire format (what an SDK such as zenpy relies on) -------------------------


def test_emulator_ticket_audits_as_zendesk_writes_them(svc: Service):
    base = f"{svc.emulators['zendesk']}/api/v2"
    auth = ("agent@example.com/token", "sandbox-token")
    with httpx.Client(timeout=5, trust_env=False, auth=auth) as client:
        # A new requester whose email domain an organization lists joins that organization.
        new = {"ticket": {"subject": "s", "comment": {"body": "a\n\nb <i>", "public": False},
                          "requester": {"name": "New Caller", "email": "caller@example.ae"}}}
        r = client.post(f"{base}/tickets.json", json=new, headers={"Idempotency-Key": "k-audit"})
        assert r.status_code == 201
        ticket, audit = r.json()["ticket"], r.json()["audit"]
        assert ticket["organization_id"] == 501 and ticket["is_public"] is False
        comment, *created = audit["events"]
        paragraphs = '<p dir="auto">a</p><p dir="auto">b &lt;i&gt;</p>'
        assert comment["html_body"] == f'<div class="zd-comment" dir="auto">{paragraphs}</div>'
        assert {e["field_name"]: e["value"] for e in created} == {
            "subject": "s", "requester_id": str(ticket["requester_id"]), "priority": None, "type": None,
            "status": "new", "organization_id": "501",
        }
        # An update's Change events carry previous_value; unchanged fields make none.
        r = client.put(f"{base}/tickets/{ticket['id']}.json",
                       json={"ticket": {"status": "open", "subject": "s", "type": "question"}})
        changes = [(e["field_name"], e["value"], e["previous_value"]) for e in r.json()["audit"]["events"]]
        assert changes == [("status", "open", "new"), ("type", "question", None)]
        # An idempotent replay answers the first response, audit included.
        r = client.post(f"{base}/tickets.json", json=new, headers={"Idempotency-Key": "k-audit"})
        assert r.headers["x-idempotency-lookup"] == "hit"
        assert r.json() == {"ticket": ticket, "audit": audit}
