"""The outermost layer of every request: its X-Request-ID, the body-size cap, the access and audit lines, a contract 500.

The access line is one JSON line per request (observability.py); the audit line is audit.py's.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import telemetry
from errors import CRMError, InvalidRequest
from http_errors import ContractJSONResponse, error_response
from observability import log_event, new_request_id, request_fields_var, request_id_var, request_secrets_var


class BodyTooLarge(InvalidRequest):
    """The request body is larger than MAX_REQUEST_BODY_BYTES."""

    status_code = 413


class RequestContextMiddleware:
    """Per request: an X-Request-ID, a body-size cap, one JSON access line, and a contract 500 for bugs."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered, declared = None, b"0"
        for name, value in scope["headers"]:  # one pass for the two headers read here
            if name == b"x-request-id" and offered is None:
                offered = value.decode("latin-1")
            elif name == b"content-length" and declared == b"0":
                declared = value
        request_id = new_request_id(offered)
        id_token = request_id_var.set(request_id)
        fields: dict[str, Any] = {}
        fields_token = request_fields_var.set(fields)
        secrets_token = request_secrets_var.set(set())  # credentials this request's connectors send, for scrubbing
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        received = 0

        async def receive_capped() -> Message:
            """Count body bytes as they arrive, so a chunked body without Content-Length is capped too."""
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise BodyTooLarge(f"the request body is larger than {self.max_body_bytes} bytes")
            return message

        try:
            if int(declared or 0) > self.max_body_bytes:  # refused before a byte of it is read
                raise BodyTooLarge(f"the request body is larger than {self.max_body_bytes} bytes")
            await self.app(scope, receive_capped, send_with_id)
        except CRMError as exc:  # refused by a middleware (size, read time, JSON limits) before any route
            if not response_started:
                await error_response(exc)(scope, receive, send_with_id)
        except Exception:
            logging.getLogger("connectors").exception("unhandled error")
            if not response_started:
                body = CRMError("internal error; the request id identifies it in the logs").to_body(request_id)
                body["error"]["code"] = fields["error_code"] = "internal_error"
                await ContractJSONResponse(body, status_code=500)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            log_event(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                latency_ms=round(elapsed * 1000, 1),
                **fields,
            )
            telemetry.record_request(scope, status, elapsed)
            scope["app"].state.audit.record(fields, status, request_id)
            request_fields_var.reset(fields_token)
            request_secrets_var.reset(secrets_token)
            request_id_var.reset(id_token)

