"""A small per-tenant record of the handoffs this service made, by the customer's phone (E.164) and email.

Kept in the shared state (memory or Redis) so /crm/customer/context can say "handed to an agent 10 minutes
ago" on any replica. The tenant is the calling API key (or `open`); each customer keeps its last few handoffs.
Concurrent handoffs for one customer may drop one of them (read-modify-write): a hint, not a ledger.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from fastapi import Request

import orjson

from errors import CRMError
from observability import log_event, request_fields_var
from phone import parse_phone
from state import State

KEEP = 10  # handoffs kept per customer
TTL_SECONDS = 7 * 86_400.0


def _key(tenant: str, kind: str, value: str) -> str:
    """Hashed: no phone or email appears in a key."""
    return "ho:" + hashlib.blake2b(f"{tenant}\x1f{kind}\x1f{value}".encode(), digest_size=16).hexdigest()


def identities(phone: str | None, email: str | None, region: str) -> list[tuple[str, str]]:
    """The (kind, value) pairs a customer is recorded under: E.164 phone and lower-cased email."""
    found = []
    if phone:
        try:
            found.append(("phone", parse_phone(phone, region).e164))
        except CRMError:
            pass  # no number to file it under
    if email:
        found.append(("email", email.strip().lower()))
    return found


async def record(state: State, tenant: str, who: list[tuple[str, str]], handoff: dict[str, Any]) -> None:
    """Add a handoff under each of the customer's identities (a store failure is logged, never the caller's)."""
    entry = {"at": time.time(), **handoff}
    try:
        for kind, value in who:
            key = _key(tenant, kind, value)
            raw = await state.get(key)
            kept = orjson.loads(raw) if raw else []
            await state.set(key, orjson.dumps([entry, *kept][:KEEP]), TTL_SECONDS)
    except CRMError as exc:
        log_event("handoff_record_failed", logging.WARNING, code=exc.code)


async def recent(state: State, tenant: str, who: list[tuple[str, str]], limit: int = KEEP) -> list[dict[str, Any]]:
    """The customer's recent handoffs, newest first, once each."""
    seen: dict[str, dict[str, Any]] = {}
    for kind, value in who:
        raw = await state.get(_key(tenant, kind, value))
        for entry in orjson.loads(raw) if raw else []:
            seen.setdefault(f"{entry.get('handoff_id')}:{entry.get('at')}", entry)
    ordered = sorted(seen.values(), key=lambda e: e.get("at", 0), reverse=True)[:limit]
    return [{**e, "at": _iso(e.get("at", 0))} for e in ordered]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


async def record_handoff(request: Request, body: Any, answer: dict[str, Any]) -> None:
    """After /handoff/create: file the handoff under the caller's phone and email, for the calling API key."""
    context = body.context
    who = identities(context.customer_phone, context.customer_email, request.app.state.settings.default_phone_region)
    fields = request_fields_var.get() or {}
    summary = {
        "handoff_id": answer.get("handoff_id"),
        "status": answer.get("status"),
        "call_id": context.call_id,
        "reason": context.reason,
        "chat_type": fields.get("crm_type"),
    }
    await record(request.app.state.idempotency.state, str(fields.get("caller") or "open"), who, summary)
