"""What every vendor emulator shares: auth checks, switchable faults, a request log, rate-limit headers."""

from __future__ import annotations

import asyncio
import base64
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAULT_KINDS = ("latency", "rate_limit", "error", "reset", "malformed", "html", "wrong_type", "echo_auth", "lose_answer")
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Back soon</h1></body></html>"
# Valid JSON of the wrong shape: every key a connector reads, with a type no vendor documents for it.
WRONG_TYPE_BODY = {
    "id": {"not": "an id"}, "ticket": ["x"], "user": 7, "users": {"a": 1}, "results": "none", "records": 5,
    "totalSize": "many", "done": "maybe", "properties": [1, 2], "total": [], "chat_id": None, "thread": "t",
    "access_token": 1, "chats_summary": {}, "created_at": 12, "status": [], "subject": 3, "description": [],
}
SERVICE_USER_AGENT = "connectors-service/"  # the prefix of the User-Agent the service's own calls carry
# Every distinct (emulator, method, path) the service itself called in this process: the wire audit's input
# (tests/wire_audit.py checks each against the vendor's documented endpoints). Bounded: ids make paths distinct.
SERVICE_CALLS: set[tuple[str, str, str]] = set()
SERVICE_CALLS_MAX = 100_000


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer as vendors send it (application/json; charset=utf-8)."""
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json", charset="utf-8"
    )


def digits(value: Any) -> str:
    """Only the digits of a value (a phone number as any vendor stored it)."""
    return re.sub(r"\D", "", str(value or ""))


def record_id(request: web.Request, suffix: str = "") -> int | None:
    """The numeric `{id}` in the path, less an optional suffix (Zendesk accepts `.json`), or None."""
    raw = request.match_info["id"].removesuffix(suffix) if suffix else request.match_info["id"]
    return int(raw) if raw.isdigit() else None


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(user, password) from a Basic Authorization header, or None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def bearer_token(request: web.Request) -> str | None:
    """The token of a Bearer Authorization header, or None."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() or None if header.startswith("Bearer ") else None


@dataclass
class Fault:
    """One switchable misbehaviour: applies to the next `count` matching requests (-1: until cleared)."""

    kind: str
    count: int = 1
    seconds: float = 0.0  # latency
    retry_after: int = 1  # rate_limit
    status: int = 503  # error, html
    method: str | None = None
    path: str | None = None  # substring of the path below the emulator's root

    def matches(self, request: web.Request, subpath: str) -> bool:
        """Whether this fault applies to a request."""
        if self.count == 0:
            return False
        if self.method and request.method != self.method.upper():
            return False
        return not self.path or self.path in subpath


class Emulator:
    """Base of a vendor emulator: an aiohttp app mounted at /{name} with the vendor's wire behaviour."""

    name: ClassVar[str]
    auth_exempt: ClassVar[tuple[str, ...]] = ()  # subpaths that take no Authorization (token endpoints)

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.requests: deque[dict[str, Any]] = deque(maxlen=1000)
        self.reset()

    # --- per-vendor hooks ------------------------------------------------------------------------

    def reset(self) -> None:
        """Restore the seed data."""
        raise NotImplementedError

    def add_routes(self, app: web.Application) -> None:
        """Register the vendor's paths."""
        raise NotImplementedError

    def authenticate(self, request: web.Request) -> bool:
        """Any credential is accepted except the word `invalid` (and none at all)."""
        raise NotImplementedError

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """The vendor's 401."""
        raise NotImplementedError

    def not_found(self) -> web.StreamResponse:
        """The vendor's 404."""
        raise NotImplementedError

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        """The vendor's rate-limit answer."""
        return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": str(retry_after)})

    def server_error(self, status: int) -> web.StreamResponse:
        """The vendor's 5xx answer."""
        return web.Response(status=status, text="Service Unavailable")

    def rate_limit_headers(self) -> dict[str, str]:
        """Headers the vendor puts on every answer about its limits."""
        return {}

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        """Vendor-specific sandbox switches (expire tokens, take agents offline, ...)."""
        raise web.HTTPNotFound(text=f"{self.name} has no control action {action!r}")

    # --- shared machinery ------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """The emulator as an aiohttp sub-application."""
        app = web.Application(middlewares=[self._middleware])
        self.add_routes(app)
        return app

    def add_fault(self, fault: Fault) -> None:
        """Switch a fault on."""
        self.faults.append(fault)

    def _take_fault(self, request: web.Request, subpath: str) -> Fault | None:
        """The first fault matching this request, spending one of its uses."""
        for fault in self.faults:
            if fault.matches(request, subpath):
                if fault.count > 0:
                    fault.count -= 1
                return fault
        return None

    async def _record(self, request: web.Request, subpath: str) -> None:
        """Keep what tests assert on: method, path, query, selected headers, JSON or form body."""
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = raw.decode(errors="replace")
        self.requests.append(
            {
                "method": request.method,
                "path": subpath,
                "query": dict(request.query),
                "idempotency_key": request.headers.get("Idempotency-Key"),
                "authorization_scheme": request.headers.get("Authorization", " ").split(" ")[0] or None,
                "body": body,
            }
        )

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record, apply faults, check auth, answer unknown paths as the vendor does, add limit headers."""
        subpath = request.path.removeprefix(f"/{self.name}") or "/"
        await self._record(request, subpath)
        if request.headers.get("User-Agent", "").startswith(SERVICE_USER_AGENT) and len(SERVICE_CALLS) < SERVICE_CALLS_MAX:
            SERVICE_CALLS.add((self.name, request.method, subpath))
        fault = self._take_fault(request, subpath)
        if fault and fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
        elif fault and fault.kind == "rate_limit":
            return self.rate_limited(fault.retry_after)
        elif fault and fault.kind == "error":
            return self.server_error(fault.status)
        elif fault and fault.kind == "reset":
            if request.transport:
                request.transport.abort()  # the client sees the connection drop mid-request
            raise asyncio.CancelledError
        elif fault and fault.kind == "malformed":
            return web.Response(status=200, body=b'{"truncated": ', content_type="application/json")
        elif fault and fault.kind == "html":  # a proxy's or load balancer's page instead of the API
            return web.Response(status=fault.status, body=HTML_PAGE, content_type="text/html")
        elif fault and fault.kind == "wrong_type":
            return json_response(WRONG_TYPE_BODY)
        elif fault and fault.kind == "echo_auth":  # a vendor (or proxy) that quotes the credential it refused
            # The header, and the body (a token grant carries its client_secret there), as sent.
            quoted = f"invalid credentials: {request.headers.get('Authorization', '')} {await request.text()}"
            body = {"error": {"message": quoted, "type": "authentication"}, "description": quoted, "message": quoted,
                    "errors": [{"message": quoted, "errorCode": "INVALID_AUTH"}]}
            return json_response(body, status=401)
        if subpath not in self.auth_exempt and not self.authenticate(request):
            return self.unauthorized(request)
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            response = self.not_found()
        except web.HTTPMethodNotAllowed:
            response = self.not_found()
        if fault and fault.kind == "lose_answer":  # the vendor acted, then the connection dropped before the answer
            if request.transport:
                request.transport.abort()
            raise asyncio.CancelledError
        response.headers.update(self.rate_limit_headers())
        return response


class SandboxRunner:
    """The running emulators: one loopback port, each vendor under /{name}, and the control API."""

    def __init__(self, emulators: dict[str, Emulator], credentials: dict[str, dict[str, str]]) -> None:
        self.emulators = emulators
        self.credentials = credentials
        self.root = ""
        self._runner: web.AppRunner | None = None

    @property
    def urls(self) -> dict[str, str]:
        """Each emulator's base URL, as a connector's base_url."""
        return {name: f"{self.root}/{name}" for name in self.emulators}

    def build_app(self) -> web.Application:
        """Root app: the control API plus every emulator mounted under its name."""
        app = web.Application()
        app.router.add_post("/_sandbox/faults", self._add_fault)
        app.router.add_delete("/_sandbox/faults", self._clear_faults)
        app.router.add_post("/_sandbox/reset", self._reset)
        app.router.add_get("/_sandbox/requests", self._requests)
        app.router.add_post("/_sandbox/{vendor}/{action}", self._control)
        for name, emulator in self.emulators.items():
            app.add_subapp(f"/{name}/", emulator.build_app())
        return app

    def _emulator(self, name: str) -> Emulator:
        if name not in self.emulators:
            raise web.HTTPNotFound(text=f"no emulator {name!r}")
        return self.emulators[name]

    async def _add_fault(self, request: web.Request) -> web.Response:
        payload = await request.json()
        fault = Fault(**{k: v for k, v in payload.items() if k != "vendor"})
        if fault.kind not in FAULT_KINDS:
            raise web.HTTPBadRequest(text=f"kind must be one of {FAULT_KINDS}")
        self._emulator(payload["vendor"]).add_fault(fault)
        return json_response({"ok": True}, status=201)

    async def _clear_faults(self, request: web.Request) -> web.Response:
        for emulator in self.emulators.values():
            emulator.faults.clear()
        return json_response({"ok": True})

    async def _reset(self, request: web.Request) -> web.Response:
        for emulator in self.emulators.values():
            emulator.faults.clear()
            emulator.requests.clear()
            emulator.reset()
        return json_response({"ok": True})

    async def _requests(self, request: web.Request) -> web.Response:
        return json_response(list(self._emulator(request.query["vendor"]).requests))

    async def _control(self, request: web.Request) -> web.Response:
        payload = await request.json() if request.can_read_body else {}
        result = self._emulator(request.match_info["vendor"]).control(request.match_info["action"], payload)
        return json_response(result if result is not None else {"ok": True})

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (0 picks a free port)."""
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.root = f"http://{host}:{bound[1]}"

    async def stop(self) -> None:
        """Close the listener."""
        if self._runner:
            await self._runner.cleanup()
