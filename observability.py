"""JSON log lines, the request id that ties them together, and masking of personal data."""

from __future__ import annotations

import base64
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

import orjson

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
# Mutable per-request fields (crm_type, operation, retries) the access log line picks up at the end.
request_fields_var: ContextVar[dict[str, Any] | None] = ContextVar("request_fields", default=None)
# Credentials this request's connectors sent (config secrets, Authorization values): scrubbed from its text.
request_secrets_var: ContextVar[set[str] | None] = ContextVar("request_secrets", default=None)
# The environment's vendor secrets, registered once at start-up: scrubbed from every line.
_process_secrets: set[str] = set()
_MIN_SECRET = 8  # shorter values (Freshdesk's "X" password, the word "invalid") would redact ordinary words
# An Authorization value echoed by a vendor or proxy, whoever's it is.
_AUTH_VALUE = re.compile(r"(?i)\b(bearer|basic|token)(\s+|=)[A-Za-z0-9._~+/=:-]{8,}")
REDACTED = "[redacted]"

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+)")
_PHONE = re.compile(r"\+?\d[\d\s().\-]{6,}\d")

logger = logging.getLogger("connectors")


def new_request_id(offered: str | None) -> str:
    """Keep the caller's X-Request-ID when it is a sane token; otherwise mint one."""
    if offered and _REQUEST_ID_OK.match(offered):
        return offered
    return uuid.uuid4().hex


def mask_pii(text: str) -> str:
    """Mask emails (a***@domain) and phone numbers (keep the last 4 digits) inside free text."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: "***" + re.sub(r"\D", "", m.group(0))[-4:], text)


def secret_forms(value: str) -> set[str]:
    """A credential and the forms a vendor may echo: an Authorization value, its base64 and what that decodes to."""
    forms = {value}
    scheme, _, token = value.partition(" ")
    if scheme.lower() in ("basic", "bearer") and token:
        forms.add(token)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token, validate=True).decode()
            except ValueError:
                decoded = ""
            forms.update((decoded, *decoded.split(":", 1)))
    else:
        forms.add(base64.b64encode(value.encode()).decode().rstrip("="))
    return {form for form in forms if len(form) >= _MIN_SECRET}


def register_secrets(values: Any) -> None:
    """Remember credentials (the environment's at start-up) so no log line or error body shows them."""
    for value in values:
        if value:
            _process_secrets.update(secret_forms(str(value)))


def note_request_secrets(values: Any) -> set[str]:
    """Record credentials this request sent; returns the request's whole set (empty outside a request)."""
    secrets = request_secrets_var.get()
    if secrets is None:
        secrets = set()
    for value in values:
        if value:
            secrets.update(secret_forms(str(value)))
    return secrets


def redact_secrets(text: str, secrets: Any = ()) -> str:
    """Replace every known credential (longest first) and any echoed Authorization value in free text."""
    known = _process_secrets | set(secrets) | (request_secrets_var.get() or set())
    for secret in sorted((s for s in known if len(s) >= _MIN_SECRET and s in text), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _AUTH_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def redact_value(value: Any, secrets: Any = ()) -> Any:
    """`redact_secrets` through a JSON-like value (vendor error details)."""
    if isinstance(value, str):
        return redact_secrets(value, secrets)
    if isinstance(value, dict):
        return {redact_secrets(str(k), secrets): redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, secrets) for v in value]
    return value


class JSONFormatter(logging.Formatter):
    """One JSON object per line: easy for log shippers, and values are masked on the way out."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        # Only free text can carry personal data (vendor error messages); structured fields are ids and numbers.
        for key in ("event", "detail", "message"):
            if isinstance(entry.get(key), str):
                entry[key] = mask_pii(redact_secrets(entry[key]))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    """Route the service's and uvicorn's logs through the JSON formatter, once."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter())
    for name in ("connectors", "uvicorn", "uvicorn.error"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level)
        log.propagate = False
    JSONFormatter.converter = time.gmtime
    logging.getLogger("uvicorn.access").disabled = True  # our access line replaces it


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Write one structured line with the current request id."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})
