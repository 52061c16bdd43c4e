"""Integration: the real service against the sandbox with the breaker on; a 5xx burst, the fast 503, recovery.

The service's own Etiquette gets an injected clock, so the open interval passes without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from connectors.etiquette import ETIQUETTE, Etiquette
from telemetry import metrics_text
from tests.conftest import Service, error_of, make_settings, start_service
from tests.test_governor import Clock

READ = {"crm_type": "zendesk", "ticket_id": "12345"}
CREATE = {"crm_type": "zendesk", "subject": "Callback", "description": "Call me back", "customer_id": "1001"}


@pytest.fixture(scope="module")
def guarded() -> Iterator[tuple[Service, Clock, Etiquette]]:
    """A service of its own with the breaker on (3 consecutive outages), one attempt per call, and a hand clock."""
    settings = make_settings(breaker_enabled=True, breaker_failure_threshold=3, breaker_open_seconds=30, retry_max_attempts=1)
    server, thread, url = start_service(settings)
    clock = Clock()
    etiquette = server.config.app.state.shared[ETIQUETTE]
    etiquette.breaker.clock = etiquette.governor.clock = clock
    client = httpx.Client(timeout=10, trust_env=False)
    info = client.get(f"{url}/sandbox").json()
    svc = Service(url=url, client=client, sandbox_root=info["control"].removesuffix("/_sandbox"), emulators=info["emulators"])
    yield svc, clock, etiquette
    client.close()
    server.should_exit = True
    thread.join(timeout=10)


def test_a_5xx_burst_opens_the_breaker_and_it_answers_fast_until_the_probe_succeeds(guarded):
    svc, clock, _ = guarded
    svc.reset()
    svc.fault("zendesk", "error", status=503, count=-1)
    for _ in range(3):
        r = svc.post("/crm/ticket", READ)
        assert r.status_code == 502 and error_of(r)["code"] == "crm_error"
    sent = len(svc.vendor_requests("zendesk"))

    started = time.perf_counter()
    r = svc.post("/crm/ticket", READ)
    elapsed = time.perf_counter() - started
    error = error_of(r)
    assert r.status_code == 503 and error["code"] == "crm_unavailable" and error["retryable"] is True
    assert r.headers["Retry-After"] == "30" and error["retry_after_seconds"] == 30
    assert elapsed < 0.5  # answered here, not after a vendor round trip

    r = svc.post("/crm/ticket/create", CREATE, **{"Idempotency-Key": "breaker-open"})
    assert r.status_code == 503 and error_of(r)["details"]["created"] is False
    assert len(svc.vendor_requests("zendesk")) == sent  # nothing reached the vendor while open: no create

    svc.reset()  # the vendor recovers
    clock.now += 30  # and the open interval passes: the next call is the half-open probe
    r = svc.post("/crm/ticket", READ)
    assert r.status_code == 200, r.text
    r = svc.post("/crm/ticket/create", CREATE, **{"Idempotency-Key": "breaker-closed"})
    assert r.status_code == 201
    assert len(svc.vendor_requests("zendesk")) == 2

    text = metrics_text()[0].decode()
    for state in ("open", "half_open", "closed"):
        assert f'connectors_breaker_state="{state}"' in text


def test_client_errors_leave_the_breaker_closed(guarded):
    svc, _, _ = guarded
    svc.reset()
    for _ in range(5):
        r = svc.post("/crm/ticket", {"crm_type": "zendesk", "ticket_id": "999999"})
        assert r.status_code == 404
    assert svc.post("/crm/ticket", READ).status_code == 200


def test_a_spent_rate_window_fails_fast_with_429_and_retry_after(guarded):
    svc, _, etiquette = guarded
    svc.reset()
    assert svc.post("/crm/ticket", READ).status_code == 200  # the answer's headers fill the bucket
    bucket = next(b for key, b in etiquette.governor.buckets.items() if key.startswith("zendesk:"))
    bucket.remaining, bucket.resets_at = 0, etiquette.governor.clock() + 40  # as if the last answer said 0 left
    sent = len(svc.vendor_requests("zendesk"))
    r = svc.post("/crm/ticket", READ)
    error = error_of(r)
    assert r.status_code == 429 and error["code"] == "rate_limited" and r.headers["Retry-After"] == "40"
    assert len(svc.vendor_requests("zendesk")) == sent
    bucket.remaining = 600
    counts = [line for line in metrics_text()[0].decode().splitlines() if line.startswith("connectors_governor_wait_seconds_count")]
    assert any('connectors_outcome="rejected"' in line and 'connectors_vendor="zendesk"' in line for line in counts)



def test_an_open_livechat_circuit_hands_the_caller_straight_to_the_fallback_ticket(guarded):
    from tests.test_api_handoff import handoff

    svc, clock, _ = guarded
    svc.reset()
    svc.fault("livechat", "error", status=503, count=-1)
    for n in range(3):
        r = svc.post("/handoff/create", handoff(f"lc-breaker-{n}"))
        assert r.status_code == 201 and r.json()["status"] == "fallback_ticket"
    sent = len(svc.vendor_requests("livechat"))
    r = svc.post("/handoff/create", handoff("lc-breaker-open"))
    assert r.status_code == 201 and r.json()["fallback"]["reason"] == "crm_unavailable", r.text
    assert len(svc.vendor_requests("livechat")) == sent  # LiveChat was not called while its circuit is open
    svc.reset()
    clock.now += 30  # let the circuit half-open for the next test's sake, and close it with a probe
    assert svc.post("/handoff/create", handoff("lc-breaker-closed")).json()["status"] != "fallback_ticket"
