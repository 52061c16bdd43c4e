"""JSON log lines, the request id that ties them together, and masking of personal data."""

from __future__ import annotations

import base64
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from contextvars import ContextVar
from typing import Any

import orjson
from pydantic import ValidationError

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
# An IPv4 address (with its port) is matched first and kept as it is, so `127.0.0.1:8090` stays readable;
# whatever else looks like a phone number is masked.
_IP_OR_PHONE = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?)(?![\d.])|(\+?\d[\d\s().\-]{6,}\d)")
_MAYBE_PII = re.compile(r"[\d@]")  # text without a digit or an @ has nothing to mask

logger = logging.getLogger("connectors")


def new_request_id(offered: str | None) -> str:
    """Keep the caller's X-Request-ID when it is a sane token; otherwise mint one."""
    if offered and _REQUEST_ID_OK.match(offered):
        return offered
    return uuid.uuid4().hex


def _mask_phone(match: re.Match[str]) -> str:
    """Keep an IP address; mask a phone number to its last 4 digits."""
    if match.group(1):
        return match.group(1)
    return "***" + re.sub(r"\D", "", match.group(2))[-4:]


def mask_pii(text: str) -> str:
    """Mask emails (a***@domain) and phone numbers (keep the last 4 digits) inside free text; IPs stay."""
    if not _MAYBE_PII.search(text):
        return text
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _IP_OR_PHONE.sub(_mask_phone, text)


def _exception_text(exc: BaseException) -> str:
    """An exception's message, safe to log: pydantic's own text would echo the (secret) input values."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
    return mask_pii(str(exc))


def format_traceback(exc: BaseException) -> str:
    """The whole traceback, causes first as Python prints it, with each message made safe to log."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "\nThe above exception was the direct cause of the following exception:\n\n"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "\nDuring handling of the above exception, another exception occurred:\n\n"
        else:
            current = None
    parts: list[str] = []
    for error, link in reversed(chain):
        frames = "".join(traceback.format_tb(error.__traceback__))
        message = _exception_text(error)
        parts.append(f"Traceback (most recent call last):\n{frames}{type(error).__qualname__}"
                     f"{': ' + message if message else ''}\n{link}")
    return mask_pii("".join(parts).rstrip("\n"))  # source lines shown can hold literals too


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
    # Only the secrets present in the text are collected (no union of every known set per line).
    present = {s for known in (_process_secrets, secrets, request_secrets_var.get() or ()) for s in known
               if len(s) >= _MIN_SECRET and s in text}
    for secret in sorted(present, key=len, reverse=True):
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

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float) -> str:
        """ISO 8601 UTC with milliseconds; the seconds part is formatted once per second, not per line."""
        second = int(created)
        if second != self._second:  # a benign race across threads: both compute the same text
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        if record.name != "connectors":  # uvicorn, asyncio, warnings...: say who wrote it
            entry["logger"] = record.name
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["traceback"] = format_traceback(record.exc_info[1])
        # Only free text can carry personal data (vendor error messages); structured fields are ids and numbers.
        for key in ("event", "detail", "message"):
            if isinstance(entry.get(key), str):
                entry[key] = mask_pii(redact_secrets(entry[key]))
        return orjson.dumps(entry, default=str).decode()


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    """sys.excepthook: an uncaught exception as a JSON line, not Python's plain-text dump on stderr."""
    logging.getLogger("connectors").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def configure_logging(level: str) -> None:
    """Route every log in the process (ours, uvicorn's, asyncio's and uvloop's, warnings) through the JSON formatter."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("connectors", "uvicorn", "uvicorn.error", "asyncio"):
        log = logging.getLogger(name)
        log.handlers[:] = []
        log.setLevel(level)
        log.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access line replaces it
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value or Exception(), args.exc_traceback)
    # Thread, process and multiprocessing names are looked up for every record and no line carries them.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Write one structured line with the current request id (no caller lookup: the event names the place)."""
    if logger.isEnabledFor(level):
        logger.handle(logger.makeRecord(logger.name, level, "", 0, event, (), None, extra={"fields": fields}))
