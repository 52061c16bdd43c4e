"""ServiceNow, Dynamics 365 and Intercom field mapping against faked HTTP, on answers shaped as each vendor documents them."""

from __future__ import annotations

import re

import orjson
import pytest

from connectors.dynamics import DynamicsConnector
from connectors.field_mapping import FieldMapping
from connectors.intercom import IntercomConnector
from connectors.servicenow import ServiceNowConnector
from errors import AuthFailed
from models import TicketCreateRequest, TicketUpdateRequest
from tests.conftest import sent
from tests.test_vendor_documented_shapes import fixture

SN = "https://acme.service-now.com/api/now/table"
DYN = "https://contoso.crm4.dynamics.com/api/data/v9.2"
IC = "https://api.intercom.io"
SN_USER, SN_INCIDENT = fixture("servicenow_user")["result"], fixture("servicenow_incident")["result"]
SN_MAPPING = {"customer": {"tier": "company.u_tier", "metadata.loyalty": "u_loyalty_number"},
              "ticket": {"metadata.order_id": "u_order_number"}}  # fmt: skip
DYN_MAPPING = {"customer": {"metadata.loyalty": "new_loyaltynumber"}, "ticket": {"metadata.order_id": "new_ordernumber"}}
IC_MAPPING = {"customer": {"metadata.paid": "custom_attributes.paid_subscriber"},
              "ticket": {"metadata.order_id": "ticket_attributes.order_number"}}  # fmt: skip


def body_of(call) -> dict:
    return orjson.loads(call.kwargs["data"])


@pytest.fixture
def servicenow(make_context):
    config = {"instance": "acme", "username": "u", "password": "p", "field_mapping": SN_MAPPING}
    return ServiceNowConnector.from_request(config, make_context())


@pytest.fixture
def dynamics(make_context):
    config = {"instance_url": "https://contoso.crm4.dynamics.com", "access_token": "tok", "field_mapping": DYN_MAPPING}
    return DynamicsConnector.from_request(config, make_context())


@pytest.fixture
def intercom(make_context):
    config = {"access_token": "tok", "ticket_type_id": "1", "admin_id": "1", "field_mapping": IC_MAPPING}
    return IntercomConnector.from_request(config, make_context())


async def test_servicenow_reads_dot_walked_and_custom_fields_from_the_one_record(servicenow, mock_http):
    mock_http.get(re.compile(rf"^{SN}/sys_user/{SN_USER['sys_id']}\?.*$"), payload={"result": SN_USER})
    customer = await servicenow.get_customer(SN_USER["sys_id"])
    assert customer.tier == "Gold" and "loyalty" not in customer.metadata  # "" is ServiceNow's unset
    (call,) = sent(mock_http, "GET", f"{SN}/sys_user")
    assert {"company.u_tier", "u_loyalty_number"} <= set(call.kwargs["params"]["sysparm_fields"].split(","))


async def test_servicenow_patches_mapped_incident_fields_as_strings(servicenow, mock_http):
    mock_http.patch(re.compile(rf"^{SN}/incident/{SN_INCIDENT['sys_id']}\?.*$"), payload={"result": SN_INCIDENT})
    ticket = await servicenow.update_ticket(
        TicketUpdateRequest(crm_type="servicenow", ticket_id=SN_INCIDENT["sys_id"], metadata={"order_id": 7})
    )
    (call,) = sent(mock_http, "PATCH", f"{SN}/incident")
    assert body_of(call) == {"u_order_number": "7"}
    assert "u_order_number" in call.kwargs["params"]["sysparm_fields"].split(",")
    assert ticket.metadata["order_id"] == "ORD-7"


async def test_servicenow_checks_names_against_sys_dictionary_with_inherited_tables(servicenow, mock_http):
    mock_http.get(re.compile(rf"^{SN}/sys_dictionary\?.*$"), payload=fixture("servicenow_sys_dictionary"))
    mapping = FieldMapping.model_validate({
        "customer": {"tier": "company.u_tier", "metadata.a": "u_nope", "metadata.b": "caller_id.name"},
        "ticket": {"metadata.order_id": "u_order_number", "metadata.s": "short_description", "metadata.c": "caller_id.name"},
    })  # fmt: skip
    problems = await servicenow.check_field_mapping(mapping)
    assert [p["loc"][1:] for p in problems] == [["customer", "metadata.a"], ["customer", "metadata.b"], ["ticket", "metadata.c"]]
    assert problems[0]["msg"] == "u_nope: Invalid query detected, please check logs for details [Unknown field u_nope in table sys_user]"
    (call,) = sent(mock_http, "GET", f"{SN}/sys_dictionary")
    query = call.kwargs["params"]["sysparm_query"]
    assert query.startswith("nameINcore_company,incident,sys_user,task^elementIN") and "u_order_number" in query
    assert query.endswith("^ORelementISEMPTY")  # each table's own row: an empty answer is a missing read ACL


async def test_servicenow_says_so_when_the_dictionary_is_hidden_from_the_user(servicenow, mock_http):
    mock_http.get(re.compile(rf"^{SN}/sys_dictionary\?.*$"), payload={"result": []})  # what ACLs leave visible
    with pytest.raises(AuthFailed, match="read access to sys_dictionary"):
        await servicenow.check_field_mapping(FieldMapping.model_validate({"ticket": {"metadata.o": "u_order_number"}}))


async def test_dynamics_checks_names_against_the_documented_attribute_definitions(dynamics, mock_http):
    for table in ("contact", "incident"):
        mock_http.get(re.compile(rf"^{re.escape(DYN)}/EntityDefinitions\(LogicalName='{table}'\)/Attributes\?.*$"),
                      payload=fixture("dynamics_attributes"))  # fmt: skip
    mapping = FieldMapping.model_validate({"customer": {"tier": "new_tier", **DYN_MAPPING["customer"]}, "ticket": DYN_MAPPING["ticket"]})
    problems = await dynamics.check_field_mapping(mapping)
    assert [p["loc"] for p in problems] == [["field_mapping", "customer", "tier"]]
    assert problems[0]["msg"] == "new_tier: Could not find a property named 'new_tier' on type 'Microsoft.Dynamics.CRM.contact'."
    calls = sent(mock_http, "GET", f"{DYN}/EntityDefinitions")
    assert [c.kwargs["params"] for c in calls] == [{"$select": "LogicalName"}] * 2


async def test_dynamics_selects_and_writes_mapped_incident_columns(dynamics, mock_http):
    incident = {**fixture("dynamics_incident"), "new_ordernumber": "ORD-1"}
    mock_http.post(re.compile(rf"^{re.escape(DYN)}/incidents\?.*$"), status=201, payload=incident)
    ticket = await dynamics.create_ticket(
        TicketCreateRequest(crm_type="dynamics", subject="s", description="d", customer_id=incident["_customerid_value"],
                            metadata={"order_id": "ORD-1"}), idempotency_key="k")  # fmt: skip
    (call,) = sent(mock_http, "POST", f"{DYN}/incidents")
    assert body_of(call)["new_ordernumber"] == "ORD-1"
    assert "new_ordernumber" in call.kwargs["params"]["$select"].split(",")
    assert ticket.metadata["order_id"] == "ORD-1"


async def test_intercom_checks_custom_data_attributes_and_the_ticket_types_attributes(intercom, mock_http):
    mock_http.get(f"{IC}/data_attributes?model=contact", payload=fixture("intercom_data_attributes"))
    mock_http.get(f"{IC}/ticket_types/1", payload=fixture("intercom_ticket_type"))
    mapping = FieldMapping.model_validate({
        "customer": {**IC_MAPPING["customer"], "metadata.e": "custom_attributes.email", "metadata.r": "location_data.region_name"},
        "ticket": {**IC_MAPPING["ticket"], "metadata.x": "ticket_attributes.order_no"},
    })  # fmt: skip
    problems = await intercom.check_field_mapping(mapping)
    assert [p["loc"][1:] for p in problems] == [["customer", "metadata.e"], ["customer", "metadata.r"], ["ticket", "metadata.x"]]
    assert problems[0]["msg"] == "custom_attributes.email: Custom attribute 'email' does not exist"
    assert problems[2]["msg"] == "ticket_attributes.order_no: Ticket attribute 'order_no' does not exist"


async def test_intercom_merges_mapped_ticket_attributes_into_the_put_and_reads_them(intercom, mock_http):
    ticket = {"type": "ticket", "id": "494", "ticket_attributes": {"_default_title_": "t", "order_number": "ORD-9"},
              "ticket_state": "in_progress", "open": True, "contacts": {"type": "contact.list", "contacts": []}}  # fmt: skip
    mock_http.put(f"{IC}/tickets/494", payload=ticket)
    updated = await intercom.update_ticket(
        TicketUpdateRequest(crm_type="intercom", ticket_id="494", subject="t", metadata={"order_id": "ORD-9"})
    )
    (call,) = sent(mock_http, "PUT", f"{IC}/tickets/494")
    assert body_of(call) == {"ticket_attributes": {"_default_title_": "t", "order_number": "ORD-9"}}
    assert updated.metadata["order_id"] == "ORD-9"
