"""The real service against the Salesforce emulator over loopback: every operation, OAuth, error codes and faults."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Service, error_of

CONTACT = "003000000000001AAA"
CASE = "500000000000001AAA"
TOKEN_PATH = "/services/oauth2/token"




def calls(svc: Service, method: str | None = None, path: str = "") -> list[dict]:
    """What the Salesforce emulator received, optionally filtered by method and path fragment."""
    return [q for q in svc.vendor_requests("salesforce") if (method is None or q["method"] == method) and path in q["path"]]


# --- operations --------------------------------------------------------------------------------------


def test_customer_with_account_and_tier_in_one_round_trip(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "salesforce", "customer_id": CONTACT})
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["id"], c["name"], c["email"], c["phone"], c["tier"]) == (
        CONTACT, "Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567", "Enterprise"
    )
    assert (c["metadata"]["account_name"], c["metadata"]["account_type"]) == ("Al-Mansoori Trading", "Customer - Direct")
    assert len(calls(svc, "GET")) == 1  # Contact and Account together


def test_customer_by_its_15_character_id(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "salesforce", "customer_id": CONTACT[:15]})
    assert r.status_code == 200 and r.json()["id"] == CONTACT


@pytest.mark.parametrize("phone", ["+971501234567", "+971 50 123 4567", "011 971 50 123 4567", "+971-50-123-4567", "+971 (0)50 123 4567"])
def test_caller_id_lookup_finds_the_contact_in_any_spelling(svc: Service, phone: str):
    r = svc.post("/crm/customer/search", {"crm_type": "salesforce", "phone": phone})
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["customers"]] == [CONTACT]
    assert "IN PHONE FIELDS" in calls(svc, "GET", "/search")[0]["query"]["q"]


def test_search_by_email_is_case_insensitive(svc: Service):
    r = svc.post("/crm/customer/search", {"crm_type": "salesforce", "email": "Ahmed@Example.AE"})
    assert [c["tier"] for c in r.json()["customers"]] == ["Enterprise"]


@pytest.mark.parametrize("email", ["x'OR'1'='1@example.com", "a\\'@example.com", "o'brien@example.com", "a\\\\@b.com"])
def test_hostile_email_is_just_an_email_that_matches_nobody(svc: Service, email: str):
    r = svc.post("/crm/customer/search", {"crm_type": "salesforce", "email": email})
    assert r.status_code == 200 and r.json() == {"customers": []}


def test_seeded_case(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": CASE})
    assert r.status_code == 200
    t = r.json()
    assert (t["subject"], t["status"], t["priority"], t["customer_id"]) == ("Product not working", "new", "high", CONTACT)
    assert (t["metadata"]["case_number"], t["metadata"]["origin"]) == ("00001000", "Phone")
    assert t["created_at"] == "2025-11-18T10:30:00Z"


def test_create_then_get_then_update_with_internal_comment(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "salesforce", "subject": "Callback", "description": "Call me back",
                                        "customer_id": CONTACT, "priority": "urgent", "tags": ["voice"]})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["status"], created["priority"], created["customer_id"]) == ("new", "high", CONTACT)
    assert created["metadata"]["account_id"] == "001000000000001AAA"  # Salesforce fills in the Contact's Account
    post = calls(svc, "POST", "/sobjects/Case")[0]["body"]
    assert (post["Origin"], post["Priority"], post["ContactId"]) == ("Phone", "High", CONTACT)

    r = svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": created["id"]})
    assert r.json()["subject"] == "Callback"

    r = svc.post("/crm/ticket/update", {"crm_type": "salesforce", "ticket_id": created["id"], "status": "pending",
                                        "priority": "low", "subject": "Callback today",
                                        "comment": {"body": "verified caller", "public": False}})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert (updated["status"], updated["priority"], updated["subject"]) == ("pending", "low", "Callback today")
    assert updated["metadata"]["vendor_status"] == "On Hold" and updated["metadata"]["comment_id"].startswith("00a")
    assert calls(svc, "PATCH")[0]["body"] == {"Status": "On Hold", "Priority": "Low", "Subject": "Callback today"}
    comment = calls(svc, "POST", "/sobjects/CaseComment")[0]["body"]
    assert comment == {"ParentId": created["id"], "CommentBody": "verified caller", "IsPublished": False}


def test_closing_a_case(svc: Service):
    r = svc.post("/crm/ticket/update", {"crm_type": "salesforce", "ticket_id": CASE, "status": "solved"})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["metadata"]["is_closed"]) == ("closed", True)


def test_create_for_a_caller_found_by_phone(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "salesforce", "subject": "s", "description": "d",
                                        "customer_phone": "+971 50 123 4567"})
    assert r.status_code == 201 and r.json()["customer_id"] == CONTACT


def test_create_for_an_unknown_caller_keeps_their_details_on_the_case(svc: Service):
    r = svc.post("/crm/ticket/create", {"crm_type": "salesforce", "subject": "s", "description": "d",
                                        "customer_email": "new@example.com", "customer_name": "New Person"})
    assert r.status_code == 201 and r.json()["customer_id"] is None
    body = calls(svc, "POST", "/sobjects/Case")[0]["body"]
    assert (body["SuppliedEmail"], body["SuppliedName"]) == ("new@example.com", "New Person")


# --- OAuth ------------------------------------------------------------------------------------------------


def test_expired_session_is_refreshed_once_and_the_call_retried(svc: Service):
    assert svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": CASE}).status_code == 200  # a cached token
    assert svc.control("salesforce", "expire_tokens")["expired"] >= 1
    svc.reset()  # clears the request log; sessions outlive a data reset, as in a real org
    r = svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": CASE})
    assert r.status_code == 200
    assert [(q["method"], q["path"].rsplit("/", 1)[-1]) for q in calls(svc)] == [
        ("GET", CASE), ("POST", "token"), ("GET", CASE)
    ]
    token_form = calls(svc, "POST", TOKEN_PATH)[0]["body"]
    assert "grant_type=client_credentials" in token_form


def test_the_refreshed_token_serves_the_next_requests(svc: Service):
    svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": CASE})
    svc.control("salesforce", "expire_tokens")
    svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": CASE})
    svc.reset()
    for _ in range(3):
        assert svc.post("/crm/customer", {"crm_type": "salesforce", "customer_id": CONTACT}).status_code == 200
    assert not calls(svc, "POST", TOKEN_PATH)


def test_refresh_token_grant(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": CASE, "config": {"refresh_token": "rt-sandbox-1"}})
    assert r.status_code == 200
    token_form = calls(svc, "POST", TOKEN_PATH)[0]["body"]
    assert "grant_type=refresh_token" in token_form


def test_bad_client_secret_is_refused_after_one_refresh_attempt(svc: Service):
    # The contract error itself (crm_auth_failed, message, nothing echoed) is in test_api_contract.py.
    config = {"access_token": "invalid", "client_secret": "invalid"}
    r = svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": CASE, "config": config})
    assert error_of(r)["code"] == "crm_auth_failed"
    assert [q["method"] for q in calls(svc)] == ["GET", "POST"]  # the 401, then the one refresh attempt


def test_invalid_refresh_token_is_crm_auth_failed(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": CASE, "config": {"refresh_token": "invalid"}})
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "crm_auth_failed" and "invalid_grant" in err["message"]


# --- error contract -----------------------------------------------------------------------------------------


def test_id_of_another_type_is_not_found(svc: Service):
    r = svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": CONTACT})
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


def test_vendor_validation_error_is_422_with_fields(svc: Service):
    r = svc.post("/crm/ticket/update", {"crm_type": "salesforce", "ticket_id": CASE, "subject": "x" * 300})
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error" and "STRING_TOO_LONG" in err["message"]
    assert err["details"][0]["fields"] == ["Subject"]


def test_bad_tier_field_in_config_is_invalid_config(svc: Service):
    r = svc.post("/crm/customer", {"crm_type": "salesforce", "customer_id": CONTACT,
                                   "config": {"tier_field": "Tier__c FROM User WHERE Id != null --"}})
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_config"
    assert svc.vendor_requests("salesforce") == []


# --- the emulator speaks Salesforce's wire format (what an SDK such as simple-salesforce relies on) ---------


def test_emulator_token_endpoint_and_rest_answers(svc: Service):
    base = svc.emulators["salesforce"]
    client = httpx.Client(timeout=5, trust_env=False)
    r = client.post(f"{base}{TOKEN_PATH}", data={"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"})
    assert r.status_code == 200
    token = r.json()
    assert {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"} <= set(token)
    assert token["token_type"] == "Bearer" and token["issued_at"].isdigit()
    bad = client.post(f"{base}{TOKEN_PATH}", data={"grant_type": "password", "client_id": "c"})
    assert bad.status_code == 400 and bad.json()["error"] == "unsupported_grant_type"

    auth = {"Authorization": f"Bearer {token['access_token']}"}
    r = client.get(f"{base}/services/data/v62.0/sobjects/Contact/{CONTACT}", headers=auth)
    assert r.status_code == 200 and r.json()["attributes"]["type"] == "Contact"
    assert r.headers["Sforce-Limit-Info"].startswith("api-usage=") and r.headers["Sforce-Limit-Info"].endswith("/15000")
    r = client.get(f"{base}/services/data/v62.0/query/", headers=auth,
                   params={"q": f"SELECT Id, Account.Name FROM Contact WHERE Id = '{CONTACT}'"})
    assert r.json()["records"][0]["Account"]["Name"] == "Al-Mansoori Trading" and r.json()["done"] is True
    r = client.get(f"{base}/services/data/v62.0/query/", headers=auth, params={"q": "SELECT Id FROM Contact WHERE"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_QUERY"
    r = client.get(f"{base}/services/data/v62.0/query/", headers=auth, params={"q": "SELECT Nope FROM Contact"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    r = client.get(f"{base}/services/data/v62.0/search/", headers=auth, params={"q": "FIND {+971} IN PHONE FIELDS RETURNING Contact(Id)"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_SEARCH"  # an unescaped reserved character
    r = client.get(f"{base}/services/data/v62.0/sobjects/Case/500000000000999AAA", headers=auth)
    assert r.status_code == 404 and r.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    r = client.patch(f"{base}/services/data/v62.0/sobjects/Case/{CASE}", headers=auth, json={"CaseNumber": "1"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    r = client.patch(f"{base}/services/data/v62.0/sobjects/Case/{CASE}", headers=auth, json={"Status": "Working"})
    assert r.status_code == 204 and r.content == b""
    r = client.get(f"{base}/services/data/v62.0/sobjects/Case/{CASE}", headers={"Authorization": "Bearer invalid"})
    assert r.status_code == 401 and r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    client.close()


def test_emulator_token_endpoint_takes_client_credentials_by_http_basic(svc: Service):
    """simple-salesforce's client-credentials login sends client_id:client_secret as HTTP Basic, not in the form."""
    base = svc.emulators["salesforce"]
    with httpx.Client(timeout=5, trust_env=False) as client:
        r = client.post(f"{base}{TOKEN_PATH}", data={"grant_type": "client_credentials"}, auth=("cid", "secret"))
        assert r.status_code == 200 and r.json()["access_token"]
        r = client.post(f"{base}{TOKEN_PATH}", data={"grant_type": "client_credentials"}, auth=("invalid", "secret"))
        assert r.status_code == 400 and r.json()["error"] == "invalid_client_id"
        r = client.post(f"{base}{TOKEN_PATH}", data={"grant_type": "client_credentials"}, auth=("cid", "invalid"))
        assert r.status_code == 400 and r.json()["error"] == "invalid_client"


def test_emulator_sosl_returning_is_optional_and_may_name_several_objects(svc: Service):
    base = svc.emulators["salesforce"]
    auth = {"Authorization": "Bearer sandbox"}
    search = f"{base}/services/data/v62.0/search/"
    with httpx.Client(timeout=5, trust_env=False) as client:
        r = client.get(search, headers=auth, params={"q": "FIND {501234567}"})  # simple-salesforce's quick_search
        assert r.status_code == 200
        assert [(x["attributes"]["type"], set(x) - {"attributes"}) for x in r.json()["searchRecords"]] == [
            ("Contact", {"Id"})
        ]
        q = r"FIND {Al\-Mansoori} RETURNING Account(Name, Tier__c), Contact(Id, Name LIMIT 1) LIMIT 5"
        records = client.get(search, headers=auth, params={"q": q}).json()["searchRecords"]
        assert [(x["attributes"]["type"], x.get("Name")) for x in records] == [
            ("Account", "Al-Mansoori Trading"), ("Contact", "Ahmed Al-Mansoori")
        ]
        assert records[0]["Tier__c"] == "Enterprise"
        r = client.get(search, headers=auth, params={"q": "FIND {Ahmed} RETURNING Contact(Id), Nope__c(Id)"})
        assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_TYPE"
