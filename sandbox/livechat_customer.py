"""The LiveChat emulator's customer side: the accounts service's agent token grant and the Customer Chat API.

The grant (https://platform.text.com/docs/authorization/customer-authorization, "Agent token grant") takes a
Bearer agent token only (a PAT is refused) and a registered client_id; the Customer Chat API
(https://platform.text.com/docs/messaging/customer-chat-api) then accepts only the customer tokens it issued.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from sandbox.core import basic_credentials, bearer_token, json_response
from sandbox.livechat_wire import LiveChatError, accounts_error, now, required, session_fields

TOKEN_PATH = "/v2/customer/token"
CLIENT_IDS = frozenset({"sandbox-client-id"})  # the apps registered in the sandbox's Developer Console
CUSTOMER_TOKEN_SECONDS = 28800
ORGANIZATION_ID = "sandbox-organization"


class CustomerSide:
    """Mixed into LiveChatEmulator: the customer tokens it issued, and what a customer may do with one."""

    CUSTOMER_ACTIONS = {
        "list_group_statuses": "customer_list_group_statuses",
        "update_customer": "customer_update_customer",
        "set_customer_session_fields": "customer_set_session_fields",
        "get_customer": "customer_get_customer",
        "start_chat": "customer_start_chat",
        "send_event": "customer_send_event",
        "get_chat": "customer_get_chat",
        "list_chats": "customer_list_chats",
    }
    customers: dict[str, dict[str, Any]]
    customer_tokens: dict[str, str]  # customer access token -> customer id
    chats: dict[str, dict[str, Any]]
    groups: dict[int, dict[str, Any]]

    async def _customer(self, request: web.Request) -> web.StreamResponse:
        """POST /{version}/customer/action/{method}?organization_id=...; only a customer token is accepted."""
        if not request.query.get("organization_id"):
            return LiveChatError("validation", "`organization_id` is required").response()
        customer_id = self.customer_tokens.get(bearer_token(request) or "")
        if customer_id is None:  # an agent token or PAT is not a customer (docs: Authorization FAQ)
            return LiveChatError("authentication").response()
        return await self._dispatch(request, self.CUSTOMER_ACTIONS, customer_id)

    async def _customer_token(self, request: web.Request) -> web.StreamResponse:
        """POST /v2/customer/token, agent_token grant: a new customer (or a token for `entity_id`) and its token."""
        if basic_credentials(request):
            return accounts_error(401, "unauthorized", "the agent_token grant needs a Bearer agent access token")
        agent_token = bearer_token(request)
        if not agent_token or agent_token == "invalid":
            return accounts_error(401, "unauthorized", "invalid agent access token")
        try:
            body = await request.json()
        except ValueError:
            return accounts_error(400, "invalid_request", "body must be JSON")
        if not isinstance(body, dict) or body.get("grant_type") != "agent_token":
            return accounts_error(400, "unsupported_grant_type", "grant_type must be agent_token")
        if body.get("response_type") != "token":
            return accounts_error(400, "unsupported_response_type", "response_type must be token")
        if body.get("client_id") not in CLIENT_IDS:
            return accounts_error(400, "invalid_client", "unknown client_id")
        entity_id = body.get("entity_id")
        if entity_id is not None and entity_id not in self.customers:
            return accounts_error(400, "invalid_request", "entity_id not found")
        if entity_id is None:
            entity_id = str(uuid.uuid4())
            self.customers[entity_id] = {"id": entity_id, "name": "", "session_fields": [], "created_at": now()}
        region = agent_token.partition(":")[0]
        token = f"{region}:" if region in ("dal", "fra") else ""
        token += "customer-" + uuid.uuid4().hex
        self.customer_tokens[token] = entity_id
        return json_response(
            {
                "access_token": token,
                "client_id": body["client_id"],
                "entity_id": entity_id,
                "expires_in": CUSTOMER_TOKEN_SECONDS,
                "token_type": "Bearer",
                "organization_id": ORGANIZATION_ID,
            }
        )

    # --- Customer Chat API (the requester is the customer id the token belongs to) ---------------------

    async def customer_update_customer(self, payload: dict[str, Any], requester: str) -> Any:
        """update_customer -> {}: name, email, phone_number, avatar, session_fields of the token's customer."""
        customer = self.customers[requester]
        email = payload.get("email")
        if email is not None and (not isinstance(email, str) or "@" not in email):
            raise LiveChatError("validation", "`email` is not a valid email")
        for key in ("name", "email", "phone_number", "avatar"):
            if key in payload:
                if not isinstance(payload[key], str):
                    raise LiveChatError("validation", f"`{key}` must be a string")
                customer[key] = payload[key]
        if "session_fields" in payload:
            customer["session_fields"] = session_fields(payload)
        return {}

    async def customer_set_session_fields(self, payload: dict[str, Any], requester: str) -> Any:
        """set_customer_session_fields -> {}."""
        required(payload, "session_fields")
        self.customers[requester]["session_fields"] = session_fields(payload)
        return {}

    async def customer_get_customer(self, payload: dict[str, Any], requester: str) -> Any:
        """get_customer -> the token's customer."""
        return {**self.customers[requester], "type": "customer"}

    async def customer_list_group_statuses(self, payload: dict[str, Any], requester: str) -> Any:
        """list_group_statuses -> {groups_status: {id: online|online_for_queue|offline}}; unknown ids are left out."""
        if payload.get("all"):
            ids = sorted(self.groups)
        elif isinstance(payload.get("group_ids"), list) and payload["group_ids"]:
            if not all(isinstance(g, int) and not isinstance(g, bool) for g in payload["group_ids"]):
                raise LiveChatError("validation", "`group_ids` must be an array of numbers")
            ids = [g for g in dict.fromkeys(payload["group_ids"]) if g in self.groups]
        else:
            raise LiveChatError("validation", "`all` or `group_ids` is required")
        statuses = {str(g): self.group_status(g) for g in ids}
        return {"groups_status": statuses}

    async def customer_start_chat(self, payload: dict[str, Any], requester: str) -> Any:
        """start_chat as the customer: routed at once to a free agent or the queue."""
        customer_id = requester
        chat = self._new_chat(payload, customer_id, None, customer_side=True)
        # A customer's chat is routed at once: to a free agent, else into the queue.
        self._route(chat, chat["access"]["group_ids"][0], ignore_availability=True)
        return self._started(chat)

    async def customer_send_event(self, payload: dict[str, Any], requester: str) -> Any:
        """send_event as the customer (always visible to all)."""
        chat = self._chat(required(payload, "chat_id"), customer=requester)
        if not chat["thread"]["active"]:
            raise LiveChatError("chat_inactive")
        return {"event_id": self._event(chat["thread"], required(payload, "event"), chat["customer_id"], True)["id"]}

    async def customer_get_chat(self, payload: dict[str, Any], requester: str) -> Any:
        """get_chat as the customer."""
        chat = self._chat(required(payload, "chat_id"), customer=requester)
        return self._chat_view(chat, customer_side=True)

    async def customer_list_chats(self, payload: dict[str, Any], requester: str) -> Any:
        """list_chats as the customer -> {chats_summary, total_chats} (limit: default 10, at most 25)."""
        customer_id = requester
        chats = [c for c in self.chats.values() if c["customer_id"] == customer_id]
        if payload.get("sort_order", "desc") == "desc":
            chats.reverse()
        limit = min(int(payload.get("limit") or 10), 25)
        return {"chats_summary": [self._summary(c, True) for c in chats[:limit]], "total_chats": len(chats)}
