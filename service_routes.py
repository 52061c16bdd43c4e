"""The service's own routes: liveness, version, readiness (stores, and with ?deep=true vendor credentials), metrics,
the offline API docs pages and, in sandbox mode, the emulators' map.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

import telemetry
from connectors.context import ConnectorContext
from connectors.http import UpstreamConnector
from deps import app_context
from errors import CRMError, InvalidRequest, NotFound, UpstreamUnavailable
from registry import all_connectors

CHECK_TIMEOUT_SECONDS = 2.0
DOCS_ASSETS = "/docs-assets"  # Swagger UI and ReDoc from the pinned fastapi-offline package: no CDN


class NotReady(UpstreamUnavailable):
    """A store (or, with ?deep=true, a vendor credential) the service needs does not answer: 503."""

    status_code = 503
    code = "not_ready"


def configured_connectors(ctx: ConnectorContext) -> dict[str, UpstreamConnector]:
    """A connector for each vendor whose environment config is complete (CRMs and the handoff chat)."""
    found: dict[str, UpstreamConnector] = {}
    for cls in all_connectors():
        try:
            found[cls.vendor] = cls.from_request(None, ctx)
        except InvalidRequest:
            continue  # not (fully) configured here: callers pass its config per request
    return found


async def timed_check(check: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Run one readiness check within its timeout: {"ok", "latency_ms"} and the reason when it failed."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check()
    except Exception as exc:  # any failure of a store means not ready, whatever its type
        reason = exc.message if isinstance(exc, CRMError) else type(exc).__name__
        return {"ok": False, "latency_ms": round((time.perf_counter() - started) * 1000, 1), "message": reason}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def readiness(app: FastAPI, deep: bool) -> dict[str, Any]:
    """Every store check, and with `deep` each configured vendor's credential check, run at once."""
    checks: dict[str, Callable[[], Awaitable[Any]]] = dict(app.state.readiness_checks)
    names = list(checks)
    work = [timed_check(check) for check in checks.values()]
    if deep:
        connectors = configured_connectors(app_context(app.state))
        names += list(connectors)
        work += [connector.check_credentials() for connector in connectors.values()]
    return dict(zip(names, await asyncio.gather(*work), strict=True))


async def health() -> dict[str, str]:
    """Liveness: the process answers (with its version and build)."""
    return {"status": "healthy", **telemetry.version_info()}


async def version() -> dict[str, str]:
    """The service's version and build (git sha of the image, "dev" otherwise)."""
    return telemetry.version_info()


async def ready(request: Request, deep: bool = False) -> dict[str, Any]:
    """Readiness: 200 when the stores answer; `?deep=true` also proves each configured vendor's credentials."""
    checks = await readiness(request.app, deep)
    failed = sorted(name for name, check in checks.items() if not check["ok"])
    if failed:
        body = {"status": "not_ready", "checks": checks}
        raise NotReady(f"not ready: {', '.join(failed)} failed", details=body)
    return {"status": "ready", "checks": checks}


async def metrics() -> Response:
    """Prometheus exposition of the service's OpenTelemetry metrics."""
    body, content_type = telemetry.metrics_text()
    return Response(body, media_type=content_type)


async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI, its assets served by the service itself."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
    )


async def redoc(request: Request) -> HTMLResponse:
    """ReDoc, its script served by the service itself, without Google Fonts."""
    return get_redoc_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        with_google_fonts=False,
    )


async def sandbox_info(request: Request) -> dict[str, Any]:
    """In sandbox mode, each emulator's base URL, for tools and vendor SDKs that talk to them directly."""
    runner = request.app.state.sandbox
    if runner is None:
        raise NotFound("the service is not in sandbox mode")
    return {"emulators": runner.urls, "control": f"{runner.root}/_sandbox", "credentials": runner.credentials}


def add_routes(app: FastAPI) -> None:
    """The service's routes on the app's own router, in this order (the OpenAPI document lists them so).

    Not an included APIRouter: this FastAPI matches an included router's routes a second time on every request.
    """
    app.get("/health", tags=["service"])(health)
    app.get("/version", tags=["service"])(version)
    app.get("/ready", tags=["service"])(ready)
    app.get("/metrics", tags=["service"], response_class=Response)(metrics)
    app.get("/docs", include_in_schema=False)(swagger_ui)
    app.get("/redoc", include_in_schema=False)(redoc)
    app.get("/sandbox", tags=["service"])(sandbox_info)
