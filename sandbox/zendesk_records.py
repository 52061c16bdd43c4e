"""The Zendesk emulator's records: a user, a ticket and an audit with every field the API returns; the account's fields.

Shapes follow https://developer.zendesk.com/api-reference/ticketing/users/users/,
https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/ and
https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_audits/.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

AGENT_ID = 2001  # the sandbox account's agent: the API user, every ticket's submitter and audit author


def now() -> str:
    """Zendesk's timestamp format."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def html_body(body: str) -> str:
    """A comment's `html_body` as Zendesk renders plain text: one paragraph per blank-line block."""
    paragraphs = [p for p in body.split("\n\n") if p.strip()] or [""]
    inner = "".join(f'<p dir="auto">{html.escape(p).replace(chr(10), "<br>")}</p>' for p in paragraphs)
    return f'<div class="zd-comment" dir="auto">{inner}</div>'


# The account's fields, as GET /ticket_fields and /user_fields list them
# (https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_fields/,
# https://developer.zendesk.com/api-reference/ticketing/users/user_fields/).
TICKET_FIELDS: list[dict[str, Any]] = [
    {"id": 360000000001, "type": "subject", "title": "Subject", "active": True, "removable": False},
    {"id": 360000000002, "type": "description", "title": "Description", "active": True, "removable": False},
    {"id": 360001234, "type": "text", "title": "Order number", "active": True, "removable": True},
]
USER_FIELDS: list[dict[str, Any]] = [
    {"id": 7001, "key": "loyalty_number", "type": "text", "title": "Loyalty number", "active": True},
    {"id": 7002, "key": "plan", "type": "dropdown", "title": "Plan", "active": True},
]


def user_record(
    uid: int, name: str, email: str | None, phone: str | None, role: str, org: int | None, stamp: str
) -> dict[str, Any]:
    """A user as GET /users/{id} returns it; end-users, agents and admins differ in their restriction flags."""
    return {
        "id": uid,
        "url": f"https://sandbox.zendesk.com/api/v2/users/{uid}.json",
        "name": name,
        "email": email,
        "phone": phone,
        "role": role,
        "organization_id": org,
        "tags": [],
        "user_fields": {},
        "external_id": None,
        "time_zone": "Asia/Dubai",
        "locale": "en-US",
        "active": True,
        "verified": True,
        "created_at": stamp,
        "updated_at": stamp,
        "iana_time_zone": "Asia/Dubai",
        "shared_phone_number": False if phone else None,
        "photo": None,
        "locale_id": 1,
        "alias": None,
        "shared": False,
        "shared_agent": False,
        "last_login_at": None,
        "two_factor_auth_enabled": False,
        "signature": None,
        "details": None,
        "notes": None,
        "role_type": None,
        "custom_role_id": None,
        "moderator": role == "admin",
        "ticket_restriction": "requested" if role == "end-user" else None,
        "only_private_comments": False,
        "restricted_agent": role == "end-user",
        "suspended": False,
        "default_group_id": None,
        "report_csv": role == "admin",
    }


def ticket_record(
    tid: int, fields: dict[str, Any], requester_id: int, organization_id: int | None, stamp: str
) -> dict[str, Any]:
    """A ticket as GET /tickets/{id} returns it, in the requester's organization."""
    return {
        "url": f"https://sandbox.zendesk.com/api/v2/tickets/{tid}.json",
        "id": tid,
        "external_id": fields.get("external_id"),
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": stamp,
        "updated_at": stamp,
        "type": fields.get("type"),
        "subject": fields.get("subject"),
        "raw_subject": fields.get("subject"),
        "description": fields.get("description"),
        "priority": fields.get("priority"),
        "status": fields.get("status") or "new",
        "recipient": None,
        "requester_id": requester_id,
        "submitter_id": AGENT_ID,
        "assignee_id": fields.get("assignee_id"),
        "organization_id": organization_id,
        "group_id": fields.get("group_id"),
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": fields.get("is_public", True),
        "due_at": None,
        "tags": list(fields.get("tags") or []),
        "custom_fields": list(fields.get("custom_fields") or []),
        "satisfaction_rating": None,
        "sharing_agreement_ids": [],
        "fields": [],
        "followup_ids": [],
        "allow_channelback": False,
        "allow_attachments": True,
        "from_messaging_channel": False,
    }


def audit_record(
    ticket: dict[str, Any],
    changes: dict[str, Any],
    comment: dict[str, Any] | None,
    kind: str,
    ids: Iterator[int],
    previous: dict[str, Any] | None = None,
) -> dict:
    """The audit of one create or update: a Comment event, then one Create/Change event per field.

    Change events carry `previous_value`; ids are given as strings, as Zendesk does in events.
    """
    audit_id = next(ids)
    events: list[dict[str, Any]] = []
    if comment:
        events.append(
            {
                "id": next(ids),
                "type": "Comment",
                "author_id": AGENT_ID,
                "body": comment["body"],
                "html_body": html_body(comment["body"]),
                "plain_body": comment["body"],
                "public": comment.get("public", True),
                "attachments": [],
                "audit_id": audit_id,
            }
        )
    for field, value in changes.items():
        event = {"id": next(ids), "type": kind, "value": value, "field_name": field}
        if field.endswith("_id") and isinstance(value, int):
            event["value"] = str(value)
        if previous is not None:
            before = previous.get(field)
            event["previous_value"] = str(before) if field.endswith("_id") and isinstance(before, int) else before
        events.append(event)
    return {
        "id": audit_id,
        "ticket_id": ticket["id"],
        "created_at": ticket["updated_at"],
        "author_id": AGENT_ID,
        "metadata": {"system": {}, "custom": {}},
        "events": events,
        "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
    }
