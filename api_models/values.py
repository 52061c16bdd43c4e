"""The unified values every model shares: ticket statuses and priorities, handoff statuses, timestamps, input limits."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any

from pydantic import StringConstraints

# Input limits: every one a 422, so no oversized value reaches a vendor or a slow code path.
MAX_TRANSCRIPT_TURNS = 500
MAX_METADATA_KEYS = 100
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class TicketStatus(str, Enum):
    """Unified ticket lifecycle; each connector maps its vendor's states onto these through a table."""

    new = "new"
    open = "open"
    pending = "pending"
    solved = "solved"
    closed = "closed"


class TicketPriority(str, Enum):
    """Unified priority; vendors call medium 'normal' (Zendesk) or use numbers (Freshdesk)."""

    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"


# Already what iso_utc writes (whole seconds, UTC, Z), as most vendors send it: the answer is the text itself,
# valid or not (an impossible date comes back unchanged too), so the parse is skipped.
_CANONICAL_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def iso_utc(value: Any) -> str | None:
    """Render a vendor timestamp (ISO string with any offset, or epoch ms) as ISO 8601 UTC ending in Z."""
    if value in (None, ""):
        return None
    if type(value) is str and _CANONICAL_UTC.fullmatch(value):
        return value
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        # Salesforce writes offsets without a colon (+0000); fromisoformat wants one before 3.11's relaxations.
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = f"{text[:-2]}:{text[-2:]}"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return str(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds") + "Z"



class HandoffStatus(str, Enum):
    """Where a handoff stands: with an agent, waiting in the queue, turned into a ticket, or over."""

    assigned = "assigned"
    queued = "queued"
    fallback_ticket = "fallback_ticket"
    closed = "closed"

