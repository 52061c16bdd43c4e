"""The handoff's words, for any chat vendor: the transcript as messages, the agents-only summary, the ticket's text.

Pure functions, no I/O: what an agent reads, and how a voice call's turns fit a vendor's per-message limit.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from errors import InvalidRequest
from models import HandoffContext, TicketPriority
from phone import parse_phone


@dataclasses.dataclass(frozen=True)
class Urgency:
    """What a handoff's urgency means on each side: a tag on the chat, a priority on the fallback ticket."""

    name: str
    tag: str
    priority: TicketPriority


# Chat vendors (LiveChat) have no chat priority field; agents see and filter by tags, so urgency travels as one.
URGENCY: Mapping[str, Urgency] = {
    "low": Urgency("low", "priority_low", TicketPriority.low),
    "medium": Urgency("medium", "priority_medium", TicketPriority.medium),
    "high": Urgency("high", "priority_high", TicketPriority.high),
    "urgent": Urgency("urgent", "priority_urgent", TicketPriority.urgent),
    "critical": Urgency("critical", "priority_urgent", TicketPriority.urgent),
}

# Transcript roles as an agent reads them; every message is posted by the bot's account, so the text says who spoke.
ROLE_LABELS: Mapping[str, str] = {
    "user": "Caller",
    "customer": "Caller",
    "caller": "Caller",
    "human": "Caller",
    "bot": "Bot",
    "assistant": "Bot",
    "agent": "Bot",
    "ai": "Bot",
    "system": "System",
}

CALLBACK_KEYS = ("callback_number", "caller_id", "ani", "phone")  # metadata keys a voice platform uses for the caller


# --- text helpers ------------------------------------------------------------------------------------


def split_text(text: str, limit_bytes: int) -> list[str]:
    """Cut text into pieces of at most `limit_bytes` UTF-8 bytes, at a space where one is near the cut."""
    pieces: list[str] = []
    rest = text
    while len(rest.encode()) > limit_bytes:
        cut = len(rest.encode()[:limit_bytes].decode("utf-8", "ignore"))  # whole characters only
        space = rest.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip(" ")
    return [*pieces, rest] if rest or not pieces else pieces


def turn_parts(turn: Mapping[str, Any]) -> tuple[str, str]:
    """(speaker label, text) of one transcript turn; `role`/`speaker` and `text`/`content` are both accepted."""
    role = str(turn.get("role") or turn.get("speaker") or "").strip()
    text = turn.get("text") or turn.get("content") or turn.get("message") or ""
    return ROLE_LABELS.get(role.lower(), role[:32].title() or "Unknown"), str(text).strip()


def transcript_messages(transcript: list[dict[str, Any]], limit_bytes: int) -> list[str]:
    """The transcript as `Speaker: text` messages, in order, long turns split under the vendor's `limit_bytes`."""
    messages: list[str] = []
    for turn in transcript:
        label, text = turn_parts(turn)
        if not text:
            continue
        room = limit_bytes - len(f"{label} (9999/9999): ".encode())
        pieces = split_text(text, room)
        for n, piece in enumerate(pieces, 1):
            head = label if len(pieces) == 1 else f"{label} ({n}/{len(pieces)})"
            messages.append(f"{head}: {piece}")
    return messages


def transcript_lines(transcript: list[dict[str, Any]]) -> list[str]:
    """The transcript as `Speaker: text` lines for a ticket."""
    return [f"{label}: {text}" for label, text in map(turn_parts, transcript) if text]


def e164_or_none(raw: str | None, region: str) -> str | None:
    """The number in E.164 when it is one, else None (a CRM must not be handed something unparseable)."""
    if not raw:
        return None
    try:
        return parse_phone(raw, region).e164
    except InvalidRequest:
        return None


def callback_number(context: HandoffContext, region: str) -> str | None:
    """Where an agent can call the caller back: their phone, else what the voice platform put in metadata."""
    candidates = [context.customer_phone, *(context.metadata.get(k) for k in CALLBACK_KEYS)]
    raw = next((str(c) for c in candidates if c), None)
    return e164_or_none(raw, region) or raw


def is_record_id(key: str) -> bool:
    """Metadata keys naming a CRM or one of its records (crm_type, customer_id, zendesk_ticket_id, ...)."""
    key = key.lower()
    return key in ("crm", "crm_type", "id") or key.endswith("_id")


def summary_text(context: HandoffContext, urgency: Urgency, region: str) -> str:
    """The agents-only note: why the bot handed over, who is calling, how to reach them, and the CRM ids."""
    callback = callback_number(context, region)
    ids = {k: v for k, v in context.metadata.items() if is_record_id(k)}
    other = {k: v for k, v in context.metadata.items() if not is_record_id(k)}
    lines = [
        "Voice call handed over by the bot. The caller is on the phone, not in this chat: call them back.",
        f"Reason: {context.reason}",
        f"Urgency: {urgency.name}",
        f"Customer: {context.customer_name}",
        f"Email: {context.customer_email or 'not given'}",
        f"Phone: {e164_or_none(context.customer_phone, region) or context.customer_phone or 'not given'}",
        f"Callback number: {callback or 'unknown, ask the caller'}",
        f"Call id: {context.call_id}",
    ]
    if ids:
        lines.append("CRM and record ids: " + ", ".join(f"{k}={v}" for k, v in ids.items()))
    if other:
        lines.append("Context: " + ", ".join(f"{k}={v}" for k, v in other.items()))
    lines.append(f"Transcript: {len(transcript_lines(context.transcript))} turns, above.")
    return "\n".join(lines)


def fit_text(head: str, lines: list[str], limit: int) -> str:
    """Head and transcript within `limit` characters: the first and last turns kept, the middle noted as cut."""
    full = "\n".join([head, "", "Transcript:", *lines])
    if len(full) <= limit:
        return full
    budget = limit - len(head) - 200
    clip = max(200, budget // 8)  # one huge turn must not crowd out all the others
    front: list[str] = []
    back: list[str] = []
    used, i, j = 0, 0, len(lines) - 1
    while i <= j:
        take_front = len(front) <= len(back)
        line = lines[i] if take_front else lines[j]
        line = line if len(line) <= clip else line[:clip] + " [...]"
        if used + len(line) + 1 > budget:
            break
        used += len(line) + 1
        if take_front:
            front.append(line)
            i += 1
        else:
            back.append(line)
            j -= 1
    omitted = j - i + 1
    middle = [f"[... {omitted} turns left out to fit the ticket ...]"] if omitted > 0 else []
    return "\n".join([head, "", "Transcript:", *front, *middle, *reversed(back)])


def caller_identity(context: HandoffContext, region: str) -> str:
    """Who the caller is across calls (their E.164 number, else email, else this call), so a repeat caller
    stays one chat customer and agents see their earlier chats."""
    return e164_or_none(callback_number(context, region), region) or (context.customer_email or "").lower() or (
        f"call:{context.call_id}"
    )


def tag_of(text: str) -> str:
    """A reason as a tag: lower case, words joined by underscores."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:50]


def handoff_tags(context: HandoffContext, urgency: Urgency) -> list[str]:
    """Tags on the chat thread and the fallback ticket: the source, the reason, the urgency."""
    return [tag for tag in dict.fromkeys(["voice_handoff", tag_of(context.reason), urgency.tag]) if tag]
