"""The Zendesk emulator's Search API and pagination, driven directly over loopback as an SDK would."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import Service, error_of

AUTH = ("agent@example.com/token", "sandbox-token")


@pytest.fixture
def zd(svc: Service) -> Iterator[httpx.Client]:
    """A client on the emulator's /api/v2, with the seed data plus five tickets from five new requesters."""
    with httpx.Client(base_url=f"{svc.emulators['zendesk']}/api/v2", auth=AUTH, timeout=5, trust_env=False) as client:
        for n in range(5):
            ticket = {"subject": f"Caller {n}", "comment": {"body": f"body {n}"}, "tags": ["voice", f"n{n}"],
                      "priority": ("low", "normal", "high", "urgent", None)[n], "status": ("new", "open", "pending", "solved", "closed")[n],
                      "requester": {"name": f"Caller {n}", "email": f"caller{n}@example.org"}}
            assert client.post("/tickets.json", json={"ticket": ticket}).status_code == 201
        yield client


def search(client: httpx.Client, query: str, **params: str) -> list[tuple[str, int]]:
    r = client.get("/search.json", params={"query": query, **params})
    assert r.status_code == 200, r.text
    return [(x["result_type"], x["id"]) for x in r.json()["results"]]


def ids(client: httpx.Client, query: str, **params: str) -> list[int]:
    return [i for _, i in search(client, query, **params)]


def test_search_answers_results_with_their_type_and_zendesks_page_fields(zd):
    body = zd.get("/search.json", params={"query": "type:user email:ahmed@example.ae"}).json()
    assert set(body) == {"results", "count", "next_page", "previous_page", "facets"}
    assert body["count"] == 1 and body["next_page"] is None and body["previous_page"] is None
    assert body["results"][0]["result_type"] == "user" and body["results"][0]["name"] == "Ahmed Al-Mansoori"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type:user email:AHMED@example.ae", [("user", 1001)]),  # case-insensitive
        ('type:user email:"layla@example.com"', [("user", 1002)]),  # quoted value
        ("type:user phone:*4155552671", [("user", 1002)]),  # any stored spelling of the digits
        ("type:user phone:+971501234567", [("user", 1001)]),
        ("type:user role:admin", [("user", 2001)]),
        ("type:organization Mansoori", [("organization", 501)]),  # free text, word of a hyphenated name
        ("type:user email:*@example.com", [("user", 1002), ("user", 2001)]),  # wildcard
        ("layla", [("user", 1002)]),  # free text over every type
        ('"device stopped working"', [("ticket", 12345)]),  # quoted phrase
        ("type:user email:nobody@example.com", []),
    ],
)
def test_search_keywords_free_text_quotes_and_wildcards(zd, query, expected):
    assert search(zd, query) == expected


SEED_OPEN, SEED_SOLVED = 12345, 12344  # Ahmed's two seed tickets: open (high, technical) and solved (low, billing)


def test_ticket_status_priority_and_comparisons(zd):
    seeded = [t for t in ids(zd, "type:ticket") if t not in (SEED_OPEN, SEED_SOLVED)]
    caller = dict(enumerate(seeded))  # ticket of caller n
    assert ids(zd, "type:ticket status:pending") == [caller[2]]
    assert ids(zd, "type:ticket status:new status:solved") == [SEED_SOLVED, caller[0], caller[3]]  # same keyword: OR
    assert ids(zd, "type:ticket status<pending") == [SEED_OPEN, caller[0], caller[1]]  # new, open < pending
    assert ids(zd, "type:ticket status>=solved") == [SEED_SOLVED, caller[3], caller[4]]
    assert ids(zd, "type:ticket priority>normal") == [SEED_OPEN, caller[2], caller[3]]
    assert ids(zd, "type:ticket priority:none") == [caller[4]]
    assert ids(zd, "type:ticket created<2026-01-01") == [SEED_OPEN, SEED_SOLVED]


def test_requester_tags_and_negation(zd):
    seeded = [t for t in ids(zd, "type:ticket") if t not in (SEED_OPEN, SEED_SOLVED)]
    assert ids(zd, "type:ticket requester:ahmed@example.ae") == [SEED_OPEN, SEED_SOLVED]
    assert ids(zd, "type:ticket requester:1001") == [SEED_OPEN, SEED_SOLVED]
    assert ids(zd, "type:ticket tags:voice tag:n1") == seeded  # tags and tag are one keyword: OR
    assert ids(zd, "type:ticket tags:technical") == [SEED_OPEN]
    assert ids(zd, "type:ticket -tags:voice") == [SEED_OPEN, SEED_SOLVED]
    assert ids(zd, "type:ticket -status:closed -status:solved") == [SEED_OPEN, *seeded[:3]]
    assert search(zd, "-type:ticket -type:user") == [("organization", 501)]
    assert search(zd, "type:user -email:*@example.org") == [("user", 1001), ("user", 1002), ("user", 2001)]


def test_sort_by_and_sort_order(zd):
    by_priority = ids(zd, "type:ticket", sort_by="priority", sort_order="desc")
    assert by_priority[0] == ids(zd, "type:ticket priority:urgent")[0]
    assert by_priority[-1] == ids(zd, "type:ticket priority:none")[0]  # no priority: last
    asc = ids(zd, "type:ticket", sort_by="status", sort_order="asc")
    statuses = [zd.get(f"/tickets/{t}.json").json()["ticket"]["status"] for t in asc]
    assert statuses == ["new", "open", "open", "pending", "solved", "solved", "closed"]
    assert ids(zd, "type:ticket", sort_by="created_at") == sorted(ids(zd, "type:ticket"), reverse=True)


def test_search_pages_by_offset_to_the_end_with_links_back_at_the_sandbox(zd, svc):
    seen, url, pages = [], "/search.json?query=type:user&per_page=3", 0
    everyone = ids(zd, "type:user")
    while url:
        body = zd.get(url).json()
        seen += [x["id"] for x in body["results"]]
        assert body["count"] == len(everyone)
        if pages:
            assert body["previous_page"].startswith(f"{svc.emulators['zendesk']}/api/v2/search.json?")
        url, pages = body["next_page"], pages + 1
        if url:
            assert url.startswith(f"{svc.emulators['zendesk']}/api/v2/search.json?")
            assert parse_qs(urlsplit(url).query)["query"] == ["type:user"]
    assert seen == everyone and pages == 3 and len(everyone) == 8


def test_search_past_1000_results_is_zendesks_422_and_a_bad_query_a_400(zd):
    r = zd.get("/search.json", params={"query": "type:user", "page": "11", "per_page": "100"})
    assert r.status_code == 422 and r.json()["error"] == "invalid"
    r = zd.get("/search.json", params={"query": ""})
    assert r.status_code == 400 and set(r.json()) == {"error", "description"}
    r = zd.get("/search.json", params={"query": "email:"})
    assert r.status_code == 400


def test_search_count_and_export(zd, svc):
    assert zd.get("/search/count.json", params={"query": "type:user"}).json() == {"count": 8}
    seen, url = [], "/search/export.json?query=created>2000-01-01&filter[type]=user&page[size]=3"
    while url:
        body = zd.get(url).json()
        assert body["links"]["prev"] is None and body["meta"]["before_cursor"] is None  # export goes forward only
        assert all(x["result_type"] == "user" for x in body["results"])
        seen += [x["id"] for x in body["results"]]
        url = body["links"]["next"] if body["meta"]["has_more"] else None
        if url:
            assert url.startswith(f"{svc.emulators['zendesk']}/api/v2/search/export.json?")
    assert len(seen) == 8 and len(set(seen)) == 8
    r = zd.get("/search/export.json", params={"query": "type:user", "filter[type]": "user"})
    assert r.status_code == 400  # the type goes in filter[type], never in the query
    assert zd.get("/search/export.json", params={"query": "x"}).status_code == 400


@pytest.mark.parametrize(("path", "key"), [("/users.json", "users"), ("/tickets.json", "tickets"), ("/organizations.json", "organizations")])
def test_lists_page_by_cursor_to_the_end_and_back(zd, svc, path, key):
    everything = zd.get(path).json()[key]
    forward, url, last = [], f"{path}?page[size]=2", None
    while url:
        last = zd.get(url).json()
        forward += [x["id"] for x in last[key]]
        assert set(last["meta"]) == {"has_more", "after_cursor", "before_cursor"}
        url = last["links"]["next"] if last["meta"]["has_more"] else None
        if url:
            assert url.startswith(f"{svc.emulators['zendesk']}/api/v2{path}?")
    assert forward == sorted(x["id"] for x in everything)
    assert last["links"]["next"]  # as Zendesk does: the last page still links on; has_more says stop
    assert zd.get(last["links"]["next"]).json()[key] == []
    backward, url = [], last["links"]["prev"] if len(forward) > 2 else None
    while url:
        page = zd.get(url).json()
        backward = [x["id"] for x in page[key]] + backward
        url = page["links"]["prev"] if page["meta"]["has_more"] else None
    assert backward + [x["id"] for x in last[key]] == forward


def test_lists_page_by_offset_with_next_page_links(zd, svc):
    body = zd.get("/users.json", params={"per_page": "5"}).json()
    assert body["count"] == 8 and len(body["users"]) == 5 and body["previous_page"] is None
    assert body["next_page"].startswith(f"{svc.emulators['zendesk']}/api/v2/users.json?")
    rest = zd.get(body["next_page"]).json()
    assert len(rest["users"]) == 3 and rest["next_page"] is None and rest["previous_page"]


def test_requested_tickets_of_a_user_page_by_cursor(zd):
    body = zd.get("/users/1001/tickets/requested.json", params={"page[size]": "1"}).json()
    assert [t["id"] for t in body["tickets"]] == [SEED_SOLVED] and body["meta"]["has_more"] is True
    body = zd.get(body["links"]["next"]).json()
    assert [t["id"] for t in body["tickets"]] == [SEED_OPEN] and body["meta"]["has_more"] is False
    assert zd.get(body["links"]["next"]).json()["tickets"] == []
    assert zd.get("/users/999999/tickets/requested.json").status_code == 404


def test_bad_paging_parameters_get_a_400(zd):
    for params in ({"page[size]": "0"}, {"page[size]": "x"}, {"page[after]": "not-a-cursor"}):
        r = zd.get("/users.json", params=params)
        assert r.status_code == 400 and r.json()["error"] == "InvalidPaginationParameter"


def test_users_search_keeps_its_shape_with_next_page_links(zd, svc):
    body = zd.get("/users/search.json", params={"query": "example.org", "per_page": "2", "include": "organizations"}).json()
    assert body["count"] == 5 and len(body["users"]) == 2 and "result_type" not in body["users"][0]
    assert body["next_page"].startswith(f"{svc.emulators['zendesk']}/api/v2/users/search.json?")
    assert body["organizations"] == []


def test_the_connectors_email_search_over_the_emulator_keeps_exact_matches_and_refuses_quotes(zd, svc):
    r = svc.post("/crm/customer/search", {"crm_type": "zendesk", "email": "CALLER1@example.org"})
    assert r.status_code == 200 and [c["id"] for c in r.json()["customers"]] == [str(ids(zd, "type:user email:caller1@example.org")[0])]
    sent_before = len(svc.vendor_requests("zendesk"))
    r = svc.post("/crm/customer/search", {"crm_type": "zendesk", "email": 'caller1@example.org"role:admin'})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_request" and "role:admin" not in r.text
    assert len(svc.vendor_requests("zendesk")) == sent_before  # refused before any call
