"""Metrics, spans, readiness, version, the audit trail and the offline docs, against the real service and sandbox."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

import audit
import telemetry
from connectors.zendesk import ZendeskConnector
from registry import all_connectors
from tests.conftest import Service, error_of, make_settings, start_service
from tests.test_api_handoff import handoff

ROOT = Path(__file__).resolve().parent.parent
VENDOR_SLUGS = {cls.vendor for cls in all_connectors()}  # every registered vendor, CRM or chat


def samples(svc: Service) -> dict[str, list[dict[str, str]]]:
    """GET /metrics, parsed: each sample name with the label sets it was seen with."""
    r = svc.client.get(f"{svc.url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample.labels)
    return found


def with_labels(found: dict[str, list[dict[str, str]]], name: str, **labels: str) -> bool:
    """Whether a sample of this name carries these labels."""
    return any(labels.items() <= s.items() for s in found.get(name, []))


# --- metrics ------------------------------------------------------------------------------------------


def test_metrics_name_server_and_upstream_traffic_by_vendor_operation_and_status(svc: Service):
    assert svc.post("/crm/customer", {"crm_type": "zendesk", "customer_id": "1001"}).status_code == 200
    svc.fault("hubspot", "rate_limit", count=1, retry_after=0)
    assert svc.post("/crm/customer", {"crm_type": "hubspot", "customer_id": "12345"}).status_code == 200
    body = {"crm_type": "freshdesk", "subject": "Callback", "description": "Call me back", "customer_email": "a@b.co"}
    first = svc.post("/crm/ticket/create", body, **{"Idempotency-Key": "metrics-replay"})
    again = svc.post("/crm/ticket/create", body, **{"Idempotency-Key": "metrics-replay"})
    assert first.status_code == again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert svc.post("/handoff/create", handoff("call_metrics")).status_code == 201

    found = samples(svc)
    assert with_labels(
        found,
        "http_server_request_duration_seconds_count",
        http_route="/crm/customer",
        http_request_method="POST",
        http_response_status_code="200",
    )
    assert with_labels(
        found,
        "http_client_request_duration_seconds_count",
        connectors_vendor="zendesk",
        connectors_operation="get_customer",
        http_request_method="GET",
        http_response_status_code="200",
        server_address="127.0.0.1",
    )
    assert with_labels(found, "http_client_request_duration_seconds_count", connectors_vendor="hubspot", http_response_status_code="429", error_type="429")
    assert with_labels(found, "connectors_upstream_retries_total", connectors_vendor="hubspot")
    assert with_labels(found, "connectors_upstream_rate_limited_total", connectors_vendor="hubspot")
    assert with_labels(found, "connectors_idempotency_replays_total", connectors_scope="ticket_create")
    assert any(
        s["connectors_outcome"] in ("assigned", "queued", "fallback") for s in found["connectors_handoff_outcomes_total"]
    )
    assert not any(s.get("http_route") == "/metrics" for s in found["http_server_request_duration_seconds_count"])


def test_an_unreachable_vendor_is_counted_with_its_error_type(svc: Service):
    svc.fault("zendesk", "reset", count=20)
    assert svc.post("/crm/customer", {"crm_type": "zendesk", "customer_id": "1001"}).status_code >= 500
    assert with_labels(samples(svc), "http_client_request_duration_seconds_count", connectors_vendor="zendesk", error_type="UpstreamUnavailable")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans exported in memory (the tracer provider, once created, stays for the process)."""
    exporter = InMemorySpanExporter()
    telemetry.get().add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def test_each_upstream_attempt_is_a_client_span_with_vendor_operation_status_and_attempt(
    make_context, mock_http, spans: InMemorySpanExporter
):
    url = re.compile(r"https://acme\.zendesk\.com/api/v2/users/7\.json.*")
    mock_http.get(url, status=503)
    mock_http.get(url, payload={"user": {"id": 7, "name": "Ann", "role": "end-user"}})
    connector = ZendeskConnector.from_request({"subdomain": "acme", "email": "a@acme.com", "api_token": "t"}, make_context())
    await connector.get_customer("7")
    attempts = [s for s in spans.get_finished_spans() if s.attributes.get("connectors.vendor") == "zendesk"]
    assert [s.attributes["http.response.status_code"] for s in attempts] == [503, 200]
    assert [s.attributes["connectors.attempt"] for s in attempts] == [1, 2]
    assert [s.attributes["http.request.resend_count"] for s in attempts] == [0, 1]
    first = attempts[0]
    assert first.name == "GET" and first.kind.name == "CLIENT"
    assert first.attributes["server.address"] == "acme.zendesk.com" and first.attributes["server.port"] == 443
    assert first.attributes["connectors.operation"] == "get_customer"
    assert first.attributes["url.full"] == "https://acme.zendesk.com/api/v2/users/7.json"
    assert first.status.status_code.name == "ERROR" and attempts[1].status.status_code.name == "UNSET"


def test_span_helper_is_a_no_op_without_exporters_and_a_span_with_one(spans: InMemorySpanExporter):
    with telemetry.span("connectors.test", step="one"):
        pass
    assert [s.name for s in spans.get_finished_spans()] == ["connectors.test"]


# --- readiness ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_zendesk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Any, Path]]:
    """A second service whose Zendesk token the sandbox rejects, auditing to a file."""
    audit_file = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    server, thread, url = start_service(make_settings(zendesk_api_token="invalid", audit_log=str(audit_file)))
    client = httpx.Client(timeout=10, trust_env=False)
    yield Service(url=url, client=client), server.config.app, audit_file
    client.close()
    server.should_exit = True
    thread.join(timeout=10)


def test_ready_answers_200_when_the_stores_answer(svc: Service):
    r = svc.client.get(f"{svc.url}/ready")
    assert r.status_code == 200
    assert r.json()["status"] == "ready" and r.json()["checks"]["idempotency_store"]["ok"] is True


def test_deep_readiness_proves_each_vendors_credentials_against_the_sandbox(svc: Service):
    r = svc.client.get(f"{svc.url}/ready", params={"deep": "true"})
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert set(checks) == {"idempotency_store", "connections_store", *VENDOR_SLUGS}
    assert all(c["ok"] and c["latency_ms"] >= 0 for c in checks.values())
    called = {q["path"] for v in VENDOR_SLUGS for q in svc.vendor_requests(v)}
    assert {"/api/v2/users/me.json", "/services/data/v62.0/limits", "/crm/objects/2026-09/contacts", "/api/v2/agents/me",
            "/v3.6/configuration/action/list_agents", "/api/now/table/sys_user"} <= called


def test_deep_readiness_names_the_vendor_whose_credentials_fail(bad_zendesk):
    svc, _, _ = bad_zendesk
    assert svc.client.get(f"{svc.url}/ready").status_code == 200  # shallow readiness does not call vendors
    r = svc.client.get(f"{svc.url}/ready", params={"deep": "true"})
    assert r.status_code == 503
    error = error_of(r)
    assert error["code"] == "not_ready" and "zendesk" in error["message"]
    checks = error["details"]["checks"]
    assert checks["zendesk"]["ok"] is False and checks["zendesk"]["code"] == "crm_auth_failed"
    assert all(checks[v]["ok"] for v in (*VENDOR_SLUGS - {"zendesk"}, "idempotency_store"))
    assert "invalid" not in r.text  # the rejected token is never echoed


def test_ready_is_503_in_the_error_contract_when_a_store_is_down(bad_zendesk):
    svc, app, _ = bad_zendesk

    async def redis_down() -> None:
        raise ConnectionError("connection refused")

    app.state.readiness_checks["redis"] = redis_down
    try:
        r = svc.client.get(f"{svc.url}/ready")
    finally:
        del app.state.readiness_checks["redis"]
    assert r.status_code == 503
    error = error_of(r)
    assert error["code"] == "not_ready" and error["retryable"] is True
    assert error["details"]["checks"]["redis"] == {"ok": False, "latency_ms": error["details"]["checks"]["redis"]["latency_ms"], "message": "ConnectionError"}


# --- version ------------------------------------------------------------------------------------------


def test_version_is_in_health_version_and_the_command_line(svc: Service):
    expected = {"service": "connectors-service", "version": telemetry.VERSION, "build": telemetry.build()}
    assert svc.client.get(f"{svc.url}/version").json() == expected
    assert svc.client.get(f"{svc.url}/health").json() == {"status": "healthy", **expected}
    env = {"BUILD_SHA": "abc1234", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "server.py", "--version"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"connectors-service {telemetry.VERSION} (abc1234)"


async def test_start_up_line_names_version_listen_address_and_configured_vendors(caplog: pytest.LogCaptureFixture):
    from server import create_app, lifespan

    app = create_app(make_settings(port=8123))
    with caplog.at_level(logging.INFO, logger="connectors"):
        async with lifespan(app):
            pass
    started = next(r for r in caplog.records if r.getMessage() == "started").fields
    assert started["version"] == telemetry.VERSION and started["build"] == telemetry.build()
    assert started["listen"] == "http://0.0.0.0:8123"
    assert started["vendors"] == sorted(VENDOR_SLUGS)


# --- audit --------------------------------------------------------------------------------------------


def test_audit_line_per_operation_with_ids_and_outcome(bad_zendesk):
    svc, _, audit_file = bad_zendesk
    svc.post("/crm/ticket", {"crm_type": "salesforce", "ticket_id": "500000000000001AAA"}, **{"X-Request-ID": "audit-1"})
    svc.post("/crm/customer", {"crm_type": "zendesk", "customer_id": "1001"}, **{"X-Request-ID": "audit-2"})
    created = svc.post("/handoff/create", handoff("call_audit"), **{"X-Request-ID": "audit-3"})
    svc.client.get(f"{svc.url}/health")  # not an operation: no line
    lines = {e["request_id"]: e for e in map(json.loads, audit_file.read_text().splitlines())}
    read = lines["audit-1"]
    assert read["vendor"] == "salesforce" and read["operation"] == "get_ticket"
    assert read["ids"] == {"ticket_id": "500000000000001AAA"} and read["event"] == "audit" and read["ts"].endswith("Z")
    assert read["outcome"] in ("ok", "not_found") and "caller" in read
    assert lines["audit-2"]["outcome"] == "crm_auth_failed" and lines["audit-2"]["status"] == 502
    made = lines["audit-3"]
    assert made["operation"] == "create_handoff" and made["ids"]["handoff_id"] == created.json()["handoff_id"]
    assert made["outcome"] in ("assigned", "queued", "fallback")
    assert all(e["operation"] for e in lines.values())


def test_audit_entry_masks_personal_data_and_names_the_caller():
    fields = {"crm_type": "zendesk", "operation": "get_customer", "customer_id": "ahmed@example.ae", "caller": "key-7"}
    entry = audit.entry(fields, 200, "r1")
    assert entry is not None
    assert entry["caller"] == "key-7" and entry["ids"] == {"customer_id": "a***@example.ae"}
    assert audit.entry({"crm_type": "zendesk"}, 200, "r2") is None


# --- docs ---------------------------------------------------------------------------------------------


def test_docs_pages_load_nothing_from_outside(svc: Service):
    for page in ("/docs", "/redoc"):
        html = svc.client.get(f"{svc.url}{page}").text
        assert not re.search(r"""(src|href)=["']?https?://""", html), page
        for asset in re.findall(r"""(?:src|href)=["']?(/docs-assets/[^"'\s>]+)""", html):
            assert svc.client.get(f"{svc.url}{asset}").status_code == 200, asset


def render(url: str) -> str:
    """The page's DOM after headless Chromium ran its scripts, with every network feature but loopback off."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
        "--disable-extensions", "--disable-sync", "--metrics-recording-only", "--no-default-browser-check",
        "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",  # anything not on loopback fails
        "--virtual-time-budget=15000", "--dump-dom",
    ]
    out = subprocess.run([chromium, *flags, url], capture_output=True, text=True, timeout=120)
    return out.stdout


def test_swagger_ui_renders_every_operation_offline(svc: Service):
    dom = render(f"{svc.url}/docs")
    paths = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert {"/crm/customer", "/crm/customer/search", "/crm/ticket", "/crm/ticket/create", "/crm/ticket/update",
            "/handoff/create", "/handoff/status", "/ready", "/metrics", "/version"} <= paths


def test_redoc_renders_offline(svc: Service):
    dom = render(f"{svc.url}/redoc")
    assert "Connectors Service" in dom and "/crm/ticket/create" in dom


def test_every_request_example_in_the_docs_works_against_the_sandbox(svc: Service):
    paths = svc.client.get(f"{svc.url}/openapi.json").json()["paths"]
    order = sorted(paths, key=lambda p: p == "/handoff/status")  # the chat example needs a handoff first
    tried = 0
    for path in order:
        for name, example in paths[path].get("post", {}).get("requestBody", {}).get("content", {}).get("application/json", {}).get("examples", {}).items():
            r = svc.post(path, example["value"])
            assert r.status_code in (200, 201), (path, name, r.text)
            tried += 1
    assert tried >= 25


def test_each_endpoint_documents_only_the_errors_it_can_answer_with_real_bodies(svc: Service):
    paths = svc.client.get(f"{svc.url}/openapi.json").json()["paths"]
    for path in ("/crm/customer", "/crm/customer/search", "/crm/ticket", "/crm/ticket/update", "/handoff/status"):
        responses = paths[path]["post"]["responses"]
        assert "409" not in responses and "handoff_failed" not in json.dumps(responses), path
        assert {"405", "413", "500"} <= set(responses), path
    assert "409" in paths["/crm/ticket/create"]["post"]["responses"]
    assert "handoff_failed" in paths["/handoff/create"]["post"]["responses"]["502"]["content"]["application/json"]["examples"]
    for path, operations in paths.items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                for example in response.get("content", {}).get("application/json", {}).get("examples", {}).values():
                    if int(status) >= 400:
                        assert example["value"]["error"]["code"] != "string" and set(example["value"]) == {"error"}, path


def test_otlp_export_when_the_endpoint_is_set(monkeypatch: pytest.MonkeyPatch):
    """Spans and metrics reach an OTLP/HTTP receiver (a loopback stand-in) when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[str] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.server_address[1]}")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")  # exported by force_flush below, not by a timer
    state = telemetry.Telemetry()
    try:
        assert state.fastapi_config()["tracing"] is True and state.tracer is not None
        state.client_duration.record(0.01, {"connectors.vendor": "zendesk"})
        state.tracer.start_span("GET").end()
        assert state.tracer_provider is not None and state.tracer_provider.force_flush()
        assert state.meter_provider.force_flush()
    finally:
        state.meter_provider.shutdown()
        if state.tracer_provider is not None:
            state.tracer_provider.shutdown()
        receiver.shutdown()
    assert {"/v1/traces", "/v1/metrics"} <= set(received)
