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

# Request fields that name records; a value that is an email (a caller's mistake) is masked.
ID_FIELDS = ("customer_id", "ticket_id", "handoff_id", "connection_id")


class AuditFormatter(logging.Formatter):
    """The record's entry as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(getattr(record, "entry", {}), default=str).decode()


class AuditLog:
    """One app's audit sink: stdout, a file (appended; reopened when rotated away), or off."""

    def __init__(self, target: str) -> None:
        target = target.strip()
        # A private logger, outside logging's registry: never mixed into the service log, one per app.
        self.logger = logging.Logger("connectors.audit", logging.INFO)
        self.enabled = target.lower() != "off"
        if not self.enabled:
            return
        if target.lower() == "stdout":
            handler: logging.Handler = logging.StreamHandler(sys.stdout)
        else:
            from logging.handlers import WatchedFileHandler

            handler = WatchedFileHandler(target, encoding="utf-8")
        handler.setFormatter(AuditFormatter())
        self.logger.addHandler(handler)

    def record(self, fields: Mapping[str, Any], status: int, request_id: str) -> None:
        """Write the request's audit line, if it was a CRM or handoff operation."""
        if self.enabled and self.logger.isEnabledFor(logging.INFO) and (line := entry(fields, status, request_id)) is not None:
            # makeRecord and handle, as log_event does: the line names no caller, so logging need not look one up.
            record = self.logger.makeRecord(self.logger.name, logging.INFO, "", 0, "audit", (), None, extra={"entry": line})
            self.logger.handle(record)

    def close(self) -> None:
        """Close the file, if any."""
        for handler in self.logger.handlers:
            handler.close()


def note(**fields: Any) -> None:
    """Add record ids or an outcome to the current request's audit line (and access line); None values are skipped."""
    current = request_fields_var.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def masked_id(value: Any) -> str:
    """A record id as is (vendor ids are long digit runs, not phones); one a caller wrote as an email, masked."""
    text = str(value)
    return mask_pii(text) if "@" in text else text


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
        "ids": {name: masked_id(fields[name]) for name in ID_FIELDS if fields.get(name) is not None},
        "status": status,
        "outcome": outcome,
    }
