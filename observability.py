"""JSON log lines, the request id that ties them together, and masking of personal data."""

from __future__ import annotations

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
        for key in ("event", "detail"):
            if isinstance(entry.get(key), str):
                entry[key] = mask_pii(entry[key])
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
