"""Human handoff through LiveChat's Agent Chat API (v3.6), with a CRM ticket when no agent can take the call.

LiveChat's Web API is RPC over POST: `/v3.6/agent/action/<method>` with a JSON body. A handoff is: is the group
staffed (`list_group_statuses`) and a customer profile (`create_customer`), at once; a chat whose first events
are the transcript (`start_chat`); an agents-only summary and tags, at once (`send_event`, `tag_thread`); the
transfer (`transfer_chat`); and the chat read back (`get_chat`) for the agent or the queue. When no agent can
take it, or LiveChat keeps failing, the call becomes a ticket in HANDOFF_FALLBACK_CRM, so no caller is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import string
from collections.abc import Awaitable, Mapping
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import require
from connectors.http import (
    DEFAULT_STATUS_ERRORS,
    ConnectorContext,
    Deadline,
    UpstreamConnector,
    UpstreamResponse,
    VendorConfig,
    basic_auth,
    bearer_auth,
)
from crm import CRMFactory
from errors import (
    AuthFailed,
    CRMError,
    HandoffFailed,
    InvalidConfig,
    InvalidRequest,
    NotFound,
    RateLimited,
    UnsupportedCRM,
    UpstreamError,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationFailed,
)
from idempotency import IdempotencyStore, fingerprint
from models import (
    ErrorResponse,
    HandoffContext,
    HandoffFallback,
    HandoffRequest,
    HandoffResponse,
    HandoffStatus,
    HandoffStatusRequest,
    TicketCreateRequest,
    TicketPriority,
)
from observability import log_event, request_fields_var
from phone import parse_phone
from telemetry import observe_handoff
from deps import ERROR_RESPONSES, Context, IdempotencyKey, Store, with_create_outcome, within_deadline

T = TypeVar("T")

API_VERSION = "v3.6"
MESSAGE_LIMIT_BYTES = 16 * 1024  # LiveChat's limit on the text of one message event
TICKET_TEXT_LIMIT = 60_000  # under TicketCreateRequest's 65,000 and the CRMs' own comment limits
REGIONS = ("dal", "fra")  # LiveChat's data centres; tokens carry theirs as a prefix (`fra:...`)
URL_FIELDS = frozenset({"chat_id", "thread_id", "license_id"})
CHAT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TICKET_PREFIX = "ticket:"

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


@dataclasses.dataclass(frozen=True)
class Urgency:
    """What a handoff's urgency means on each side: a thread tag in LiveChat, a priority on the fallback ticket."""

    name: str
    tag: str
    priority: TicketPriority


# LiveChat has no chat priority field; agents see and filter by tags, so urgency travels as one.
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

# Group status -> `ignore_agents_availability` for transfer_chat: with a free agent LiveChat assigns the chat;
# when every agent is busy it only queues the chat if availability is ignored. "offline" never gets this far.
IGNORE_AVAILABILITY: Mapping[str | None, bool] = {"online": False, "online_for_queue": True, None: False}

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


def transcript_events(transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcript as start_chat's initial message events, in order, long turns split under 16 KB."""
    events: list[dict[str, Any]] = []
    for turn in transcript:
        label, text = turn_parts(turn)
        if not text:
            continue
        room = MESSAGE_LIMIT_BYTES - len(f"{label} (9999/9999): ".encode())
        pieces = split_text(text, room)
        for n, piece in enumerate(pieces, 1):
            head = label if len(pieces) == 1 else f"{label} ({n}/{len(pieces)})"
            events.append({"type": "message", "text": f"{head}: {piece}", "visibility": "all"})
    return events


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


async def all_at_once(*calls: Awaitable[T]) -> list[T]:
    """Run independent calls concurrently; the first failure cancels the others and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]  # type: ignore[arg-type]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


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


# --- the connector --------------------------------------------------------------------------------------


class LiveChatConfig(VendorConfig):
    """`api_key` (PAT or OAuth token), `account_id` for PAT Basic auth, `license_id`, and where chats go."""

    license_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    api_key: SecretStr | None = None
    account_id: str | None = Field(None, max_length=200)
    region: Literal["dal", "fra"] | None = None
    group_id: int = Field(0, ge=0)
    agent_id: str | None = Field(None, min_length=1, max_length=254)
    chat_url_template: str = "https://my.livechatinc.com/chats/{chat_id}"
    fallback_crm: str | None = Field(None, max_length=50)

    @field_validator("chat_url_template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        """Only placeholders we can fill, in a web link: a bad template fails now, not after the chat exists."""
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError:
            raise ValueError("not a valid template") from None
        if names - URL_FIELDS:
            raise ValueError(f"unknown placeholder(s) {sorted(names - URL_FIELDS)}; use {sorted(URL_FIELDS)}")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _needs_credentials(self) -> LiveChatConfig:
        """A token to act with, and the license (organization) the customer-side calls name."""
        if not self.api_key or not self.license_id:
            raise ValueError("give api_key and license_id")
        return self


@dataclasses.dataclass
class ChatAttempt:
    """What exists at LiveChat so far, so a failure can say it (and close it) honestly."""

    chat_id: str | None = None
    closed: bool = False


class LiveChatConnector(UpstreamConnector):
    """LiveChat's Agent Chat Web API (and the customer side's group statuses) for handoffs."""

    vendor = "livechat"
    display_name = "LiveChat"
    config_model = LiveChatConfig
    config: LiveChatConfig
    status_errors: ClassVar[Mapping[int, type[CRMError]]] = {
        **DEFAULT_STATUS_ERRORS,
        421: InvalidConfig,
        500: UpstreamUnavailable,
    }
    error_types: ClassVar[Mapping[str, type[CRMError]]] = LIVECHAT_ERRORS

    def _vendor_url(self) -> str:
        """One host for both regions; the region travels in the X-Region header."""
        return "https://api.livechatinc.com"

    def with_deadline(self, deadline: Deadline) -> LiveChatConnector:
        """The same connector on a shorter clock, so LiveChat cannot spend the time the fallback needs."""
        return type(self)(self.config, dataclasses.replace(self.ctx, deadline=deadline))

    @property
    def region(self) -> str | None:
        """The configured region, else the one the token names in its prefix (`fra:...`)."""
        assert self.config.api_key
        prefix = self.config.api_key.get_secret_value().partition(":")[0]
        return self.config.region or (prefix if prefix in REGIONS else None)

    async def _auth_headers(self) -> dict[str, str]:
        """PAT as Basic `account_id:token`, or an OAuth token as Bearer; X-Region when the region is known."""
        assert self.config.api_key
        token = self.config.api_key.get_secret_value()
        if self.config.account_id:
            headers = basic_auth(self.config.account_id, token)
        else:
            headers = bearer_auth(token)
        if self.region:
            headers["X-Region"] = self.region
        return headers

    def _envelope(self, response: UpstreamResponse) -> dict[str, Any]:
        """LiveChat's `{"error": {"type", "message", "data"?}}`, or {} when the body is something else."""
        body = response.error_json()
        error = body.get("error") if isinstance(body, dict) else None
        return error if isinstance(error, dict) else {}

    def _error_type(self, response: UpstreamResponse) -> type[CRMError]:
        """By LiveChat's error type first (its statuses are shared by many types), else by status."""
        kind = self._envelope(response).get("type")
        return (isinstance(kind, str) and self.error_types.get(kind)) or super()._error_type(response)

    def _error_detail(self, response: UpstreamResponse) -> tuple[str, Any]:
        """LiveChat's message, with its type (and data, e.g. the right region) kept in details."""
        error = self._envelope(response)
        if not error:
            return super()._error_detail(response)
        kind, data = error.get("type"), error.get("data")
        message = str(error.get("message") or kind or f"LiveChat answered {response.status}")
        if isinstance(data, dict) and data.get("region"):
            message += f" (this account is served from region {data['region']!r}: set region or LIVECHAT_REGION)"
        return message, {"type": kind, **({"data": data} if isinstance(data, dict) else {})}

    async def _call(
        self, side: Literal["agent", "customer"], method: str, body: Mapping[str, Any], *, idempotent: bool
    ) -> Any:
        """POST /v3.6/{side}/action/{method}; the customer side names the organization in the query."""
        params = {"organization_id": self.config.license_id} if side == "customer" else None
        return await self._json(
            "POST",
            f"/{API_VERSION}/{side}/action/{method}",
            json=body,
            params=params,
            idempotent=idempotent,
            operation=method,
        )

    # --- actions ---------------------------------------------------------------------------------

    async def group_status(self, group_id: int) -> str | None:
        """online, online_for_queue or offline; None when LiveChat will not say (the transfer then decides)."""
        try:
            data = await self._call("customer", "list_group_statuses", {"group_ids": [group_id]}, idempotent=True)
        except AuthFailed:
            return None  # the customer-side API may refuse an agent's token; transfer_chat still tells the truth
        groups = require(data, "groups_status", self.vendor)
        status = groups.get(str(group_id)) if isinstance(groups, dict) else None
        return str(status) if status is not None else None

    async def create_customer(self, context: HandoffContext) -> str:
        """A customer profile the agent sees beside the chat: name, email, and the call's phone and id."""
        region = self.ctx.settings.default_phone_region
        fields = {"call_id": context.call_id, "phone": callback_number(context, region), "reason": context.reason}
        body: dict[str, Any] = {
            "name": context.customer_name,
            "session_fields": [{k: str(v)} for k, v in fields.items() if v],
        }
        if context.customer_email and "@" in context.customer_email:
            body["email"] = context.customer_email
        data = await self._call("agent", "create_customer", body, idempotent=False)
        return str(require(data, "customer_id", self.vendor))

    async def start_chat(self, customer_id: str, events: list[dict[str, Any]]) -> tuple[str, str]:
        """A chat in the target group whose first events are the transcript; (chat_id, thread_id)."""
        body = {
            "chat": {
                "users": [{"id": customer_id, "type": "customer"}],
                "access": {"group_ids": [self.config.group_id]},
                "thread": {"events": events},
            },
            # The caller never connects to LiveChat; a non-continuous chat would close for lack of them.
            "continuous": True,
        }
        # Not idempotent at LiveChat: only resent when LiveChat cannot have acted on it (request_not_processed).
        data = await self._call("agent", "start_chat", body, idempotent=False)
        return str(require(data, "chat_id", self.vendor)), str(require(data, "thread_id", self.vendor))

    async def send_event(self, chat_id: str, text: str, visibility: Literal["all", "agents"]) -> str:
        """One message event (not resent on an ambiguous failure: it would show twice)."""
        body = {"chat_id": chat_id, "event": {"type": "message", "text": text, "visibility": visibility}}
        data = await self._call("agent", "send_event", body, idempotent=False)
        return str(require(data, "event_id", self.vendor))

    async def tag_thread(self, chat_id: str, thread_id: str, tag: str) -> bool:
        """Tag the thread; a tag LiveChat refuses (e.g. not defined on the license) must not cost the handoff."""
        try:
            body = {"chat_id": chat_id, "thread_id": thread_id, "tag": tag}
            await self._call("agent", "tag_thread", body, idempotent=True)
        except CRMError as exc:
            log_event(
                "handoff_tag_failed", logging.WARNING, crm_type=self.vendor, tag=tag, code=exc.code, detail=exc.message
            )
            return False
        return True

    async def transfer_chat(self, chat_id: str, ignore_availability: bool) -> None:
        """To the configured agent, else the group; repeating it leaves the chat where the first one put it."""
        target = (
            {"type": "agent", "ids": [self.config.agent_id]}
            if self.config.agent_id
            else {"type": "group", "ids": [self.config.group_id]}
        )
        # ignore_requester_presence: a resent transfer must still work once the bot is no longer in the chat.
        body = {
            "id": chat_id,
            "target": target,
            "ignore_agents_availability": ignore_availability,
            "ignore_requester_presence": True,
        }
        await self._call("agent", "transfer_chat", body, idempotent=True)

    async def get_chat(self, chat_id: str) -> dict[str, Any]:
        """The chat with its latest thread."""
        data = await self._call("agent", "get_chat", {"chat_id": chat_id}, idempotent=True)
        if not isinstance(data, dict):
            raise UpstreamError("the LiveChat answer is not a chat", crm_type=self.vendor)
        return data

    async def deactivate_chat(self, chat_id: str) -> None:
        """Close the chat's thread; one that is already inactive counts as closed."""
        try:
            body = {"id": chat_id, "ignore_requester_presence": True}  # the bot may have left the chat already
            await self._call("agent", "deactivate_chat", body, idempotent=True)
        except ValidationFailed as exc:
            if livechat_type(exc) != "chat_inactive":
                raise

    # --- the handoff -------------------------------------------------------------------------------

    async def hand_over(self, context: HandoffContext, urgency: Urgency, attempt: ChatAttempt) -> HandoffResponse:
        """The LiveChat side of a handoff; `attempt` learns the chat id as soon as one exists."""
        status, customer_id = await all_at_once(
            self.group_status(self.config.group_id), self.create_customer(context)
        )
        if status == "offline":
            raise UpstreamError(
                f"LiveChat group {self.config.group_id} is offline",
                crm_type=self.vendor,
                details={"type": "group_offline"},
            )
        attempt.chat_id, thread_id = await self.start_chat(customer_id, transcript_events(context.transcript))
        chat_id = attempt.chat_id
        summary = summary_text(context, urgency, self.ctx.settings.default_phone_region)
        tagging = (self.tag_thread(chat_id, thread_id, tag) for tag in handoff_tags(context, urgency))
        await all_at_once(self._send_in_order(chat_id, split_text(summary, MESSAGE_LIMIT_BYTES)), *tagging)
        await self.transfer_chat(chat_id, IGNORE_AVAILABILITY.get(status, False))
        return self.handoff_state(chat_id, await self.get_chat(chat_id))

    async def _send_in_order(self, chat_id: str, pieces: list[str]) -> None:
        """The summary's pieces, one after another so they read in order."""
        for piece in pieces:
            await self.send_event(chat_id, piece, "agents")

    async def close(self, chat_id: str) -> bool:
        """Deactivate a chat that could not be handed over; whether that worked."""
        try:
            await self.deactivate_chat(chat_id)
        except CRMError as exc:
            log_event("handoff_close_failed", logging.WARNING, crm_type=self.vendor, code=exc.code, detail=exc.message)
            return False
        return True

    def chat_url(self, chat_id: str, thread_id: str | None) -> str:
        """A link an agent can open, from the configured template."""
        values = {"chat_id": chat_id, "thread_id": thread_id or "", "license_id": self.config.license_id or ""}
        return self.config.chat_url_template.format(**{k: quote(v, safe="") for k, v in values.items()})

    def handoff_state(self, chat_id: str, chat: Mapping[str, Any]) -> HandoffResponse:
        """Assigned (an agent is in the thread), queued (position and wait), or closed (no active thread)."""
        thread = dict_or_empty(chat.get("thread"))
        url = self.chat_url(chat_id, str(thread.get("id") or ""))
        if not thread.get("active"):
            return HandoffResponse(handoff_id=chat_id, chat_url=url, status=HandoffStatus.closed)
        in_thread = {str(u) for u in thread.get("user_ids") or []}
        # The bot that opened the chat is an agent too; it wrote the thread's first event, so it is not the
        # person the caller was handed to, even where LiveChat keeps the requester in the thread.
        events = [dict_or_empty(e) for e in thread.get("events") or []]
        if events and events[0].get("author_id"):
            in_thread.discard(str(events[0]["author_id"]))
        users = [dict_or_empty(u) for u in chat.get("users") or []]
        agent = next((u for u in users if u.get("type") == "agent" and str(u.get("id")) in in_thread), None)
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


def tag_of(text: str) -> str:
    """A reason as a tag: lower case, words joined by underscores."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:50]


def handoff_tags(context: HandoffContext, urgency: Urgency) -> list[str]:
    """Tags on the chat thread and the fallback ticket: the source, the reason, the urgency."""
    return [tag for tag in dict.fromkeys(["voice_handoff", tag_of(context.reason), urgency.tag]) if tag]


# --- orchestration: LiveChat first, the fallback ticket otherwise ----------------------------------------


class Handoff:
    """One /handoff/create: LiveChat within its share of the deadline, else a ticket in the fallback CRM."""

    def __init__(self, livechat: LiveChatConnector, ctx: ConnectorContext) -> None:
        """Split the deadline: LiveChat gets its share, the fallback keeps the rest."""
        self.ctx = ctx
        self.full = livechat
        self.livechat = livechat.with_deadline(Deadline(ctx.deadline.remaining() * ctx.settings.handoff_livechat_share))
        self.fallback_crm = (livechat.config.fallback_crm or ctx.settings.handoff_fallback_crm).strip().lower()
        CRMFactory.connector_class(self.fallback_crm)  # an unknown fallback CRM is a 400 now, not a surprise later

    async def once(
        self, store: IdempotencyStore, request: HandoffRequest, urgency: Urgency, key: str | None
    ) -> tuple[int, Any, bool]:
        """Hand over at most once per Idempotency-Key and per call id; repeats get the first answer."""
        tenant = self.full.tenant_fingerprint()
        call_id = request.context.call_id
        replays: list[bool] = []

        async def answer() -> tuple[int, Any]:
            """The handoff's answer as the idempotency store keeps it."""
            return 201, (await self.run(request.context, urgency)).body()

        async def by_call() -> tuple[int, Any]:
            """The handoff once per call id."""
            # Any body with this call id finds the first handoff: a retried call must not open a second chat.
            status, data, replayed = await store.run(f"handoff_call:{tenant}", call_id, fingerprint(call_id), answer)
            replays.append(replayed)
            return status, data

        if key is None:
            status, data = await by_call()
            return status, data, replays[0]
        payload = request.model_dump(mode="json", exclude={"config"})
        status, data, replayed = await store.run(f"handoff:{tenant}", key, fingerprint(payload), by_call)
        return status, data, replayed or any(replays)

    async def run(self, context: HandoffContext, urgency: Urgency) -> HandoffResponse:
        """LiveChat's handoff, or (when no agent can take it or LiveChat fails) the fallback ticket."""
        attempt = ChatAttempt()
        try:
            work = self.livechat.hand_over(context, urgency, attempt)
            return await within_deadline(work, self.livechat.ctx, self.livechat.vendor)
        except CRMError as cause:
            log_event(
                "handoff_livechat_failed",
                logging.WARNING,
                reason=failure_reason(cause),
                chat_started=attempt.chat_id is not None,
                detail=cause.message,
            )
            if attempt.chat_id:
                attempt.closed = await self.full.close(attempt.chat_id)
            return await self.fallback(context, urgency, cause, attempt)

    def ticket_key(self, context: HandoffContext) -> str:
        """The fallback ticket's idempotency key, from the call id: a retried handoff never makes two tickets."""
        return "handoff-" + fingerprint({"call_id": context.call_id, "tenant": self.full.tenant_fingerprint()})[:40]

    def ticket(
        self, context: HandoffContext, urgency: Urgency, cause: CRMError, attempt: ChatAttempt
    ) -> TicketCreateRequest:
        """The call as a ticket: summary, why no agent took it, and the full transcript (middle cut if huge)."""
        region = self.ctx.settings.default_phone_region
        head = [summary_text(context, urgency, region)]
        head.append(f"No live agent took the call ({failure_reason(cause)}): {cause.message}")
        if attempt.chat_id:
            state = "closed again" if attempt.closed else "left open, it could not be closed"
            head.append(f"LiveChat chat {attempt.chat_id} was started but not handed over; {state}.")
        email = context.customer_email if context.customer_email and len(context.customer_email) <= 254 else None
        return TicketCreateRequest(
            crm_type=self.fallback_crm,
            subject=f"Callback: {context.reason} ({context.customer_name})"[:500],
            description=fit_text("\n".join(head), transcript_lines(context.transcript), TICKET_TEXT_LIMIT),
            customer_name=context.customer_name,
            customer_email=email if email and "@" in email else None,
            customer_phone=e164_or_none(callback_number(context, region), region),
            priority=urgency.priority,
            tags=handoff_tags(context, urgency),
        )

    async def fallback(
        self, context: HandoffContext, urgency: Urgency, cause: CRMError, attempt: ChatAttempt
    ) -> HandoffResponse:
        """The ticket in the fallback CRM; if that fails too, a handoff_failed that says what exists."""
        reason = failure_reason(cause)
        try:
            crm = CRMFactory.create(self.fallback_crm, None, self.ctx)
            request = self.ticket(context, urgency, cause, attempt)
            ticket = await within_deadline(
                crm.create_ticket(request, idempotency_key=self.ticket_key(context)), self.ctx, crm.vendor
            )
        except CRMError as failed:
            # A ticket create that timed out or was cut off may still have happened: say so, never "nothing".
            dedupes = CRMFactory.connector_class(self.fallback_crm).vendor_dedupes_creates
            created = with_create_outcome(failed, "ticket", dedupes).details["created"]
            ticket = "no ticket was created" if created is False else "the ticket may exist (see above)"
            if attempt.chat_id:
                state = "closed again" if attempt.closed else "is still open"
                exists = f"LiveChat chat {attempt.chat_id} was started but not handed over and {state}; {ticket}"
            elif created is False:
                exists = "nothing was created: no chat and no ticket"
            else:
                exists = f"no chat was created; {ticket}"
            raise HandoffFailed(
                f"no live agent could take the call (LiveChat: {reason}: {cause.message}) and the fallback "
                f"{self.fallback_crm} ticket failed too ({failed.code}: {failed.message}); {exists}",
                crm_type="livechat",
                details={
                    "livechat": {"reason": reason, "chat_id": attempt.chat_id, "chat_closed": attempt.closed},
                    "fallback": {"crm_type": self.fallback_crm, "code": failed.code, "created": created},
                },
            ) from None
        return HandoffResponse(
            handoff_id=f"{TICKET_PREFIX}{crm.vendor}:{ticket.id}",
            status=HandoffStatus.fallback_ticket,
            fallback=HandoffFallback(
                crm_type=crm.vendor,
                ticket_id=ticket.id,
                reason=reason,
                detail=cause.message,
                livechat_chat_id=attempt.chat_id,
                livechat_chat_closed=attempt.closed if attempt.chat_id else None,
            ),
        )


async def current_state(livechat: LiveChatConnector, handoff_id: str, ctx: ConnectorContext) -> HandoffResponse:
    """A handoff now: the chat read back from LiveChat, or the fallback ticket read back from its CRM."""
    if handoff_id.startswith(TICKET_PREFIX):
        crm_type, _, ticket_id = handoff_id.removeprefix(TICKET_PREFIX).partition(":")
        ticket = await CRMFactory.create(crm_type, None, ctx).get_ticket(ticket_id)
        fallback = HandoffFallback(crm_type=crm_type, ticket_id=ticket.id, ticket_status=ticket.status.value)
        return HandoffResponse(handoff_id=handoff_id, status=HandoffStatus.fallback_ticket, fallback=fallback)
    if not CHAT_ID.match(handoff_id):
        raise InvalidRequest(f"handoff_id {handoff_id!r} is not a LiveChat chat id or ticket:<crm>:<id>")
    return livechat.handoff_state(handoff_id, await livechat.get_chat(handoff_id))


# --- routes ---------------------------------------------------------------------------------------------

HANDOFF_CONNECTORS: Mapping[str, type[LiveChatConnector]] = {"livechat": LiveChatConnector}

HANDOFF_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    502: {
        "model": ErrorResponse,
        "description": "handoff_failed (no chat and no fallback ticket), crm_auth_failed or crm_error",
    },
}

router = APIRouter(tags=["handoff"])


def open_chat(
    chat_type: str, config: Mapping[str, Any] | None, ctx: ConnectorContext, operation: str
) -> LiveChatConnector:
    """The chat connector for a request (a 400 listing the supported chat types otherwise), noted for the access log."""
    fields = request_fields_var.get()
    if fields is not None:
        fields.update(crm_type=chat_type, operation=operation)
    connector_class = HANDOFF_CONNECTORS.get(chat_type.strip().lower())
    if connector_class is None:
        supported = ", ".join(sorted(HANDOFF_CONNECTORS))
        raise UnsupportedCRM(f"unsupported chat_type {chat_type!r}; supported: {supported}")
    connector = connector_class.from_request(config, ctx)
    assert isinstance(connector, LiveChatConnector)
    return connector


def urgency_of(value: str) -> Urgency:
    """The urgency's meaning, or a 422 naming the accepted values."""
    urgency = URGENCY.get(value.strip().lower())
    if urgency is None:
        accepted = ", ".join(URGENCY)
        raise ValidationFailed(
            f"invalid request: context.urgency: must be one of {accepted}",
            details=[{"loc": ["body", "context", "urgency"], "msg": f"must be one of {accepted}", "type": "enum"}],
        )
    return urgency


@router.post("/handoff/create", status_code=201, response_model=HandoffResponse, responses=HANDOFF_ERRORS)
async def create_handoff(body: HandoffRequest, ctx: Context, store: Store, key: IdempotencyKey = None) -> JSONResponse:
    """Hand the caller to a live agent with the whole context, or to a fallback ticket; once per key and call id."""
    livechat = open_chat(body.chat_type, body.config, ctx, "create_handoff")
    urgency = urgency_of(body.context.urgency)
    status, data, replayed = await observe_handoff(Handoff(livechat, ctx).once(store, body, urgency, key))
    return JSONResponse(data, status_code=status, headers={"Idempotent-Replayed": str(replayed).lower()})


@router.post("/handoff/status", response_model=HandoffResponse, responses=HANDOFF_ERRORS)
async def handoff_status(body: HandoffStatusRequest, ctx: Context) -> JSONResponse:
    """Where a handoff is now: assigned with the agent, queued with position and wait, closed, or its ticket."""
    livechat = open_chat(body.chat_type, body.config, ctx, "handoff_status")
    state = await within_deadline(current_state(livechat, body.handoff_id.strip(), ctx), ctx, livechat.vendor)
    return JSONResponse(state.body())
