"""The Freshdesk emulator's records: a v2 contact, ticket and note with every field the API returns, and its times.

Shapes follow https://developers.freshdesk.com/api/#contacts, #tickets and #conversations (the bare objects).
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from typing import Any

AGENT_ID = 9001  # the agent the sandbox's API key belongs to (GET /agents/me), a note's default author


def now() -> str:
    """Freshdesk's timestamp format."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def later(stamp: str, hours: int) -> str:
    """A due time some hours after a Freshdesk timestamp (the sandbox's stand-in for SLA policies)."""
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def plain_text(markup: str) -> str:
    """The `*_text` twin of an HTML field: line breaks kept, tags dropped, entities decoded."""
    text = re.sub(r"<br\s*/?>", "\n", markup, flags=re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def contact_record(
    cid: int,
    name: str,
    email: str | None,
    *,
    phone: str | None = None,
    mobile: str | None = None,
    company_id: int | None = None,
) -> dict[str, Any]:
    """A contact with the fields a v2 contact carries (phone and mobile kept apart); seeded ones keep their date."""
    stamp = now() if cid >= 1100 else "2023-01-15T09:00:00Z"
    return {
        "active": email is not None,
        "address": None,
        "company_id": company_id,
        "view_all_tickets": False,
        "custom_fields": {},
        "deleted": False,
        "description": None,
        "email": email,
        "id": cid,
        "job_title": None,
        "language": "en",
        "mobile": mobile,
        "name": name,
        "phone": phone,
        "time_zone": "Abu Dhabi",
        "twitter_id": None,
        "unique_external_id": None,
        "other_emails": [],
        "other_companies": [],
        "tags": [],
        "avatar": None,
        "created_at": stamp,
        "updated_at": stamp,
    }


def ticket_record(tid: int, fields: dict[str, Any], requester_id: int, company_id: int | None, stamp: str) -> dict[str, Any]:
    """A v2 ticket as GET /tickets/{id} returns it, with description_text derived from the HTML; the company
    defaults to the requester's (`company_id`)."""
    description = fields.get("description") or ""
    return {
        "cc_emails": list(fields.get("cc_emails") or []),
        "fwd_emails": [],
        "reply_cc_emails": list(fields.get("cc_emails") or []),
        "ticket_cc_emails": list(fields.get("cc_emails") or []),
        "fr_escalated": False,
        "spam": False,
        "email_config_id": fields.get("email_config_id"),
        "group_id": fields.get("group_id"),
        "priority": fields.get("priority", 1),
        "requester_id": requester_id,
        "responder_id": fields.get("responder_id"),
        "source": fields.get("source", 2),
        "company_id": fields.get("company_id", company_id),
        "status": fields.get("status", 2),
        "subject": fields.get("subject"),
        "association_type": None,
        "support_email": None,
        "to_emails": None,
        "product_id": fields.get("product_id"),
        "id": tid,
        "type": fields.get("type"),
        "due_by": later(stamp, 72),
        "fr_due_by": later(stamp, 24),
        "is_escalated": False,
        "description": description,
        "description_text": plain_text(description),
        "custom_fields": dict(fields.get("custom_fields") or {}),
        "created_at": stamp,
        "updated_at": stamp,
        "tags": list(fields.get("tags") or []),
        "attachments": [],
    }


def note_record(note_id: int, ticket_id: int, fields: dict[str, Any], stamp: str) -> dict[str, Any]:
    """A note as POST /tickets/{id}/notes returns it (private unless told otherwise)."""
    return {
        "body": fields["body"],
        "body_text": plain_text(fields["body"]),
        "id": note_id,
        "incoming": bool(fields.get("incoming", False)),
        "private": fields.get("private", True),
        "user_id": fields.get("user_id", AGENT_ID),
        "support_email": None,
        "source": 2,  # a note
        "ticket_id": ticket_id,
        "to_emails": list(fields.get("notify_emails") or []),
        "from_email": None,
        "cc_emails": [],
        "bcc_emails": None,
        "attachments": [],
        "created_at": stamp,
        "updated_at": stamp,
    }
