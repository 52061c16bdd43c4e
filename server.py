"""Connectors Service: one REST API over CRMs and helpdesks, with the error contract and the sandbox.

This module is the app: its lifespan (the shared session, the stores, the sandbox), its middleware and routers
wired in order, its OpenAPI document, and the `python server.py` entry point. The routes live in their modules.
"""

from __future__ import annotations

import argparse
import gc
import os
from collections.abc import AsyncIterator
from importlib.resources import files
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr, ValidationError

import audit
import crm_routes
import events
import service_routes
import telemetry
import webhooks
from connections import routes as connections_routes
from oauth import routes as oauth_routes
from auth import CallerAuthMiddleware, key_values, parse_keys, warn_if_open
from caller_context import router as caller_context_router
from connectors.etiquette import ETIQUETTE, Etiquette
from connectors.hosts import host_of
from crm import CRMFactory
from deps import REQUEST_EXAMPLES, ROUTE_ERRORS, ORJSONRoute, app_context, error_responses
from events.routes import router as events_router
from webhooks.routes import router as webhooks_router
from errors import CRMError
from fastpath import FastPathMiddleware, KnownBodies
from http_errors import add_error_handlers, send_error
from limits import BodyLimitMiddleware, uvicorn_options
from livechat import router as handoff_router
from observability import configure_logging, log_event, register_secrets
from request_context import RequestContextMiddleware
from service_routes import DOCS_ASSETS, configured_connectors
from settings import Settings, get_settings
from state import MemoryState
from stores import close_shared_state, open_shared_state


# Generation thresholds (gen 0 allocations, then gen-1 and gen-2 passes per younger pass); see lifespan.
GC_THRESHOLDS = (20_000, 20, 20)


def vendor_secrets(settings: Settings) -> list[str]:
    """The vendor secrets the environment (or the sandbox) gives this process."""
    return [v.get_secret_value() for name, v in settings if isinstance(v, SecretStr) and v.get_secret_value()]


async def clear_service_memory(app_state: Any) -> None:
    """The sandbox's /reset hook: forget idempotency keys, handoff call ids and cached callers (embedded stores).

    Shared Redis state is left alone: another process may be using it, and a sandbox normally has none.
    """
    stores = [app_state.idempotency, getattr(app_state, "cache", None), getattr(app_state, "webhooks", None)]
    for state in {id(s.state): s.state for s in stores if s is not None}.values():
        if isinstance(state, MemoryState):
            await state.close()  # empties it; the embedded store stays usable


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One pooled aiohttp session for the process, and the sandbox's emulators when in sandbox mode."""
    settings: Settings = app.state.settings
    app.state.shared = {}
    await open_shared_state(app.state, settings)  # the cache, idempotency and token stores: memory or Redis
    # The rate governor and circuit breaker: shared through the same Redis when there is one (app.state.states).
    app.state.shared[ETIQUETTE] = Etiquette(settings, shared=next(iter(app.state.states), None))
    connector = aiohttp.TCPConnector(
        limit=settings.http_pool_limit,
        limit_per_host=settings.http_pool_limit_per_host,
        ttl_dns_cache=settings.http_dns_cache_seconds or None,
        use_dns_cache=settings.http_dns_cache_seconds > 0,
    )
    app.state.http = aiohttp.ClientSession(
        connector=connector,
        raise_for_status=False,
        auto_decompress=True,
        headers={"User-Agent": f"connectors-service/{app.version}"},  # vendors ask integrations to name themselves
    )
    app.state.sandbox = None
    app.state.sandbox_urls = {}
    app.state.allowed_hosts = frozenset(settings.connectors_allowed_hosts)
    warn_if_open(app.state.api_keys, bool(vendor_secrets(settings)))
    if settings.sandbox:
        from sandbox import SANDBOX_CREDENTIALS, start_sandbox

        app.state.sandbox = await start_sandbox("127.0.0.1", settings.sandbox_port)
        app.state.sandbox.reset_hooks.append(lambda: clear_service_memory(app.state))
        app.state.sandbox_urls = app.state.sandbox.urls
        app.state.allowed_hosts |= {host_of(app.state.sandbox.root)}
        # Sandbox credentials stand in where the environment has none, so `config` may be left out.
        defaults = {
            f"{vendor}_{name}": value
            for vendor, creds in SANDBOX_CREDENTIALS.items()
            for name, value in creds.items()
            if getattr(settings, f"{vendor}_{name}", None) is None
        }
        app.state.settings = settings.model_copy(update=defaults)
    register_secrets([*vendor_secrets(app.state.settings), *key_values(settings.connectors_api_keys)])
    store = app.state.idempotency
    # Readiness hook: other stores (Redis, a database) add a named async check here; raising means not ready.
    app.state.readiness_checks = {"idempotency_store": lambda: store.lookup("_ready", "probe")}
    await connections_routes.start(app)  # stored connections: migrations and key checks; refuses a wrong key
    oauth_routes.start(app)  # the OAuth apps (VENDOR_OAUTH_*) and connections' token renewal through their grant
    await events.open_events(app.state, app.state.settings)  # the event queue, its readiness check and worker
    await webhooks.open_inbound(app.state, app.state.settings)  # vendors' webhooks in; the Salesforce poller
    vendors = sorted(configured_connectors(app_context(app.state)))
    # Start-up objects (modules, schemas, seed data) never die: keep them out of every future GC pass.
    gc.freeze()
    # A request allocates hundreds of short-lived containers that die with it (refcounting frees them), so the
    # default gen-0 threshold (700) ran a collection every request or two for nothing: collect less often.
    gc.set_threshold(*GC_THRESHOLDS)
    log_event(
        "started",
        **telemetry.version_info(),
        listen=f"http://{settings.host}:{settings.port}",
        vendors=vendors,
        sandbox=settings.sandbox,
        emulators=app.state.sandbox_urls,
    )
    try:
        yield
    finally:
        await webhooks.close_inbound(app.state)  # the poller publishes: it stops before the event pipeline
        await events.close_events(app.state, settings)  # first: deliveries in flight use the session
        await connections_routes.stop(app)
        await close_shared_state(app.state)
        await app.state.http.close()
        app.state.audit.close()
        if app.state.sandbox:
            await app.state.sandbox.stop()


def document(app: FastAPI) -> None:
    """The OpenAPI document from the tables: each route's own errors (deps.ROUTE_ERRORS), an example per vendor."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            paths = generate()["paths"]
            for path, codes in ROUTE_ERRORS.items():
                for operation in paths.get(path, {}).values():
                    kept = {status: r for status, r in operation["responses"].items() if int(status) < 400}
                    operation["responses"] = {**kept, **error_responses(codes)}
            for path, examples in REQUEST_EXAMPLES.items():
                paths[path]["post"]["requestBody"]["content"]["application/json"]["examples"] = examples
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


# --- the app -----------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; tests pass their own settings."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Connectors Service",
        version=telemetry.VERSION,
        description="One API over CRMs and helpdesks (Zendesk, Salesforce, HubSpot, Freshdesk, ServiceNow, Dynamics 365, Intercom), and live-agent handoff (LiveChat, Intercom).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=telemetry.get().fastapi_config(),
    )
    app.router.route_class = ORJSONRoute  # request bodies parsed by orjson (livechat's router keeps its own)
    app.state.settings = settings
    app.state.api_keys = parse_keys(settings.connectors_api_keys)
    # Outermost last: request id and access line, then the caller's key, then the body's limits.
    app.state.known_bodies = KnownBodies()
    app.add_middleware(FastPathMiddleware, known=app.state.known_bodies)  # fresh caller-cache hits, before FastAPI
    app.add_middleware(BodyLimitMiddleware, read_timeout=settings.body_read_timeout_seconds)
    app.add_middleware(CallerAuthMiddleware, keys=app.state.api_keys, send_error=send_error)
    app.state.audit = audit.AuditLog(settings.audit_log)
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_body_bytes)
    add_error_handlers(app)
    service_routes.add_routes(app)  # /health, /version, /ready, /metrics, /docs, /redoc, /sandbox
    crm_routes.add_routes(app)  # /crm/customer, /crm/customer/search, /crm/ticket, its create and update
    app.include_router(handoff_router)
    app.include_router(connections_routes.router)
    app.include_router(oauth_routes.router)
    app.include_router(events_router)
    app.include_router(caller_context_router)  # /crm/customer/context, /crm/ticket/search, /crm/ticket/batch
    app.include_router(webhooks_router)
    document(app)
    return app


def worker_app() -> FastAPI:
    """uvicorn's factory in each worker process (WORKERS > 1): settings and logging are set up per process."""
    settings = get_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def main() -> None:
    """`python server.py [--sandbox]`: serve on HOST:PORT with WORKERS processes."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Connectors Service")
    parser.add_argument("--sandbox", action="store_true", help="start the vendor emulators and point connectors at them")
    parser.add_argument("--version", action="store_true", help="print the version and build, and exit")
    args = parser.parse_args()
    if args.version:
        info = telemetry.version_info()
        print(f"{info['service']} {info['version']} ({info['build']})")
        return
    if args.sandbox:
        os.environ["SANDBOX"] = "true"
    try:
        settings = Settings()
    except ValidationError as exc:
        # Variable names and reasons only: pydantic's own text would echo the values, secrets included.
        problems = "\n".join(
            f"  {'.'.join(map(str, e['loc'])).upper() or 'SETTINGS'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise SystemExit(f"bad configuration:\n{problems}") from None
    try:
        CRMFactory.connector_class(settings.handoff_fallback_crm)
    except CRMError as exc:
        raise SystemExit(f"bad configuration:\n  HANDOFF_FALLBACK_CRM: {exc.message}") from None
    configure_logging(settings.log_level)
    serving = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        **uvicorn_options(settings),
    }
    if settings.workers > 1:  # each worker is its own process with its own pool (and, in sandbox mode, emulators)
        uvicorn.run("server:worker_app", factory=True, workers=settings.workers, **serving)
    else:
        uvicorn.run(create_app(settings), **serving)


if __name__ == "__main__":
    main()
