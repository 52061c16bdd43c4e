"""Per-tenant field mapping: the pure table functions, and Zendesk end to end through the sandbox (one call a read)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.field_mapping import FieldMapping, mapped, nest, read_path, to_write, unknown_fields
from sandbox import SANDBOX_CREDENTIALS
from tests.conftest import Service, error_of

MAPPING = {"customer": {"metadata.loyalty_id": "user_fields.loyalty_number"},
           "ticket": {"metadata.order_id": "custom_fields.360001234"}}  # fmt: skip


def test_paths_read_nested_keys_case_insensitively_and_id_lists_by_id():
    record = {"Account": {"Tier__c": "Gold"}, "custom_fields": [{"id": 360001234, "value": "ORD-1"}]}
    assert read_path(record, "account.tier__c") == "Gold"
    assert read_path(record, "custom_fields.360001234") == "ORD-1"
    assert read_path(record, "custom_fields.1") is None and read_path(None, "a") is None
    assert mapped({"tier": "Account.Tier__c", "metadata.o": "custom_fields.360001234"}, record) == ("Gold", {"o": "ORD-1"})


def test_writes_nest_paths_and_build_id_lists():
    values = to_write({"metadata.o": "custom_fields.360001234", "metadata.l": "user_fields.loyalty"}, {"o": "X", "l": "Y"})
    assert nest(values, frozenset({"custom_fields"})) == {
        "custom_fields": [{"id": 360001234, "value": "X"}], "user_fields": {"loyalty": "Y"}}
    assert to_write({"metadata.o": "Order__c"}, {}) == {}


def test_the_mapping_shape_is_checked():
    assert FieldMapping.model_validate(MAPPING)
    for bad in ({"ticket": {"tier": "x"}}, {"customer": {"name": "x"}}, {"customer": {"tier": "a b"}}, {"deal": {}}):
        with pytest.raises(ValidationError):
            FieldMapping.model_validate(bad)


def zendesk(svc: Service, mapping: dict) -> "tuple[int, dict]":
    r = svc.post("/connections", {"crm_type": "zendesk", "display_name": "Acme", "credentials": SANDBOX_CREDENTIALS["zendesk"],
                                  "settings": {"field_mapping": mapping}})  # fmt: skip
    return r.status_code, r.json()


def test_zendesk_reads_and_writes_mapped_fields_in_the_same_calls(svc: Service):
    status, created = zendesk(svc, MAPPING)
    assert status == 201, created
    cid = created["id"]
    svc.reset()
    customer = svc.post("/crm/customer", {"connection_id": cid, "customer_id": "1001"}).json()
    assert customer["metadata"]["loyalty_id"] == "LOY-7781"
    assert [q["path"] for q in svc.vendor_requests("zendesk")] == ["/api/v2/users/1001.json"]

    made = svc.post("/crm/ticket/create", {"connection_id": cid, "subject": "Refund", "description": "Order refund",
                                           "customer_id": "1001", "metadata": {"order_id": "ORD-1"}})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["order_id"] == "ORD-1"
    sent = next(q for q in svc.vendor_requests("zendesk") if q["method"] == "POST")
    assert {"id": 360001234, "value": "ORD-1"} in sent["body"]["ticket"]["custom_fields"]

    changed = svc.post("/crm/ticket/update", {"connection_id": cid, "ticket_id": made.json()["id"],
                                              "metadata": {"order_id": "ORD-2"}})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["metadata"]["order_id"] == "ORD-2"
    read = svc.post("/crm/ticket", {"connection_id": cid, "ticket_id": made.json()["id"]}).json()
    assert read["metadata"]["order_id"] == "ORD-2"


def test_an_unknown_vendor_field_is_refused_when_the_mapping_is_saved(svc: Service):
    status, body = zendesk(svc, {"customer": {"tier": "user_fields.no_such"}, "ticket": {"metadata.o": "custom_fields.42"}})
    assert status == 422
    error = body["error"]
    assert error["code"] == "validation_error" or error["code"].startswith("crm_validation")
    assert {tuple(d["loc"]) for d in error["details"]} == {
        ("body", "settings", "field_mapping", "customer", "tier"), ("body", "settings", "field_mapping", "ticket", "metadata.o")}
    ok_status, created = zendesk(svc, MAPPING)
    patched = svc.client.patch(f"{svc.url}/connections/{created['id']}",
                               json={"settings": {"field_mapping": {"ticket": {"metadata.o": "custom_fields.42"}}}})
    assert patched.status_code == 422 and "custom_fields.42" in error_of(patched)["message"]


SF_MAPPING = {"customer": {"tier": "Account.Rating", "metadata.account_tier": "Account.Tier__c"},
              "ticket": {"metadata.caller_name": "SuppliedName"}}  # fmt: skip


def salesforce(svc: Service, mapping: dict) -> "tuple[int, dict]":
    r = svc.post("/connections", {"crm_type": "salesforce", "display_name": "Acme org",
                                  "credentials": SANDBOX_CREDENTIALS["salesforce"], "settings": {"field_mapping": mapping}})  # fmt: skip
    return r.status_code, r.json()


def test_salesforce_asks_for_mapped_fields_in_the_same_query_and_writes_case_fields(svc: Service):
    status, created = salesforce(svc, SF_MAPPING)
    assert status == 201, created
    cid = created["id"]
    svc.reset()
    customer = svc.post("/crm/customer", {"connection_id": cid, "customer_id": "003000000000001AAA"}).json()
    assert customer["tier"] == "Hot" and customer["metadata"]["account_tier"] == "Enterprise"
    queries = [q for q in svc.vendor_requests("salesforce") if q["path"].endswith("/query/")]
    assert len(queries) == 1 and "Account.Rating" in queries[0]["query"]["q"]

    made = svc.post("/crm/ticket/create", {"connection_id": cid, "subject": "Refund", "description": "Order refund",
                                           "customer_id": "003000000000001AAA", "metadata": {"caller_name": "Ahmed"}})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["caller_name"] == "Ahmed"
    changed = svc.post("/crm/ticket/update", {"connection_id": cid, "ticket_id": made.json()["id"],
                                              "metadata": {"caller_name": "Ahmed A."}})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["metadata"]["caller_name"] == "Ahmed A."


def test_salesforce_refuses_unknown_fields_in_its_own_words(svc: Service):
    status, body = salesforce(svc, {"customer": {"tier": "Account.Tier_Typo__c", "metadata.x": "Acount.Name"},
                                    "ticket": {"metadata.o": "Order__c"}})  # fmt: skip
    assert status == 422, body
    message = body["error"]["message"]
    assert "No such column 'Tier_Typo__c' on entity 'Account'" in message
    assert "Didn't understand relationship 'Acount'" in message
    assert "No such column 'Order__c' on entity 'Case'" in message


def connect(svc: Service, vendor: str, mapping: dict) -> "tuple[int, dict]":
    r = svc.post("/connections", {"crm_type": vendor, "display_name": "Acme", "credentials": SANDBOX_CREDENTIALS[vendor],
                                  "settings": {"field_mapping": mapping}})  # fmt: skip
    return r.status_code, r.json()


def test_the_unknown_field_check_names_each_missing_path():
    known = {"loyalty_number"}
    assert unknown_fields("customer", {"tier": "custom_fields.loyalty_number"}, known, "custom_fields", "x") == []
    problems = unknown_fields("ticket", {"metadata.o": "custom_fields.nope", "metadata.p": "nope"}, known, "custom_fields",
                              "Unexpected/invalid field in request")  # fmt: skip
    assert [p["loc"] for p in problems] == [["field_mapping", "ticket", "metadata.o"], ["field_mapping", "ticket", "metadata.p"]]
    assert unknown_fields("ticket", {"metadata.o": "a.b"}, {"a"}, None, 'Property "{name}" does not exist')[0]["msg"] == (
        'a.b: Property "a" does not exist')


HS_MAPPING = {"customer": {"tier": "lifecyclestage", "metadata.jobtitle_raw": "jobtitle"},
              "ticket": {"metadata.order_id": "order_id"}}  # fmt: skip


def test_hubspot_asks_for_mapped_properties_in_the_same_calls_and_writes_them(svc: Service):
    status, created = connect(svc, "hubspot", HS_MAPPING)
    assert status == 201, created
    cid = created["id"]
    svc.reset()
    customer = svc.post("/crm/customer", {"connection_id": cid, "customer_id": "12345"}).json()
    assert customer["tier"] == "customer" and customer["metadata"]["jobtitle_raw"] == "Operations Director"
    reads = [q for q in svc.vendor_requests("hubspot") if q["method"] == "GET"]
    assert len(reads) == 1 and "lifecyclestage" in reads[0]["query"]["properties"]
    found = svc.post("/crm/customer/search", {"connection_id": cid, "phone": "+971501234567"}).json()
    assert found["customers"][0]["tier"] == "customer"

    made = svc.post("/crm/ticket/create", {"connection_id": cid, "subject": "Refund", "description": "Order refund",
                                           "customer_id": "12345", "metadata": {"order_id": "ORD-1"}})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["order_id"] == "ORD-1"
    changed = svc.post("/crm/ticket/update", {"connection_id": cid, "ticket_id": made.json()["id"],
                                              "metadata": {"order_id": "ORD-2"}})  # fmt: skip
    assert changed.status_code == 200, changed.text
    read = svc.post("/crm/ticket", {"connection_id": cid, "ticket_id": made.json()["id"]}).json()
    assert read["metadata"]["order_id"] == "ORD-2"


def test_hubspot_refuses_unknown_properties_in_its_own_words(svc: Service):
    status, body = connect(svc, "hubspot", {"customer": {"tier": "no_such_tier"}, "ticket": {"metadata.o": "order_idx"}})
    assert status == 422, body
    assert 'Property "no_such_tier" does not exist' in body["error"]["message"]
    assert {tuple(d["loc"])[-2:] for d in body["error"]["details"]} == {("customer", "tier"), ("ticket", "metadata.o")}


FD_MAPPING = {"customer": {"metadata.loyalty_id": "custom_fields.loyalty_number"},
              "ticket": {"metadata.order_id": "custom_fields.cf_order_id"}}  # fmt: skip


def test_freshdesk_reads_and_writes_mapped_custom_fields(svc: Service):
    status, created = connect(svc, "freshdesk", FD_MAPPING)
    assert status == 201, created
    cid = created["id"]
    customer = svc.post("/crm/customer", {"connection_id": cid, "customer_id": "1001"}).json()
    assert customer["metadata"]["loyalty_id"] == "LOY-7781"
    made = svc.post("/crm/ticket/create", {"connection_id": cid, "subject": "Refund", "description": "Order refund",
                                           "customer_id": "1001", "metadata": {"order_id": "ORD-1"}})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["metadata"]["order_id"] == "ORD-1"
    changed = svc.post("/crm/ticket/update", {"connection_id": cid, "ticket_id": made.json()["id"],
                                              "metadata": {"order_id": "ORD-2"}})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["metadata"]["order_id"] == "ORD-2"


def test_freshdesk_refuses_unknown_and_default_fields(svc: Service):
    status, body = connect(svc, "freshdesk", {"customer": {"tier": "custom_fields.plan"}, "ticket": {"metadata.s": "subject"}})
    assert status == 422, body
    assert "custom_fields.plan: Unexpected/invalid field in request" in body["error"]["message"]
    assert len(body["error"]["details"]) == 2
