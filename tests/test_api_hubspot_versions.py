"""The real service against the HubSpot emulator on both API versions: paths used, 2026-09 validation, pipelines."""

from __future__ import annotations

import pytest

from tests.conftest import Service, error_of
from tests.test_api_hubspot import hubspot_call

VERSIONS = {"2026-09": "/crm/objects/2026-09/", "v3": "/crm/v3/objects/"}


def hubspot(version: str, **body) -> dict:
    """A request body for the HubSpot connector on one API version."""
    return {"crm_type": "hubspot", "config": {"api_version": version}, **body}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_operation_on_each_version_uses_only_its_paths(svc: Service, version: str):
    assert svc.post("/crm/customer", hubspot(version, customer_id="12345")).json()["metadata"]["deals"][0]["id"] == "2001"
    assert svc.post("/crm/customer/search", hubspot(version, phone="+971 50 123 4567")).json()["customers"][0]["id"] == "12345"
    created = svc.post("/crm/ticket/create", hubspot(version, subject="Callback", description="Call back",
                                                     customer_phone="+971501234567", priority="urgent"))
    assert created.status_code == 201 and created.json()["customer_id"] == "12345"
    ticket_id = created.json()["id"]
    updated = svc.post("/crm/ticket/update", hubspot(version, ticket_id=ticket_id, status="pending",
                                                     comment={"body": "Waiting for logs", "public": False}))
    assert updated.status_code == 200 and updated.json()["status"] == "pending"
    assert svc.post("/crm/ticket", hubspot(version, ticket_id=ticket_id)).json()["priority"] == "urgent"
    paths = [q["path"] for q in svc.vendor_requests("hubspot")]
    assert len(paths) == 9 and all(p.startswith(VERSIONS[version]) for p in paths)
    assert svc.control("hubspot", "api_versions") == {version: 9}


def test_the_default_version_is_2026_09(svc: Service):
    assert svc.post("/crm/ticket", {"crm_type": "hubspot", "ticket_id": "3001"}).status_code == 200
    assert svc.control("hubspot", "api_versions") == {"2026-09": 1}


def test_a_bad_version_is_invalid_config_before_any_call(svc: Service):
    r = svc.post("/crm/ticket", hubspot("2026-13", ticket_id="3001"))
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_config" and "api_version" in error_of(r)["message"]
    assert svc.vendor_requests("hubspot") == []


def test_a_portal_rule_is_enforced_from_2026_09_only(svc: Service):
    # An admin made hs_resolution required when a ticket is closed; only 2026-09 writes must meet the rule.
    rule = {"object_type": "tickets", "property": "hs_resolution", "when": {"hs_pipeline_stage": "4"}}
    svc.control("hubspot", "require_property", rule)
    r = svc.post("/crm/ticket/update", hubspot("2026-09", ticket_id="3001", status="closed"))
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error" and err["upstream_status"] == 400
    assert err["details"] == {"hs_resolution": [{"message": "hs_resolution is required when hs_pipeline_stage is 4",
                                                 "code": "MISSING_REQUIRED_PROPERTY"}]}
    assert svc.post("/crm/ticket", hubspot("2026-09", ticket_id="3001")).json()["status"] == "new"  # nothing written
    assert svc.post("/crm/ticket/update", hubspot("v3", ticket_id="3001", status="closed")).json()["status"] == "closed"


@pytest.mark.parametrize("version", VERSIONS)
def test_an_unknown_option_is_422_with_details_from_either_body_shape(svc: Service, version: str):
    # v3 answers with the list inside `message`, the date versions with `errors[]`: the details are the same.
    config = {"api_version": version, "stage_map": {"open": "77"}}
    r = svc.post("/crm/ticket/update", {"crm_type": "hubspot", "ticket_id": "3001", "status": "open", "config": config})
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error"
    assert err["details"] == {"hs_pipeline_stage": [{"message": "77 was not one of the allowed options: [1, 2, 3, 4]",
                                                     "code": "INVALID_OPTION"}]}
    assert err["message"].startswith("Property values were not valid: hs_pipeline_stage: 77 was not one of")


@pytest.mark.parametrize("prefix", ["/crm/v3/pipelines", "/crm/pipelines/2026-09"])
def test_the_emulator_serves_pipelines_on_both_families(svc: Service, prefix: str):
    body = hubspot_call(svc, "GET", f"{prefix}/tickets").json()
    (support,) = body["results"]
    assert support["id"] == "0" and [s["id"] for s in support["stages"]] == ["1", "2", "3", "4"]
    assert support["stages"][3]["metadata"] == {"ticketState": "CLOSED"}
    assert hubspot_call(svc, "GET", f"{prefix}/deals/default").json()["label"] == "Sales Pipeline"
    assert hubspot_call(svc, "GET", f"{prefix}/tickets/999").status_code == 404


def test_an_unknown_property_is_refused_on_both_families(svc: Service):
    for prefix in ("/crm/v3/objects", "/crm/objects/2026-09"):
        r = hubspot_call(svc, "PATCH", f"{prefix}/tickets/3001", json={"properties": {"nosuch": "x"}})
        assert r.status_code == 400 and '"error":"PROPERTY_DOESNT_EXIST"' in r.json()["message"]
