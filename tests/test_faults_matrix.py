"""Every sandbox fault, for every vendor and operation, ends in the contract's error within the deadline.

One table of faults (what the emulator does, and the status and code the contract promises for it) crossed with
the registry of CRMs and their operations, plus the handoff. Creates are counted in the emulator's own records:
no fault may ever make two. Elapsed time is measured against the deadline; nothing here sleeps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from crm import CRMFactory
from sandbox import EMULATORS, SANDBOX_CREDENTIALS
from tests.conftest import TEST_SETTINGS, Service, error_of
from tests.test_api_contract import VENDORS, Vendor
from tests.test_api_handoff import handoff

# The deadline, plus the backstop's margin (deps.within_deadline) and loopback scheduling slack.
BOUND_SECONDS = TEST_SETTINGS["request_deadline_seconds"] + 0.25 + 0.5


@dataclass(frozen=True)
class FaultCase:
    """A sandbox fault and the contract's answer to it."""

    name: str
    options: dict[str, Any]
    status: int
    code: str


FAULTS = [
    FaultCase("slow", {"kind": "latency", "seconds": 5}, 504, "crm_timeout"),
    FaultCase("429-storm", {"kind": "rate_limit", "retry_after": 0}, 429, "rate_limited"),
    FaultCase("429-past-budget", {"kind": "rate_limit", "retry_after": 30}, 429, "rate_limited"),
    FaultCase("5xx-burst", {"kind": "error", "status": 503}, 502, "crm_error"),
    FaultCase("500", {"kind": "error", "status": 500}, 502, "crm_error"),
    FaultCase("reset", {"kind": "reset"}, 502, "crm_error"),
    FaultCase("lose-answer", {"kind": "lose_answer"}, 502, "crm_error"),
    FaultCase("malformed", {"kind": "malformed"}, 502, "crm_error"),
    FaultCase("html-200", {"kind": "html", "status": 200}, 502, "crm_error"),
    FaultCase("html-502", {"kind": "html", "status": 502}, 502, "crm_error"),
    FaultCase("wrong-type", {"kind": "wrong_type"}, 502, "crm_error"),
    FaultCase("echo-auth", {"kind": "echo_auth"}, 502, "crm_auth_failed"),
]

# What the contract says a caller may do again; crm_error depends on what the vendor said.
RETRYABLE = {"crm_timeout": True, "rate_limited": True, "crm_auth_failed": False}

# Each CRM operation: its route, and the body for a vendor's seeded records.
OPERATIONS: dict[str, tuple[str, Any]] = {
    "get_customer": ("/crm/customer", lambda v: {"crm_type": v.crm_type, "customer_id": v.customer_id}),
    "find_customers": ("/crm/customer/search", lambda v: {"crm_type": v.crm_type, "phone": "+971501234567"}),
    "get_ticket": ("/crm/ticket", lambda v: v.read()),
    "create_ticket": ("/crm/ticket/create", lambda v: v.create(subject="fault")),
    "update_ticket": ("/crm/ticket/update", lambda v: {"crm_type": v.crm_type, "ticket_id": v.ticket_id,
                                                      "status": "pending"}),
}

def records(svc: Service, vendor: str) -> int:
    """How many tickets (or chats) the emulator holds now: its ticket_ids(), so the test counts records, not requests."""
    return len(svc.app.state.sandbox.emulators[vendor].ticket_ids())


def own_grant(svc: Service, v: Vendor, name: str) -> dict[str, Any]:
    """A Salesforce config with a grant of its own, so no other test's cached token or token failure
    (remembered for a second by design, tokens.FAILURE_TTL_SECONDS) decides this one."""
    if v.crm_type != "salesforce":
        return {}
    creds = {**SANDBOX_CREDENTIALS["salesforce"], "instance_url": svc.emulators["salesforce"], "client_id": name}
    return {"config": creds}


def timed(svc: Service, path: str, body: dict[str, Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    r = svc.post(path, body)
    return r, time.perf_counter() - started


def test_every_crm_and_emulator_has_a_record_count():
    for emulator in EMULATORS:
        assert isinstance(emulator().ticket_ids(), list), emulator.name  # the base raises: each counts its own
    assert sorted(v.crm_type for v in VENDORS) == sorted(CRMFactory.supported())


CASES = [
    pytest.param(v, op, f, id=f"{v.crm_type}-{op}-{f.name}") for v in VENDORS for op in OPERATIONS for f in FAULTS
]


@pytest.mark.parametrize(("v", "operation", "fault"), CASES)
def test_a_fault_ends_in_the_contract_error_within_the_deadline(svc: Service, v: Vendor, operation: str,
                                                                fault: FaultCase):
    path, body_of = OPERATIONS[operation]
    grant = own_grant(svc, v, f"faults-{operation}-{fault.name}")
    assert svc.post("/crm/ticket", {**v.read(), **grant}).status_code == 200  # tokens warm: the fault hits the call
    before = records(svc, v.crm_type)
    svc.fault(v.crm_type, count=-1, **fault.options)
    r, elapsed = timed(svc, path, {**body_of(v), **grant})
    err = error_of(r)
    assert (r.status_code, err["code"]) == (fault.status, fault.code), err
    assert err["crm_type"] == v.crm_type and err["retryable"] is RETRYABLE.get(fault.code, err["retryable"])
    assert elapsed < BOUND_SECONDS, f"{elapsed:.2f}s"
    made = records(svc, v.crm_type) - before
    if operation == "create_ticket":
        assert made <= 1 and err["details"]["created"] in (False, "unknown")
        if made:
            assert err["details"]["created"] == "unknown"  # it exists: the caller must not be told it does not
    else:
        assert made == 0


# --- the handoff: LiveChat failing under every fault still reaches a person, once -------------------------


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.name) for f in FAULTS])
def test_handoff_create_under_a_livechat_fault_becomes_one_ticket_within_the_deadline(svc: Service,
                                                                                       fault: FaultCase):
    tickets = records(svc, "zendesk")  # HANDOFF_FALLBACK_CRM's default
    svc.fault("livechat", count=-1, **fault.options)
    r, elapsed = timed(svc, "/handoff/create", handoff(f"fault-{fault.name}"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "fallback_ticket" and elapsed < BOUND_SECONDS, f"{elapsed:.2f}s"
    assert records(svc, "livechat") <= 1 and records(svc, "zendesk") - tickets == 1


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.name) for f in FAULTS])
def test_handoff_status_under_a_livechat_fault_is_the_contract_error(svc: Service, fault: FaultCase):
    started = svc.post("/handoff/create", handoff(f"status-{fault.name}"))
    assert started.json()["status"] == "assigned"
    svc.fault("livechat", count=-1, **fault.options)
    r, elapsed = timed(svc, "/handoff/status", {"chat_type": "livechat", "handoff_id": started.json()["handoff_id"]})
    err = error_of(r)
    assert (r.status_code, err["code"]) == (fault.status, fault.code), err
    assert err["crm_type"] == "livechat" and elapsed < BOUND_SECONDS, f"{elapsed:.2f}s"


def test_a_shared_token_failure_is_not_rewritten_by_each_create_it_answers(svc: Service):
    # One renewal's failure answers every caller for a second (tokens.FAILURE_TTL_SECONDS): each create's
    # advice goes on its own copy, not once more onto the one error all of them are given.
    v = next(x for x in VENDORS if x.crm_type == "salesforce")
    grant = own_grant(svc, v, "shared-token-failure")
    svc.fault("salesforce", "error", status=503, count=-1, path="/oauth2/token")
    first, second = (error_of(svc.post("/crm/ticket/create", {**v.create(), **grant})) for _ in range(2))
    assert first["message"] == second["message"] and second["message"].count("may or may not") <= 1
