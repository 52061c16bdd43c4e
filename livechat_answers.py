"""Reading LiveChat's answers: its error types as contract errors, a group's staffing, a chat as the handoff's state.

The calls that fetch them are livechat_connector.py's. Shapes: https://platform.text.com/docs/messaging/agent-chat-api
(errors, get_chat), https://platform.text.com/docs/management/configuration-api#list-groups (routing_status).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from errors import AuthFailed, CRMError, InvalidConfig, NotFound, RateLimited, UpstreamError, UpstreamRefused, UpstreamTimeout, UpstreamUnavailable, ValidationFailed
from models import HandoffResponse, HandoffStatus

# LiveChat error type -> contract error; a type not listed falls back to the HTTP status table.
LIVECHAT_ERRORS: Mapping[str, type[CRMError]] = {
    "authentication": AuthFailed,
    "authorization": AuthFailed,
    "missing_access": AuthFailed,
    "license_expired": AuthFailed,
    "requester_suspended": AuthFailed,
    "validation": ValidationFailed,
    "not_allowed": ValidationFailed,
    "limit_reached": ValidationFailed,
    "chat_inactive": ValidationFailed,
    "not_found": NotFound,
    "group_not_found": NotFound,
    "too_many_requests": RateLimited,
    "misdirected_request": InvalidConfig,  # the account lives in the other region
    "request_timeout": UpstreamTimeout,
    "internal": UpstreamUnavailable,
    "service_unavailable": UpstreamRefused,  # "new requests are temporarily not being accepted"
    # Nobody can take the chat: never worth a retry, always the fallback's cue.
    "group_offline": UpstreamError,
    "groups_offline": UpstreamError,
    "agent_offline": UpstreamError,
    "group_unavailable": UpstreamError,
}

# Configuration API group routing_status (what a PAT can read) -> the customer side's group status. It cannot
# tell "an agent is free" from "all busy", so an accepting group is treated as one whose chats may queue.
ROUTING_STATUS: Mapping[str, str] = {
    "accepting_chats": "online_for_queue",
    "not_accepting_chats": "online_for_queue",
    "offline": "offline",
}


def dict_or_empty(value: Any) -> dict[str, Any]:
    """A JSON object from the vendor, or {} for anything else (a missing or odd field is not a crash)."""
    return value if isinstance(value, dict) else {}


def whole_number(value: Any) -> int | None:
    """A count or seconds value from the vendor as an int, or None when it is not a number."""
    return round(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def livechat_type(error: CRMError) -> str | None:
    """LiveChat's own error type (group_offline, chat_inactive, ...) carried in a contract error's details."""
    return error.details.get("type") if isinstance(error.details, dict) else None


def failure_reason(error: CRMError) -> str:
    """Why LiveChat could not take the call, for the fallback: LiveChat's error type, else the contract code."""
    return livechat_type(error) or error.code


def chat_state(chat_id: str, chat: Mapping[str, Any], chat_url: Callable[[str, str | None], str]) -> HandoffResponse:
    """Assigned (an agent is in the thread), queued (position and wait), or closed (no active thread)."""
    thread = dict_or_empty(chat.get("thread"))
    url = chat_url(chat_id, str(thread.get("id") or ""))
    if not thread.get("active"):
        return HandoffResponse(handoff_id=chat_id, chat_url=url, status=HandoffStatus.closed)
    agent = assigned_agent(chat, thread)
    queue = dict_or_empty(thread.get("queue"))
    if agent and not queue:
        return HandoffResponse(
            handoff_id=chat_id,
            chat_url=url,
            agent_id=str(agent["id"]),
            agent_name=str(agent.get("name") or "") or None,
            estimated_wait_seconds=0,
            status=HandoffStatus.assigned,
        )
    return HandoffResponse(
        handoff_id=chat_id,
        chat_url=url,
        estimated_wait_seconds=whole_number(queue.get("wait_time")),
        queue_position=whole_number(queue.get("position")),
        status=HandoffStatus.queued,
    )


def assigned_agent(chat: Mapping[str, Any], thread: Mapping[str, Any]) -> dict[str, Any] | None:
    """The agent in the thread the caller was handed to, read from the chat's users and the thread's user_ids.

    Where LiveChat keeps the requester (the bot that opened the chat and wrote its first event) in the thread,
    another agent beside it is the one who took the call; an agent alone in the thread is the assignee,
    whoever wrote the first event (an agent may open a thread themselves).
    """
    in_thread = {str(u) for u in thread.get("user_ids") or []}
    users = [dict_or_empty(u) for u in chat.get("users") or []]
    agents = [u for u in users if u.get("type") == "agent" and str(u.get("id")) in in_thread]
    events = [dict_or_empty(e) for e in thread.get("events") or []]
    opener = str(events[0].get("author_id") or "") if events else ""
    return next((a for a in agents if str(a.get("id")) != opener), agents[0] if agents else None)
