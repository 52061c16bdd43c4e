"""HubSpot and Freshdesk field mapping against faked HTTP, on answers shaped as each vendor documents them."""

from __future__ import annotations

import re

import orjson
import pytest

from connectors.field_mapping import FieldMapping
from connectors.freshdesk import FreshdeskConnector
from connectors.hubspot import HubSpotConnector
from models import TicketCreateRequest, TicketUpdateRequest
from tests.conftest import sent
from tests.test_vendor_documented_shapes import fixture

HS = "https://api.hubapi.com"
FD = "https://acme.freshdesk.com/api/v2"
HS_MAPPING = {"customer": {"tier": "customer_tier"}, "ticket": {"metadata.order_id": "order_number"}}
FD_MAPPING = {"customer": {"tier": "custom_fields.department"}, "ticket": {"metadata.category": "custom_fields.category"}}


@pytest.fixture
def hubspot(make_context):
    return HubSpotConnector.from_request({"api_key": "pat-na1-secret", "field_mapping": HS_MAPPING}, make_context())


@pytest.fixture
def freshdesk(make_context):
    config = {"domain": "acme.freshdesk.com", "api_key": "key123", "field_mapping": FD_MAPPING}
    return FreshdeskConnector.from_request(config, make_context())


async def test_hubspot_reads_mapped_properties_in_the_same_get(hubspot, mock_http):
    mock_http.get(re.compile(rf"^{HS}/crm/objects/2026-09/contacts/1\?.*$"),
                  payload={"id": "1", "properties": {"firstname": "A", "customer_tier": "Gold"}})  # fmt: skip
    customer = await hubspot.get_customer("1")
    assert customer.tier == "Gold"
    (call,) = [c for calls in mock_http.requests.values() for c in calls]
    assert "customer_tier" in call.kwargs["params"]["properties"].split(",")


async def test_hubspot_writes_mapped_ticket_properties_as_strings(hubspot, mock_http):
    mock_http.post(f"{HS}/crm/objects/2026-09/tickets", status=201,
                   payload={"id": "9", "properties": {"subject": "s", "order_number": "42"}})  # fmt: skip
    ticket = await hubspot.create_ticket(
        TicketCreateRequest(crm_type="hubspot", subject="s", description="d", metadata={"order_id": 42}), idempotency_key="k"
    )
    body = orjson.loads(sent(mock_http, "POST", f"{HS}/crm/objects/2026-09/tickets")[0].kwargs["data"])
    assert body["properties"]["order_number"] == "42" and ticket.metadata["order_id"] == "42"


async def test_hubspot_checks_names_against_the_documented_properties_list(hubspot, mock_http):
    for kind in ("contacts", "tickets"):
        mock_http.get(f"{HS}/crm/properties/2026-09/{kind}", payload=fixture("hubspot_properties"))
    problems = await hubspot.check_field_mapping(FieldMapping.model_validate(HS_MAPPING))
    assert [p["loc"] for p in problems] == [["field_mapping", "customer", "tier"]]
    assert problems[0]["msg"] == 'customer_tier: Property "customer_tier" does not exist'


async def test_freshdesk_reads_contact_custom_fields_from_the_documented_contact(freshdesk, mock_http):
    contact = {**fixture("freshdesk_contact"), "company_id": None}
    mock_http.get(f"{FD}/contacts/{contact['id']}", payload=contact)
    customer = await freshdesk.get_customer(str(contact["id"]))
    assert customer.tier == "Production"


async def test_freshdesk_writes_ticket_custom_fields_and_reads_them_back(freshdesk, mock_http):
    ticket = fixture("freshdesk_ticket")
    mock_http.put(f"{FD}/tickets/{ticket['id']}", payload={**ticket, "custom_fields": {"category": "Secondary"}})
    updated = await freshdesk.update_ticket(
        TicketUpdateRequest(crm_type="freshdesk", ticket_id=str(ticket["id"]), metadata={"category": "Secondary"})
    )
    body = orjson.loads(sent(mock_http, "PUT", f"{FD}/tickets/{ticket['id']}")[0].kwargs["data"])
    assert body == {"custom_fields": {"category": "Secondary"}}
    assert updated.metadata["category"] == "Secondary"


async def test_freshdesk_counts_only_custom_fields_of_the_documented_lists(freshdesk, mock_http):
    mock_http.get(f"{FD}/contact_fields", payload=fixture("freshdesk_contact_fields"))
    mock_http.get(f"{FD}/ticket_fields", payload=fixture("freshdesk_ticket_fields"))
    mapping = FieldMapping.model_validate({"customer": {"tier": "custom_fields.name"}, **{"ticket": FD_MAPPING["ticket"]}})
    problems = await freshdesk.check_field_mapping(mapping)
    assert [p["loc"] for p in problems] == [["field_mapping", "customer", "tier"]]
    assert "Unexpected/invalid field in request" in problems[0]["msg"]
