"""The Salesforce emulator's SOQL, driven over its own HTTP endpoints (the sandbox on loopback), not the connector."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Service

AHMED, LAYLA = "003000000000001AAA", "003000000000002AAA"
SEED_CASE = "Product not working"  # Ahmed's open seed Case
SEED_CLOSED = "Invoice copy requested"  # and his closed one (Priority Low, created 2025-10-02)
SEEDS = {SEED_CASE, SEED_CLOSED}
# Cases created on top of the seed ones, each test starting from this org.
CASES = (
    {"Subject": "Router offline", "Status": "Working", "Priority": "High", "ContactId": AHMED},
    {"Subject": "Billing question", "Status": "Closed", "Priority": "Low", "ContactId": AHMED},
    {"Subject": "Password reset", "Status": "New", "Priority": "Medium", "ContactId": LAYLA},
    {"Subject": "100% broken_screen", "Status": "Escalated", "Priority": "High", "SuppliedName": "Walk-in"},
)
ALL = {*SEEDS, *(c["Subject"] for c in CASES)}


@dataclass
class Org:
    """An HTTP client on the emulator's REST API, version v62.0."""

    client: httpx.Client
    base: str

    def get(self, path: str, **params: str) -> httpx.Response:
        """GET a path under /services/data/v62.0, or a full nextRecordsUrl."""
        url = f"{self.base.removesuffix('/services/data/v62.0')}{path}" if path.startswith("/services") else f"{self.base}{path}"
        return self.client.get(url, params=params)

    def query(self, soql: str, resource: str = "query", batch: int | None = None) -> httpx.Response:
        """GET /query/?q= (or /queryAll/), optionally with Sforce-Query-Options: batchSize=N."""
        headers = {"Sforce-Query-Options": f"batchSize={batch}"} if batch else {}
        return self.client.get(f"{self.base}/{resource}/", params={"q": soql}, headers=headers)

    def records(self, soql: str) -> list[dict[str, Any]]:
        """The records of a query that must succeed in one batch."""
        r = self.query(soql)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["done"] is True and body["totalSize"] == len(body["records"])
        return body["records"]

    def subjects(self, where: str) -> set[str]:
        """The Subjects of the Cases a WHERE clause selects."""
        return {r["Subject"] for r in self.records(f"SELECT Subject FROM Case WHERE {where}")}

    def error(self, soql: str) -> dict[str, Any]:
        """The single error of a refused query: a 400 whose body is Salesforce's array of one error."""
        r = self.query(soql)
        assert r.status_code == 400, r.text
        body = r.json()
        assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"message", "errorCode"}
        return body[0]


@pytest.fixture
def org(svc: Service) -> Iterator[Org]:
    """The reseeded org plus the CASES above, created through the REST API."""
    base = f"{svc.emulators['salesforce']}/services/data/v62.0"
    with httpx.Client(timeout=5, trust_env=False, headers={"Authorization": "Bearer sandbox"}) as client:
        for case in CASES:
            assert client.post(f"{base}/sobjects/Case/", json=case).status_code == 201
        yield Org(client, base)


# --- WHERE --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Priority = 'high'", {SEED_CASE, "Router offline", "100% broken_screen"}),  # text: case-insensitive
        ("Priority != 'High'", {"Billing question", "Password reset", SEED_CLOSED}),
        ("Priority <> 'High'", {"Billing question", "Password reset", SEED_CLOSED}),
        ("Subject < 'C'", {"100% broken_screen", "Billing question"}),
        ("Subject <= 'billing question'", {"100% broken_screen", "Billing question"}),
        ("Subject > 'Product not working'", {"Router offline"}),
        ("Subject >= 'product NOT working'", {SEED_CASE, "Router offline"}),
        ("CreatedDate <= 2025-11-18T10:30:00Z", SEEDS),
        ("CreatedDate > 2025-11-18T10:30:00.000+0000", ALL - SEEDS),
        ("CreatedDate < 2025-11-18T14:30:00+04:00", {SEED_CLOSED}),  # the open seed Case's instant, in +04:00
        # Relative date literals are whole UTC days; the seed Cases are from 2025, the others from today.
        ("CreatedDate = LAST_N_DAYS:1", ALL - SEEDS),
        ("CreatedDate >= YESTERDAY AND CreatedDate <= TODAY", ALL - SEEDS),
        ("CreatedDate < LAST_N_DAYS:1", SEEDS),
        ("CreatedDate = TOMORROW OR CreatedDate > TODAY OR CreatedDate = NEXT_N_DAYS:7", set()),
        ("CreatedDate IN (YESTERDAY, TODAY)", ALL - SEEDS),
        ("IsClosed = true", {"Billing question", SEED_CLOSED}),
        ("IsClosed = false", ALL - {"Billing question", SEED_CLOSED}),
        ("ContactId = null", {"100% broken_screen"}),
        ("ContactId != null", ALL - {"100% broken_screen"}),
        (f"ContactId = '{LAYLA[:15]}'", {"Password reset"}),  # a 15-character id matches its 18-character form
        ("SuppliedName != 'Walk-in'", ALL - {"100% broken_screen"}),  # != keeps the records where it is null
        ("Contact.Name = 'layla hassan'", {"Password reset"}),  # a parent field
        ("Contact.Account.Name = 'Al-Mansoori Trading'", {*SEEDS, "Router offline", "Billing question"}),
        ("subject = 'ROUTER OFFLINE'", {"Router offline"}),  # field names are case-insensitive too
    ],
)
def test_comparison_operators(org: Org, where: str, expected: set[str]):
    assert org.subjects(where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Priority = 'High' AND Status = 'New'", {SEED_CASE}),
        ("Priority = 'Low' OR Status = 'New'", {*SEEDS, "Billing question", "Password reset"}),
        ("Priority = 'Low' OR Status = 'New' OR Subject = 'Router offline'",
         {*SEEDS, "Billing question", "Password reset", "Router offline"}),
        ("NOT Priority = 'High'", {SEED_CLOSED, "Billing question", "Password reset"}),
        ("NOT (Status = 'New' OR Status = 'Closed')", {"Router offline", "100% broken_screen"}),
        ("Priority = 'High' AND (NOT Status = 'New')", {"Router offline", "100% broken_screen"}),
        # The two readings of `a OR b AND c` differ, which is why Salesforce wants the parentheses:
        ("Status = 'Closed' OR (Priority = 'High' AND Status = 'New')", {"Billing question", *SEEDS}),
        ("(Status = 'Closed' OR Priority = 'High') AND Status = 'New'", {SEED_CASE}),
        ("((Status = 'Closed') OR ((Priority = 'Medium')))", {"Billing question", SEED_CLOSED, "Password reset"}),
    ],
)
def test_logical_operators_and_parentheses(org: Org, where: str, expected: set[str]):
    assert org.subjects(where) == expected


@pytest.mark.parametrize(
    ("soql", "token"),
    [
        ("SELECT Id FROM Case WHERE Status = 'Closed' OR Priority = 'High' AND Status = 'New'", "AND"),
        ("SELECT Id FROM Case WHERE Status = 'Closed' AND Priority = 'High' OR Status = 'New'", "OR"),
        ("SELECT Id FROM Case WHERE Status = 'New' AND NOT Priority = 'High'", "NOT"),  # NOT needs its own ( )
    ],
)
def test_and_or_mixed_without_parentheses_is_malformed_as_in_salesforce(org: Org, soql: str, token: str):
    error = org.error(soql)
    column = soql.index(f" {token} ") + 2
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert error["message"] == f"\n{soql}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\nunexpected token: '{token}'"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Subject LIKE 'p%'", {SEED_CASE, "Password reset"}),
        ("Subject LIKE '%WORK%'", {SEED_CASE}),
        ("Subject LIKE 'P_ssword reset'", {"Password reset"}),
        ("Subject LIKE 'P_ssword'", set()),  # the whole value must match
        (r"Subject LIKE '100\% %'", {"100% broken_screen"}),  # an escaped wildcard is itself
        (r"Subject LIKE '%\_%'", {"100% broken_screen"}),
        ("SuppliedName LIKE '%'", {"100% broken_screen"}),  # null never matches
        ("Contact.Account.Name LIKE 'al-%'", {*SEEDS, "Router offline", "Billing question"}),
    ],
)
def test_like(org: Org, where: str, expected: set[str]):
    assert org.subjects(where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Status IN ('new', 'Working')", {SEED_CASE, "Password reset", "Router offline"}),
        ("Status NOT IN ('New', 'Working', 'Closed')", {"100% broken_screen"}),
        (f"ContactId IN ('{LAYLA[:15]}', '{AHMED}')", ALL - {"100% broken_screen"}),
        ("ContactId NOT IN ('" + AHMED + "')", {"Password reset", "100% broken_screen"}),  # nulls are kept
        ("ContactId IN (null)", {"100% broken_screen"}),
    ],
)
def test_in_and_not_in(org: Org, where: str, expected: set[str]):
    assert org.subjects(where) == expected


def test_string_literal_escapes(org: Org):
    subject = "O'Brien \\ said:\n\"hi\"\ttab"
    assert org.client.post(f"{org.base}/sobjects/Case", json={"Subject": subject}).status_code == 201
    assert org.subjects(r"Subject = 'O\'Brien \\ said:\n\"hi\"\ttab'") == {subject}
    assert org.subjects(r"Subject = 'O\u0027Brien \\ said:\N\"hi\"\Ttab'") == {subject}  # \uXXXX; \N as \n


# --- ORDER BY, LIMIT, OFFSET, COUNT() ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("ORDER BY Subject", ["100% broken_screen", "Billing question", SEED_CLOSED, "Password reset", SEED_CASE,
                              "Router offline"]),
        ("ORDER BY Subject DESC LIMIT 2", ["Router offline", SEED_CASE]),
        ("ORDER BY Subject LIMIT 2 OFFSET 1", ["Billing question", SEED_CLOSED]),
        ("ORDER BY Priority DESC, Subject ASC", ["Password reset", "Billing question", SEED_CLOSED, "100% broken_screen",
                                                SEED_CASE, "Router offline"]),
        # Ascending puts nulls first and descending last, unless NULLS says otherwise.
        ("ORDER BY SuppliedName, Subject LIMIT 1", ["Billing question"]),
        ("ORDER BY SuppliedName NULLS LAST, Subject LIMIT 1", ["100% broken_screen"]),
        ("ORDER BY ContactId DESC, Subject", ["Password reset", "Billing question", SEED_CLOSED, SEED_CASE,
                                             "Router offline", "100% broken_screen"]),
        ("ORDER BY ContactId DESC NULLS FIRST, Subject LIMIT 2", ["100% broken_screen", "Password reset"]),
        # Equal keys keep their order (these Cases share a CreatedDate second): the sort is stable.
        ("ORDER BY Contact.Name DESC NULLS LAST, CreatedDate", ["Password reset", SEED_CLOSED, SEED_CASE,
                                                               "Router offline", "Billing question",
                                                               "100% broken_screen"]),
    ],
)
def test_order_by_limit_offset(org: Org, tail: str, expected: list[str]):
    assert [r["Subject"] for r in org.records(f"SELECT Subject FROM Case {tail}")] == expected


def test_count(org: Org):
    r = org.query("SELECT COUNT() FROM Case WHERE Priority = 'High'")
    assert r.status_code == 200 and r.json() == {"totalSize": 3, "done": True, "records": []}
    assert org.query("select count() from case limit 2").json()["totalSize"] == 2


# --- select list ----------------------------------------------------------------------------------------


def test_parent_fields_nest_with_attributes_or_are_null(org: Org):
    records = org.records("SELECT id, NAME, account.name, Account.Type FROM contact ORDER BY Name")
    assert records[0] == {
        "attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{AHMED}"},
        "Id": AHMED, "Name": "Ahmed Al-Mansoori",
        "Account": {"attributes": {"type": "Account", "url": "/services/data/v62.0/sobjects/Account/001000000000001AAA"},
                    "Name": "Al-Mansoori Trading", "Type": "Customer - Direct"},
    }
    assert records[1]["Name"] == "Layla Hassan" and records[1]["Account"] is None
    owner = org.records(f"SELECT Owner.Name, Contact.Account.Tier__c FROM Case WHERE Subject = '{SEED_CASE}'")[0]
    assert owner["Owner"]["Name"] == "Integration User" and owner["Owner"]["attributes"]["type"] == "User"
    assert owner["Contact"]["Account"]["Tier__c"] == "Enterprise"


def test_cases_subquery_answers_a_result_set_or_null(org: Org):
    soql = ("SELECT Id, Name, (SELECT Id, Subject, Status FROM Cases WHERE IsClosed = false ORDER BY CreatedDate DESC "
            "LIMIT 5) FROM Contact ORDER BY Name")
    ahmed, layla = org.records(soql)
    assert list(ahmed) == ["attributes", "Id", "Name", "Cases"]
    cases = ahmed["Cases"]
    assert cases["totalSize"] == 2 and cases["done"] is True
    assert [(c["Subject"], c["Status"]) for c in cases["records"]] == [("Router offline", "Working"), (SEED_CASE, "New")]
    assert set(cases["records"][0]) == {"attributes", "Id", "Subject", "Status"}
    assert cases["records"][0]["attributes"]["type"] == "Case"
    assert [c["Subject"] for c in layla["Cases"]["records"]] == ["Password reset"]
    none = org.records("SELECT Id, (SELECT Id FROM Cases WHERE Status = 'Nothing') FROM Contact")
    assert [r["Cases"] for r in none] == [None, None]
    accounts = org.records("SELECT Name, (SELECT LastName FROM Contacts), (SELECT Subject FROM Cases LIMIT 1) FROM Account")
    assert accounts[0]["Contacts"]["records"][0]["LastName"] == "Al-Mansoori"
    assert accounts[0]["Cases"]["totalSize"] == 1


def test_user_object(org: Org):
    users = org.records("SELECT Id, Name, IsActive FROM User WHERE IsActive = true")
    assert [(u["Id"], u["Name"]) for u in users] == [("005000000000001AAA", "Integration User")]


# --- paging --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["query", "queryAll"])
def test_paging_with_next_records_url_to_the_end(org: Org, resource: str):
    soql = "SELECT Id, Subject FROM Case ORDER BY Subject"
    everything = org.records(soql)
    first = org.query(soql, resource, batch=2).json()
    assert first["totalSize"] == 6 and first["done"] is False and len(first["records"]) == 2
    assert re.fullmatch(rf"/services/data/v62\.0/{resource}/01g[A-Za-z0-9]{{15}}-2", first["nextRecordsUrl"])
    pages, page = [first], first
    while not page["done"]:
        r = org.get(page["nextRecordsUrl"])
        assert r.status_code == 200
        page = r.json()
        assert page["totalSize"] == 6
        pages.append(page)
    assert [len(p["records"]) for p in pages] == [2, 2, 2]
    assert "nextRecordsUrl" not in pages[-1]
    assert [r for p in pages for r in p["records"]] == everything
    again = org.get(first["nextRecordsUrl"]).json()  # a batch may be read again while the cursor lives
    assert again["records"] == pages[1]["records"]


def test_default_batch_is_2000_and_a_bad_locator_is_invalid_query_locator(org: Org):
    assert "nextRecordsUrl" not in org.query("SELECT Id FROM Case").json()
    for locator in ("01gD0000000FAKEAAA-2", "nonsense"):
        r = org.get(f"/query/{locator}")
        assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


# --- errors ----------------------------------------------------------------------------------------------


def test_unknown_field_object_and_relationships_answer_salesforce_bodies(org: Org):
    error = org.error("SELECT Id, Foo FROM Contact")
    assert error == {
        "errorCode": "INVALID_FIELD",
        "message": "\nSELECT Id, Foo FROM Contact\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity "
        "'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field "
        "name. Please reference your WSDL or the describe call for the appropriate names.",
    }
    error = org.error("SELECT Id FROM Foo")
    assert error["errorCode"] == "INVALID_TYPE"
    assert error["message"].endswith("\nERROR at Row:1:Column:16\nsObject type 'Foo' is not supported. If you are "
                                     "attempting to use a custom object, be sure to append the '__c' after the entity "
                                     "name. Please reference your WSDL or the describe call for the appropriate names.")
    error = org.error("SELECT Id, Nope.Name FROM Contact")
    assert error["errorCode"] == "INVALID_FIELD" and "Didn't understand relationship 'Nope' in field path" in error["message"]
    error = org.error("SELECT Id, (SELECT Id FROM Nope) FROM Contact")
    assert error["errorCode"] == "INVALID_TYPE"
    assert "Didn't understand relationship 'Nope' in FROM part of query call" in error["message"]
    assert org.error("SELECT Id FROM Contact WHERE Foo = 'x'")["errorCode"] == "INVALID_FIELD"
    assert org.error("SELECT Id FROM Contact ORDER BY Foo")["errorCode"] == "INVALID_FIELD"
    assert org.error("SELECT Id, id FROM Contact")["message"].endswith("duplicate field selected: id")


def test_a_query_on_several_rows_points_at_the_right_row_and_column(org: Org):
    error = org.error("SELECT Id\nFROM Contact\nWHERE Bogus = 'x'")
    assert error["message"].startswith("\nWHERE Bogus = 'x'\n      ^\nERROR at Row:3:Column:7\nNo such column 'Bogus'")


@pytest.mark.parametrize(
    ("soql", "code", "text"),
    [
        ("SELECT Id FROM Case WHERE IsClosed = 'false'", "INVALID_FIELD",
         "value of filter criterion for field 'IsClosed' must be of type boolean and should not be enclosed in quotes"),
        ("SELECT Id FROM Case WHERE CreatedDate > '2025-01-01'", "INVALID_FIELD",
         "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"),
        ("SELECT Id FROM Case WHERE Subject = true", "INVALID_FIELD",
         "value of filter criterion for field 'Subject' must be of type string and should be enclosed in quotes"),
        ("SELECT Id FROM Case WHERE ContactId = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"),
        ("SELECT Id FROM Case OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"),
    ],
)
def test_literals_of_the_wrong_type(org: Org, soql: str, code: str, text: str):
    error = org.error(soql)
    assert error["errorCode"] == code and error["message"].endswith(f"\n{text}")


@pytest.mark.parametrize(
    "soql",
    [
        "",
        "SELECT",
        "SELECT FROM Contact",
        "SELECT Id Contact",
        "SELECT Id FROM Contact WHERE",
        "SELECT Id FROM Contact WHERE Name",
        "SELECT Id FROM Contact WHERE Name = ",
        "SELECT Id FROM Contact WHERE Name = 'unterminated",
        "SELECT Id FROM Contact WHERE Name LIKE 5",
        "SELECT Id FROM Contact WHERE Name IN ()",
        "SELECT Id FROM Contact WHERE (Name = 'x'",
        "SELECT Id FROM Contact LIMIT x",
        "SELECT Id FROM Contact LIMIT 5 extra",
        "SELECT Id FROM Contact WHERE Name = 'x\\q'",  # an unknown escape
        "SELECT Id FROM Contact WHERE Name = 'x' ;",
        "SELECT Id, (SELECT Id, (SELECT Id FROM CaseComments) FROM Cases) FROM Contact",  # one level of subquery
        "SELECT COUNT(), Id FROM Contact",
    ],
)
def test_syntax_errors_are_malformed_query(org: Org, soql: str):
    assert org.error(soql)["errorCode"] == "MALFORMED_QUERY"
