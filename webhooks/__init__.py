"""Vendors' webhooks in (docs/events.md#inbound-vendor-webhooks): verified the vendor's way, normalised, published.

verify.py (each vendor's verification), vendors.py (each vendor's body read as notices), inbound.py (the unified
object attached, changes, shared state), routes.py (POST /webhooks/...), poller.py (Salesforce Cases by SOQL).
`open_inbound`/`close_inbound` run in the lifespan, after the event pipeline.
"""

from __future__ import annotations

from typing import Any

from settings import Settings
from state import MemoryState

from .inbound import Inbox
from .poller import CasePoller

MEMORY_BYTES = 8 * 1024 * 1024  # replay keys, ticket snapshots and chat states, without Redis


async def open_inbound(app_state: Any, settings: Settings) -> None:
    """The inbox over shared state (Redis when configured), and the Salesforce poller when SALESFORCE_POLL_SECONDS."""
    states = getattr(app_state, "states", [])
    state = states[0] if states else MemoryState(MEMORY_BYTES)
    app_state.webhooks = Inbox(state)
    app_state.case_poller = None
    if settings.salesforce_poll_seconds > 0:
        poller = CasePoller(app_state, state, app_state.webhooks, settings.salesforce_poll_seconds,
                            list(settings.salesforce_poll_connections))
        poller.start()
        app_state.case_poller = poller


async def close_inbound(app_state: Any) -> None:
    """Stop the poller (its lock released, so another replica takes over at once)."""
    poller = getattr(app_state, "case_poller", None)
    if poller is not None:
        await poller.stop()
