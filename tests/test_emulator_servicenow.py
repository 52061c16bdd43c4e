"""The ServiceNow emulator's Table API driven directly, as PySNC or curl would: shapes, query language, errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Service

AHMED = "a8f98bb0eb32010045e1a5115206fe3a"
INCIDENT = "9d385017c611228701d22104cc95c371"


@pytest.fixture
def sn(svc: Service) -> Iterator[httpx.Client]:
    """A Basic-auth client on the emulator's /api/now/table."""
    base = f"{svc.emulators['servicenow']}/api/now/table"
    with httpx.Client(base_url=base, auth=("admin", "pw"), timeout=5, trust_env=False) as client:
        yield client


def numbers(client: httpx.Client, query: str) -> list[str]:
    r = client.get("/incident", params={"sysparm_query": query, "sysparm_fields": "number"})
    assert r.status_code == 200, r.text
    assert int(r.headers["X-Total-Count"]) == len(r.json()["result"])
    return sorted(x["number"] for x in r.json()["result"])


@pytest.mark.parametrize(("query", "expected"), [
    ("state=2", ["INC0010001"]),
    ("state=2^ORstate=6", ["INC0010001", "INC0010002"]),
    ("state=2^ORstate=6^priority=4", ["INC0010002"]),
    ("state=2^NQstate=6", ["INC0010001", "INC0010002"]),
    ("short_descriptionLIKEnot work", ["INC0010001"]),
    ("numberININC0010002,INC0000000", ["INC0010002"]),
    ("caller_id.email=ahmed@example.ae^active=true", ["INC0010001"]),
    ("short_description=Product^ORstate=6", ["INC0010002"]),
    ("short_description=a^^ORstate=6", []),  # ^^ is a literal caret: one condition, no OR
    ("close_codeISEMPTY", ["INC0010001"]),
])  # fmt: skip
def test_encoded_queries(sn: httpx.Client, query: str, expected: list[str]):
    assert numbers(sn, query) == expected


def test_display_values_and_reference_links(sn: httpx.Client):
    fields = {"sysparm_fields": "caller_id,state"}
    raw = sn.get(f"/incident/{INCIDENT}", params=fields).json()["result"]
    assert raw["caller_id"]["value"] == AHMED and raw["caller_id"]["link"].endswith(f"/sys_user/{AHMED}")
    bare = sn.get(f"/incident/{INCIDENT}", params={**fields, "sysparm_exclude_reference_link": "true"}).json()
    assert bare["result"] == {"caller_id": AHMED, "state": "2"}
    shown = sn.get(f"/incident/{INCIDENT}", params={**fields, "sysparm_display_value": "all"}).json()["result"]
    assert shown["caller_id"]["display_value"] == "Ahmed Al-Mansoori" and shown["state"]["value"] == "2"


def test_customer_contact_is_a_sys_user_child(sn: httpx.Client):
    users = sn.get("/sys_user", params={"sysparm_fields": "sys_id"}).json()["result"]
    contacts = sn.get("/customer_contact", params={"sysparm_fields": "sys_id,account.name"}).json()["result"]
    assert len(users) == 3 and contacts == [{"sys_id": AHMED, "account.name": "Al-Mansoori Trading"}]


def test_errors_are_in_servicenows_shape(sn: httpx.Client):
    r = sn.get(f"/incident/{'0' * 32}")
    assert r.status_code == 404 and r.json() == {"error": {"message": "No Record found", "detail":
        "Record doesn't exist or ACL restricts the record retrieval"}, "status": "failure"}  # fmt: skip
    r = sn.get("/no_such_table")
    assert r.status_code == 400 and r.json()["error"]["message"] == "Invalid table no_such_table"
    r = sn.get("/incident", auth=("admin", "invalid"))
    assert r.status_code == 401 and r.json()["error"]["message"] == "User Not Authenticated"


def test_priority_is_derived_from_impact_and_urgency(sn: httpx.Client):
    r = sn.post("/incident", json={"short_description": "x", "impact": "2", "urgency": "1", "priority": "5"})
    assert r.status_code == 201 and r.json()["result"]["priority"] == "2"
    sys_id = r.json()["result"]["sys_id"]
    r = sn.patch(f"/incident/{sys_id}", json={"urgency": "3", "comments": "hello"})
    assert r.json()["result"]["priority"] == "4" and r.json()["result"]["comments"] == ""


def test_token_endpoint_grants(svc: Service):
    url = f"{svc.emulators['servicenow']}/oauth_token.do"
    with httpx.Client(timeout=5, trust_env=False) as client:
        ok = client.post(url, data={"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"})
        assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer" and ok.json()["expires_in"] == 1799
        basic = client.post(url, data={"grant_type": "client_credentials"}, auth=("c", "s"))
        assert basic.status_code == 200
        bad = client.post(url, data={"grant_type": "password", "client_id": "c", "client_secret": "s",
                                     "username": "u", "password": "invalid"})  # fmt: skip
        assert bad.status_code == 401 and bad.json() == {"error_description": "access_denied", "error": "server_error"}
        token = ok.json()["access_token"]
        r = client.get(f"{svc.emulators['servicenow']}/api/now/table/incident", params={"sysparm_limit": "1"},
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 200 and len(r.json()["result"]) == 1
