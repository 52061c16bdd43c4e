"""OpenTelemetry for the service: the providers FastAPI's native instrumentation uses, `/metrics`, OTLP, our own signals.

FastAPI 0.163 can instrument every request itself (`FastAPI(telemetry=...)`), but its metrics cost ~40 us a request
(three SDK measurements plus its wrappers); our access-log middleware already has the method, route, status and
latency, so it records http.server.request.duration with one measurement (`record_request`) and FastAPI's own
metrics stay off. FastAPI's SERVER spans (with W3C trace-context propagation) are on only when spans are exported.
The upstream layer calls `record_upstream` once per attempt. Names follow the OpenTelemetry HTTP semantic
conventions (https://opentelemetry.io/docs/specs/semconv/http/http-metrics/); ours are `connectors.*`.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from functools import lru_cache
from time import time_ns
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, GCCollector, ProcessCollector, generate_latest

from audit import note

VERSION = "1.0.0"
SERVICE_NAME = "connectors-service"

# Seconds; the semantic conventions' advised boundaries, which suit both our answers and the vendors'.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
DEFAULT_PORTS = {"http": 80, "https": 443}
# Probes and scrapes would drown the request figures; they are answered, just not measured.
UNMEASURED_PATHS = frozenset({"/metrics", "/health", "/ready"})
HANDOFF_OUTCOMES = {"assigned": "assigned", "queued": "queued", "fallback_ticket": "fallback", "closed": "closed"}


@lru_cache
def build() -> str:
    """The build: the git sha baked in at image build time (BUILD_SHA), else "dev"."""
    return os.environ.get("BUILD_SHA", "").strip() or "dev"


def version_info() -> dict[str, str]:
    """What /version, /health, the start-up line and `--version` say."""
    return {"service": SERVICE_NAME, "version": VERSION, "build": build()}


class Telemetry:
    """The process's providers and instruments: one per process, like OpenTelemetry's own globals."""

    def __init__(self) -> None:
        resource = Resource.create({"service.name": SERVICE_NAME, "service.version": VERSION, "service.build": build()})
        self.resource = resource
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        readers: list[Any] = [PrometheusMetricReader(registry=self.registry)]
        self.otlp = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        if self.otlp:  # imported only when used: the exporter pulls in protobuf and requests
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        self.meter_provider = MeterProvider(metric_readers=readers, resource=resource, shutdown_on_exit=True)
        self.tracer_provider: TracerProvider | None = None
        self.tracer: trace.Tracer | None = None
        if self.otlp:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        meter = self.meter_provider.get_meter("connectors", VERSION)
        self.server_duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.client_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of upstream (vendor) HTTP requests, one per attempt.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.retries = meter.create_counter(
            "connectors.upstream.retries", unit="{retry}", description="Upstream attempts after the first."
        )
        self.rate_limited = meter.create_counter(
            "connectors.upstream.rate_limited", unit="{response}", description="Vendor 429 answers (each one waited out or returned)."
        )
        self.replays = meter.create_counter(
            "connectors.idempotency.replays", unit="{request}", description="Requests answered from the idempotency store."
        )
        self.handoffs = meter.create_counter(
            "connectors.handoff.outcomes", unit="{handoff}", description="Handoffs by outcome: assigned, queued, fallback, failed."
        )

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Start exporting spans (OTLP, or a test's in-memory exporter)."""
        if self.tracer_provider is None:
            self.tracer_provider = TracerProvider(resource=self.resource, shutdown_on_exit=True)
            self.tracer = self.tracer_provider.get_tracer("connectors", VERSION)
        self.tracer_provider.add_span_processor(processor)

    def fastapi_config(self) -> dict[str, Any]:
        """`FastAPI(telemetry=...)`: SERVER spans when exporting; no metrics (record_request), dependency spans or logs."""
        return {
            "meter_provider": self.meter_provider,
            "tracer_provider": self.tracer_provider,
            "tracing": self.tracer_provider is not None,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
            "exclude": unmeasured,
        }


_lock = threading.Lock()
_telemetry: Telemetry | None = None


def get() -> Telemetry:
    """The process's telemetry, created on first use."""
    global _telemetry
    if _telemetry is None:
        with _lock:
            if _telemetry is None:
                _telemetry = Telemetry()
    return _telemetry


def unmeasured(scope: MutableMapping[str, Any]) -> bool:
    """FastAPI's exclude hook: probes and scrapes are not request traffic."""
    return scope.get("path") in UNMEASURED_PATHS


def metrics_text() -> tuple[bytes, str]:
    """The Prometheus exposition of every metric, and its content type."""
    return generate_latest(get().registry), CONTENT_TYPE_LATEST


def record_request(scope: Mapping[str, Any], status: int, seconds: float) -> None:
    """One served request, as the semantic conventions' http.server.request.duration (probes and scrapes left out)."""
    if scope["path"] in UNMEASURED_PATHS:
        return
    route = scope.get("route")
    # Unmatched paths (404s) stay without a route, so they cannot blow up cardinality.
    key = (scope["method"], status, scope.get("scheme", "http"), route.path if route is not None else None)
    get().server_duration.record(seconds, _attributes(_SERVER_ATTRIBUTES, key, _server_attributes))


# Attribute dicts by what they are made of, built once: a service sees few methods, statuses, routes and
# vendor hosts. The SDK copies what it is given, so sharing one dict across calls is safe.
_SERVER_ATTRIBUTES: dict[tuple[Any, ...], dict[str, Any]] = {}
_CLIENT_ATTRIBUTES: dict[tuple[Any, ...], dict[str, Any]] = {}
_SMALL_ATTRIBUTES: dict[tuple[str, str], dict[str, str]] = {}
MAX_REMEMBERED = 1024  # per table; past it (a stream of odd methods or hosts) dicts are built per call


def _attributes(table: dict[Any, Any], key: tuple[Any, ...], build: Callable[..., Any]) -> Any:
    """The attributes made of `key`, built by `build(*key)` the first time and kept while the table has room."""
    found = table.get(key)
    if found is None:
        found = build(*key)
        if len(table) < MAX_REMEMBERED:
            table[key] = found
    return found


def _small_attributes(vendor: str, operation: str) -> dict[str, str]:
    """The retry and rate-limit counters' attributes."""
    return {"connectors.vendor": vendor, "connectors.operation": operation}


def _server_attributes(method: str, status: int, scheme: str, route: str | None) -> dict[str, Any]:
    """http.server.request.duration's attributes."""
    attributes: dict[str, Any] = {"http.request.method": method, "http.response.status_code": status, "url.scheme": scheme}
    if route is not None:
        attributes["http.route"] = route
    if status >= 500:
        attributes["error.type"] = str(status)
    return attributes


@lru_cache(maxsize=256)
def _server(origin: str) -> tuple[str, int | None]:
    """server.address and server.port of `scheme://host[:port]`, parsed once per vendor host."""
    parts = urlsplit(origin)
    return parts.hostname or origin, parts.port or DEFAULT_PORTS.get(parts.scheme)


def _client_attributes(
    method: str, origin: str, vendor: str, operation: str, status: int | None, error_type: str | None
) -> dict[str, Any]:
    """http.client.request.duration's attributes (and the CLIENT span's)."""
    address, port = _server(origin)
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "server.address": address,
        "connectors.vendor": vendor,
        "connectors.operation": operation,
    }
    if port is not None:
        attributes["server.port"] = port
    if status is not None:
        attributes["http.response.status_code"] = status
    if error_type is not None:
        attributes["error.type"] = error_type
    return attributes


def record_upstream(
    vendor: str, operation: str, method: str, url: str, status: int | None, seconds: float, attempt: int
) -> None:
    """One upstream attempt: its duration, a retry when attempt > 1, a 429, and a CLIENT span when spans are on.

    Called from a `finally`, so an exception in flight is the attempt's error (error.type).
    """
    state = get()
    origin = "/".join(url.split("/", 3)[:3])
    error = sys.exc_info()[1]
    error_type = type(error).__name__ if error is not None else str(status) if status is not None and status >= 400 else None
    key = (method, origin, vendor, operation, status, error_type)
    attributes = _attributes(_CLIENT_ATTRIBUTES, key, _client_attributes)
    state.client_duration.record(seconds, attributes)
    if attempt > 1 or status == 429:
        small = _attributes(_SMALL_ATTRIBUTES, (vendor, operation), _small_attributes)
        if attempt > 1:
            state.retries.add(1, small)
        if status == 429:
            state.rate_limited.add(1, small)
    if state.tracer is not None:
        end = time_ns()
        span = state.tracer.start_span(
            method, kind=SpanKind.CLIENT, start_time=end - int(seconds * 1e9), attributes=attributes
        )
        span.set_attribute("url.full", url.split("?", 1)[0])  # no query: searches carry emails and phones
        span.set_attribute("http.request.resend_count", attempt - 1)
        span.set_attribute("connectors.attempt", attempt)
        if "error.type" in attributes:
            span.set_status(StatusCode.ERROR)
        span.end(end_time=end)


def record_replay(scope: str) -> None:
    """A request answered from the idempotency store (scope: ticket_create, handoff)."""
    get().replays.add(1, {"connectors.scope": scope})


def record_handoff(outcome: str) -> None:
    """One handoff's outcome: assigned, queued, fallback or failed."""
    get().handoffs.add(1, {"connectors.outcome": outcome})


async def observe_handoff(work: Awaitable[tuple[int, Any, bool]]) -> tuple[int, Any, bool]:
    """Count a /handoff/create's outcome (replays are not new handoffs) and note its id for the audit line."""
    try:
        status, data, replayed = await work
    except Exception:
        record_handoff("failed")
        raise
    body: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    outcome = HANDOFF_OUTCOMES.get(str(body.get("status")), str(body.get("status")))
    if replayed:
        record_replay("handoff")
    else:
        record_handoff(outcome)
    note(handoff_id=body.get("handoff_id"), outcome=outcome)
    return status, data, replayed


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """An INTERNAL span around a block when spans are exported; nothing at all otherwise."""
    tracer = get().tracer
    if tracer is None:
        yield
        return
    with tracer.start_as_current_span(name, attributes=attributes):
        yield
