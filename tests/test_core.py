"""The shared pieces: settings, logs, idempotency store, phone parsing, timestamps, the host guard."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import orjson
import pytest

from connectors.hosts import check_base_url, check_vendor_url
from errors import IdempotencyConflict, InvalidConfig, InvalidRequest
from idempotency import InMemoryIdempotencyStore, fingerprint
from api_models.values import iso_utc
from observability import JSONFormatter, mask_pii, new_request_id
from phone import parse_phone, to_e164
from settings import Settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PORT", "not-a-port"), ("HUBSPOT_STAGE_MAP", '{"done": "4"}'), ("HANDOFF_FALLBACK_CRM", "pipedrive"),
     ("DEFAULT_PHONE_REGION", "XX"), ("RETRY_MAX_ATTEMPTS", "0")],
)
def test_bad_settings_fail_at_start_up_naming_the_variable_not_the_secrets(variable, value):
    env = {"PATH": "/usr/bin:/bin", variable: value, "ZENDESK_API_TOKEN": "s3cret-token"}
    root = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
    proc = subprocess.run([sys.executable, "server.py"], env=env, capture_output=True, text=True, timeout=60, cwd=root)
    assert proc.returncode != 0 and "bad configuration" in proc.stderr
    assert variable in proc.stderr and "s3cret-token" not in proc.stderr and "Traceback" not in proc.stderr


def test_allowed_hosts_are_a_comma_separated_list():
    settings = Settings(_env_file=None, connectors_allowed_hosts="zd.staging:9000, Proxy.Internal")
    assert settings.connectors_allowed_hosts == ["zd.staging:9000", "proxy.internal"]


def test_unknown_phone_region_is_refused():
    with pytest.raises(ValueError):
        Settings(_env_file=None, default_phone_region="XX")


def test_log_lines_are_json_with_masked_personal_data():
    record = logging.LogRecord("connectors", logging.WARNING, __file__, 1, "vendor said ahmed@example.ae +971 50 123 4567 exists", None, None)
    record.fields = {"crm_type": "zendesk", "latency_ms": 12.5}
    line = orjson.loads(JSONFormatter().format(record))
    assert line["event"] == "vendor said a***@example.ae ***4567 exists"
    assert line["crm_type"] == "zendesk" and line["ts"].endswith("Z")


def test_upstream_log_lines_carry_no_credentials_or_queries(svc, caplog):
    caplog.set_level(logging.DEBUG, logger="connectors")  # each vendor call has its own line at DEBUG
    svc.post("/crm/customer/search", {"crm_type": "zendesk", "email": "ahmed@example.ae",
                                      "config": {"subdomain": "x", "email": "ops@corp.com", "api_token": "tok-SECRET-42"}})
    svc.client.get(f"{svc.url}/health")  # the access line is written just after the answer; this waits for it
    lines = [JSONFormatter().format(r) for r in caplog.records]
    upstream = [orjson.loads(line) for line in lines if '"upstream_call"' in line]
    assert upstream and {"request_id", "crm_type", "operation", "upstream_status", "latency_ms", "retries"} <= set(upstream[0])
    access = [orjson.loads(line) for line in lines if '"event":"request"' in line and "/crm/" in line]
    assert access and {"upstream_calls", "upstream_ms", "upstream_status"} <= set(access[-1])  # the one line at INFO
    text = "\n".join(lines)
    assert "tok-SECRET-42" not in text and "ahmed@example.ae" not in text and "Basic " not in text


@pytest.mark.parametrize(("offered", "kept"), [("call-123", True), ("a" * 200, False), ("bad id\n", False), (None, False)])
def test_request_ids(offered, kept):
    rid = new_request_id(offered)
    assert (rid == offered) is kept and rid


def test_mask_pii_leaves_plain_text_alone():
    assert mask_pii("ticket 12345 not found") == "ticket 12345 not found"


async def test_idempotency_runs_once_and_replays():
    store = InMemoryIdempotencyStore(ttl_seconds=60, max_entries=10)
    calls = 0

    async def create():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return 201, {"id": calls}

    results = await asyncio.gather(*(store.run("s", "k", "fp", create) for _ in range(5)))
    assert calls == 1
    assert [r[1] for r in results] == [{"id": 1}] * 5
    assert sorted(r[2] for r in results) == [False, True, True, True, True]
    with pytest.raises(IdempotencyConflict):
        await store.run("s", "k", "other-fp", create)


async def test_failed_operation_frees_the_key():
    store = InMemoryIdempotencyStore(ttl_seconds=60, max_entries=10)

    async def boom():
        raise InvalidRequest("no")

    with pytest.raises(InvalidRequest):
        await store.run("s", "k", "fp", boom)

    async def ok():
        return 201, {"ok": True}

    assert await store.run("s", "k", "fp", ok) == (201, {"ok": True}, False)


async def test_store_is_bounded():
    store = InMemoryIdempotencyStore(ttl_seconds=60, max_entries=2)
    for key in "abc":
        async def ok(key=key):
            return 201, key
        await store.run("s", key, "fp", ok)
    assert await store.lookup("s", "a") is None and (await store.lookup("s", "c")).body == "c"


def test_fingerprint_ignores_key_order():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})


@pytest.mark.parametrize(("raw", "expected"), [("+971 50 123 4567", "+971501234567"), ("(415) 555-2671", "+14155552671"),
                                               ("tel:+44-20-7946-0958", "+442079460958")])
def test_phone_parsing(raw, expected):
    assert parse_phone(raw, "US").e164 == expected


@pytest.mark.parametrize("raw", ["", "abc", "12", "+999 1234"])
def test_bad_phones_are_invalid_requests(raw):
    with pytest.raises(InvalidRequest):
        parse_phone(raw, "US")


def test_unparseable_stored_phone_is_kept_as_stored():
    assert to_e164("ext. 12", "US") == "ext. 12"


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-03-01T10:15:00.000+0000", "2024-03-01T10:15:00Z"),
    ("2025-11-18T14:30:00+04:00", "2025-11-18T10:30:00Z"),
    ("2025-11-18T10:30:00Z", "2025-11-18T10:30:00Z"),
    (1700000000123, "2023-11-14T22:13:20.123Z"),
    (None, None),
])
def test_timestamps_are_utc_z(value, expected):
    assert iso_utc(value) == expected


@pytest.mark.parametrize("url", ["https://evil.com/x", "https://my.salesforce.com.evil.com", "http://acme.my.salesforce.com",
                                 "https://acme.my.salesforce.com:8443", "https://u:p@acme.my.salesforce.com"])
def test_vendor_urls_must_be_https_on_the_vendors_domain(url):
    with pytest.raises(InvalidConfig):
        check_vendor_url(url, crm_type="salesforce", suffixes=(".salesforce.com",), allowed_hosts=frozenset())


def test_allowed_host_may_be_named_with_or_without_port():
    assert check_base_url("http://proxy.internal:8080/zd/", crm_type="zendesk", allowed_hosts=frozenset({"proxy.internal"})) == "http://proxy.internal:8080/zd"


async def test_a_twin_of_an_interrupted_request_gets_a_contract_error_not_a_cancel():
    from errors import UpstreamTimeout

    store = InMemoryIdempotencyStore(ttl_seconds=60, max_entries=10)
    started = asyncio.Event()

    async def slow():
        started.set()
        await asyncio.Event().wait()  # never finishes by itself
        return 201, {}

    first = asyncio.create_task(store.run("s", "k", "fp", slow))
    await started.wait()
    twin = asyncio.create_task(store.run("s", "k", "fp", slow))
    await asyncio.sleep(0)  # let the twin start waiting on the first
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(UpstreamTimeout) as caught:
        await twin
    assert caught.value.details == {"created": "unknown"}
