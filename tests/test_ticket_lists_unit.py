"""Ticket listing for ServiceNow, Dynamics 365 and Intercom against faked HTTP (aioresponses): the query, paging state."""

from __future__ import annotations

import re

import orjson
import pytest

from connectors.base import TicketQuery
from connectors.dynamics import DynamicsConnector
from connectors.intercom import IntercomConnector
from connectors.servicenow import ServiceNowConnector
from errors import NotSupported
from models import TicketStatus
from tests.conftest import sent

SN = "https://acme.service-now.com/api/now/table/incident"
DV = "https://contoso.crm4.dynamics.com/api/data/v9.2/incidents"
IC = "https://api.intercom.io/tickets/search"
CALLER = "a8f98bb0eb32010045e1a5115206fe3a"
CONTACT = "49b0be2e-d01c-ed11-b83e-000d3a572421"


@pytest.fixture
def build(make_context):
    configs = {
        ServiceNowConnector: {"instance": "acme", "username": "voice.integration", "password": "pw-123"},
        DynamicsConnector: {"instance_url": "https://contoso.crm4.dynamics.com", "access_token": "tok-given"},
        IntercomConnector: {"access_token": "tok_123", "ticket_type_id": "1234", "admin_id": "991267883"},
    }
    return lambda cls: cls.from_request(configs[cls], make_context())


async def test_servicenow_queries_incidents_by_caller_and_pages_by_offset(build, mock_http):
    records = [{"sys_id": f"{n:032x}", "state": "2", "caller_id": CALLER} for n in range(3)]
    mock_http.get(re.compile(rf"{SN}\?.*"), payload={"result": records})
    servicenow = build(ServiceNowConnector)
    query = TicketQuery(customer_id=CALLER, statuses=(TicketStatus.open,), text="no^signal", limit=2)
    found = await servicenow.list_tickets(query, {"offset": 4})
    assert len(found.tickets) == 2 and found.next == {"offset": 6}
    params = sent(mock_http, "GET", SN)[0].kwargs["params"]
    assert params["sysparm_query"] == (
        f"caller_id={CALLER}^stateIN2^short_descriptionLIKEno^^signal^ORdescriptionLIKEno^^signal^ORDERBYDESCsys_updated_on"
    )
    assert (params["sysparm_limit"], params["sysparm_offset"]) == ("3", "4")
    with pytest.raises(NotSupported):
        await servicenow.list_tickets(TicketQuery(tags=("vip",)), None)


async def test_dynamics_filters_on_the_customer_lookup_and_pages_by_skiptoken(build, mock_http):
    following = f'{DV}?$skiptoken=%3Ccookie%20pagenumber%3D%222%22%20/%3E'
    incident = {"incidentid": "11111111-2222-3333-4444-555555555555", "statuscode": 1, "_customerid_value": CONTACT}
    mock_http.get(re.compile(rf"{re.escape(DV)}\?.*"), payload={"value": [incident], "@odata.nextLink": following})
    found = await build(DynamicsConnector).list_tickets(TicketQuery(customer_id=CONTACT, text="it's", limit=1), None)
    assert [t.customer_id for t in found.tickets] == [CONTACT]
    assert found.next == {"skiptoken": '<cookie pagenumber="2" />'}
    call = sent(mock_http, "GET", DV)[0].kwargs
    assert call["params"]["$filter"] == f"_customerid_value eq {CONTACT} and contains(title,'it''s')"
    assert call["params"]["$orderby"] == "modifiedon desc" and "odata.maxpagesize=1" in call["headers"]["Prefer"]


async def test_intercom_searches_tickets_by_contact_and_pages_by_starting_after(build, mock_http):
    answer = {"tickets": [], "pages": {"next": {"starting_after": "WzE3MDAwMDBd"}}}
    mock_http.post(IC, payload=answer)
    query = TicketQuery(customer_id="6657a1c2b1e5f2a3c4d50001", statuses=(TicketStatus.closed,), limit=5)
    found = await build(IntercomConnector).list_tickets(query, {"starting_after": "abc"})
    assert found.next == {"starting_after": "WzE3MDAwMDBd"}
    body = orjson.loads(sent(mock_http, "POST", IC)[0].kwargs["data"])
    assert body["pagination"] == {"per_page": 5, "starting_after": "abc"}
    assert body["query"]["value"][0] == {"field": "contact_ids", "operator": "=", "value": "6657a1c2b1e5f2a3c4d50001"}
    assert {"field": "open", "operator": "=", "value": False} in body["query"]["value"][1]["value"]
