"""The error contract and fault handling every CRM shares, against each emulator over loopback.

Written once and run for every vendor; a vendor row says only what differs (ids, config, which path to fault,
what the vendor's own error looks like). What one vendor does on its own stays in its test_api_<vendor>.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from crm import CRMFactory
from registry import CRMS
from sandbox import SANDBOX_CREDENTIALS
from tests.conftest import Service, error_of
from tests.vendor_facts import facts



@dataclass(frozen=True)
class Vendor:
    """What the shared tests need to know about one CRM and its emulator."""

    crm_type: str
    unknown_ids: dict[str, tuple[str, int | None]]  # "ticket"/"customer" -> (id, upstream_status of its 404)
    bad_ids: tuple[str, ...]  # refused before any call
    invalid_credentials: tuple[dict[str, Any], ...]  # each carries the word "invalid", which the emulator refuses
    auth_upstream_status: int
    auth_message: str  # in the crm_auth_failed message
    ssrf_configs: tuple[dict[str, Any], ...]
    sandbox_url_key: str  # the config key that may point at the sandbox's own emulator
    first_new_ticket_id: str  # the id the first ticket made after the seed gets
    create_path: str  # a fragment of the path tickets are created at
    config: dict[str, Any] = field(default_factory=dict)  # merged under every config a test sends
    read_path: str | None = None  # faults aimed at this path; reads counted on it (None: every request counts)
    sends_retry_after: bool = True  # the vendor's rate limit says how long to wait
    rate_limit_upstream_status: int = 429
    rate_limit_message: str = ""
    echo_auth_audited: bool = True  # tests/test_secrets.py echoes the Authorization header back through it
    redirect_audited: bool = True  # tests/test_ssrf_corpus.py points its base_url at a redirecting host

    # Derived from the registered connector class: its emulator's seed and whether the vendor dedupes creates.
    @property
    def ticket_id(self) -> str:
        """A seeded ticket."""
        return CRMFactory.connector_class(self.crm_type).sandbox_seed["ticket_id"]

    @property
    def customer_id(self) -> str:
        """The seeded caller, +971501234567."""
        return CRMFactory.connector_class(self.crm_type).sandbox_seed["customer_id"]

    @property
    def forwards_idempotency_key(self) -> bool:
        """The vendor dedupes creates itself, by our key."""
        return CRMFactory.connector_class(self.crm_type).vendor_dedupes_creates

    def read(self, **extra: Any) -> dict[str, Any]:
        """The body of POST /crm/ticket for the seeded ticket."""
        return {"crm_type": self.crm_type, "ticket_id": self.ticket_id, **extra}

    def with_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """A read of the seeded ticket with this config on top of the vendor's base config."""
        return self.read(config={**self.config, **config})

    def create(self, **extra: Any) -> dict[str, Any]:
        """The body of POST /crm/ticket/create for the seeded caller."""
        return {"crm_type": self.crm_type, "subject": "s", "description": "d", "customer_id": self.customer_id, **extra}

    @property
    def scope(self) -> dict[str, Any]:
        """Fault options that aim a fault at the ticket read."""
        return {"path": self.read_path} if self.read_path else {}

    def reads(self, svc: Service) -> list[dict]:
        """The requests the emulator received that count as the ticket read."""
        return [q for q in svc.vendor_requests(self.crm_type)
                if self.read_path is None or (q["method"] == "GET" and self.read_path in q["path"])]

    def creates(self, svc: Service) -> list[dict]:
        """The ticket creations the emulator received."""
        return [q for q in svc.vendor_requests(self.crm_type) if q["method"] == "POST" and self.create_path in q["path"]]


# One row per registered CRM, from tests/vendor_facts/<crm_type>.py (a CRM without one fails the test below).
VENDORS = [Vendor(crm_type=cls.vendor, **row) for cls in CRMS if (row := facts(cls.vendor)) is not None]
# The service's secrets and the vendor configs' own credentials must never reach an answer.
NOT_ECHOED = ("token:invalid", "admin@yourcompany.com", "your_token", "your_api_key", "sandbox-client-secret")


def each(*vendors: Vendor):
    """Parametrize a test over vendors, each named by its crm_type."""
    return pytest.mark.parametrize("v", [pytest.param(v, id=v.crm_type) for v in vendors or VENDORS])


def each_with(name: str, values_of):
    """Parametrize over (vendor, value) for every value a vendor's row lists."""
    def name_of(value: Any) -> str:
        return ",".join(f"{k}={x}" for k, x in value.items()) if isinstance(value, dict) else str(value)

    cases = [pytest.param(v, value, id=f"{v.crm_type}-{name_of(value)}") for v in VENDORS for value in values_of(v)]
    return pytest.mark.parametrize(f"v,{name}", cases)


def test_every_supported_crm_has_a_row():
    assert sorted(v.crm_type for v in VENDORS) == sorted(CRMFactory.supported())


# --- searches ---------------------------------------------------------------------------------------------


@each()
def test_search_with_no_match_is_an_empty_list(svc: Service, v: Vendor):
    r = svc.post("/crm/customer/search", {"crm_type": v.crm_type, "phone": "+971509999999"})
    assert r.status_code == 200 and r.json() == {"customers": []}


@each()
def test_lookup_matches_a_number_stored_in_national_form(svc: Service, v: Vendor):
    r = svc.post("/crm/customer/search", {"crm_type": v.crm_type, "phone": "+1 415 555 2671"})
    assert [(c["name"], c["phone"]) for c in r.json()["customers"]] == [("Layla Hassan", "+14155552671")]


# --- error contract ---------------------------------------------------------------------------------------


@each_with("kind", lambda v: ("ticket", "customer"))
def test_not_found(svc: Service, v: Vendor, kind: str):
    unknown_id, upstream_status = v.unknown_ids[kind]
    r = svc.post(f"/crm/{kind}", {"crm_type": v.crm_type, f"{kind}_id": unknown_id})
    err = error_of(r)
    assert r.status_code == 404 and err["code"] == "not_found" and err.get("upstream_status") == upstream_status
    assert err["retryable"] is False


@each_with("bad_id", lambda v: v.bad_ids)
def test_bad_id_is_400_before_any_call(svc: Service, v: Vendor, bad_id: str):
    for kind in ("customer", "ticket"):
        r = svc.post(f"/crm/{kind}", {"crm_type": v.crm_type, f"{kind}_id": bad_id})
        assert r.status_code == 400 and error_of(r)["code"] == "invalid_request"
    assert svc.vendor_requests(v.crm_type) == []


@each_with("config", lambda v: v.invalid_credentials)
def test_invalid_credentials_are_crm_auth_failed_and_not_echoed(svc: Service, v: Vendor, config: dict):
    r = svc.post("/crm/ticket", v.with_config(config))
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "crm_auth_failed" and err["retryable"] is False
    assert err["upstream_status"] == v.auth_upstream_status and v.auth_message in err["message"]
    assert not [secret for secret in NOT_ECHOED if secret in r.text]


@each()
def test_create_refused_by_the_vendor_says_nothing_was_created(svc: Service, v: Vendor):
    r = svc.post("/crm/ticket/create", v.create(customer_id=v.unknown_ids["customer"][0]))
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error" and err["details"]["created"] is False


@each()
def test_idempotency_key_creates_once_and_replays(svc: Service, v: Vendor):
    key = f"{v.crm_type}-call-1"
    first = svc.post("/crm/ticket/create", v.create(subject="Once"), **{"Idempotency-Key": key})
    second = svc.post("/crm/ticket/create", v.create(subject="Once"), **{"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    [post] = v.creates(svc)
    assert post["idempotency_key"] == (key if v.forwards_idempotency_key else None)


# --- faults -----------------------------------------------------------------------------------------------


@each()
def test_rate_limit_within_budget_is_retried(svc: Service, v: Vendor):
    svc.fault(v.crm_type, "rate_limit", retry_after=0, **v.scope)
    r = svc.post("/crm/ticket", v.read())
    assert r.status_code == 200 and len(v.reads(svc)) == 2


@each(*(v for v in VENDORS if v.sends_retry_after))
def test_rate_limit_past_budget_is_429_with_retry_after_and_not_retried(svc: Service, v: Vendor):
    svc.fault(v.crm_type, "rate_limit", retry_after=30, **v.scope)
    r = svc.post("/crm/ticket", v.read())
    err = error_of(r)
    assert r.status_code == 429 and err["code"] == "rate_limited" and err["retry_after_seconds"] == 30
    assert r.headers["Retry-After"] == "30" and err["retryable"] is True and v.rate_limit_message in err["message"]
    assert len(v.reads(svc)) == 1


@each()
def test_persistent_rate_limit_is_429(svc: Service, v: Vendor):
    svc.fault(v.crm_type, "rate_limit", retry_after=0, count=-1, **v.scope)
    r = svc.post("/crm/ticket", v.read())
    err = error_of(r)
    assert r.status_code == 429 and err["code"] == "rate_limited" and err["retryable"] is True
    assert err["upstream_status"] == v.rate_limit_upstream_status and v.rate_limit_message in err["message"]


@each()
def test_persistent_5xx_is_502_crm_error_after_retries(svc: Service, v: Vendor):
    svc.fault(v.crm_type, "error", status=503, count=-1, **v.scope)
    r = svc.post("/crm/ticket", v.read())
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "crm_error" and err["upstream_status"] == 503
    assert len(v.reads(svc)) == 3


@each()
def test_latency_past_the_timeout_is_504(svc: Service, v: Vendor):
    svc.fault(v.crm_type, "latency", seconds=5, count=-1, **v.scope)
    r = svc.post("/crm/ticket", v.read())
    assert r.status_code == 504 and error_of(r)["code"] == "crm_timeout"


@each()
def test_reset_connection_is_retried_for_reads(svc: Service, v: Vendor):
    svc.fault(v.crm_type, "reset", **v.scope)
    assert svc.post("/crm/ticket", v.read()).status_code == 200


@each()
def test_malformed_answer_is_502_crm_error(svc: Service, v: Vendor):
    svc.fault(v.crm_type, "malformed", **v.scope)
    r = svc.post("/crm/ticket", v.read())
    assert r.status_code == 502 and error_of(r)["code"] == "crm_error"


@each()
def test_create_is_resent_after_a_rate_limit_and_made_once(svc: Service, v: Vendor):
    svc.fault(v.crm_type, "rate_limit", retry_after=0, method="POST", path=v.create_path)
    r = svc.post("/crm/ticket/create", v.create())
    assert r.status_code == 201
    assert len(v.creates(svc)) == 2  # the first was refused before the vendor acted on it
    assert r.json()["id"] == v.first_new_ticket_id  # the first ticket made after the seed: nothing was doubled


@each(*(v for v in VENDORS if not v.forwards_idempotency_key))
def test_create_is_not_resent_after_a_5xx(svc: Service, v: Vendor):
    svc.fault(v.crm_type, "error", status=503, method="POST", path=v.create_path)
    r = svc.post("/crm/ticket/create", v.create())
    err = error_of(r)
    assert r.status_code == 502 and err["code"] == "crm_error" and err["upstream_status"] == 503
    assert err["details"]["created"] == "unknown"
    assert len(v.creates(svc)) == 1


# --- SSRF -------------------------------------------------------------------------------------------------


@each_with("config", lambda v: v.ssrf_configs)
def test_ssrf_attempts_are_refused_before_any_connection(svc: Service, v: Vendor, config: dict):
    r = svc.post("/crm/ticket", v.with_config(config))
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_config"
    assert svc.vendor_requests(v.crm_type) == []


@each()
def test_the_sandbox_emulator_itself_is_allowed(svc: Service, v: Vendor):
    # A config that names a host brings its own secrets: the environment's never follow a chosen host.
    config = {**SANDBOX_CREDENTIALS[v.crm_type], v.sandbox_url_key: svc.emulators[v.crm_type]}
    r = svc.post("/crm/ticket", v.with_config(config))
    assert r.status_code == 200
