"""The real service against every CRM emulator: customer context, ticket search with cursors, ticket batches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.base import BaseCRMConnector
from registry import CRMS
from tests.conftest import Service, error_of
from tests.test_cache import running

# The vendors whose connector lists a customer's tickets (the others answer partial: not_supported, tested below).
LISTS_TICKETS = {cls.vendor for cls in CRMS if cls.list_tickets is not BaseCRMConnector.list_tickets}
SEEDS = {cls.vendor: dict(cls.sandbox_seed) for cls in CRMS if cls.sandbox_seed and cls.vendor in LISTS_TICKETS}
NO_TICKET_LIST = sorted(cls.vendor for cls in CRMS if cls.sandbox_seed and cls.vendor not in LISTS_TICKETS)
TICKETS_PATH = {"zendesk": "/tickets/requested", "salesforce": "/query", "hubspot": "/tickets/batch/read", "freshdesk": "/tickets",
                "servicenow": "/table/incident", "dynamics": "/incidents", "intercom": "/tickets/search"}


@pytest.mark.parametrize("crm", sorted(SEEDS))
def test_context_by_phone_names_the_caller_and_their_tickets(svc: Service, crm: str):
    r = svc.post("/crm/customer/context", {"crm_type": crm, "phone": SEEDS[crm]["phone"], "deadline_ms": 5000})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer"]["id"] and body["partial"].get("tickets") is None, body["partial"]
    statuses = [t["status"] for t in body["tickets"]]
    assert statuses and statuses[0] in ("new", "open", "pending")  # open ones first
    assert all(t["customer_id"] == body["customer"]["id"] for t in body["tickets"])
    if crm == "hubspot":
        assert [d["id"] for d in body["deals"]] and "deals" not in body["partial"]
    else:
        assert body["partial"]["deals"] == "not_supported"
    assert body["handoffs"] == []


# Salesforce reads the customer and its cases through one /query path: with the cache on, below.
@pytest.mark.parametrize("crm", sorted(set(SEEDS) - {"salesforce"}))
def test_a_fault_on_the_tickets_path_is_a_partial_answer(svc: Service, crm: str):
    svc.post("/crm/customer/context", {"crm_type": crm, "customer_id": SEEDS[crm]["customer_id"], "include": []})
    svc.fault(crm, "error", status=503, count=-1, path=TICKETS_PATH[crm])
    r = svc.post("/crm/customer/context", {"crm_type": crm, "customer_id": SEEDS[crm]["customer_id"], "include": ["tickets"]})
    assert r.status_code == 200, r.text
    assert r.json()["partial"] == {"tickets": "crm_error"} and r.json()["tickets"] == []


def test_a_slow_tickets_part_runs_out_of_its_deadline_alone(svc: Service):
    svc.post("/crm/customer/context", {"crm_type": "zendesk", "customer_id": "1001", "include": []})  # cached
    svc.fault("zendesk", "latency", seconds=3, count=-1, path="/tickets/requested")
    r = svc.post("/crm/customer/context", {"crm_type": "zendesk", "customer_id": "1001", "deadline_ms": 300})
    assert r.status_code == 200, r.text
    assert r.json()["partial"]["tickets"] == "crm_timeout" and r.json()["customer"]["id"] == "1001"


def test_an_unknown_caller_is_the_answers_error(svc: Service):
    r = svc.post("/crm/customer/context", {"crm_type": "zendesk", "phone": "+971509999999"})
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


def test_handoffs_appear_in_the_context(svc: Service):
    context = {"call_id": "call_ctx_1", "customer_name": "Ahmed", "customer_phone": "+971501234567",
               "reason": "customer_request", "transcript": []}
    assert svc.post("/handoff/create", {"chat_type": "livechat", "context": context}).status_code == 201
    r = svc.post("/crm/customer/context", {"crm_type": "zendesk", "phone": "+971 50 123 4567", "include": ["handoffs"]})
    assert [h["call_id"] for h in r.json()["handoffs"]] == ["call_ctx_1"]


@pytest.mark.parametrize("crm", sorted(SEEDS))
def test_search_pages_to_the_end_with_cursors(svc: Service, crm: str):
    more = [{"subject": f"Paging {n}", "description": "x", "customer_id": SEEDS[crm]["customer_id"]} for n in range(2)]
    assert svc.post("/crm/ticket/batch", {"crm_type": crm, "tickets": more}).json()["created"] == 2
    seen, cursor = [], None
    for _ in range(10):
        body = {"crm_type": crm, "customer_id": SEEDS[crm]["customer_id"], "limit": 1, **({"cursor": cursor} if cursor else {})}
        r = svc.post("/crm/ticket/search", body)
        assert r.status_code == 200, r.text
        seen += [t["id"] for t in r.json()["tickets"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 and len(set(seen)) == 4 and cursor is None  # the two seed tickets and the two above


@pytest.mark.parametrize("crm", sorted(SEEDS))
def test_search_by_status(svc: Service, crm: str):
    r = svc.post("/crm/ticket/search", {"crm_type": crm, "customer_id": SEEDS[crm]["customer_id"], "status": ["open", "new"]})
    assert r.status_code == 200, r.text
    assert r.json()["tickets"] and {t["status"] for t in r.json()["tickets"]} <= {"open", "new"}


def test_a_cursor_is_bound_to_its_tenant_and_query(svc: Service):
    svc.post("/crm/ticket/batch", {"crm_type": "zendesk", "tickets": [{"subject": "s", "description": "d", "customer_id": "1001"}]})
    first = svc.post("/crm/ticket/search", {"crm_type": "zendesk", "customer_id": "1001", "limit": 1}).json()
    assert first["next_cursor"]
    other = {"subdomain": "other", "email": "a@b.com", "api_token": "x"}
    for body in ({"config": other}, {"customer_id": "1002"}):
        r = svc.post("/crm/ticket/search", {"crm_type": "zendesk", "customer_id": "1001", "limit": 1,
                                            "cursor": first["next_cursor"], **body})
        assert r.status_code == 400 and error_of(r)["code"] == "invalid_request"
    forged = first["next_cursor"].split(".")[0] + ".AAAA"
    r = svc.post("/crm/ticket/search", {"crm_type": "zendesk", "customer_id": "1001", "limit": 1, "cursor": forged})
    assert r.status_code == 400


@pytest.mark.parametrize("crm", sorted(SEEDS))
def test_a_repeated_batch_creates_each_keyed_item_once(svc: Service, crm: str):
    items = [{"subject": f"Batch {n}", "description": "From a batch.", "customer_id": SEEDS[crm]["customer_id"],
              "idempotency_key": f"batch-{crm}-{n}"} for n in range(3)]
    first = svc.post("/crm/ticket/batch", {"crm_type": crm, "tickets": items})
    assert first.status_code == 200, first.text
    assert first.json()["created"] == 3
    again = svc.post("/crm/ticket/batch", {"crm_type": crm, "tickets": items})
    assert [r["ticket"]["id"] for r in again.json()["results"]] == [r["ticket"]["id"] for r in first.json()["results"]]
    assert all(r["replayed"] for r in again.json()["results"])


def test_a_batch_reports_each_items_error(svc: Service):
    items = [{"subject": "Fine", "description": "ok", "customer_id": "1001"},
             {"subject": "Bad", "description": "no such customer", "customer_id": "not-a-number"}]
    r = svc.post("/crm/ticket/batch", {"crm_type": "zendesk", "tickets": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["status"] == 201 and results[1]["error"]["code"] == "invalid_request"
    assert r.json()["failed"] == 1


@pytest.mark.parametrize("crm", ["freshdesk", "zendesk"])
def test_search_by_status_without_a_customer(svc: Service, crm: str):
    r = svc.post("/crm/ticket/search", {"crm_type": crm, "status": "open", "limit": 5})
    assert r.status_code == 200, r.text
    assert {t["status"] for t in r.json()["tickets"]} <= {"open"}


def test_text_search_where_the_vendor_has_none_is_not_supported(svc: Service):
    r = svc.post("/crm/ticket/search", {"crm_type": "freshdesk", "customer_id": "1", "text": "router"})
    assert r.status_code == 400 and error_of(r)["code"] == "not_supported"


@pytest.mark.parametrize("crm", sorted(SEEDS))
def test_the_seed_caller_has_an_open_and_a_solved_ticket(svc: Service, crm: str):
    """The sandbox's Ahmed has one open and one solved ticket in every CRM, so the README's context example shows both."""
    r = svc.post("/crm/customer/context", {"crm_type": crm, "phone": "+971501234567", "include": ["tickets"]})
    assert r.status_code == 200, r.text
    tickets = r.json()["tickets"]
    assert len(tickets) == 2 and tickets[0]["subject"] == "Product not working", tickets
    assert tickets[1]["subject"].startswith("Invoice copy")
    assert tickets[0]["status"] in ("new", "open", "pending") and tickets[1]["status"] in ("solved", "closed")
    solved = svc.post("/crm/ticket/search", {"crm_type": crm, "customer_id": SEEDS[crm]["customer_id"],
                                             "status": ["solved", "closed"]})
    assert solved.status_code == 200, solved.text
    assert [t["id"] for t in solved.json()["tickets"]] == [tickets[1]["id"]]


@pytest.mark.parametrize("crm", sorted(SEEDS))
def test_open_tickets_come_before_a_newer_solved_one(svc: Service, crm: str):
    solved = {"subject": "Invoice copy", "description": "Sent.", "customer_id": SEEDS[crm]["customer_id"], "status": "solved"}
    assert svc.post("/crm/ticket/batch", {"crm_type": crm, "tickets": [solved]}).json()["created"] == 1
    r = svc.post("/crm/customer/context", {"crm_type": crm, "customer_id": SEEDS[crm]["customer_id"], "include": ["tickets"]})
    statuses = [t["status"] for t in r.json()["tickets"]]
    assert statuses[0] in ("new", "open", "pending") and statuses[-1] in ("solved", "closed"), statuses



@pytest.fixture(scope="module")
def cached() -> Iterator[Service]:
    """A service of its own with the caller cache on (the session's service runs without it)."""
    with running() as service:
        yield service


@pytest.mark.parametrize("crm", sorted(SEEDS))
def test_the_customer_part_is_served_from_the_caller_cache(cached: Service, crm: str):
    cached.reset()
    body = {"crm_type": crm, "phone": SEEDS[crm]["phone"], "include": []}
    assert cached.post("/crm/customer/context", body).status_code == 200
    looked_up = len(cached.vendor_requests(crm))
    again = cached.post("/crm/customer/context", body)
    assert again.status_code == 200 and len(cached.vendor_requests(crm)) == looked_up
    # The cache is shared with the lookup route: the same caller is a hit there too.
    search = cached.post("/crm/customer/search", {"crm_type": crm, "phone": SEEDS[crm]["phone"], "limit": 1})
    assert search.headers["X-Cache"] == "hit"


def test_a_fault_on_salesforces_query_path_leaves_the_cached_customer(cached: Service):
    cached.reset()
    body = {"crm_type": "salesforce", "customer_id": SEEDS["salesforce"]["customer_id"], "include": ["tickets"]}
    assert cached.post("/crm/customer/context", body).status_code == 200
    cached.fault("salesforce", "error", status=503, count=-1, path="/query")
    r = cached.post("/crm/customer/context", body)
    assert r.status_code == 200 and r.json()["partial"] == {"tickets": "crm_error"}


def test_a_vendor_without_a_ticket_list_still_names_the_caller(svc: Service):
    """Every CRM lists tickets today; one that does not answers the customer with partial tickets: not_supported."""
    seeds = {cls.vendor: dict(cls.sandbox_seed) for cls in CRMS}
    for crm in NO_TICKET_LIST:
        r = svc.post("/crm/customer/context", {"crm_type": crm, "customer_id": seeds[crm]["customer_id"]})
        assert r.status_code == 200, r.text
        assert r.json()["customer"]["id"] == seeds[crm]["customer_id"]
        assert r.json()["partial"]["tickets"] == "not_supported"
