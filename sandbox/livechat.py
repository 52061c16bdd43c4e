"""LiveChat emulator: the Agent and Customer Chat Web APIs (v3.6, RPC over POST) with a routing model.

v3.6 has no agent-side create_customer (v3.5 keeps it); customers come from the agent token grant
(livechat_customer.py). Agents have a routing status and a chat limit. A chat sent to a group goes to the free
agent with the fewest chats, or waits in the group's queue (position and an estimated wait) when every agent is
busy; a queued chat is assigned as soon as an agent frees up. Errors use LiveChat's
`{"error": {"type", "message", "data"?}}`.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from typing import Any

from aiohttp import web

from sandbox import webhook_payloads
from sandbox.core import Emulator, basic_credentials, bearer_token, json_response
from sandbox.oauth import Wire, livechat_extra
from sandbox.livechat_customer import TOKEN_PATH, CustomerSide
from sandbox.livechat_routing import Routing
from sandbox.livechat_views import ChatViews
from sandbox.livechat_wire import LiveChatError, now, required, session_fields

VERSIONS = ("v3.5", "v3.6", "v3.7")
MESSAGE_LIMIT_BYTES = 16 * 1024
EVENT_TYPES = ("message", "system_message", "custom", "rich_message", "file", "filled_form")

# Injected 5xx faults, answered as LiveChat says them.
FAULT_ERRORS = {500: "internal", 503: "service_unavailable", 504: "request_timeout"}


def secret_of(request: web.Request) -> tuple[str, str] | None:
    """(requester id, token) from Basic `account_id:PAT` or a Bearer token."""
    creds = basic_credentials(request)
    if creds:
        return creds
    token = bearer_token(request)
    return ("bearer-" + hashlib.sha256(token.encode()).hexdigest()[:12], token) if token else None


class LiveChatEmulator(CustomerSide, Routing, ChatViews, Emulator):
    """Answers as `https://api.livechatinc.com/v3.6/...` does for the actions the handoff uses, and a few more."""

    name = "livechat"
    oauth_wire = Wire("/", "/v2/token", rotates=False, expires_in=28800, extra=livechat_extra)
    auth_exempt = (TOKEN_PATH,)  # the accounts service checks its own grants

    AGENT_ACTIONS = {
        "start_chat": "agent_start_chat",
        "send_event": "agent_send_event",
        "tag_thread": "agent_tag_thread",
        "transfer_chat": "agent_transfer_chat",
        "get_chat": "agent_get_chat",
        "list_chats": "agent_list_chats",
        "list_agents_for_transfer": "agent_list_agents_for_transfer",
        "deactivate_chat": "agent_deactivate_chat",
    }
    # Methods a version added or dropped: create_customer exists up to v3.5 only.
    VERSION_AGENT_ACTIONS = {"v3.5": {"create_customer": "agent_create_customer"}}
    CONFIGURATION_ACTIONS = {"list_groups": "configuration_list_groups", "list_agents": "configuration_list_agents"}

    def reset(self) -> None:
        """Seed: group 0 "General" with Sara Ahmed, accepting chats, at most 2 at a time; no chats."""
        self.groups: dict[int, dict[str, Any]] = {0: {"id": 0, "name": "General", "language_code": "en"}}
        self.agents: dict[str, dict[str, Any]] = {}
        sara = {"agent_id": "sara@example.com", "name": "Sara Ahmed", "status": "accepting_chats", "max_chats": 2}
        self._set_agent(sara)
        self.customers: dict[str, dict[str, Any]] = {}
        self.customer_tokens: dict[str, str] = {}  # customer access token -> customer id
        self.chats: dict[str, dict[str, Any]] = {}
        self.queues: dict[int, list[str]] = {0: []}  # group -> chat ids waiting, oldest first
        self.seconds_per_chat = 120  # queue estimate: each chat ahead takes this long per online agent
        self._ids = itertools.count(1)

    # --- wire behaviour -------------------------------------------------------------------------


    def ticket_ids(self) -> list[str]:
        """The chats held now: what a handoff creates here, as a ticket is elsewhere."""
        return list(self.chats)
    def authenticate(self, request: web.Request) -> bool:
        """Basic `account_id:PAT` or Bearer; the word `invalid` (or nothing) is refused."""
        creds = secret_of(request)
        return creds is not None and bool(creds[0]) and creds[1] not in ("", "invalid")

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """LiveChat's 401: authentication, Invalid access token."""
        return LiveChatError("authentication").response()

    def not_found(self) -> web.StreamResponse:
        """LiveChat's 404 for an unknown path."""
        return LiveChatError("not_found").response()

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        """LiveChat's 429 too_many_requests envelope."""
        # LiveChat documents no Retry-After; clients back off on their own.
        return LiveChatError("too_many_requests").response()

    def server_error(self, status: int) -> web.StreamResponse:
        """An injected 5xx in LiveChat's envelope where LiveChat has a type for it."""
        if status in FAULT_ERRORS:
            return LiveChatError(FAULT_ERRORS[status]).response()
        return web.Response(status=status, text="Bad Gateway")  # what a proxy in front would say

    def add_routes(self, app: web.Application) -> None:
        """The three Web APIs: agent, customer and configuration actions."""
        app.router.add_post("/{version}/agent/action/{method}", self._agent)
        app.router.add_post("/{version}/customer/action/{method}", self._customer)
        app.router.add_post("/{version}/configuration/action/{method}", self._configuration)
        app.router.add_post(TOKEN_PATH, self._customer_token)

    async def _agent(self, request: web.Request) -> web.StreamResponse:
        """POST /{version}/agent/action/{method}."""
        actions = {**self.AGENT_ACTIONS, **self.VERSION_AGENT_ACTIONS.get(request.match_info["version"], {})}
        return await self._dispatch(request, actions)

    async def _configuration(self, request: web.Request) -> web.StreamResponse:
        """POST /{version}/configuration/action/{method}."""
        return await self._dispatch(request, self.CONFIGURATION_ACTIONS)

    async def _dispatch(
        self, request: web.Request, actions: dict[str, str], customer_id: str | None = None
    ) -> web.StreamResponse:
        """Version, region and body checks, then the action; a LiveChatError is the middleware's envelope.

        An unknown method gets not_found: LiveChat's docs list no type for it, so this is the emulator's guess.
        """
        if request.match_info["version"] not in VERSIONS:
            raise LiveChatError("unsupported_version")
        handler = actions.get(request.match_info["method"])
        if handler is None:
            raise LiveChatError("not_found", f"Method {request.match_info['method']!r} not found")
        requester, token = secret_of(request) or ("", "")
        region = token.partition(":")[0]
        if region in ("dal", "fra") and request.headers.get("X-Region", "dal") != region:
            raise LiveChatError("misdirected_request", data={"region": region})
        try:
            payload = await request.json() if await request.read() else {}
        except ValueError:
            raise LiveChatError("validation", "Request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise LiveChatError("validation", "Request body must be a JSON object")
        return json_response(await getattr(self, handler)(payload, customer_id or requester))

    # --- model ----------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        """A LiveChat-looking id: ten upper-case letters and digits."""
        return (prefix + format(next(self._ids), "X").rjust(9, "0"))[:10]

    def _group(self, group_id: Any) -> int:
        """A group id that exists, or group_not_found."""
        if not isinstance(group_id, int) or group_id not in self.groups:
            raise LiveChatError("group_not_found")
        return group_id

    def _chat(self, chat_id: Any, customer: str | None = None) -> dict[str, Any]:
        """A chat by id (a customer sees only their own), or not_found."""
        chat = self.chats.get(str(chat_id))
        if not chat or (customer and chat["customer_id"] != customer):
            raise LiveChatError("not_found", "Chat not found")
        return chat

    def _event(self, thread: dict[str, Any], event: Any, author: str, customer_side: bool) -> dict[str, Any]:
        """Validate and store one event; a message's text may be at most 16 KB."""
        if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
            raise LiveChatError("validation", f"`event.type` must be one of {', '.join(EVENT_TYPES)}")
        if event["type"] == "message":
            text = event.get("text")
            if not isinstance(text, str) or not text:
                raise LiveChatError("validation", "`event.text` is required")
            if len(text.encode()) > MESSAGE_LIMIT_BYTES:
                raise LiveChatError("validation", "`event.text` is too long (max 16 KB)")
        visibility = "all" if customer_side else event.get("visibility", "all")
        if visibility not in ("all", "agents"):
            raise LiveChatError("validation", "`event.visibility` must be all or agents")
        stored = {
            **event,
            "id": f"{thread['id']}_{len(thread['events']) + 1}",
            "author_id": author,
            "created_at": now(),
            "visibility": visibility,
        }
        thread["events"].append(stored)
        return stored

    def _new_chat(
        self, payload: dict[str, Any], customer_id: str, requester: str | None, customer_side: bool
    ) -> dict[str, Any]:
        """A chat with one active thread holding the initial events, in the requested group."""
        chat_in = payload.get("chat") or {}
        group_ids = (chat_in.get("access") or {}).get("group_ids") or [0]
        group_id = self._group(group_ids[0])
        continuous = bool(payload.get("continuous"))
        if not continuous and self.group_status(group_id) == "offline":
            raise LiveChatError("group_offline")
        chat_id, thread_id = self._id("C"), self._id("T")
        thread: dict[str, Any] = {
            "id": thread_id,
            "active": payload.get("active", True) is not False,
            "user_ids": [u for u in (customer_id, requester) if u],  # an agent may start a chat with no customer
            "events": [],
            "properties": (chat_in.get("thread") or {}).get("properties") or {},
            "access": {"group_ids": [group_id]},
            "tags": [],
            "created_at": now(),
            "agent_id": requester,  # an agent who starts a chat is in it; the customer side waits for routing
        }
        chat = {
            "id": chat_id,
            "customer_id": customer_id,
            "access": {"group_ids": [group_id]},
            "properties": chat_in.get("properties") or {},
            "continuous": continuous,
            "thread": thread,
            "requesters": {requester} if requester else set(),
        }
        events = (chat_in.get("thread") or {}).get("events") or []
        if not isinstance(events, list):
            raise LiveChatError("validation", "`chat.thread.events` must be an array")
        author = requester or customer_id
        for event in events:  # all validated before the chat exists: a bad event creates nothing
            self._event({"id": thread_id, "events": []}, event, author, customer_side)
        for event in events:
            self._event(thread, event, author, customer_side)
        self.chats[chat_id] = chat
        return chat

    # --- Agent Chat API ----------------------------------------------------------------------------

    async def agent_create_customer(self, payload: dict[str, Any], requester: str) -> Any:
        """create_customer -> {customer_id}."""
        email = payload.get("email")
        if email is not None and (not isinstance(email, str) or "@" not in email):
            raise LiveChatError("validation", "`email` is not a valid email")
        fields = session_fields(payload)
        customer_id = str(uuid.uuid4())
        self.customers[customer_id] = {
            "id": customer_id,
            "name": payload.get("name") or "",
            **({"email": email} if email else {}),
            "session_fields": fields,
            "created_at": now(),
        }
        return {"customer_id": customer_id}

    async def agent_start_chat(self, payload: dict[str, Any], requester: str) -> Any:
        """start_chat -> {chat_id, thread_id, event_ids}; the requesting agent is in the chat."""
        users = (payload.get("chat") or {}).get("users") or []
        customers = [u.get("id") for u in users if isinstance(u, dict) and u.get("type") == "customer"]
        if len(customers) > 1:
            raise LiveChatError("validation", "Only one customer is allowed in a chat")
        customer_id = customers[0] if customers else None
        if customer_id is not None and customer_id not in self.customers:
            raise LiveChatError("not_found", "Customer not found")
        chat = self._new_chat(payload, customer_id or "", requester, customer_side=False)
        return self._started(chat)

    async def agent_send_event(self, payload: dict[str, Any], requester: str) -> Any:
        """send_event -> {event_id}; an inactive chat takes only a system message, with attach_to_last_thread."""
        chat = self._chat(required(payload, "chat_id"))
        event = required(payload, "event")
        if not chat["thread"]["active"] and not (
            payload.get("attach_to_last_thread") and isinstance(event, dict) and event.get("type") == "system_message"
        ):
            raise LiveChatError("chat_inactive")  # only a system message can be attached to an inactive chat
        return {"event_id": self._event(chat["thread"], event, requester, False)["id"]}

    async def agent_tag_thread(self, payload: dict[str, Any], requester: str) -> Any:
        """tag_thread -> {}."""
        chat = self._chat(required(payload, "chat_id"))
        if chat["thread"]["id"] != required(payload, "thread_id"):
            raise LiveChatError("not_found", "Thread not found")
        tag = required(payload, "tag")
        if not isinstance(tag, str):
            raise LiveChatError("validation", "`tag` must be a string")
        if tag not in chat["thread"]["tags"]:
            chat["thread"]["tags"].append(tag)
        return {}

    async def agent_transfer_chat(self, payload: dict[str, Any], requester: str) -> Any:
        """transfer_chat -> {}: to an agent, or to a group's free agent or its queue."""
        chat = self._chat(required(payload, "id"))
        thread = chat["thread"]
        if not thread["active"]:
            raise LiveChatError("chat_inactive")
        target = payload.get("target") or {"type": "group", "ids": chat["access"]["group_ids"]}
        ids = target.get("ids") if isinstance(target, dict) else None
        if not isinstance(target, dict) or target.get("type") not in ("group", "agent") or not ids:
            raise LiveChatError("validation", "`target` must be {type: group|agent, ids: [...]}")
        ignore = bool(payload.get("ignore_agents_availability"))
        if target["type"] == "agent":
            agent = self.agents.get(str(ids[0]))
            if agent is None:
                raise LiveChatError("not_found", "Agent not found")
            if agent["status"] != "accepting_chats" and not ignore:
                raise LiveChatError("agent_offline")
            group_id = agent["group_ids"][0] if agent["group_ids"] else chat["access"]["group_ids"][0]
        else:
            group_id = self._group(ids[0])
            current = thread.get("agent_id")
            if chat["access"]["group_ids"] == [group_id] and (
                current in self.agents and group_id in self.agents[current]["group_ids"] or self._queue(chat)
            ):
                return {}  # already with an agent of, or waiting in, that group: a repeat changes nothing
        previous = [u for u in thread["user_ids"] if u != chat["customer_id"]]
        if target["type"] == "agent":
            self._assign(chat, agent["id"])
        else:
            self._route(chat, group_id, ignore)
        # The transfer hands the chat over: whoever had it (the requester, another agent) leaves the thread.
        keep = thread.get("agent_id")
        thread["user_ids"] = [u for u in thread["user_ids"] if u not in previous or u == keep]
        chat["access"] = {"group_ids": [group_id]}
        thread["access"] = {"group_ids": [group_id]}
        self._drain()
        queue, agent_id = self._queue(chat), thread.get("agent_id")
        moved = {"chat_id": chat["id"], "thread_id": thread["id"], "requester_id": requester, "reason": "manual",
                 "transferred_to": {"group_ids": [group_id], **({"agent_ids": [agent_id]} if agent_id and not queue else {})},
                 **({"queue": queue} if queue else {})}
        self.webhooks.emit(webhook_payloads.livechat("chat_transferred", moved))
        return {}

    async def agent_get_chat(self, payload: dict[str, Any], requester: str) -> Any:
        """get_chat -> the chat with its latest thread."""
        chat = self._chat(required(payload, "chat_id"))
        if payload.get("thread_id") not in (None, chat["thread"]["id"]):
            raise LiveChatError("not_found", "Thread not found")
        return self._chat_view(chat, customer_side=False)

    async def agent_list_chats(self, payload: dict[str, Any], requester: str) -> Any:
        """list_chats -> {chats_summary, found_chats}."""
        filters = payload.get("filters") or {}
        chats = [c for c in self.chats.values() if filters.get("include_active", True) or not c["thread"]["active"]]
        if filters.get("group_ids"):
            chats = [c for c in chats if c["access"]["group_ids"][0] in filters["group_ids"]]
        if payload.get("sort_order", "desc") == "desc":
            chats.reverse()
        limit = min(int(payload.get("limit") or 10), 100)
        return {"chats_summary": [self._summary(c, False) for c in chats[:limit]], "found_chats": len(chats)}

    async def agent_list_agents_for_transfer(self, payload: dict[str, Any], requester: str) -> Any:
        """list_agents_for_transfer -> [{agent_id, total_active_chats}]."""
        chat = self._chat(required(payload, "chat_id"))
        group_id = chat["access"]["group_ids"][0]
        return [
            {"agent_id": a["id"], "total_active_chats": self._active_chats(a["id"])}
            for a in self._group_agents(group_id)
            if a["id"] not in chat["thread"]["user_ids"]
        ]

    async def agent_deactivate_chat(self, payload: dict[str, Any], requester: str) -> Any:
        """deactivate_chat -> {}; the agent's slot goes to the next queued chat."""
        chat = self._chat(required(payload, "id"))
        if not chat["thread"]["active"]:
            raise LiveChatError("chat_inactive")
        chat["thread"]["active"] = False
        for queue in self.queues.values():
            if chat["id"] in queue:
                queue.remove(chat["id"])
        self._drain()  # the agent has room again
        closed = {"chat_id": chat["id"], "thread_id": chat["thread"]["id"], "user_id": requester}
        self.webhooks.emit(webhook_payloads.livechat("chat_deactivated", closed))
        return {}

    # --- Configuration API ----------------------------------------------------------------------------

    async def configuration_list_groups(self, payload: dict[str, Any], requester: str) -> Any:
        """list_groups, with routing_status and agent_priorities when asked for."""
        fields = payload.get("fields") or []
        groups = []
        for group in self.groups.values():
            out = dict(group)
            if "routing_status" in fields:
                out["routing_status"] = "offline" if self.group_status(group["id"]) == "offline" else "accepting_chats"
            if "agent_priorities" in fields:
                members = [a["id"] for a in self.agents.values() if group["id"] in a["group_ids"]]
                out["agent_priorities"] = dict.fromkeys(members, "normal")
            groups.append(out)
        return groups

    async def configuration_list_agents(self, payload: dict[str, Any], requester: str) -> Any:
        """list_agents."""
        return [
            {
                "id": a["id"],
                "name": a["name"],
                "job_title": a["job_title"],
                "login_status": a["status"].replace("_", " ") if a["status"] != "offline" else "not accepting chats",
                "max_chats_count": a["max_chats"],
                "role": "agent",
            }
            for a in self.agents.values()
        ]

    # --- sandbox controls --------------------------------------------------------------------------------

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        """set_agent {agent_id, status?, max_chats?, name?, group_ids?}; set_queue {seconds_per_chat}; chats."""
        if action == "set_agent":
            if not payload.get("agent_id"):
                raise web.HTTPBadRequest(text="agent_id is required")
            agent = self._set_agent(payload)
            self._drain()
            return {**agent, "active_chats": self._active_chats(agent["id"])}
        if action == "set_queue":
            self.seconds_per_chat = int(payload.get("seconds_per_chat", self.seconds_per_chat))
            return {"seconds_per_chat": self.seconds_per_chat}
        if action == "chats":  # what an operator would see in the agent app, for tests
            return [self._chat_view(c, customer_side=False) for c in self.chats.values()]
        if action == "revoke_customer_tokens":  # e.g. a customer logged out elsewhere: every token stops working
            self.customer_tokens.clear()
            return {"ok": True}
        return super().control(action, payload)
