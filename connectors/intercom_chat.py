"""Intercom as a handoff target: a conversation from the caller's contact, an internal note, an assignment, its state.

Docs (API 2.11): https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/conversations ,
.../admins and .../teams. Intercom has no queue position or wait estimate, so a handoff is assigned (an admin
holds it), queued (open with a team or nobody) or closed.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import Any

from connectors.base import require
from connectors.chat import ChatAttempt, ChatConnector, all_at_once
from connectors.intercom_api import IntercomAPI
from errors import CRMError, UpstreamError
from handoff_text import Urgency, callback_number, e164_or_none, fit_text, summary_text, transcript_lines
from models import HandoffContext, HandoffResponse, HandoffStatus
from observability import log_event
from phone import parse_phone

NO_TEAMMATE = "no_teammate_available"  # the fallback's reason when every candidate admin is away
MESSAGE_LIMIT = 60_000  # the opening message: the transcript, middle cut when huge
# A conversation's `state` -> the handoff's status; an open one is assigned once an admin holds it.
STATE_STATUS: Mapping[str, HandoffStatus] = {
    "closed": HandoffStatus.closed,
    "snoozed": HandoffStatus.queued,
    "open": HandoffStatus.queued,
}


def as_html(text: str) -> str:
    """Plain text as the HTML a note body takes (escaped, one paragraph per line)."""
    return "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())


def admin_id_of(value: Any) -> str | None:
    """An assignee id as Intercom sends it (a string or number; null or 0 when nobody holds it)."""
    if isinstance(value, bool) or value in (None, "", 0, "0"):
        return None
    return str(value)


class IntercomChat(IntercomAPI, ChatConnector):
    """The handoff's Intercom side; `handoff.py` splits the deadline, makes it once and files the fallback ticket."""

    async def caller_contact(self, context: HandoffContext) -> dict[str, Any]:
        """The caller's contact, by phone then email, else a new lead with what the call knows."""
        region = self.ctx.settings.default_phone_region
        phone = e164_or_none(callback_number(context, region), region)
        email = context.customer_email if context.customer_email and "@" in context.customer_email else None
        if phone:
            found = await self.contacts_by_phone(parse_phone(phone, region), 1)
            if found:
                return found[0]
        if email:
            found = await self.contacts_by_email(email, 1)
            if found:
                return found[0]
        return await self.create_contact(name=context.customer_name, email=email, phone=phone)

    async def admins(self) -> list[dict[str, Any]]:
        """`GET /admins` → `{"type":"admin.list","admins":[{id,name,away_mode_enabled,...}]}`. Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/admins/listadmins"""
        data = await self._json("GET", "/admins", operation="list_admins")
        return [a for a in require(data, "admins", self.vendor, kind=list) if isinstance(a, dict)]

    async def team_admin_ids(self, team_id: str) -> set[str]:
        """`GET /teams/{id}` → `{"type":"team","id","name","admin_ids":[...]}`. Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/teams/retrieveteam"""
        data = await self._json("GET", f"/teams/{team_id}", operation="get_team")
        return {str(i) for i in require(data, "admin_ids", self.vendor, kind=list)}

    async def available(self) -> list[dict[str, Any]]:
        """The candidate admins not in away mode: the assignee, the team's admins, or any admin with an inbox seat."""
        if self.config.team_id and not self.config.assignee_id:
            admins, members = await all_at_once(self.admins(), self.team_admin_ids(self.config.team_id))
            candidates = [a for a in admins if str(a.get("id")) in members]
        else:
            admins = await self.admins()
            wanted = self.config.assignee_id
            candidates = [a for a in admins if (str(a.get("id")) == wanted if wanted else a.get("has_inbox_seat", True))]
        return [a for a in candidates if not a.get("away_mode_enabled")]

    async def start_conversation(self, contact: Mapping[str, Any], body: str) -> str:
        """`POST /conversations` from the contact → the `user_message` with its `conversation_id`.

        Not idempotent at Intercom: resent only where Intercom cannot have acted on it. Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/conversations/createconversation
        """
        role = "lead" if contact.get("role") == "lead" else "user"
        payload = {"from": {"type": role, "id": str(contact["id"])}, "body": body}
        data = await self._json("POST", "/conversations", json=payload, operation="create_conversation")
        return require(data, "conversation_id", self.vendor, kind=str)

    async def add_note(self, conversation_id: str, admin_id: str, text: str) -> None:
        """`POST /conversations/{id}/reply` with `message_type: note` (agents only). Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/conversations/replyconversation"""
        body = {"message_type": "note", "type": "admin", "admin_id": admin_id, "body": as_html(text)}
        await self._json("POST", f"/conversations/{conversation_id}/reply", json=body, operation="add_note")

    async def assign(self, conversation_id: str, admin_id: str, target: str) -> None:
        """`POST /conversations/{id}/parts` with `message_type: assignment` to an admin or a team.

        Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/conversations/manageconversation
        (not `run_assignment_rules`: deprecated from 2.12 and, per Intercom's OpenAPI, removed on 2026-12-31).
        """
        body = {"message_type": "assignment", "type": "admin", "admin_id": admin_id, "assignee_id": target}
        path = f"/conversations/{conversation_id}/parts"
        await self._json("POST", path, json=body, idempotent=True, operation="assign_conversation")

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        """`GET /conversations/{id}`. Docs: https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/conversations/retrieveconversation"""
        data = await self._json("GET", f"/conversations/{conversation_id}", operation="get_conversation")
        require(data, "id", self.vendor, kind=str)
        return data

    async def hand_over(self, context: HandoffContext, urgency: Urgency, attempt: ChatAttempt) -> HandoffResponse:
        """Check a teammate is there, open the caller's conversation with the transcript, note the summary, assign."""
        contact, free = await all_at_once(self.caller_contact(context), self.available())
        if not free:
            raise UpstreamError(
                "no Intercom teammate is available: every candidate admin is away",
                crm_type=self.vendor,
                details={"type": NO_TEAMMATE},
            )
        region = self.ctx.settings.default_phone_region
        opening = fit_text(f"Call {context.call_id}: {context.reason}", transcript_lines(context.transcript), MESSAGE_LIMIT)
        attempt.chat_id = await self.start_conversation(contact, opening)
        admin = await self.acting_admin()
        await self.add_note(attempt.chat_id, admin, summary_text(context, urgency, region))
        # The configured admin or team, else the first teammate who is there (not away, with an inbox seat).
        await self.assign(attempt.chat_id, admin, self.config.assignee_id or self.config.team_id or str(free[0]["id"]))
        names = {str(a.get("id")): a.get("name") for a in free}
        return self.handoff_state(await self.conversation(attempt.chat_id), names)

    async def read_state(self, chat_id: str) -> HandoffResponse:
        """The conversation now, with the assigned admin's name (`GET /admins/{id}`, https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/admins/retrieveadmin)."""
        conversation = await self.conversation(chat_id)
        admin = admin_id_of(conversation.get("admin_assignee_id"))
        names: dict[str, Any] = {}
        if admin and conversation.get("state") != "closed":
            found = await self._json("GET", f"/admins/{admin}", operation="get_admin")
            names[admin] = found.get("name") if isinstance(found, dict) else None
        return self.handoff_state(conversation, names)

    def handoff_state(self, conversation: Mapping[str, Any], names: Mapping[str, Any]) -> HandoffResponse:
        """Closed, assigned (an admin holds the open conversation) or queued (a team or nobody holds it, or snoozed)."""
        chat_id = str(conversation["id"])
        status = STATE_STATUS.get(str(conversation.get("state")), HandoffStatus.queued)
        admin = admin_id_of(conversation.get("admin_assignee_id"))
        if status is HandoffStatus.closed or not admin or conversation.get("state") == "snoozed":
            return HandoffResponse(handoff_id=chat_id, status=status)
        name = names.get(admin)
        return HandoffResponse(
            handoff_id=chat_id,
            agent_id=admin,
            agent_name=str(name) if name else None,
            estimated_wait_seconds=0,
            status=HandoffStatus.assigned,
        )

    async def close(self, chat_id: str) -> bool:
        """Close a conversation that was not handed over (`/parts`, `message_type: close`); whether that worked."""
        try:
            admin = await self.acting_admin()
            body = {"message_type": "close", "type": "admin", "admin_id": admin}
            await self._json("POST", f"/conversations/{chat_id}/parts", json=body, idempotent=True, operation="close_conversation")
        except CRMError as exc:
            log_event("handoff_close_failed", logging.WARNING, crm_type=self.vendor, code=exc.code, detail=exc.message)
            return False
        return True

    def failure_reason(self, error: CRMError) -> str:
        """`no_teammate_available` when everyone is away, else the contract code."""
        kind = error.details.get("type") if isinstance(error.details, dict) else None
        return kind or error.code
