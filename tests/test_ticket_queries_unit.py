"""Ticket listing against faked HTTP (aioresponses): each vendor's query, its escaping, paging state; cursors."""

from __future__ import annotations

import re

import pytest

import ticket_cursor
from connectors.base import TicketQuery
from connectors.freshdesk import FreshdeskConnector
from connectors.hubspot import HubSpotConnector
from connectors.salesforce import SalesforceConnector
from connectors.zendesk import ZendeskConnector
from errors import InvalidRequest, NotSupported
from models import TicketStatus
from tests.conftest import sent

ZD = "https://acme.zendesk.com/api/v2"
SF = "https://acme.my.salesforce.com/services/data/v62.0"
FD = "https://acme.freshdesk.com/api/v2"


@pytest.fixture
def build(make_context):
    configs = {
        ZendeskConnector: {"subdomain": "acme", "email": "agent@acme.com", "api_token": "tok123"},
        SalesforceConnector: {"instance_url": "https://acme.my.salesforce.com", "access_token": "tok-given"},
        HubSpotConnector: {"api_key": "pat-na1-secret"},
        FreshdeskConnector: {"domain": "acme.freshdesk.com", "api_key": "key123"},
    }
    return lambda cls: cls.from_request(configs[cls], make_context())


async def test_zendesk_lists_a_customers_tickets_with_cursor_paging(build, mock_http):
    page = {"tickets": [{"id": 7, "status": "open", "requester_id": 1001}], "meta": {"has_more": True, "after_cursor": "xyz"}}
    mock_http.get(re.compile(rf"{ZD}/users/1001/tickets/requested\.json.*"), payload=page)
    found = await build(ZendeskConnector).list_tickets(TicketQuery(customer_id="1001", limit=1), {"after": "abc"})
    assert [t.id for t in found.tickets] == ["7"] and found.next == {"after": "xyz"}
    params = sent(mock_http, "GET", f"{ZD}/users/1001/tickets/requested.json")[0].kwargs["params"]
    assert params == {"page[size]": "1", "page[after]": "abc"}


async def test_zendesk_search_keeps_every_value_one_term(build, mock_http):
    mock_http.get(re.compile(rf"{ZD}/search\.json.*"), payload={"results": [], "next_page": None})
    zendesk = build(ZendeskConnector)
    query = TicketQuery(customer_id="1001", statuses=(TicketStatus.pending,), text="no signal", tags=("vip",))
    await zendesk.list_tickets(query, None)
    sent_query = sent(mock_http, "GET", f"{ZD}/search.json")[0].kwargs["params"]["query"]
    assert sent_query == 'type:ticket requester:1001 status:pending status:hold tags:vip "no signal"'
    for bad in (TicketQuery(text='x" OR type:user'), TicketQuery(tags=("a b",)), TicketQuery(customer_id="1 OR 2")):
        with pytest.raises(InvalidRequest):
            await zendesk.list_tickets(bad, None)


async def test_salesforce_quotes_and_escapes_the_case_query(build, mock_http):
    mock_http.get(re.compile(rf"{SF}/query/\?.*"), payload={"records": [], "done": True})
    query = TicketQuery(customer_id="003000000000001AAA", text="50%_off' OR Id != '", updated_since="2025-01-01T00:00:00Z")
    await build(SalesforceConnector).list_tickets(query, None)
    call = sent(mock_http, "GET", f"{SF}/query/")[0]
    soql = call.kwargs["params"]["q"]
    assert "ContactId = '003000000000001AAA'" in soql and "LastModifiedDate >= 2025-01-01T00:00:00Z" in soql
    assert r"Subject LIKE '%50\%\_off\' OR Id != \'%'" in soql
    assert call.kwargs["headers"]["Sforce-Query-Options"] == "batchSize=200"


async def test_salesforce_pages_inside_a_batch_then_by_its_locator(build, mock_http):
    records = [{"Id": f"500000000000001AA{n}", "Status": "New"} for n in range(3)]
    locator = "/services/data/v62.0/query/01g000000000001AAA-3"
    mock_http.get(re.compile(rf"{SF}/query/\?.*"), payload={"records": records, "done": False, "nextRecordsUrl": locator})
    salesforce = build(SalesforceConnector)
    first = await salesforce.list_tickets(TicketQuery(limit=2), None)
    assert len(first.tickets) == 2 and first.next == {"locator": None, "skip": 2}
    mock_http.get(re.compile(rf"{SF}/query/\?.*"), payload={"records": records, "done": False, "nextRecordsUrl": locator})
    second = await salesforce.list_tickets(TicketQuery(limit=2), first.next)
    assert len(second.tickets) == 1 and second.next == {"locator": locator, "skip": 0}
    with pytest.raises(InvalidRequest):  # a locator must be Salesforce's own query path
        await salesforce.list_tickets(TicketQuery(), {"locator": "https://evil.example/x", "skip": 0})
    with pytest.raises(NotSupported):
        await salesforce.list_tickets(TicketQuery(tags=("vip",)), None)


async def test_hubspot_searches_by_association_and_stage(build, mock_http):
    mock_http.post(re.compile(r"https://api\.hubapi\.com/crm/objects/2026-09/tickets/search"),
                   payload={"results": [{"id": "3001", "properties": {"hs_pipeline_stage": "1"}}],
                            "paging": {"next": {"after": "1"}}})
    found = await build(HubSpotConnector).list_tickets(TicketQuery(customer_id="12345", statuses=(TicketStatus.new,)), None)
    assert found.next == {"after": "1"} and found.tickets[0].customer_id == "12345"
    body = sent(mock_http, "POST", "https://api.hubapi.com/crm/objects/2026-09/tickets/search")[0].kwargs["data"]
    assert b'"associations.contact"' in body and b'"values":["1"]' in body


async def test_freshdesk_lists_by_requester_and_keeps_status_per_page(build, mock_http):
    listed = [{"id": 1, "status": 2, "requester_id": 1001}, {"id": 2, "status": 4, "requester_id": 1001}]
    mock_http.get(re.compile(rf"{FD}/tickets\?.*"), payload=listed, headers={"link": f'<{FD}/tickets?page=2>; rel="next"'})
    found = await build(FreshdeskConnector).list_tickets(TicketQuery(customer_id="1001", statuses=(TicketStatus.solved,)), None)
    assert [t.id for t in found.tickets] == ["2"] and found.next == {"page": 2}
    with pytest.raises(NotSupported):
        await build(FreshdeskConnector).list_tickets(TicketQuery(text="x"), None)


def test_a_cursor_holds_only_for_its_tenant_query_and_key():
    cursor = ticket_cursor.encode({"after": "x"}, tenant="t1", query="q1", key="k")
    assert ticket_cursor.decode(cursor, tenant="t1", query="q1", key="k") == {"after": "x"}
    for tenant, query, key in (("t2", "q1", "k"), ("t1", "q2", "k"), ("t1", "q1", "other")):
        with pytest.raises(InvalidRequest):
            ticket_cursor.decode(cursor, tenant=tenant, query=query, key=key)
    body, mac = cursor.split(".")
    for forged in (f"{body}x.{mac}", "not-base64!.AAAA", "", f"{body}."):
        with pytest.raises(InvalidRequest):
            ticket_cursor.decode(forged, tenant="t1", query="q1", key="k")


async def test_hubspot_lists_a_contacts_tickets_through_its_associations(build, mock_http):
    base = "https://api.hubapi.com/crm/objects/2026-09"
    links = {"id": "12345", "associations": {"tickets": {"results": [{"id": "3001"}, {"id": "3010"}, {"id": "999"}]}}}
    mock_http.get(re.compile(rf"{base}/contacts/12345\?.*"), payload=links)
    mock_http.post(f"{base}/tickets/batch/read", payload={"results": [{"id": "3001"}, {"id": "3010"}]})
    found = await build(HubSpotConnector).list_tickets(TicketQuery(customer_id="12345", limit=2), None)
    assert [t.id for t in found.tickets] == ["3010", "3001"] and found.next == {"offset": 2}
    assert b'"inputs":[{"id":"3010"},{"id":"3001"}]' in sent(mock_http, "POST", f"{base}/tickets/batch/read")[0].kwargs["data"]
