"""POST /webhooks/{vendor}/{connection_id|default}: verify the vendor's way, drop replays, normalise, publish.

Caller keys do not apply here (auth.py): the vendor's signature or secret is the authentication, checked
before the body is read as JSON. The answer is 2xx only once every event is durably queued.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from connections.manager import ConnectionManager
from connectors.vendor_config import StoredConfig
from deps import ERROR_RESPONSES, context_of
from errors import CRMError, InvalidRequest, NotFound
from observability import log_event, request_fields_var
from registry import CHATS, CRMS
from sandbox.webhooks import SANDBOX_WEBHOOK_SECRET

from .inbound import Inbox, Source, publish_notices
from .verify import VERIFIERS, Inbound, WebhookUnverified
from .vendors import PARSERS, Unreadable

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


def _plain(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value or None


async def webhook_config(request: Request, vendor: str, connection_id: str) -> tuple[Mapping[str, Any] | None, str]:
    """(config for the connector, webhook secret): the environment's for "default", else the stored connection's.

    Any failure to find a secret is the same 401, so the answer does not tell which connection ids exist.
    """
    settings = request.app.state.settings
    if connection_id == "default":
        config, secret = None, _plain(getattr(settings, f"{vendor}_webhook_secret", None))
        if secret is None and settings.sandbox:  # what the emulators sign with unless told otherwise
            secret = SANDBOX_WEBHOOK_SECRET
        where = f"{vendor.upper()}_WEBHOOK_SECRET"
    else:
        manager: ConnectionManager = request.app.state.connections
        # A vendor that is both (Intercom) may have either kind of connection: its webhooks serve both.
        kinds = [kind for kind, known in (("crm", CRMS), ("chat", CHATS)) if vendor in known.supported()]
        stored, found = "", None
        for kind in kinds:
            try:
                stored, found = await manager.resolve(connection_id, kind)
                break
            except (NotFound, InvalidRequest):
                continue
        if found is None:
            raise WebhookUnverified(f"no {vendor} webhook secret for connection {connection_id}")
        if stored != vendor:
            raise WebhookUnverified(f"no {vendor} webhook secret for connection {connection_id}")
        config, secret = StoredConfig(found), _plain(found.get("webhook_secret"))
        where = "the connection's webhook_secret credential"
    if not secret:
        raise WebhookUnverified(f"no {vendor} webhook secret is configured: set {where}")
    return config, secret


@router.post("/{vendor}/{connection_id}", status_code=200)
async def receive_webhook(vendor: str, connection_id: str, request: Request) -> JSONResponse:
    """A vendor's webhook: 200 `{"published": n}` once queued; 401 unverified (never processed); 200 for a replay."""
    received_at = time.time()
    verifier, parser = VERIFIERS.get(vendor), PARSERS.get(vendor)
    if verifier is None or parser is None:
        raise NotFound(f"no inbound webhooks for {vendor!r}; they exist for {', '.join(sorted(PARSERS))}"
                       " (Salesforce is polled: SALESFORCE_POLL_SECONDS)")
    fields = request_fields_var.get()
    if fields is not None:
        fields.update(crm_type=vendor, operation="webhook", connection_id=connection_id)
    body = await request.body()
    config, secret = await webhook_config(request, vendor, connection_id)
    inbound = Inbound(request.method, str(request.url), request.headers, request.query_params, body, received_at)
    verified = verifier(inbound, secret, request.app.state.settings.webhooks_tolerance_seconds)
    inbox: Inbox = request.app.state.webhooks
    replay = f"{connection_id}:{vendor}:{verified.replay_key}" if verified.replay_key else None
    if replay is not None and not await inbox.first_time(replay, verified.replay_ttl):
        log_event("webhook_replay", vendor=vendor, connection_id=connection_id)
        return JSONResponse({"published": 0, "replay": True})
    try:
        try:
            notices = parser(orjson.loads(body))
        except (orjson.JSONDecodeError, Unreadable) as exc:
            raise InvalidRequest(f"{vendor} webhook body could not be read: {exc}", crm_type=vendor) from None
        source = Source(vendor, connection_id, config, context_of(request), request.app.state.events.bus.publish)
        published = await publish_notices(inbox, source, notices)
    except BaseException as exc:
        if replay is not None:  # not processed: the vendor's retry must be
            await inbox.forget(replay)
        if isinstance(exc, CRMError):
            exc.crm_type = exc.crm_type or vendor
        raise
    return JSONResponse({"published": published, "replay": False})
