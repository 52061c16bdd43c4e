"""The Freshdesk emulator's filter API (`/search/contacts`, `/search/tickets`) and ticket list, driven directly."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Service

AUTH = ("sandbox-key", "X")
INVALID = {"description": "Validation failed"}
SEED_OPEN, SEED_RESOLVED = 54321, 54320  # Ahmed's seed tickets: open (priority 3, urgent) and resolved (priority 1)


@pytest.fixture
def fd(svc: Service) -> Iterator[httpx.Client]:
    """A client on the emulator's /api/v2, with the seed data."""
    with httpx.Client(base_url=f"{svc.emulators['freshdesk']}/api/v2", auth=AUTH, timeout=5, trust_env=False) as client:
        yield client


def found(client: httpx.Client, kind: str, query: str, **params: str) -> list[int]:
    r = client.get(f"/search/{kind}", params={"query": query, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"results", "total"}
    return sorted(x["id"] for x in body["results"])


def refused(client: httpx.Client, kind: str, **params: str) -> dict:
    r = client.get(f"/search/{kind}", params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["description"] == "Validation failed" and len(body["errors"]) == 1
    return body["errors"][0]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("\"email:'AHMED@example.ae'\"", [1001]),
        ("\"phone:'+971501234567'\"", [1001]),
        ("\"mobile:'(415) 555-2671'\"", [1002]),  # a quoted string may hold spaces and parentheses
        ("\"phone:'+971501234567' OR mobile:'(415) 555-2671'\"", [1001, 1002]),
        ("\"company_id:2001 AND active:true\"", [1001]),
        ("\"(company_id:2001 OR email:null) AND active:false\"", [1003]),  # parentheses group
        ("\"company_id:2001 OR email:null AND active:false\"", [1001, 1003]),  # AND binds tighter than OR
        ("\"email:null\"", [1003]),
        ("\"state:'verified'\"", [1001, 1002]),
        ("\"created_at:>'2023-01-15'\"", [1001, 1002, 1003]),  # :> includes the day itself
        ("\"created_at:<'2023-01-14'\"", []),
        ("\"email:'nobody@example.com'\"", []),
    ],
)
def test_contact_filters(fd, query, expected):
    assert found(fd, "contacts", query) == expected


def test_ticket_filters_with_numbers_dates_tags_and_null(fd):
    created = fd.post("/tickets", json={"subject": "s", "description": "d", "status": 3, "priority": 1, "email": "new@example.org"})
    assert created.status_code == 201
    new = created.json()["id"]
    assert found(fd, "tickets", '"status:2"') == [SEED_OPEN]
    assert found(fd, "tickets", '"status:4"') == [SEED_RESOLVED]
    assert found(fd, "tickets", '"priority:>2"') == [SEED_OPEN]
    assert found(fd, "tickets", '"priority:<1 OR status:3"') == [SEED_RESOLVED, new]  # :< includes the value itself
    assert found(fd, "tickets", "\"tag:'urgent' AND created_at:<'2025-12-01'\"") == [SEED_OPEN]
    assert found(fd, "tickets", "\"created_at:>'2026-01-01'\"") == [new]
    assert found(fd, "tickets", '"type:null AND agent_id:null"') == [SEED_RESOLVED, SEED_OPEN, new]
    r = fd.get("/search/tickets", params={"query": '"type:null"'}).json()
    assert [t["id"] for t in r["results"]] == [new, SEED_OPEN, SEED_RESOLVED] and r["total"] == 3  # newest first


def test_results_come_thirty_a_page_up_to_page_ten(fd):
    for n in range(35):
        assert fd.post("/tickets", json={"subject": f"s{n}", "description": "d", "status": 2, "priority": 2, "email": f"c{n}@example.org"}).status_code == 201
    pages = [fd.get("/search/tickets", params={"query": '"priority:2"', "page": str(p)}).json() for p in (1, 2, 3)]
    assert [len(p["results"]) for p in pages] == [30, 5, 0] and {p["total"] for p in pages} == {35}
    ids = [t["id"] for p in pages for t in p["results"]]
    assert len(set(ids)) == 35
    assert fd.get("/search/tickets", params={"query": '"priority:2"', "page": "10"}).status_code == 200
    error = refused(fd, "tickets", query='"priority:2"', page="11")
    assert error == {"field": "page", "message": "It should be a Positive Integer less than or equal to 10", "code": "invalid_value"}


@pytest.mark.parametrize(
    "query",
    [
        "email:'a@b.com'",  # not in double quotes
        '""',
        "\"email:a@b.com\"",  # a string field needs single quotes
        "\"company_id:'2001'\"",  # a number field takes a bare number
        "\"colour:'red'\"",  # not a searchable field
        "\"email:>'a'\"",  # only numbers and dates compare
        "\"(company_id:2001\"",
        "\"company_id:2001 and active:true\"",  # the operators are upper case
        "\"company_id:2001 AND\"",
        "\"created_at:>'yesterday'\"",
        '"' + "active:true OR " * 40 + 'active:true"',  # longer than 512 characters
    ],
)
def test_bad_queries_get_freshdesks_400(fd, query):
    error = refused(fd, "contacts", query=query)
    assert error["field"] == "query" and error["code"] == "invalid_value" and error["message"]


def test_missing_query_and_unknown_parameters(fd):
    assert refused(fd, "contacts")["field"] == "query"
    assert refused(fd, "contacts", query='"active:true"', per_page="5") == {
        "field": "per_page", "message": "Unexpected/invalid field in request", "code": "invalid_field"}


def test_ticket_list_filters_and_pages(fd, svc):
    for n in range(3):
        fd.post("/tickets", json={"subject": f"s{n}", "description": "d", "status": 2 + n, "priority": 1, "requester_id": 1002})
    listed = fd.get("/tickets").json()
    assert len(listed) == 3  # the seed tickets are older than the default 30 days
    everything = fd.get("/tickets", params={"updated_since": "2020-01-01T00:00:00Z"}).json()
    assert [t["id"] for t in everything][-2:] == [SEED_OPEN, SEED_RESOLVED]  # newest first
    mine = fd.get("/tickets", params={"filter": "new_and_my_open", "updated_since": "2020-01-01T00:00:00Z"}).json()
    assert sorted(t["id"] for t in mine) == sorted(t["id"] for t in everything if t["status"] == 2)
    assert [t["id"] for t in fd.get("/tickets", params={"email": "ahmed@example.ae", "updated_since": "2020-01-01T00:00:00Z"}).json()] == [SEED_OPEN, SEED_RESOLVED]
    assert len(fd.get("/tickets", params={"requester_id": "1002"}).json()) == 3
    r = fd.get("/tickets", params={"per_page": "2"})
    assert len(r.json()) == 2 and r.headers["link"].startswith(f"<{svc.emulators['freshdesk']}/api/v2/tickets?")
    assert fd.get("/tickets", params={"colour": "red"}).status_code == 400
