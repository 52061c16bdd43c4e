"""The creation-marker hooks against faked HTTP, with answers shaped as each vendor documents them."""

from __future__ import annotations

import re

import orjson
import pytest
from aioresponses import CallbackResult

from connectors.base import MARKER, with_marker, without_marker
from connectors.freshdesk import FreshdeskConnector
from connectors.hubspot import HubSpotConnector
from connectors.salesforce import SalesforceConnector
from connectors.zendesk import ZendeskConnector
from models import TicketCreateRequest
from tests.conftest import sent

SF_API = "https://acme.my.salesforce.com/services/data/v62.0"
SF_CONFIG = {"instance_url": "https://acme.my.salesforce.com", "access_token": "tok-given"}
HS_BASE = "https://api.hubapi.com/crm/objects/2026-09"
FD_BASE = "https://acme.freshdesk.com/api/v2"
TICKET = TicketCreateRequest(crm_type="x", subject="Callback requested", description="Call me back.", customer_id="1001")


@pytest.fixture
def build(make_context):
    def connector(cls, config):
        return cls.from_request(config, make_context())

    return connector


def test_the_marker_is_one_word_per_tenant_and_key_and_none_where_the_vendor_dedupes(build):
    acme = build(FreshdeskConnector, {"domain": "acme", "api_key": "k1"})
    other = build(FreshdeskConnector, {"domain": "other", "api_key": "k1"})
    marker = acme.creation_marker("key-1")
    assert MARKER.fullmatch(marker) and marker == acme.creation_marker("key-1")
    assert marker != acme.creation_marker("key-2") and marker != other.creation_marker("key-1")
    zendesk = build(ZendeskConnector, {"subdomain": "acme", "email": "a@b.c", "api_token": "t"})
    assert zendesk.creation_marker("key-1") is None  # Zendesk dedupes by Idempotency-Key itself


def test_the_marker_line_is_added_and_read_back_away():
    text = with_marker("Call me back.\nSoon.", "idem0123456789abcdef01234567")
    assert text.endswith("\n\n[ref idem0123456789abcdef01234567]")
    assert without_marker(text) == "Call me back.\nSoon." and with_marker("x", None) == "x"
    assert without_marker("[ref not-a-marker]") == "[ref not-a-marker]"


async def test_salesforce_writes_the_marker_into_the_description_and_finds_it_by_subject(build, mock_http):
    sf = build(SalesforceConnector, SF_CONFIG)
    marker = sf.creation_marker("key-1")
    mock_http.post(f"{SF_API}/sobjects/Case", payload={"id": "500000000000100AAA", "success": True, "errors": []})
    case = {"Id": "500000000000100AAA", "Subject": "Callback requested", "Description": with_marker("Call me back.", marker),
            "Status": "New", "Priority": "Medium", "IsClosed": False}  # fmt: skip
    mock_http.get(re.compile(rf"^{re.escape(SF_API)}/sobjects/Case/500000000000100AAA\?.*$"), payload=case)
    ticket = await sf.create_ticket(TICKET.model_copy(update={"customer_id": None}), idempotency_key="k", marker=marker)
    [post] = sent(mock_http, "POST", f"{SF_API}/sobjects/Case")
    assert orjson.loads(post.kwargs["data"])["Description"] == with_marker("Call me back.", marker)
    assert ticket.description == "Call me back."

    # The REST query resource's answer: totalSize, done, records with attributes.
    other = {"attributes": {"type": "Case"}, "Id": "500000000000099AAA", "Description": with_marker("x", "idem" + "0" * 24)}
    mine = {"attributes": {"type": "Case"}, "Id": "500000000000100AAA", "Description": case["Description"]}
    mock_http.get(re.compile(rf"^{re.escape(SF_API)}/query/\?q=.*$"),
                  payload={"totalSize": 2, "done": True, "records": [other, mine]})  # fmt: skip
    assert await sf.find_created(marker, TICKET) == "500000000000100AAA"
    [query] = sent(mock_http, "GET", f"{SF_API}/query/")
    assert query.kwargs["params"]["q"].startswith("SELECT Id, Description FROM Case WHERE Subject = 'Callback requested'")

    mock_http.get(re.compile(rf"^{re.escape(SF_API)}/query/\?q=.*$"), payload={"totalSize": 0, "done": True, "records": []})
    assert await sf.find_created(marker, TICKET) is None


async def test_hubspot_searches_content_for_the_marker_token(build, mock_http):
    hs = build(HubSpotConnector, {"api_key": "pat-na1-secret"})
    marker = hs.creation_marker("key-1")
    captured = []

    def answer(url, **kwargs):
        captured.append(orjson.loads(kwargs["data"]))
        # The CRM search answer: total, results with id, properties, createdAt, updatedAt, archived.
        result = {"id": "3002", "properties": {"content": with_marker("Call me back.", marker), "hs_object_id": "3002"},
                  "createdAt": "2026-12-01T10:00:00Z", "updatedAt": "2026-12-01T10:00:00Z", "archived": False}  # fmt: skip
        return CallbackResult(payload={"total": 1, "results": [result]})

    mock_http.post(f"{HS_BASE}/tickets/search", callback=answer)
    assert await hs.find_created(marker, TICKET) == "3002"
    [flt] = captured[0]["filterGroups"][0]["filters"]
    assert flt == {"propertyName": "content", "operator": "CONTAINS_TOKEN", "value": marker}

    mock_http.post(f"{HS_BASE}/tickets/search", payload={"total": 0, "results": []})
    assert await hs.find_created(marker, TICKET) is None
    assert HubSpotConnector.marker_search_lag_seconds > 0  # the index trails writes: absence is not proof at once


async def test_freshdesk_tags_the_ticket_and_finds_it_with_the_filter_api(build, mock_http):
    fd = build(FreshdeskConnector, {"domain": "acme", "api_key": "key123"})
    marker = fd.creation_marker("key-1")
    stored = {"id": 77, "subject": "Callback requested", "description_text": "Call me back.", "status": 2,
              "priority": 1, "source": 3, "requester_id": 1001, "tags": ["voice", marker]}  # fmt: skip
    mock_http.post(f"{FD_BASE}/tickets", status=201, payload=stored)
    ticket = await fd.create_ticket(TICKET.model_copy(update={"tags": ["voice"]}), idempotency_key="k", marker=marker)
    [post] = sent(mock_http, "POST", f"{FD_BASE}/tickets")
    assert orjson.loads(post.kwargs["data"])["tags"] == ["voice", marker]
    assert ticket.metadata["tags"] == ["voice"]  # the marker tag is the service's, not the caller's

    # The filter API's answer: results (tickets as listed) and total.
    mock_http.get(re.compile(rf"^{re.escape(FD_BASE)}/search/tickets\?.*$"), payload={"results": [stored], "total": 1})
    assert await fd.find_created(marker, TICKET) == "77"
    [search] = sent(mock_http, "GET", f"{FD_BASE}/search/tickets")
    assert search.kwargs["params"] == {"query": f"\"tag:'{marker}'\""}

    mock_http.get(re.compile(rf"^{re.escape(FD_BASE)}/search/tickets\?.*$"), payload={"results": [], "total": 0})
    assert await fd.find_created(marker, TICKET) is None


# --- the shared loop (exactly_once.CreateOnce) over a real in-memory store, the vendor faked ---------------


@pytest.fixture
def once(build, mock_http):
    """A CreateOnce for Freshdesk under key `k`, over a fresh in-memory idempotency store."""
    from exactly_once import CreateOnce
    from idempotency import InMemoryIdempotencyStore

    fd = build(FreshdeskConnector, {"domain": "acme", "api_key": "key123"})
    store = InMemoryIdempotencyStore(60, 100)
    return lambda fp="fp": CreateOnce(fd, fd.ctx, store, "scope", "k", fp)


async def test_an_unknown_outcome_is_remembered_and_the_repeat_finds_the_ticket(once, mock_http):
    from errors import UpstreamUnavailable

    first = once()
    mock_http.post(f"{FD_BASE}/tickets", status=503, body="Service Unavailable")
    with pytest.raises(UpstreamUnavailable) as failed:
        await first.run(TICKET)
    assert failed.value.details["created"] == "unknown"
    record = await first.store.unknown_outcome("scope", "k")
    assert record["fp"] == "fp" and record["marker"] == first.crm.creation_marker("k")

    repeat = once()
    stored = {"id": 77, "subject": "Callback requested", "description_text": "Call me back.", "tags": [record["marker"]]}
    mock_http.get(re.compile(rf"^{re.escape(FD_BASE)}/search/tickets\?.*$"), payload={"results": [stored], "total": 1})
    mock_http.get(f"{FD_BASE}/tickets/77", payload={**stored, "status": 2, "priority": 1, "source": 3})
    ticket = await repeat.run(TICKET)
    assert (ticket.id, repeat.recovered) == ("77", True)
    assert len(sent(mock_http, "POST", f"{FD_BASE}/tickets")) == 1  # the first attempt's only
    assert await repeat.store.unknown_outcome("scope", "k") is None


async def test_a_failed_lookup_keeps_created_unknown_and_says_what_was_searched(once, mock_http):
    from errors import AuthFailed, IdempotencyConflict

    first = once()
    await first.store.remember_unknown("scope", "k", {"fp": "fp", "marker": "m", "at": 0.0})
    mock_http.get(re.compile(rf"^{re.escape(FD_BASE)}/search/tickets\?.*$"), status=401, payload={"code": "invalid_credentials"})
    with pytest.raises(AuthFailed) as failed:
        await first.run(TICKET)
    marker = first.crm.creation_marker("k")
    assert failed.value.details == {"created": "unknown", "searched": {"crm_type": "freshdesk", "marker": marker}}
    assert not sent(mock_http, "POST", f"{FD_BASE}/tickets")  # never created blindly

    with pytest.raises(IdempotencyConflict):
        await once(fp="another body").run(TICKET)
