"""The handoff's orchestration over any ChatConnector: the chat vendor first, a ticket in the fallback CRM otherwise.

Availability, start, context and transfer are the connector's `hand_over`; this module splits the deadline,
makes the handoff once per Idempotency-Key and call id, closes a chat that was not handed over, and files the
fallback ticket (HANDOFF_FALLBACK_CRM), so no caller is lost. The routes are in livechat.py.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from connectors.chat import ChatAttempt, ChatConnector
from connectors.context import ConnectorContext
from connectors.deadline import Deadline
from crm import CRMFactory
from deps import with_create_outcome, within_deadline
from errors import CRMError, HandoffFailed, InvalidRequest
from exactly_once import CreateOnce
from idempotency import IdempotencyStore, fingerprint
from handoff_text import Urgency, callback_number, e164_or_none, fit_text, handoff_tags, summary_text, transcript_lines
from models import HandoffContext, HandoffFallback, HandoffRequest, HandoffResponse, HandoffStatus, TicketCreateRequest
from observability import log_event

TICKET_TEXT_LIMIT = 60_000  # under TicketCreateRequest's 65,000 and the CRMs' own comment limits
CHAT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TICKET_PREFIX = "ticket:"


# --- orchestration: LiveChat first, the fallback ticket otherwise ----------------------------------------


class Handoff:
    """One /handoff/create: LiveChat within its share of the deadline, else a ticket in the fallback CRM."""

    def __init__(self, livechat: ChatConnector, ctx: ConnectorContext) -> None:
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
            return 201, (await self.run(store, request.context, urgency)).body()

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

    async def run(self, store: IdempotencyStore, context: HandoffContext, urgency: Urgency) -> HandoffResponse:
        """The chat vendor's handoff, or (when no agent can take it or the vendor fails) the fallback ticket."""
        attempt = ChatAttempt()
        try:
            work = self.livechat.hand_over(context, urgency, attempt)
            return await within_deadline(work, self.livechat.ctx, self.livechat.vendor)
        except CRMError as cause:
            log_event(
                "handoff_livechat_failed",  # the event name operators alert on, whichever the chat vendor
                logging.WARNING,
                reason=self.full.failure_reason(cause),
                chat_started=attempt.chat_id is not None,
                detail=cause.message,
            )
            if attempt.chat_id:
                attempt.closed = await self.full.close(attempt.chat_id)
            return await self.fallback(store, context, urgency, cause, attempt)

    def ticket_key(self, context: HandoffContext) -> str:
        """The fallback ticket's idempotency key, from the call id: a retried handoff never makes two tickets."""
        return "handoff-" + fingerprint({"call_id": context.call_id, "tenant": self.full.tenant_fingerprint()})[:40]

    def ticket(
        self, context: HandoffContext, urgency: Urgency, cause: CRMError, attempt: ChatAttempt
    ) -> TicketCreateRequest:
        """The call as a ticket: summary, why no agent took it, and the full transcript (middle cut if huge)."""
        region = self.ctx.settings.default_phone_region
        head = [summary_text(context, urgency, region)]
        head.append(f"No live agent took the call ({self.full.failure_reason(cause)}): {cause.message}")
        if attempt.chat_id:
            state = "closed again" if attempt.closed else "left open, it could not be closed"
            head.append(f"{self.full.display_name} chat {attempt.chat_id} was started but not handed over; {state}.")
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
        self, store: IdempotencyStore, context: HandoffContext, urgency: Urgency, cause: CRMError, attempt: ChatAttempt
    ) -> HandoffResponse:
        """The ticket in the fallback CRM; if that fails too, a handoff_failed that says what exists."""
        reason = self.full.failure_reason(cause)
        try:
            crm = CRMFactory.create(self.fallback_crm, None, self.ctx)
            request = self.ticket(context, urgency, cause, attempt)
            key = self.ticket_key(context)
            # The same exactly-once create as /crm/ticket/create; any body for this call id is the same ticket.
            once = CreateOnce(crm, self.ctx, store, f"ticket_create:{crm.tenant_fingerprint()}", key, fingerprint(key))
            ticket = await once.run(request)
        except CRMError as failed:
            # A ticket create that timed out or was cut off may still have happened: say so, never "nothing".
            failed = with_create_outcome(failed, "ticket", repeat_safe=True)  # a copy, with the advice in its message
            created = failed.details["created"]
            ticket = "no ticket was created" if created is False else "the ticket may exist (see above)"
            if attempt.chat_id:
                state = "closed again" if attempt.closed else "is still open"
                exists = f"{self.full.display_name} chat {attempt.chat_id} was started but not handed over and {state}; {ticket}"
            elif created is False:
                exists = "nothing was created: no chat and no ticket"
            else:
                exists = f"no chat was created; {ticket}"
            raise HandoffFailed(
                f"no live agent could take the call ({self.full.display_name}: {reason}: {cause.message}) and the fallback "
                f"{self.fallback_crm} ticket failed too ({failed.code}: {failed.message}); {exists}",
                crm_type=self.full.vendor,
                details={
                    self.full.vendor: {"reason": reason, "chat_id": attempt.chat_id, "chat_closed": attempt.closed},
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


async def current_state(livechat: ChatConnector, handoff_id: str, ctx: ConnectorContext) -> HandoffResponse:
    """A handoff now: the chat read back from its vendor, or the fallback ticket read back from its CRM."""
    if handoff_id.startswith(TICKET_PREFIX):
        crm_type, _, ticket_id = handoff_id.removeprefix(TICKET_PREFIX).partition(":")
        ticket = await CRMFactory.create(crm_type, None, ctx).get_ticket(ticket_id)
        fallback = HandoffFallback(crm_type=crm_type, ticket_id=ticket.id, ticket_status=ticket.status.value)
        return HandoffResponse(handoff_id=handoff_id, status=HandoffStatus.fallback_ticket, fallback=fallback)
    if not CHAT_ID.match(handoff_id):
        raise InvalidRequest(f"handoff_id {handoff_id!r} is not a {livechat.display_name} chat id or ticket:<crm>:<id>")
    return await livechat.read_state(handoff_id)
