"""The HubSpot emulator's CRM search, driven directly over loopback on both path families (no service in between)."""

from __future__ import annotations

import pytest

from tests.conftest import Service
from tests.test_api_hubspot import hubspot_call

FAMILIES = ("/crm/v3/objects", "/crm/objects/2026-09")
# Seed contacts: 12345 Ahmed (customer, +971...), 12346 Layla (lead, (415) 555-2671), 12347 Omar (opportunity, mobile).


def search(svc: Service, body: dict, kind: str = "contacts", family: str = FAMILIES[1]):
    """One search call; the answer as JSON (asserting a 200)."""
    r = hubspot_call(svc, "POST", f"{family}/{kind}/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def ids(svc: Service, *filters: dict, **body) -> list[str]:
    """Ids found by one filter group holding `filters` (AND)."""
    return [c["id"] for c in search(svc, {"filterGroups": [{"filters": list(filters)}], **body})["results"]]


def where(prop: str, operator: str, **rest) -> dict:
    return {"propertyName": prop, "operator": operator, **rest}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (where("firstname", "EQ", value="LAYLA"), ["12346"]),  # case-insensitive
        (where("lifecyclestage", "NEQ", value="lead"), ["12345", "12347"]),
        (where("hs_object_id", "LT", value="12346"), ["12345"]),
        (where("hs_object_id", "LTE", value="12346"), ["12345", "12346"]),
        (where("hs_object_id", "GT", value="12346"), ["12347"]),
        (where("hs_object_id", "GTE", value="12346"), ["12346", "12347"]),
        (where("hs_object_id", "BETWEEN", value="12346", highValue="12347"), ["12346", "12347"]),
        (where("createdate", "GTE", value="1673740800000"), ["12345", "12346", "12347"]),  # ISO dates vs epoch ms
        (where("lifecyclestage", "IN", values=["lead", "opportunity"]), ["12346", "12347"]),
        (where("lifecyclestage", "NOT_IN", values=["lead", "opportunity"]), ["12345"]),
        (where("phone", "HAS_PROPERTY"), ["12345", "12346"]),
        (where("phone", "NOT_HAS_PROPERTY"), ["12347"]),
        (where("company", "CONTAINS_TOKEN", value="trading"), ["12345"]),
        (where("email", "CONTAINS_TOKEN", value="*@example.com"), ["12346", "12347"]),
        (where("company", "NOT_CONTAINS_TOKEN", value="trading"), ["12346", "12347"]),
    ],
)
def test_each_operator(svc: Service, item: dict, expected: list[str]):
    assert ids(svc, item) == expected


def test_groups_or_and_filters_and_on_both_path_families(svc: Service):
    groups = [
        {"filters": [where("firstname", "EQ", value="ahmed"), where("lifecyclestage", "EQ", value="lead")]},  # nobody
        {"filters": [where("email", "EQ", value="omar@example.com")]},
        {"filters": [where("lifecyclestage", "EQ", value="lead"), where("phone", "HAS_PROPERTY")]},
    ]
    for family in FAMILIES:
        found = search(svc, {"filterGroups": groups}, family=family)
        assert [c["id"] for c in found["results"]] == ["12346", "12347"] and found["total"] == 2


def test_query_searches_the_default_searchable_properties(svc: Service):
    assert [c["id"] for c in search(svc, {"query": "al-mans"})["results"]] == ["12345"]  # a word prefix of lastname
    assert [c["id"] for c in search(svc, {"query": "product"}, kind="tickets")["results"]] == ["3001"]
    # Query and filters both apply.
    assert search(svc, {"query": "layla", "filterGroups": [{"filters": [where("lifecyclestage", "EQ", value="customer")]}]})["total"] == 0


def test_sorts_properties_and_paging_to_the_end(svc: Service):
    body = {"sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}], "properties": ["firstname"], "limit": 1}
    seen, pages = [], 0
    while True:
        page = search(svc, body)
        pages += 1
        assert page["total"] == 3 and set(page["results"][0]["properties"]) == {
            "firstname", "createdate", "hs_object_id", "lastmodifieddate"}
        seen += [c["properties"]["firstname"] for c in page["results"]]
        if "paging" not in page:
            break
        body = {**body, "after": page["paging"]["next"]["after"]}
    assert seen == ["Omar", "Layla", "Ahmed"] and pages == 3


def test_limit_is_capped_at_200(svc: Service):
    assert len(search(svc, {"limit": 500})["results"]) == 3


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([{"filters": [where("email", "EQ", value=str(n))]} for n in range(6)], "filter groups"),
        ([{"filters": [where("email", "EQ", value=str(n)) for n in range(7)]}], "in a filter group"),
        ([{"filters": [where("email", "EQ", value=str(n)) for n in range(5)]} for _ in range(4)], "across all groups"),
        ([{"filters": [where("email", "BETWEEN", value="a")]}], "requires a highValue"),
        ([{"filters": [where("email", "LIKE", value="a")]}], "FilterOperator"),
    ],
)
def test_hubspots_limits_and_bad_filters_are_its_400(svc: Service, groups: list, message: str):
    r = hubspot_call(svc, "POST", "/crm/objects/2026-09/contacts/search", json={"filterGroups": groups})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR" and message in r.json()["message"]
