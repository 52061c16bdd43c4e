"""LiveChat's Agent Chat Web API (v3.6) as one connector: auth, the error envelope, and each call a handoff makes.

v3.6 has no agent-side create_customer, so with an agent OAuth token and a client_id the caller becomes a customer
through the accounts service's agent token grant (livechat_identity.py), and the customer token sets their
profile (`update_customer`) and asks whether the group is staffed (`list_group_statuses`). A personal access token
cannot use that grant: its chat starts with no customer (`chat.users` is optional in v3.6) and staffing comes from
the Configuration API (`list_groups` routing_status). Method docs: https://platform.text.com/docs/messaging/agent-chat-api,
https://platform.text.com/docs/messaging/customer-chat-api, https://platform.text.com/docs/management/configuration-api.
Its settings are livechat_config.py's; reading its answers (error types, staffing, a chat's state) is livechat_answers.py's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Mapping
from typing import Any, ClassVar, Literal

from connectors.base import require
from connectors.chat import ChatAttempt, ChatConnector, all_at_once
from connectors.hosts import check_vendor_url
from connectors import auth
from connectors.auth import Auth
from connectors.context import ConnectorContext
from connectors.http import bearer_auth
from connectors.upstream_answers import DEFAULT_STATUS_ERRORS, UpstreamResponse
from connectors.vendor_config import CredentialCheck
from errors import AuthFailed, CRMError, InvalidConfig, UpstreamError, UpstreamUnavailable, ValidationFailed
from handoff_text import (
    Urgency,
    callback_number,
    caller_identity,
    e164_or_none,
    handoff_tags,
    split_text,
    summary_text,
    transcript_messages,
)
from livechat_answers import LIVECHAT_ERRORS, ROUTING_STATUS, chat_state, failure_reason, livechat_type
from livechat_config import REGIONS, LiveChatConfig
from livechat_identity import ACCOUNTS_HOSTS, ACCOUNTS_URL, TOKEN_PATH, CustomerToken, CustomerTokens, grant_body, read_grant
from livechat_links import fill_url_template
from models import HandoffContext, HandoffResponse
from observability import log_event


API_VERSION = "v3.6"

# Group status -> `ignore_agents_availability` for transfer_chat: with a free agent LiveChat assigns the chat;
# when every agent is busy it only queues the chat if availability is ignored. "offline" never gets this far.
IGNORE_AVAILABILITY: Mapping[str | None, bool] = {"online": False, "online_for_queue": True, None: False}


MESSAGE_LIMIT_BYTES = 16 * 1024  # LiveChat's limit on the text of one message event


def transcript_events(transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcript as start_chat's initial message events, in order, long turns split under 16 KB."""
    return [
        {"type": "message", "text": text, "visibility": "all"}
        for text in transcript_messages(transcript, MESSAGE_LIMIT_BYTES)
    ]


# --- the connector --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Caller:
    """The caller as a LiveChat customer: the cache key their token lives under, and the token."""

    key: str
    token: CustomerToken


class LiveChatConnector(ChatConnector):
    """LiveChat's Agent Chat Web API (and the customer side's group statuses) for handoffs."""

    vendor = "livechat"
    display_name = "LiveChat"
    credential_check = CredentialCheck(
        "POST",
        "/v3.6/configuration/action/list_agents",
        "https://platform.text.com/docs/management/configuration-api#list-agents",
        json={},
    )
    rate_limit_window_seconds = 10.0  # LiveChat documents no Retry-After for too_many_requests
    # LiveChat documents no rate-limit numbers or headers for the v3.6 Web API, only the `too_many_requests` error
    # (https://platform.text.com/docs/messaging/agent-chat-api): rate_budget stays None, so the governor counts
    # calls against GOVERNOR_DEFAULT_LIMIT_PER_MINUTE.
    config_model = LiveChatConfig
    config: LiveChatConfig
    emulator = "sandbox.livechat:LiveChatEmulator"
    # A personal access token (Basic account_id:token); license_id stands for the organization id.
    sandbox_credentials = {"license_id": "sandbox-organization", "account_id": "voice-bot@example.com", "api_key": "sandbox-pat"}
    status_errors: ClassVar[Mapping[int, type[CRMError]]] = {
        **DEFAULT_STATUS_ERRORS,
        421: InvalidConfig,
        500: UpstreamUnavailable,
    }
    error_codes = LIVECHAT_ERRORS

    def __init__(self, config: LiveChatConfig, context: ConnectorContext) -> None:
        """The API host as every connector resolves it, and the accounts host for customer tokens."""
        super().__init__(config, context)
        self.accounts_url = self._resolve_accounts_url()

    def _vendor_url(self) -> str:
        """One host for both regions; the region travels in the X-Region header."""
        return "https://api.livechatinc.com"

    def _resolve_accounts_url(self) -> str:
        """LIVECHAT_ACCOUNTS_URL on LiveChat's own domain (or an allowed host), else the sandbox, else LiveChat's."""
        if self.config.accounts_url:
            return check_vendor_url(
                self.config.accounts_url, crm_type=self.vendor, suffixes=ACCOUNTS_HOSTS, allowed_hosts=self.ctx.allowed_hosts
            )
        return self.ctx.sandbox_urls.get(self.vendor) or ACCOUNTS_URL

    @property
    def grants_customers(self) -> bool:
        """Whether the caller can become a customer: only an OAuth (Bearer) agent token with its app's client_id."""
        return bool(self.config.client_id) and not self.config.account_id

    @property
    def region(self) -> str | None:
        """The configured region, else the one the token names in its prefix (`fra:...`)."""
        assert self.config.api_key
        prefix = self.config.api_key.get_secret_value().partition(":")[0]
        return self.config.region or (prefix if prefix in REGIONS else None)

    def _auth(self) -> Auth:
        """PAT as Basic `account_id:token`, or an OAuth token as Bearer; X-Region when the region is known."""
        assert self.config.api_key
        token = self.config.api_key.get_secret_value()
        static = auth.basic(self.config.account_id, token) if self.config.account_id else auth.bearer(token)
        return auth.StaticAuth({**static.fixed, **({"X-Region": self.region} if self.region else {})})

    def _envelope(self, response: UpstreamResponse) -> dict[str, Any]:
        """LiveChat's `{"error": {"type", "message", "data"?}}` (or the accounts service's OAuth-style
        `{"error": "<type>", "error_description"}`), or {} when the body is something else."""
        body = response.error_json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str) and isinstance(body, dict):
            return {"type": error, "message": body.get("error_description")}
        return error if isinstance(error, dict) else {}

    def _error_codes(self, response: UpstreamResponse) -> list[str]:
        """LiveChat's error type, which decides before the status (its statuses are shared by many types)."""
        kind = self._envelope(response).get("type")
        return [kind] if isinstance(kind, str) else []

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
        self,
        side: Literal["agent", "customer", "configuration"],
        method: str,
        body: Mapping[str, Any],
        *,
        idempotent: bool,
        caller: Caller | None = None,
    ) -> Any:
        """POST /v3.6/{side}/action/{method}; the customer side names the organization and acts with the caller's
        customer token (https://platform.text.com/docs/messaging/customer-chat-api#authentication)."""
        params = {"organization_id": self.config.license_id} if side == "customer" else None
        return await self._json(
            "POST",
            f"/{API_VERSION}/{side}/action/{method}",
            json=body,
            params=params,
            headers=bearer_auth(caller.token.access_token) if caller else None,
            idempotent=idempotent,
            operation=method,
        )

    # --- actions ---------------------------------------------------------------------------------

    async def caller(self, context: HandoffContext) -> Caller:
        """The caller's customer identity: the cached token while it lasts, else a fresh agent token grant."""
        cache = CustomerTokens(self.ctx.shared)
        key = cache.key(self.tenant_fingerprint(), caller_identity(context, self.ctx.settings.default_phone_region))
        token = cache.fresh(key)
        if token is None:
            token = await self.grant_customer(cache.known_entity(key), cache.now())
            cache.put(key, token)
        return Caller(key, token)

    async def grant_customer(self, entity_id: str | None, now: float) -> CustomerToken:
        """POST accounts /v2/customer/token, agent_token grant with the agent's Bearer token (scope customers:own).

        https://platform.text.com/docs/authorization/customer-authorization ("Agent token grant"). A repeat
        at worst leaves an unused customer identity, so it may be resent.
        """
        assert self.config.client_id
        data = await self._json(
            "POST",
            f"{self.accounts_url}{TOKEN_PATH}",
            json=grant_body(self.config.client_id, entity_id),
            idempotent=True,
            operation="customer_token",
        )
        token = read_grant(data, now)
        if token is None:
            raise UpstreamError("LiveChat's customer token answer lacks entity_id or access_token", crm_type=self.vendor)
        return token

    def _refused(self, caller: Caller, exc: CRMError, step: str) -> None:
        """Log a customer-side step that failed; a refused token is forgotten so the next handoff gets a new one."""
        if isinstance(exc, AuthFailed):
            CustomerTokens(self.ctx.shared).expire(caller.key)
        log_event(f"handoff_{step}_failed", logging.WARNING, crm_type=self.vendor, code=exc.code, detail=exc.message)

    async def group_status(self, group_id: int, caller: Caller | None) -> str | None:
        """online, online_for_queue or offline; None when LiveChat will not say (the transfer then decides).

        With a customer token: list_group_statuses (customer side). Without one (a PAT cannot call the
        Customer Chat API): the Configuration API's list_groups routing_status
        (https://platform.text.com/docs/management/configuration-api#list-groups).
        """
        try:
            if caller:
                body = {"group_ids": [group_id]}
                data = await self._call("customer", "list_group_statuses", body, idempotent=True, caller=caller)
                groups = require(data, "groups_status", self.vendor)
                status = groups.get(str(group_id)) if isinstance(groups, dict) else None
                return str(status) if status is not None else None
            data = await self._call("configuration", "list_groups", {"fields": ["routing_status"]}, idempotent=True)
        except AuthFailed as exc:
            if caller:
                self._refused(caller, exc, "group_status")
            return None  # a token without the scope; transfer_chat still tells the truth
        group = next((g for g in data or [] if isinstance(g, dict) and g.get("id") == group_id), {})
        return ROUTING_STATUS.get(str(group.get("routing_status")))

    async def update_customer(self, caller: Caller, context: HandoffContext) -> bool:
        """Name, email, phone and the call's session fields on the customer profile the agent sees beside the chat.

        Customer side, with the customer token (https://platform.text.com/docs/messaging/customer-chat-api#update-customer).
        The same facts are in the agents-only summary, so a refusal must not cost the handoff.
        """
        region = self.ctx.settings.default_phone_region
        fields = {"call_id": context.call_id, "phone": callback_number(context, region), "reason": context.reason}
        body: dict[str, Any] = {
            "name": context.customer_name,
            "session_fields": [{k: str(v)} for k, v in fields.items() if v],
        }
        if context.customer_email and "@" in context.customer_email:
            body["email"] = context.customer_email
        phone = e164_or_none(context.customer_phone, region)
        if phone:
            body["phone_number"] = phone
        try:
            await self._call("customer", "update_customer", body, idempotent=True, caller=caller)
        except CRMError as exc:
            self._refused(caller, exc, "update_customer")
            return False
        return True

    async def start_chat(self, customer_id: str | None, events: list[dict[str, Any]]) -> tuple[str, str]:
        """A chat in the target group whose first events are the transcript; (chat_id, thread_id).

        Without a customer id the chat has no customer: `chat.users` is optional in v3.6's start_chat.
        """
        users = {"users": [{"id": customer_id, "type": "customer"}]} if customer_id else {}
        body = {
            "chat": {
                **users,
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
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):  # a chat always has its string id
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
        self.chat_url("", None)  # the link is built from a checked template, before anything is started
        caller: Caller | None = None
        if self.grants_customers:
            try:
                caller = await self.caller(context)
            except CRMError as exc:  # no customer profile is better than no agent: the summary names the caller
                log_event("handoff_customer_failed", logging.WARNING, crm_type=self.vendor, code=exc.code, detail=exc.message)
        steps: list[Awaitable[Any]] = [self.group_status(self.config.group_id, caller)]
        if caller:
            steps.append(self.update_customer(caller, context))
        status, *_ = await all_at_once(*steps)
        if status == "offline":
            raise UpstreamError(
                f"LiveChat group {self.config.group_id} is offline",
                crm_type=self.vendor,
                details={"type": "group_offline"},
            )
        customer_id = caller.token.entity_id if caller else None
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
        return fill_url_template(self.config.chat_url_template, values)

    def failure_reason(self, error: CRMError) -> str:
        """LiveChat's error type, else the contract code."""
        return failure_reason(error)

    async def read_state(self, chat_id: str) -> HandoffResponse:
        """`get_chat`, read as the handoff's state."""
        return self.handoff_state(chat_id, await self.get_chat(chat_id))

    def handoff_state(self, chat_id: str, chat: Mapping[str, Any]) -> HandoffResponse:
        """Assigned (an agent is in the thread), queued (position and wait), or closed (no active thread)."""
        return chat_state(chat_id, chat, self.chat_url)
