"""The one place a CRMError becomes an HTTP answer: the contract body's renderer and the app's exception handlers.

FastAPI's own failures (validation, 404, 405, a body it could not read) are answered here in the contract too.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from errors import CRMError, InvalidRequest, NotFound, ValidationFailed
from observability import log_event, request_fields_var, request_id_var
from request_errors import MethodNotAllowed, body_error, sent_crm_type


class ContractJSONResponse(JSONResponse):
    """Error bodies rendered by orjson (success bodies are already rendered by pydantic-core, FastAPI's default)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS)


def error_response(error: CRMError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one place a CRMError becomes an HTTP answer."""
    extra = {**error.headers, **(headers or {})}
    if error.status_code == 429 and error.retry_after is None:  # every 429 says when to come back
        error.retry_after = 1.0
    fields = request_fields_var.get()
    if fields is not None:  # the access and audit lines name the outcome
        fields["error_code"] = error.code
    if error.retry_after is not None:
        extra["Retry-After"] = str(max(1, round(error.retry_after)))
    return ContractJSONResponse(error.to_body(request_id_var.get()), status_code=error.status_code, headers=extra)


async def send_error(error: CRMError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer from inside a middleware with the contract error."""
    await error_response(error)(scope, receive, send)


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on this path (Starlette's own 405 names only the first route's).

    Asked of the router method by method, as included routers keep their routes to themselves.
    """
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def crm_error_handler(request: Request, exc: CRMError) -> JSONResponse:
    """A CRMError raised by a route or a dependency."""
    log_event("error", logging.WARNING, code=exc.code, upstream_status=exc.upstream_status, detail=exc.message)
    return error_response(exc, getattr(exc, "headers", None))  # e.g. X-Cache on a remembered not-found


async def validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A body, query or header FastAPI could not validate: a 422 listing the problems (a 400 for an unreadable body)."""
    problems = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
        for e in exc.errors()
    ]  # no `input`: it could echo a credential from `config`
    crm_type = sent_crm_type(exc.body)
    if any(p["type"] in ("json_invalid", "model_attributes_type") for p in problems):
        return error_response(body_error(request, problems, crm_type))
    summary = "; ".join(f"{'.'.join(p['loc'][1:]) or 'body'}: {p['msg']}" for p in problems)
    return error_response(ValidationFailed(f"invalid request: {summary}", crm_type=crm_type, details=problems))


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's HTTP errors (no route, wrong method, a body that failed while read) in the contract."""
    if isinstance(exc.__cause__, CRMError):  # FastAPI wraps what failed while reading the body
        return error_response(exc.__cause__)
    if exc.status_code == 404:
        return error_response(NotFound(f"no route {request.url.path}"))
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request)) or (exc.headers or {}).get("Allow", "")
        hint = f"; use {' or '.join(m.strip() for m in allow.split(','))}" if allow else ""
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}{hint}")
        return error_response(error, {"Allow": allow} if allow else None)
    error = InvalidRequest(str(exc.detail))
    response = error_response(error, headers=exc.headers)
    response.status_code = exc.status_code
    return response


def add_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on the app."""
    app.add_exception_handler(CRMError, crm_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error_handler)  # type: ignore[arg-type]
