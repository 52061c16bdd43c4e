"""Zendesk create_many + job status polling + marker search, against faked HTTP (aioresponses)."""

from __future__ import annotations

import re

import orjson

import pytest

from connectors.zendesk import ZendeskConnector
from errors import InvalidRequest, MalformedAnswer, UpstreamUnavailable, ValidationFailed
from models import Ticket, TicketCreateRequest
from tests.conftest import sent

BASE = "https://acme.zendesk.com/api/v2"
CONFIG = {"subdomain": "acme", "email": "agent@acme.com", "api_token": "tok123"}
MARKER = "idem" + "a" * 24


@pytest.fixture
def zendesk(make_context):
    return ZendeskConnector.from_request(CONFIG, make_context())


def record(tid: int, subject: str) -> dict:
    return {"id": tid, "subject": subject, "description": "d", "status": "new", "priority": None, "tags": [MARKER],
            "requester_id": 1001, "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}  # fmt: skip


def ticket(n: int) -> TicketCreateRequest:
    return TicketCreateRequest(subject=f"Bulk {n}", description="From a batch.", customer_id="1001", crm_type="zendesk")


async def test_results_pair_by_index_after_polling_until_completed(zendesk, mock_http, sleeps):
    mock_http.post(f"{BASE}/tickets/create_many.json", payload={"job_status": {"id": "j1", "status": "queued"}})
    mock_http.get(f"{BASE}/job_statuses/j1.json", payload={"job_status": {"id": "j1", "status": "working"}})
    done = {"id": "j1", "status": "completed", "results": [
        {"index": 1, "error": "RecordInvalid", "details": "Subject: is invalid"}, {"index": 0, "id": 7}]}  # fmt: skip
    mock_http.get(f"{BASE}/job_statuses/j1.json", payload={"job_status": done})
    mock_http.get(re.compile(rf"{BASE}/tickets/show_many\.json\?ids=7$"), payload={"tickets": [record(7, "Bulk 0")]})
    results = await zendesk.create_tickets([(ticket(0), MARKER), (ticket(1), None), (ticket(2), None)])
    assert isinstance(results[0], Ticket) and results[0].id == "7"
    assert isinstance(results[1], ValidationFailed) and isinstance(results[2], MalformedAnswer)
    [body] = [orjson.loads(c.kwargs["data"]) for c in sent(mock_http, "POST", f"{BASE}/tickets/create_many.json")]
    assert MARKER in body["tickets"][0]["tags"] and body["tickets"][0]["requester_id"] == 1001
    assert MARKER not in (body["tickets"][1]["tags"] or []) and sleeps.calls == [0.5, 0.5]


async def test_a_failed_job_is_an_upstream_error(zendesk, mock_http):
    mock_http.post(f"{BASE}/tickets/create_many.json", payload={"job_status": {"id": "j2", "status": "failed"}})
    with pytest.raises(UpstreamUnavailable):
        await zendesk.create_tickets([(ticket(0), MARKER)])


async def test_find_created_searches_the_marker_tag(zendesk, mock_http):
    mock_http.get(re.compile(rf"{BASE}/search\.json\?query=.*"), payload={"results": [record(9, "x")], "count": 1})
    assert await zendesk.find_created(MARKER, ticket(0)) == "9"
    [call] = sent(mock_http, "GET", f"{BASE}/search.json")
    assert call.kwargs["params"] == {"query": f"type:ticket tags:{MARKER}"}


async def test_an_input_refused_before_the_call_keeps_the_others_paired(zendesk, mock_http):
    bad = TicketCreateRequest(subject="Bad", description="x", customer_id="not-a-number", crm_type="zendesk")
    mock_http.post(f"{BASE}/tickets/create_many.json", payload={"job_status": {
        "id": "j3", "status": "completed", "results": [{"index": 0, "id": 8}]}})  # fmt: skip
    mock_http.get(re.compile(rf"{BASE}/tickets/show_many\.json\?ids=8$"), payload={"tickets": [record(8, "Bulk 1")]})
    results = await zendesk.create_tickets([(bad, None), (ticket(1), None)])
    assert isinstance(results[0], InvalidRequest) and isinstance(results[1], Ticket) and results[1].id == "8"
