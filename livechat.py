"""Human handoff routes: `chat_type` selects the ChatConnector from the registry; handoff.py orchestrates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from connectors.chat import ChatConnector
from connectors.context import ConnectorContext
from deps import ERROR_RESPONSES, Context, IdempotencyKey, Store, request_config, within_deadline
from errors import ValidationFailed
from handoff import Handoff, current_state
from handoff_log import record_handoff
from handoff_text import URGENCY, Urgency
from models import (
    ErrorResponse,
    HandoffRequest,
    HandoffResponse,
    HandoffStatusRequest,
)
from observability import request_fields_var
from registry import CHATS
from telemetry import observe_handoff
from webhooks.inbound import known_handoff

# --- routes ---------------------------------------------------------------------------------------------

HANDOFF_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    502: {
        "model": ErrorResponse,
        "description": "handoff_failed (no chat and no fallback ticket), crm_auth_failed or crm_error",
    },
}

router = APIRouter(tags=["handoff"])


async def open_chat(
    body: HandoffRequest | HandoffStatusRequest, ctx: ConnectorContext, operation: str, request: Request
) -> ChatConnector:
    """The chat connector for a request (a 400 listing the supported chat types otherwise), noted for the access log."""
    chat_type, config = await request_config(request, body.chat_type, body.config, body.connection_id, "chat")
    fields = request_fields_var.get()
    if fields is not None:
        fields.update(crm_type=chat_type, operation=operation)
    return CHATS.create(chat_type, config, ctx)


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
async def create_handoff(
    body: HandoffRequest, ctx: Context, store: Store, request: Request, key: IdempotencyKey = None
) -> JSONResponse:
    """Hand the caller to a live agent with the whole context, or to a fallback ticket; once per key and call id."""
    livechat = await open_chat(body, ctx, "create_handoff", request)
    urgency = urgency_of(body.context.urgency)
    status, data, replayed = await observe_handoff(Handoff(livechat, ctx).once(store, body, urgency, key))
    if not replayed:  # the customer context's `handoffs` part reads this record
        await record_handoff(request, body, data)
    return JSONResponse(data, status_code=status, headers={"Idempotent-Replayed": str(replayed).lower()})


@router.post("/handoff/status", response_model=HandoffResponse, responses=HANDOFF_ERRORS)
async def handoff_status(body: HandoffStatusRequest, ctx: Context, request: Request) -> JSONResponse:
    """Where a handoff is now: assigned with the agent, queued with position and wait, closed, or its ticket."""
    livechat = await open_chat(body, ctx, "handoff_status", request)
    # The latest state LiveChat's webhooks told of (webhooks/), else the chat read back from LiveChat.
    state = await known_handoff(request, body) or await within_deadline(
        current_state(livechat, body.handoff_id.strip(), ctx), ctx, livechat.vendor
    )
    return JSONResponse(state.body())
