"""Field mapping for ServiceNow, Dynamics 365 and Intercom, end to end: a stored connection against the sandbox."""

from __future__ import annotations

from sandbox import SANDBOX_CREDENTIALS
from tests.conftest import Service

SN_CALLER, DYN_CALLER, IC_CALLER = "a8f98bb0eb32010045e1a5115206fe3a", "6f1c1c0e-0000-4000-8000-000000001001", "6657a1c2b1e5f2a3c4d50001"


def connect(svc: Service, vendor: str, mapping: dict) -> "tuple[int, dict]":
    r = svc.post("/connections", {"crm_type": vendor, "display_name": "Acme", "credentials": SANDBOX_CREDENTIALS[vendor],
                                  "settings": {"field_mapping": mapping}})  # fmt: skip
    return r.status_code, r.json()


# Vendor calls of one customer read, as without a mapping (Intercom reads the contact's company too).
READ_CALLS = {"servicenow": 1, "dynamics": 1, "intercom": 2}


def reads_and_writes(svc: Service, vendor: str, mapping: dict, caller: str) -> str:
    """Save the mapping, read the caller's mapped loyalty number (in the same calls), create and update a ticket's
    mapped order number."""
    status, created = connect(svc, vendor, mapping)
    assert status == 201, created
    cid = created["id"]
    svc.reset()  # the save's check calls are not the read's
    customer = svc.post("/crm/customer", {"connection_id": cid, "customer_id": caller}).json()
    assert customer["metadata"]["loyalty_id"] == "LOY-7781", customer
    assert len(svc.vendor_requests(vendor)) == READ_CALLS[vendor]
    made = svc.post("/crm/ticket/create", {"connection_id": cid, "subject": "Refund", "description": "Order refund",
                                           "customer_id": caller, "metadata": {"order_id": "ORD-1"}})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["order_id"] == "ORD-1"
    changed = svc.post("/crm/ticket/update", {"connection_id": cid, "ticket_id": made.json()["id"],
                                              "metadata": {"order_id": "ORD-2"}})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["metadata"]["order_id"] == "ORD-2"
    read = svc.post("/crm/ticket", {"connection_id": cid, "ticket_id": made.json()["id"]}).json()
    assert read["metadata"]["order_id"] == "ORD-2"
    return cid


def refused(svc: Service, vendor: str, mapping: dict) -> dict:
    """The 422 for a mapping with unknown names: the contract error, each entry's loc under the body."""
    status, body = connect(svc, vendor, mapping)
    assert status == 422, body
    error = body["error"]
    assert error["crm_type"] == vendor and error["retryable"] is False
    return error


SN_MAPPING = {"customer": {"metadata.loyalty_id": "u_loyalty_number", "metadata.company_tier": "company.u_tier"},
              "ticket": {"metadata.order_id": "u_order_number"}}  # fmt: skip


def test_servicenow_asks_for_mapped_fields_in_sysparm_fields_and_writes_incident_fields(svc: Service):
    reads_and_writes(svc, "servicenow", SN_MAPPING, SN_CALLER)
    reads = [q for q in svc.vendor_requests("servicenow") if q["method"] == "GET" and f"/sys_user/{SN_CALLER}" in q["path"]]
    assert "u_loyalty_number" in reads[0]["query"]["sysparm_fields"].split(",")  # the read, before the create's check
    sent = [q for q in svc.vendor_requests("servicenow") if q["method"] in ("POST", "PATCH") and "/incident" in q["path"]]
    assert [q["body"]["u_order_number"] for q in sent] == ["ORD-1", "ORD-2"]


def test_servicenow_refuses_unknown_fields_in_its_own_words(svc: Service):
    error = refused(svc, "servicenow", {"customer": {"tier": "company.u_tierx", "metadata.x": "caller_id.name"},
                                        "ticket": {"metadata.o": "u_order_no", "metadata.d": "short_description"}})  # fmt: skip
    assert {tuple(d["loc"]) for d in error["details"]} == {
        ("body", "settings", "field_mapping", "customer", "tier"), ("body", "settings", "field_mapping", "customer", "metadata.x"),
        ("body", "settings", "field_mapping", "ticket", "metadata.o")}  # an inherited task field is known
    assert "Unknown field u_tierx in table core_company" in error["message"]
    assert "Unknown field u_order_no in table incident" in error["message"]


DYN_MAPPING = {"customer": {"metadata.loyalty_id": "new_loyaltynumber"}, "ticket": {"metadata.order_id": "new_ordernumber"}}


def test_dynamics_selects_mapped_columns_and_writes_them_on_create_and_patch(svc: Service):
    reads_and_writes(svc, "dynamics", DYN_MAPPING, DYN_CALLER)
    contact_reads = [q for q in svc.vendor_requests("dynamics") if q["method"] == "GET" and "/contacts(" in q["path"]]
    assert "new_loyaltynumber" in contact_reads[-1]["query"]["$select"].split(",")
    writes = [q for q in svc.vendor_requests("dynamics") if q["method"] in ("POST", "PATCH") and "/incidents" in q["path"]]
    assert [q["body"]["new_ordernumber"] for q in writes] == ["ORD-1", "ORD-2"]


def test_dynamics_refuses_unknown_columns_in_dataverse_words(svc: Service):
    error = refused(svc, "dynamics", {"customer": {"tier": "new_tier"}, "ticket": {"metadata.o": "new_order"}})
    assert "Could not find a property named 'new_tier' on type 'Microsoft.Dynamics.CRM.contact'." in error["message"]
    assert "Could not find a property named 'new_order' on type 'Microsoft.Dynamics.CRM.incident'." in error["message"]
    assert [d["loc"][-2:] for d in error["details"]] == [["customer", "tier"], ["ticket", "metadata.o"]]


IC_MAPPING = {"customer": {"metadata.loyalty_id": "custom_attributes.loyalty_number"},
              "ticket": {"metadata.order_id": "ticket_attributes.order_number"}}  # fmt: skip


def test_intercom_reads_custom_and_ticket_attributes_and_writes_ticket_attributes(svc: Service):
    reads_and_writes(svc, "intercom", IC_MAPPING, IC_CALLER)
    created = next(q for q in svc.vendor_requests("intercom") if q["method"] == "POST" and q["path"] == "/tickets")
    assert created["body"]["ticket_attributes"]["order_number"] == "ORD-1"
    put = next(q for q in svc.vendor_requests("intercom") if q["method"] == "PUT")
    assert put["body"] == {"ticket_attributes": {"order_number": "ORD-2"}}


def test_intercom_refuses_unknown_attributes_in_its_own_words(svc: Service):
    error = refused(svc, "intercom", {"customer": {"tier": "custom_attributes.plan_tier", "metadata.e": "email"},
                                      "ticket": {"metadata.o": "ticket_attributes.order_no"}})  # fmt: skip
    assert "custom_attributes.plan_tier: Custom attribute 'plan_tier' does not exist" in error["message"]
    assert "ticket_attributes.order_no: Ticket attribute 'order_no' does not exist" in error["message"]
    assert len(error["details"]) == 3  # a standard attribute is no custom_attributes path
