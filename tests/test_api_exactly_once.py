"""Exactly-once creates through the real service: a create whose answer is lost is found, never made twice."""

from __future__ import annotations

import pytest

from connectors.freshdesk import FreshdeskConnector
from connectors.hubspot import HubSpotConnector
from tests.conftest import Service, error_of
from tests.test_api_contract import VENDORS
from tests.test_api_handoff import handoff, sara_offline

# Per CRM that finds a lost create by its marker (not one that dedupes creates itself): a seeded customer and the
# path substring of its create call, from the registered class and its contract row (tests/vendor_facts/).
CRMS = {
    v.crm_type: (v.customer_id, v.create_path) for v in VENDORS if not v.forwards_idempotency_key
}
MODES = ("reset", "error", "stall")


def create(svc: Service, crm_type: str, key: str, subject: str = "Callback requested") -> tuple[int, dict, str]:
    """POST /crm/ticket/create with an Idempotency-Key: (status, body, Idempotent-Replayed)."""
    body = {"crm_type": crm_type, "customer_id": CRMS[crm_type][0], "subject": subject,
            "description": "Caller asked for a callback about order ORD12345.", "priority": "high"}
    r = svc.post("/crm/ticket/create", body, **{"Idempotency-Key": key})
    return r.status_code, r.json(), r.headers.get("Idempotent-Replayed", "")


def tickets(svc: Service, vendor: str) -> list[str]:
    """Every ticket the emulator holds now."""
    return svc.client.get(f"{svc.sandbox_root}/_sandbox/tickets", params={"vendor": vendor}).json()


def lose_answer(svc: Service, vendor: str, mode: str) -> None:
    """The next create really happens in the emulator; its answer never reaches the service."""
    svc.fault(vendor, "lose_answer", mode=mode, method="POST", path=CRMS[vendor][1], seconds=4.0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("crm_type", sorted(CRMS))
def test_a_lost_answer_is_found_and_replayed_not_created_again(svc: Service, crm_type: str, mode: str):
    before = tickets(svc, crm_type)
    lose_answer(svc, crm_type, mode)
    status, body, _ = create(svc, crm_type, f"lost-{crm_type}-{mode}")
    assert status in (502, 504) and body["error"]["details"]["created"] == "unknown", body
    assert "same Idempotency-Key" in body["error"]["message"]
    [made] = set(tickets(svc, crm_type)) - set(before)  # the first attempt did create

    status, ticket, replayed = create(svc, crm_type, f"lost-{crm_type}-{mode}")
    assert (status, replayed) == (201, "true"), ticket
    assert ticket["id"] == made and ticket["subject"] == "Callback requested"
    assert ticket["description"] == "Caller asked for a callback about order ORD12345."  # the marker stays hidden
    assert len(tickets(svc, crm_type)) == len(before) + 1

    status, again, replayed = create(svc, crm_type, f"lost-{crm_type}-{mode}")  # and from the store from now on
    assert (status, replayed, again["id"]) == (201, "true", made)
    assert len(tickets(svc, crm_type)) == len(before) + 1


def test_salesforce_proves_absence_so_a_create_that_never_arrived_is_made_once(svc: Service):
    before = tickets(svc, "salesforce")
    svc.fault("salesforce", "reset", method="POST", path="/sobjects/Case")  # dropped before the emulator acts
    status, body, _ = create(svc, "salesforce", "never-arrived")
    assert status == 502 and body["error"]["details"]["created"] == "unknown"
    assert tickets(svc, "salesforce") == before

    status, ticket, replayed = create(svc, "salesforce", "never-arrived")
    assert (status, replayed) == (201, "false"), ticket
    assert set(tickets(svc, "salesforce")) - set(before) == {ticket["id"]}
    queries = [q["query"]["q"] for q in svc.vendor_requests("salesforce") if "/query" in q["path"]]
    assert any("FROM Case WHERE Subject = 'Callback requested'" in q for q in queries)


@pytest.mark.parametrize("crm_type", ["hubspot", "freshdesk"])
def test_a_search_that_may_trail_writes_refuses_then_creates_once_the_lag_is_over(
    svc: Service, crm_type: str, monkeypatch: pytest.MonkeyPatch
):
    before = tickets(svc, crm_type)
    svc.fault(crm_type, "reset", method="POST", path=CRMS[crm_type][1])
    status, body, _ = create(svc, crm_type, f"never-arrived-{crm_type}")
    assert body["error"]["details"]["created"] == "unknown" and tickets(svc, crm_type) == before

    err = error_of(svc.post("/crm/ticket/create", {
        "crm_type": crm_type, "customer_id": CRMS[crm_type][0], "subject": "Callback requested", "priority": "high",
        "description": "Caller asked for a callback about order ORD12345."}, **{"Idempotency-Key": f"never-arrived-{crm_type}"}))
    assert (err["code"], err["retryable"], err["details"]["created"]) == ("idempotency_conflict", True, "unknown")
    assert err["details"]["searched"]["marker"].startswith("idem") and 0 < err["retry_after_seconds"] <= 60
    assert tickets(svc, crm_type) == before

    connector = {"hubspot": HubSpotConnector, "freshdesk": FreshdeskConnector}[crm_type]
    monkeypatch.setattr(connector, "marker_search_lag_seconds", 0.0)  # as if the index had caught up
    status, ticket, replayed = create(svc, crm_type, f"never-arrived-{crm_type}")
    assert (status, replayed) == (201, "false"), ticket
    assert set(tickets(svc, crm_type)) - set(before) == {ticket["id"]}


@pytest.mark.parametrize("crm_type", sorted(CRMS))
def test_another_body_under_an_unknown_key_is_409_and_creates_nothing(svc: Service, crm_type: str):
    lose_answer(svc, crm_type, "error")
    create(svc, crm_type, f"other-{crm_type}")
    after_first = tickets(svc, crm_type)
    status, body, _ = create(svc, crm_type, f"other-{crm_type}", subject="Something else")
    assert (status, body["error"]["code"]) == (409, "idempotency_conflict")
    assert tickets(svc, crm_type) == after_first


def test_zendesk_dedupes_by_the_key_itself(svc: Service):
    before = tickets(svc, "zendesk")
    svc.fault("zendesk", "lose_answer", mode="error", method="POST", path="/tickets.json")
    body = {"crm_type": "zendesk", "customer_id": "1001", "subject": "Callback", "description": "Call me back."}
    first = svc.post("/crm/ticket/create", body, **{"Idempotency-Key": "zendesk-lost"})
    assert first.status_code == 201, first.text  # resent at once with the same key: Zendesk replays its answer
    assert set(tickets(svc, "zendesk")) - set(before) == {first.json()["id"]}
    creates = [q for q in svc.vendor_requests("zendesk") if q["method"] == "POST" and q["path"].startswith("/api/v2/tickets")]
    assert [q["idempotency_key"] for q in creates] == ["zendesk-lost", "zendesk-lost"]
    assert not [q for q in svc.vendor_requests("zendesk") if "search" in q["path"]]  # no marker search


@pytest.mark.parametrize("crm_type", sorted(CRMS))
def test_a_handoff_whose_fallback_ticket_answer_was_lost_finds_that_ticket(svc: Service, crm_type: str):
    sara_offline(svc)
    before = tickets(svc, crm_type)
    lose_answer(svc, crm_type, "reset")
    request = handoff(f"lost-fallback-{crm_type}", config={"fallback_crm": crm_type})
    err = error_of(svc.post("/handoff/create", request))
    assert err["code"] == "handoff_failed" and err["details"]["fallback"]["created"] == "unknown"
    [made] = set(tickets(svc, crm_type)) - set(before)

    r = svc.post("/handoff/create", request)
    assert r.status_code == 201, r.text
    assert r.json()["fallback"]["ticket_id"] == made
    assert len(tickets(svc, crm_type)) == len(before) + 1
