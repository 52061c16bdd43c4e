"""The real service against the HubSpot emulator over loopback: every endpoint, error code and fault."""

from __future__ import annotations

import pytest

from tests.conftest import Service, error_of

TIER = {"tier_property": "customer_tier"}




def calls(svc: Service, method: str, fragment: str = "") -> list[dict]:
    """What the HubSpot emulator received for a method (and path fragment)."""
    return [q for q in svc.vendor_requests("hubspot") if q["method"] == method and fragment in q["path"]]


# --- operations -------------------------------------------------------------------------------------


def test_seeded_ticket(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "hubspot", "ticket_id": "3001"})
    assert r.status_code == 200, r.text
    ticket = r.json()
    assert (ticket["subject"], ticket["status"], ticket["priority"], ticket["customer_id"]) == (
        "Product not working", "new", "high", "12345")
    assert ticket["metadata"]["vendor_status"] == "1" and ticket["metadata"]["vendor_priority"] == "HIGH"
    assert (ticket["created_at"], ticket["updated_at"]) == ("2025-11-18T10:30:00Z", "2025-11-18T11:45:00Z")
    [get] = calls(svc, "GET")
    assert get["authorization_scheme"] == "Bearer" and get["query"]["associations"] == "contacts"


def test_customer_with_deals_from_one_batch_read(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "hubspot", "customer_id": "12345", "config": TIER})
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["name"], c["email"], c["phone"], c["tier"]) == ("Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567", "Enterprise")
    assert (c["metadata"]["organization_name"], c["metadata"]["lifecycle_stage"]) == ("Al-Mansoori Trading", "customer")
    assert [(d["id"], d["name"], d["stage"], d["amount"]) for d in c["metadata"]["deals"]] == [
        ("2001", "Enterprise renewal", "contractsent", "48000"), ("2002", "Support add-on", "closedwon", "12000.50")]
    assert len(svc.vendor_requests("hubspot")) == 2
    [batch] = calls(svc, "POST", "/deals/batch/read")
    assert batch["body"]["inputs"] == [{"id": "2001"}, {"id": "2002"}]


def test_customer_without_deals_reads_once_and_has_no_tier_by_default(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "hubspot", "customer_id": "12346"})
    assert r.status_code == 200 and r.json()["metadata"]["deals"] == [] and r.json()["tier"] is None
    assert len(svc.vendor_requests("hubspot")) == 1


@pytest.mark.parametrize("phone", ["+971501234567", "+971 50 123 4567", "011 971 50 123 4567", "+971-50-123-4567"])
def test_caller_id_lookup_in_any_spelling(svc: Service, phone: str):
    r = svc.post("/crm/customer/search", {"crm_type": "hubspot", "phone": phone})
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["customers"]] == ["12345"]
    assert len(calls(svc, "POST", "/contacts/search")) == 1


def test_lookup_matches_the_mobile_phone(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "hubspot", "phone": "+447700900123"})
    assert [c["id"] for c in r.json()["customers"]] == ["12347"]


def test_search_by_email_is_case_insensitive(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "hubspot", "email": "Ahmed@Example.ae"})
    assert [c["id"] for c in r.json()["customers"]] == ["12345"]


def test_create_then_get_then_update_with_a_note(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "hubspot", "subject": "Callback", "description": "Call me back",
                                        "customer_id": "12345", "priority": "urgent"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["status"], created["priority"], created["customer_id"]) == ("new", "urgent", "12345")
    [post] = calls(svc, "POST", "/tickets")
    assert post["body"]["associations"][0]["types"] == [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}]
    assert svc.post("/crm/ticket", {"crm_type": "hubspot", "ticket_id": created["id"]}).json()["customer_id"] == "12345"

    r = svc.post("/crm/ticket/update", {"crm_type": "hubspot", "ticket_id": created["id"], "status": "solved",
                                        "priority": "medium", "comment": {"body": "verified caller", "public": True}})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert (updated["status"], updated["priority"], updated["customer_id"]) == ("closed", "medium", "12345")
    assert updated["metadata"]["note_public_requested"] is True and updated["metadata"]["note_id"]
    [patch] = calls(svc, "PATCH")
    assert patch["body"] == {"properties": {"hs_pipeline_stage": "4", "hs_ticket_priority": "MEDIUM"}}
    [note] = calls(svc, "POST", "/notes")
    assert note["body"]["properties"]["hs_note_body"] == "verified caller"
    assert note["body"]["associations"][0]["to"] == {"id": created["id"]}


def test_create_by_email_associates_the_existing_contact(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "hubspot", "subject": "s", "description": "d",
                                        "customer_email": "layla@example.com"})
    assert r.status_code == 201 and r.json()["customer_id"] == "12346"


def test_create_for_an_unknown_caller_is_unassociated_with_their_details_kept(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "hubspot", "subject": "s", "description": "d",
                                        "customer_phone": "+14155550199", "customer_name": "New Caller"})
    assert r.status_code == 201 and r.json()["customer_id"] is None
    assert r.json()["description"] == "d\n\nCaller: New Caller, +14155550199"


def test_custom_stage_map_per_request(svc: Service):
    # The emulator's portal only has the default pipeline: a stage it lacks is HubSpot's VALIDATION_ERROR.
    r = svc.post("/crm/ticket/update", {"crm_type": "hubspot", "ticket_id": "3001", "status": "open",
                                        "config": {"stage_map": {"open": "77"}}})
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error" and err["upstream_status"] == 400
    assert err["details"]["hs_pipeline_stage"][0]["code"] == "INVALID_OPTION"


def test_tags_only_update_is_400(svc: Service):
    r = svc.post("/crm/ticket/update", {"crm_type": "hubspot", "ticket_id": "3001", "tags": ["x"]})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_request"
    assert svc.vendor_requests("hubspot") == []


# --- error contract ------------------------------------------------------------------------------


def test_update_of_a_missing_ticket_is_not_found_and_writes_nothing(svc: Service):
    r = svc.post("/crm/ticket/update", {"crm_type": "hubspot", "ticket_id": "999999", "comment": {"body": "x"}})
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    assert calls(svc, "POST") == [] and calls(svc, "PATCH") == []


def test_token_is_never_echoed(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "hubspot", "ticket_id": "3001", "config": {"api_key": "invalid"}})
    secret = svc.post("/crm/ticket", {"crm_type": "hubspot", "ticket_id": "3001", "config": {"api_key": "pat-na1-s3cret"}})
    assert secret.status_code == 200 and "s3cret" not in r.text


def test_expired_token_is_crm_auth_failed(svc: Service):
    svc.control("hubspot", "expire_token")
    r = svc.post("/crm/ticket", {"crm_type": "hubspot", "ticket_id": "3001"})
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "crm_auth_failed" and "EXPIRED_AUTHENTICATION" in err["message"]


def test_missing_scope_is_crm_auth_failed(svc: Service):
    svc.control("hubspot", "revoke_scope", {"object_type": "tickets"})
    r = svc.post("/crm/ticket", {"crm_type": "hubspot", "ticket_id": "3001"})
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "crm_auth_failed" and err["upstream_status"] == 403
    assert "MISSING_SCOPES" in err["message"]
    assert svc.post("/crm/customer", {"crm_type": "hubspot", "customer_id": "12346"}).status_code == 200


# --- faults ---------------------------------------------------------------------------------------


def test_latency_on_the_post_search_is_504(svc: Service):
    # HubSpot's search is a POST, still a read: it times out like one (the ticket read is in test_api_contract.py).
    svc.fault("hubspot", "latency", seconds=5, count=-1)
    r = svc.post("/crm/customer/search", {"crm_type": "hubspot", "email": "ahmed@example.ae"})
    assert r.status_code == 504 and error_of(r)["code"] == "crm_timeout"


# --- the emulator speaks HubSpot's wire ---------------------------------------------------------------


def hubspot_call(svc: Service, method: str, path: str, token: str | None = "t", **kwargs):
    """A direct call to the emulator, as a HubSpot SDK would make it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return svc.client.request(method, f"{svc.emulators['hubspot']}{path}", headers=headers, **kwargs)


def test_emulator_search_pages_with_after(svc: Service):
    body = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}], "limit": 2}
    first = hubspot_call(svc, "POST", "/crm/v3/objects/contacts/search", json=body).json()
    assert first["total"] == 3 and len(first["results"]) == 2 and first["paging"]["next"]["after"] == "2"
    rest = hubspot_call(svc, "POST", "/crm/v3/objects/contacts/search/", json={**body, "after": "2"}).json()
    assert [c["id"] for c in rest["results"]] == ["12347"] and "paging" not in rest
    assert set(rest["results"][0]["properties"]) >= {"email", "firstname", "hs_object_id", "createdate", "lastmodifieddate"}


def test_emulator_search_groups_or_and_filters_and(svc: Service):
    groups = [
        {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "ahmed"},
                     {"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}]},  # AND: nobody
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "omar@example.com"}]},
    ]
    r = hubspot_call(svc, "POST", "/crm/v3/objects/contacts/search", json={"filterGroups": groups})
    assert [c["id"] for c in r.json()["results"]] == ["12347"]
    too_many = [{"filters": [{"propertyName": "email", "operator": "EQ", "value": str(n)}]} for n in range(6)]
    r = hubspot_call(svc, "POST", "/crm/v3/objects/contacts/search", json={"filterGroups": too_many})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"


def test_emulator_batch_read_names_missing_ids_with_207(svc: Service):
    r = hubspot_call(svc, "POST", "/crm/v3/objects/deals/batch/read", json={"properties": ["dealname"], "inputs": [{"id": "2001"}, {"id": "9"}]})
    assert r.status_code == 207
    body = r.json()
    assert body["status"] == "COMPLETE" and [d["id"] for d in body["results"]] == ["2001"]
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND" and body["errors"][0]["context"] == {"ids": ["9"]}
    assert body["results"][0]["properties"]["dealname"] == "Enterprise renewal" and body["startedAt"] and body["completedAt"]


def test_emulator_answers_carry_hubspot_rate_headers_and_string_properties(svc: Service):
    r = hubspot_call(svc, "GET", "/crm/v3/objects/contacts/12345?properties=phone&properties=company,nosuchprop&associations=deals")
    assert r.status_code == 200
    for header in ("Max", "Remaining", "Interval-Milliseconds", "Daily", "Daily-Remaining"):
        assert r.headers[f"X-HubSpot-RateLimit-{header}"].isdigit()
    contact = r.json()
    assert contact["properties"]["phone"] == "+971501234567" and "nosuchprop" not in contact["properties"]
    assert all(v is None or isinstance(v, str) for v in contact["properties"].values())
    assert contact["archived"] is False and contact["createdAt"].endswith("Z")
    assert contact["associations"]["deals"]["results"][0] == {"id": "2001", "type": "contact_to_deal"}


def test_emulator_errors_use_hubspots_envelope(svc: Service):
    r = hubspot_call(svc, "GET", "/crm/v3/objects/tickets/3001", token=None)
    assert r.status_code == 401 and r.json()["category"] == "INVALID_AUTHENTICATION" and r.json()["correlationId"]
    r = hubspot_call(svc, "GET", "/crm/v3/objects/tickets/424242")
    assert r.status_code == 404 and r.content == b""
    r = hubspot_call(svc, "POST", "/crm/v3/objects/tickets", json={"properties": {"subject": "s", "hs_pipeline": "0",
                                                                                 "hs_pipeline_stage": "1", "hs_ticket_priority": "HIGHEST"}})
    # v3 embeds the property list in `message` only; the date versions add `errors[]`.
    assert r.status_code == 400 and r.json()["message"].startswith("Property values were not valid: ")
    assert '"name":"hs_ticket_priority"' in r.json()["message"] and "errors" not in r.json()
    r = hubspot_call(svc, "POST", "/crm/objects/2026-09/tickets", json={"properties": {"subject": "s", "hs_pipeline": "0",
                                                                                      "hs_pipeline_stage": "1", "hs_ticket_priority": "HIGHEST"}})
    assert r.status_code == 400 and r.json()["errors"][0]["context"] == {"propertyName": ["hs_ticket_priority"]}
    svc.fault("hubspot", "rate_limit", retry_after=10)
    r = hubspot_call(svc, "GET", "/crm/v3/objects/tickets/3001")
    assert r.status_code == 429 and r.json()["errorType"] == "RATE_LIMIT" and r.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000" and "Retry-After" not in r.headers
