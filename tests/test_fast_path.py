"""The known caller's fast path (fastpath.py): a fresh hit answered before FastAPI, against the real service."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Service, error_of, make_settings, start_service

KEY = "ops:ops-key-0123456789"
AUTH = {"X-API-Key": "ops-key-0123456789"}
CUSTOMER = {"crm_type": "zendesk", "customer_id": "1001"}
SEARCH = {"crm_type": "zendesk", "phone": "+971501234567"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Any, Path, list[int]]]:
    """A service with the caller cache and keys on, auditing to a file; `learns` counts the route's passes."""
    audit_file = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    settings = make_settings(caller_cache_enabled=True, connectors_api_keys=KEY, audit_log=str(audit_file))
    server, thread, url = start_service(settings)
    app = server.config.app
    known, learns = app.state.known_bodies, [0]
    learn = known.learn

    def counted(request: Any, key: str) -> None:
        learns[0] += 1
        learn(request, key)

    known.learn = counted  # the route calls it on every pass through the cache: a fast-path answer does not
    client = httpx.Client(timeout=10, trust_env=False, headers=AUTH)
    info = client.get(f"{url}/sandbox").json()
    svc = Service(url=url, client=client, sandbox_root=info["control"].removesuffix("/_sandbox"), emulators=info["emulators"])
    yield svc, app, audit_file, learns
    client.close()
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fast(served):
    svc, app, audit_file, learns = served
    svc.reset()  # forgets cached callers; the learnt bodies stay, and are answered only for fresh entries
    return served


def post(svc: Service, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return svc.client.post(f"{svc.url}{path}", content=orjson.dumps(body), headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize("path,body", [("/crm/customer", CUSTOMER), ("/crm/customer/search", SEARCH)])
def test_a_fast_hit_is_byte_identical_to_the_routes_hit(fast, path, body):
    svc, _, _, learns = fast
    miss, route_hit = post(svc, path, body), post(svc, path, body)  # the route learns the body on the miss
    before = learns[0]
    fast_hit = post(svc, path, body)
    assert (miss.headers["X-Cache"], route_hit.headers["X-Cache"], fast_hit.headers["X-Cache"]) == ("miss", "hit", "hit")
    assert learns[0] == before, "the fast path answered, not the route"
    assert fast_hit.content == route_hit.content == miss.content and fast_hit.status_code == 200
    assert dict(fast_hit.headers) | {"x-request-id": "", "age": ""} == dict(route_hit.headers) | {"x-request-id": "", "age": ""}
    assert fast_hit.headers["X-Request-ID"] != route_hit.headers["X-Request-ID"] and int(fast_hit.headers["Age"]) >= 0


def test_a_fast_hit_writes_the_access_and_audit_lines(fast, caplog):
    svc, _, audit_file, learns = fast
    caplog.set_level(logging.INFO, logger="connectors")
    post(svc, "/crm/customer", CUSTOMER)
    before = learns[0]
    hit = post(svc, "/crm/customer", CUSTOMER, **{"X-Request-ID": "fast-path-audit-1"})
    assert hit.headers["X-Cache"] == "hit" and learns[0] == before
    svc.client.get(f"{svc.url}/health")  # the lines are written just after the answer; the next request waits
    access = [r.fields for r in caplog.records if r.getMessage() == "request" and r.fields.get("path") == "/crm/customer"]
    assert {k: access[-1].get(k) for k in ("status", "caller", "crm_type", "operation", "customer_id", "cache")} == {
        "status": 200, "caller": "ops", "crm_type": "zendesk", "operation": "get_customer", "customer_id": "1001", "cache": "hit",
    }  # fmt: skip
    audited = [orjson.loads(line) for line in audit_file.read_text().splitlines()]
    line = next(e for e in audited if e["request_id"] == "fast-path-audit-1")
    assert (line["caller"], line["vendor"], line["operation"], line["ids"], line["outcome"]) == (
        "ops", "zendesk", "get_customer", {"customer_id": "1001"}, "ok",
    )  # fmt: skip


def test_a_fast_hit_still_needs_the_callers_key(fast):
    svc, *_ = fast
    post(svc, "/crm/customer", CUSTOMER)
    assert post(svc, "/crm/customer", CUSTOMER).headers["X-Cache"] == "hit"
    for headers in ({"X-API-Key": "wrong-key"}, {"X-API-Key": ""}):
        r = post(svc, "/crm/customer", CUSTOMER, **headers)
        assert r.status_code == 401 and error_of(r)["code"] == "unauthorized" and "X-Cache" not in r.headers


def test_a_ticket_create_forgets_a_fast_hit_and_no_cache_reads_afresh(fast):
    svc, *_ = fast
    post(svc, "/crm/customer", CUSTOMER)
    assert post(svc, "/crm/customer", CUSTOMER).headers["X-Cache"] == "hit"
    create = {"crm_type": "zendesk", "subject": "s", "description": "d", "customer_id": "1001"}
    assert post(svc, "/crm/ticket/create", create).status_code == 201
    assert post(svc, "/crm/customer", CUSTOMER).headers["X-Cache"] == "miss"
    assert post(svc, "/crm/customer", CUSTOMER, **{"Cache-Control": "no-cache"}).headers["X-Cache"] == "miss"


def test_an_invalid_body_still_gets_its_422_and_never_a_cached_answer(fast):
    svc, *_ = fast
    post(svc, "/crm/customer", CUSTOMER)
    for body in ({"crm_type": "zendesk"}, {"crm_type": "zendesk", "customer_id": "1001", "limit": "x", "extra": 1}):
        r = post(svc, "/crm/customer", body)
        assert r.status_code in (400, 422) and "X-Cache" not in r.headers, r.text
    r = svc.client.post(f"{svc.url}/crm/customer/search", content=b'{"crm_type": "zendesk", "phone": "not a phone"}',
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_request" and "X-Cache" not in r.headers
    # The learnt bytes under another media type are not that body: the route refuses them as before.
    r = svc.client.post(f"{svc.url}/crm/customer", content=orjson.dumps(CUSTOMER), headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "X-Cache" not in r.headers
    bad = svc.client.post(f"{svc.url}/crm/customer", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code in (400, 422) and "X-Cache" not in bad.headers
