"""Human handoff: LiveChat first (livechat_connector.py), a ticket in HANDOFF_FALLBACK_CRM otherwise; the routes.

When no agent can take the call, or LiveChat keeps failing, the call becomes a ticket, so no caller is lost.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from connectors.http import ConnectorContext, Deadline
from crm import CRMFactory
from deps import ERROR_RESPONSES, Context, IdempotencyKey, Store, with_create_outcome, within_deadline
from errors import CRMError, HandoffFailed, InvalidRequest, UnsupportedCRM, ValidationFailed
from idempotency import IdempotencyStore, fingerprint
from livechat_connector import ChatAttempt, LiveChatConnector, failure_reason
from livechat_text import URGENCY, Urgency, callback_number, e164_or_none, fit_text, handoff_tags, summary_text, transcript_lines
from models import (
    ErrorResponse,
    HandoffContext,
    HandoffFallback,
    HandoffRequest,
    HandoffResponse,
    HandoffStatus,
    HandoffStatusRequest,
    TicketCreateRequest,
)
from observability import log_event, request_fields_var
from telemetry import observe_handoff

TICKET_TEXT_LIMIT = 60_000  # under TicketCreateRequest's 65,000 and the CRMs' own comment limits
CHAT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TICKET_PREFIX = "ticket:"


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
            failed = with_create_outcome(failed, "ticket", dedupes)  # a copy, with the advice in its message
            created = failed.details["created"]
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
