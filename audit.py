"""The audit trail: one JSON line per CRM or handoff operation (who, what, which records, how it ended), PII masked.

AUDIT_LOG=stdout (default), a file path, or off. The line is written when the request ends, from the fields the
routes noted on the request (crm_type, operation, ids) and the answer's status or error code.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

from observability import mask_pii, request_fields_var

logger = logging.getLogger("connectors.audit")
logger.propagate = False  # never mixed into the service log's formatter or level
# Request fields that name records; values are masked in case a caller puts an email or phone in one.
ID_FIELDS = ("customer_id", "ticket_id", "handoff_id")


class AuditFormatter(logging.Formatter):
    """The record's entry as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(getattr(record, "entry", {}), default=str).decode()


def configure(target: str) -> None:
    """Send audit lines to stdout, to a file (appended; reopened when rotated), or nowhere ("off")."""
    logger.handlers.clear()
    if target.strip().lower() == "off":
        logger.disabled = True
        return
    logger.disabled = False
    if target.strip().lower() == "stdout":
        handler: logging.Handler = logging.StreamHandler(sys.stdout)
    else:
        from logging.handlers import WatchedFileHandler

        handler = WatchedFileHandler(target, encoding="utf-8")
    handler.setFormatter(AuditFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def note(**fields: Any) -> None:
    """Add record ids or an outcome to the current request's audit line (and access line); None values are skipped."""
    current = request_fields_var.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def entry(fields: Mapping[str, Any], status: int, request_id: str) -> dict[str, Any] | None:
    """The audit entry for a finished request, or None when it was no CRM or handoff operation."""
    operation = fields.get("operation")
    if operation is None:
        return None
    outcome = fields.get("outcome") or ("ok" if status < 400 else fields.get("error_code") or f"http_{status}")
    return {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "event": "audit",
        "request_id": request_id,
        "caller": fields.get("caller"),
        "vendor": fields.get("crm_type"),
        "operation": operation,
        "ids": {name: mask_pii(str(fields[name])) for name in ID_FIELDS if fields.get(name) is not None},
        "status": status,
        "outcome": outcome,
    }


def record(fields: Mapping[str, Any], status: int, request_id: str) -> None:
    """Write the request's audit line, if it was an operation and auditing is on."""
    if logger.disabled or not logger.handlers:
        return
    line = entry(fields, status, request_id)
    if line is not None:
        logger.info("audit", extra={"entry": line})
