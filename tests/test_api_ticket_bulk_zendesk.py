"""Ticket batches through Zendesk's create_many (job status polled) (the real service against the emulator on loopback)."""

from __future__ import annotations

from connectors.zendesk import ZendeskConnector
from tests.conftest import Service

CONTACT = ZendeskConnector.sandbox_seed["customer_id"]


def calls(svc: Service, path: str) -> list[dict]:
    return [r for r in svc.vendor_requests("zendesk") if r["method"] == "POST" and r["path"].endswith(path)]


def item(n: int, **extra) -> dict:
    return {"subject": f"Bulk {n}", "description": "From a batch.", "idempotency_key": f"zd-bulk-{n}", **extra}


def test_a_batch_is_one_batch_create_and_its_repeat_creates_nothing(svc: Service):
    items = [item(n, customer_id=CONTACT) for n in range(3)] + [{"subject": "No key", "description": "x"}]
    first = svc.post("/crm/ticket/batch", {"crm_type": "zendesk", "tickets": items})
    assert first.status_code == 200 and first.json()["created"] == 4, first.text
    [bulk] = calls(svc, "/tickets/create_many.json")
    assert len(bulk["body"]["tickets"]) == 4
    assert not calls(svc, "/tickets.json")  # no single creates beside it
    subjects = [r["ticket"]["subject"] for r in first.json()["results"]]
    assert subjects == ["Bulk 0", "Bulk 1", "Bulk 2", "No key"]
    again = svc.post("/crm/ticket/batch", {"crm_type": "zendesk", "tickets": items[:3]})
    assert [r["ticket"]["id"] for r in again.json()["results"]] == [r["ticket"]["id"] for r in first.json()["results"][:3]]
    assert all(r["replayed"] for r in again.json()["results"]) and len(calls(svc, "/tickets/create_many.json")) == 1


def test_only_items_not_yet_answered_go_into_the_batch_create(svc: Service):
    alone = {k: v for k, v in item(7).items() if k != "idempotency_key"}
    single = svc.post("/crm/ticket/create", {"crm_type": "zendesk", **alone}, **{"Idempotency-Key": "zd-bulk-7"})
    assert single.status_code == 201, single.text
    r = svc.post("/crm/ticket/batch", {"crm_type": "zendesk", "tickets": [item(7), item(8)]})
    results = r.json()["results"]
    assert results[0]["ticket"]["id"] == single.json()["id"] and results[0]["replayed"]
    [bulk] = calls(svc, "/tickets/create_many.json")
    assert [i["subject"] for i in bulk["body"]["tickets"]] == ["Bulk 8"]


def test_an_input_the_batch_refuses_is_that_items_error(svc: Service):
    bad = item(9, customer_id="999999")  # no such requester: this input only
    r = svc.post("/crm/ticket/batch", {"crm_type": "zendesk", "tickets": [item(10), bad]})
    body = r.json()
    assert r.status_code == 200 and (body["created"], body["failed"]) == (1, 1), r.text
    assert body["results"][0]["status"] == 201 and body["results"][1]["error"]["code"] == "validation_error"
    again = svc.post("/crm/ticket/batch", {"crm_type": "zendesk", "tickets": [item(10)]})
    assert again.json()["results"][0]["replayed"] and len(calls(svc, "/tickets/create_many.json")) == 1


def test_a_lost_batch_answer_is_found_by_each_marker_and_never_created_twice(svc: Service):
    items = [item(n, customer_id=CONTACT) for n in (20, 21)]
    svc.fault("zendesk", "lose_answer", mode="error", method="POST", path="/tickets/create_many.json")
    lost = svc.post("/crm/ticket/batch", {"crm_type": "zendesk", "tickets": items}).json()
    assert lost["failed"] == 2 and all(r["error"]["details"]["created"] == "unknown" for r in lost["results"]), lost
    again = svc.post("/crm/ticket/batch", {"crm_type": "zendesk", "tickets": items})
    results = again.json()["results"]
    assert [r["status"] for r in results] == [201, 201], again.text
    assert len(calls(svc, "/tickets/create_many.json")) == 1  # found by their markers, not made again
    assert [r["ticket"]["subject"] for r in results] == ["Bulk 20", "Bulk 21"]
