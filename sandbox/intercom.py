"""Intercom REST API emulator (2.11 shapes; from 2.12 on, by the Intercom-Version header, ticket states as objects,
`GET /ticket_states` and `ticket_state_id`: sandbox/intercom_states.py): contacts and their search, companies,
tickets, ticket types and states, admins, teams, conversations and their parts.

Shapes follow https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/ ; errors are
`{"type":"error.list","request_id","errors":[{"code","message"}]}`.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from aiohttp import web

from sandbox import webhook_payloads
from sandbox.core import Emulator, VendorError, bearer_token, json_response
from sandbox.oauth import Wire
from sandbox.intercom_attributes import data_attributes, ticket_type_attributes
from sandbox.intercom_search import SearchError, matches, skipped, starting_after
from sandbox.intercom_states import (
    StateRefused, default_state, has_state_ids, labels_2_11, listed, requested_state, seeded_states, state_object,
)

RATE_LIMIT = 10_000  # calls a minute, the private-app limit
AHMED, LAYLA, OMAR = "6657a1c2b1e5f2a3c4d50001", "6657a1c2b1e5f2a3c4d50002", "6657a1c2b1e5f2a3c4d50003"
COMPANY = "6657a1c2b1e5f2a3c4d5c001"
SEEDED = 1_700_000_000  # the seed's Unix timestamp
ADMIN, SECOND_ADMIN, TEAM = "991267001", "991267002", "5001"


def error_list(code: str, message: str) -> dict[str, Any]:
    """Intercom's error body."""
    return {"type": "error.list", "request_id": uuid.uuid4().hex[:20], "errors": [{"code": code, "message": message}]}


def fail(status: int, code: str, message: str) -> VendorError:
    """An error answer in Intercom's shape."""
    return VendorError(status, error_list(code, message))


async def body_of(request: web.Request) -> dict[str, Any]:
    """The JSON object body, or Intercom's 400."""
    try:
        body = await request.json()
    except ValueError:
        raise fail(400, "parameter_invalid", "Invalid JSON") from None
    if not isinstance(body, dict):
        raise fail(400, "parameter_invalid", "The body must be a JSON object")
    return body


class IntercomEmulator(Emulator):
    """Answers as api.intercom.io does for the calls the connector (and the common SDK operations) make."""

    name = "intercom"
    # Public apps' OAuth: the code redeems for a token without expiry and without a refresh token.
    oauth_wire = Wire("/oauth", "/auth/eagle/token", rotates=False, expires_in=None, refreshes=False)

    def reset(self) -> None:
        """Seed: Ahmed (user, Al-Mansoori Trading, Enterprise), Layla (lead, national number), Omar; tickets 201, 202."""
        self.calls = 0
        self.contacts: dict[str, dict[str, Any]] = {}
        self.companies = {
            COMPANY: {
                "type": "company", "id": COMPANY, "name": "Al-Mansoori Trading", "company_id": "al-mansoori",
                "plan": {"type": "plan", "id": "1", "name": "Enterprise"}, "custom_attributes": {"tier": "Enterprise"},
                "created_at": SEEDED, "updated_at": SEEDED, "user_count": 1, "industry": "Retail",
            }
        }
        self._contact(AHMED, "user", "Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567", company=COMPANY)
        self.contacts[AHMED]["custom_attributes"]["loyalty_number"] = "LOY-7781"  # a custom data attribute
        self._contact(LAYLA, "lead", "Layla Hassan", "layla@example.com", "(415) 555-2671")
        self._contact(OMAR, "user", "Omar Khalid", None, "+44 20 7946 0958")
        self._contact_ids = itertools.count(100)
        self.ticket_types = {
            "1": {
                "type": "ticket_type", "id": "1", "category": "Customer", "name": "Support request",
                "description": "A caller's request", "icon": "🎟️", "workspace_id": "sandbox", "archived": False,
                "created_at": SEEDED, "updated_at": SEEDED, "is_internal": False,
                "ticket_type_attributes": ticket_type_attributes("1"),
            },
            "2": {
                "type": "ticket_type", "id": "2", "category": "Back-office", "name": "Billing task",
                "description": "Work for the billing team", "icon": "🧾", "workspace_id": "sandbox", "archived": False,
                "created_at": SEEDED, "updated_at": SEEDED, "is_internal": True,
                "ticket_type_attributes": ticket_type_attributes("2"),
            },
        }
        self.states = seeded_states()
        self.state_of: dict[str, str] = {}  # ticket id -> its state's id
        self.tickets: dict[str, dict[str, Any]] = {}
        self._ticket_ids = itertools.count(203)
        self._ticket_numbers = itertools.count(3)
        self._part_ids = itertools.count(9000)
        self._new_ticket("201", "1", AHMED, {"_default_title_": "Product not working", "_default_description_":
                         "The device stopped working after the latest update.", "priority": "High"}, "in_progress")
        self._new_ticket("202", "2", AHMED, {"_default_title_": "Invoice copy", "_default_description_":
                         "Asked for a copy of the March invoice.", "priority": "Low"}, "resolved", open_=False)
        # Dated as in every other CRM's seed (docs/sandbox.md): opened 2025-11-18 and solved 2025-10-02, UTC.
        for tid, (created, updated) in {"201": (1763461800, 1763466300), "202": (1759392000, 1759396200)}.items():
            self.tickets[tid].update(created_at=created, updated_at=updated)
        self.admins = {
            ADMIN: self._admin(ADMIN, "Sara Ahmed", "sara@example.com"),
            SECOND_ADMIN: self._admin(SECOND_ADMIN, "Yusuf Karim", "yusuf@example.com"),
        }
        self.teams = {TEAM: {"type": "team", "id": TEAM, "name": "Voice escalations", "admin_ids": [int(ADMIN), int(SECOND_ADMIN)]}}
        self.conversations: dict[str, dict[str, Any]] = {}
        self._conversation_ids = itertools.count(147_000_001)
        self.assign_to_admin = ADMIN  # whom the team's assignment rules give a conversation

    # --- records ----------------------------------------------------------------------------------

    def _contact(self, cid: str, role: str, name: str | None, email: str | None, phone: str | None, company: str | None = None) -> dict[str, Any]:
        companies = [{"type": "company", "id": company, "url": f"/companies/{company}"}] if company else []
        contact = {
            "type": "contact", "id": cid, "workspace_id": "sandbox", "external_id": None, "role": role,
            "email": email, "phone": phone, "name": name, "avatar": None, "owner_id": None,
            "has_hard_bounced": False, "marked_email_as_spam": False, "unsubscribed_from_emails": False,
            "created_at": SEEDED, "updated_at": SEEDED, "signed_up_at": None, "last_seen_at": None,
            "custom_attributes": {}, "tags": {"type": "list", "data": [], "url": f"/contacts/{cid}/tags", "total_count": 0, "has_more": False},
            "companies": {"type": "list", "data": companies, "url": f"/contacts/{cid}/companies", "total_count": len(companies), "has_more": False},
            "location": {"type": "location", "country": None, "region": None, "city": None},
        }
        self.contacts[cid] = contact
        return contact

    @staticmethod
    def _admin(aid: str, name: str, email: str) -> dict[str, Any]:
        return {"type": "admin", "id": aid, "name": name, "email": email, "job_title": "Support", "away_mode_enabled": False,
                "away_mode_reassign": False, "has_inbox_seat": True, "team_ids": [int(TEAM)], "avatar": None}

    def _new_ticket(self, tid: str, number: str, contact: str, attributes: dict[str, Any], state: str, open_: bool = True,
                    kind: str = "1") -> dict[str, Any]:
        """A ticket of a type (default 1) in the category's default state for it."""
        self.state_of[tid] = default_state(self.states, state, kind)
        ticket = {
            "type": "ticket", "id": tid, "ticket_id": number, "category": "Customer", "ticket_attributes": attributes,
            "ticket_state": state, "ticket_type": self.ticket_types[kind], "is_shared": True,
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": contact, "external_id": None}]},
            "admin_assignee_id": "0", "team_assignee_id": "0", "created_at": SEEDED, "updated_at": SEEDED,
            "open": open_, "snoozed_until": None, "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            "ticket_parts": {"type": "ticket_part.list", "ticket_parts": [], "total_count": 0},
        }
        self.tickets[tid] = ticket
        return ticket

    def ticket_ids(self) -> list[str]:
        """The tickets held now."""
        return list(self.tickets)

    def _ticket_view(self, request: web.Request, ticket: dict[str, Any]) -> dict[str, Any]:
        """A ticket as the requested version shows it: the state word and labels (2.11), or the state object (2.12+)."""
        state = self.states[self.state_of[ticket["id"]]]
        return {**ticket, "ticket_state": state_object(state)} if has_state_ids(request) else {**ticket, **labels_2_11(state)}

    # --- the vendor's answers ---------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> bool:
        """Bearer access token; `invalid` is refused."""
        token = bearer_token(request)
        return bool(token) and token != "invalid"

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """Intercom's 401."""
        return json_response(error_list("unauthorized", "Access Token Invalid"), status=401)

    def not_found(self) -> web.StreamResponse:
        """Intercom's 404 for an unknown path."""
        return json_response(error_list("not_found", "Resource Not Found"), status=404)

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        """429 with the X-RateLimit-* headers; Reset is the epoch second the window refills (no Retry-After)."""
        headers = {"X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset": str(int(time.time()) + retry_after)}
        return json_response(error_list("rate_limit_exceeded", "Exceeded rate limit of 10000 in 60 seconds"), 429, headers)

    def server_error(self, status: int) -> web.StreamResponse:
        """Intercom's 5xx body."""
        return json_response(error_list("server_error", "Server Error"), status=status)

    def rate_limit_headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers on every answer."""
        self.calls += 1
        return {"X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remaining": str(max(0, RATE_LIMIT - self.calls)),
                "X-RateLimit-Reset": str(int(time.time()) + 10)}

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        """`away {"admin_id"?, "away": bool}`: admins (all, or one) in or out of away mode."""
        if action == "away":
            for aid, admin in self.admins.items():
                if payload.get("admin_id") in (None, aid):
                    admin["away_mode_enabled"] = bool(payload.get("away", True))
            return {"admins": list(self.admins.values())}
        return super().control(action, payload)

    def add_routes(self, app: web.Application) -> None:
        """The documented paths the emulator serves."""
        app.router.add_get("/me", self.me)
        app.router.add_get("/admins", self.list_admins)
        app.router.add_get("/admins/{id}", self.get_admin)
        app.router.add_get("/teams/{id}", self.get_team)
        app.router.add_post("/contacts", self.create_contact)
        app.router.add_post("/contacts/search", self.search_contacts)
        app.router.add_get("/contacts/{id}", self.get_contact)
        app.router.add_get("/companies/{id}", self.get_company)
        app.router.add_get("/ticket_types", self.list_ticket_types)
        app.router.add_get("/ticket_types/{id}", self.get_ticket_type)
        app.router.add_get("/data_attributes", self.list_data_attributes)
        app.router.add_get("/ticket_states", self.list_ticket_states)
        app.router.add_post("/tickets", self.create_ticket)
        app.router.add_post("/tickets/search", self.search_tickets)
        app.router.add_get("/tickets/{id}", self.get_ticket)
        app.router.add_put("/tickets/{id}", self.update_ticket)
        app.router.add_post("/tickets/{id}/reply", self.reply_ticket)
        app.router.add_post("/conversations", self.create_conversation)
        app.router.add_get("/conversations/{id}", self.get_conversation)
        app.router.add_post("/conversations/{id}/reply", self.reply_conversation)
        app.router.add_post("/conversations/{id}/parts", self.manage_conversation)
        app.router.add_post("/conversations/{id}/run_assignment_rules", self.run_assignment_rules)

    # --- admins, teams, contacts, companies -------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        """The token's admin, with its workspace."""
        return json_response({**self.admins[ADMIN], "email_verified": True, "app": {"type": "app", "id_code": "sandbox", "name": "Sandbox"}})

    async def list_admins(self, request: web.Request) -> web.Response:
        return json_response({"type": "admin.list", "admins": list(self.admins.values())})

    async def get_admin(self, request: web.Request) -> web.Response:
        return json_response(self._find(self.admins, request, "admin_not_found", "Admin not found"))

    async def get_team(self, request: web.Request) -> web.Response:
        return json_response(self._find(self.teams, request, "team_not_found", "Team not found"))

    @staticmethod
    def _find(records: dict[str, dict[str, Any]], request: web.Request, code: str, message: str) -> dict[str, Any]:
        record = records.get(request.match_info["id"])
        if record is None:
            raise fail(404, code, message)
        return record

    async def get_contact(self, request: web.Request) -> web.Response:
        return json_response(self._find(self.contacts, request, "not_found", "User Not Found"))

    async def get_company(self, request: web.Request) -> web.Response:
        return json_response(self._find(self.companies, request, "company_not_found", "Company Not Found"))

    async def create_contact(self, request: web.Request) -> web.Response:
        """A user or lead; an email or external_id already held is a 409 conflict."""
        body = await body_of(request)
        role = body.get("role", "user")
        if role not in ("user", "lead") or not any(body.get(k) for k in ("email", "external_id", "phone", "name")):
            raise fail(400, "parameter_invalid", "role must be user or lead, with an email, external_id or phone")
        if body.get("email") and any(c["email"] == body["email"] for c in self.contacts.values()):
            raise fail(409, "conflict", "A contact matching those details already exists")
        cid = f"6657a1c2b1e5f2a3c4d5{next(self._contact_ids):04x}"
        contact = self._contact(cid, role, body.get("name"), body.get("email"), body.get("phone"))
        contact["created_at"] = contact["updated_at"] = int(time.time())
        return json_response(contact)

    async def search_contacts(self, request: web.Request) -> web.Response:
        return json_response(await self._search(request, list(self.contacts.values()), "list", "data"))

    async def _search(self, request: web.Request, records: list[dict[str, Any]], kind: str, key: str) -> dict[str, Any]:
        """`{"query", "pagination": {"per_page"}}` over records → a list page."""
        body = await body_of(request)
        per_page = (body.get("pagination") or {}).get("per_page", 50)
        if not isinstance(per_page, int) or not 1 <= per_page <= 150:
            raise fail(400, "parameter_invalid", "per_page must be between 1 and 150")
        try:
            found = [r for r in records if matches(body.get("query"), r)]
            skip = skipped(body.get("pagination") or {})
        except SearchError as exc:
            raise fail(400, "parameter_invalid", str(exc)) from None
        page: dict[str, Any] = {"type": "pages", "page": skip // per_page + 1, "per_page": per_page,
                                "total_pages": max(1, -(-len(found) // per_page))}
        if skip + per_page < len(found):  # the next page's opaque cursor
            page["next"] = {"per_page": per_page, "starting_after": starting_after(skip + per_page)}
        return {"type": kind, key: found[skip : skip + per_page], "total_count": len(found), "pages": page}

    # --- tickets ----------------------------------------------------------------------------------

    async def list_ticket_types(self, request: web.Request) -> web.Response:
        return json_response({"type": "list", "data": list(self.ticket_types.values())})

    async def get_ticket_type(self, request: web.Request) -> web.Response:
        return json_response(self._find(self.ticket_types, request, "not_found", "Ticket type not found"))

    async def list_data_attributes(self, request: web.Request) -> web.Response:
        """`GET /data_attributes?model=contact|company|conversation` (sandbox/intercom_attributes.py)."""
        model = request.query.get("model")
        if model is not None and model not in ("contact", "company", "conversation"):
            raise fail(400, "parameter_invalid", "model must be one of contact, company, conversation")
        return json_response({"type": "list", "data": data_attributes(model)})

    async def list_ticket_states(self, request: web.Request) -> web.StreamResponse:
        """2.12+ only: under 2.11 the path does not exist."""
        if not has_state_ids(request):
            return self.not_found()
        return json_response(listed(self.states, self.ticket_types))

    async def get_ticket(self, request: web.Request) -> web.Response:
        return json_response(self._ticket_view(request, self._find(self.tickets, request, "ticket_not_found", "Ticket not found")))

    async def create_ticket(self, request: web.Request) -> web.Response:
        """Needs a known ticket_type_id and one contact (id, external_id or email: an unknown email becomes a lead)."""
        body = await body_of(request)
        if str(body.get("ticket_type_id")) not in self.ticket_types:
            raise fail(400, "parameter_invalid", "Ticket type not found")
        people = body.get("contacts")
        if not isinstance(people, list) or len(people) != 1 or not isinstance(people[0], dict):
            raise fail(400, "parameter_invalid", "contacts must hold exactly one contact")
        contact = self._contact_for(people[0])
        attributes = body.get("ticket_attributes") or {}
        if not isinstance(attributes, dict) or not attributes.get("_default_title_"):
            raise fail(400, "parameter_invalid", "_default_title_ is required")
        tid = str(next(self._ticket_ids))
        ticket = self._new_ticket(tid, str(next(self._ticket_numbers)), contact, dict(attributes), "submitted",
                                 kind=str(body["ticket_type_id"]))
        ticket["created_at"] = ticket["updated_at"] = int(time.time())
        view = self._ticket_view(request, ticket)
        self.webhooks.emit(webhook_payloads.intercom("ticket.created", view))
        return json_response(view)

    def _contact_for(self, ref: dict[str, Any]) -> str:
        if "id" in ref:
            if ref["id"] not in self.contacts:
                raise fail(400, "parameter_invalid", "Contact not found")
            return str(ref["id"])
        if ref.get("email"):
            known = next((c for c in self.contacts.values() if c["email"] == ref["email"]), None)
            if known:
                return known["id"]
            cid = f"6657a1c2b1e5f2a3c4d5{next(self._contact_ids):04x}"
            return self._contact(cid, "lead", None, ref["email"], None)["id"]
        raise fail(400, "parameter_invalid", "A contact needs an id, external_id or email")

    async def search_tickets(self, request: web.Request) -> web.Response:
        flat = [{**t, **{k: v for k, v in t["ticket_attributes"].items()}, "state": t["ticket_state"],
                 "contact_ids": [c["id"] for c in t["contacts"]["contacts"]]}
                for t in sorted(self.tickets.values(), key=lambda t: -t["updated_at"])]  # newest change first
        page = await self._search(request, flat, "ticket.list", "tickets")
        page["tickets"] = [self._ticket_view(request, self.tickets[t["id"]]) for t in page["tickets"]]
        return json_response(page)

    async def update_ticket(self, request: web.Request) -> web.Response:
        """`state` (2.11) or `ticket_state_id` (2.12+), `open`, `ticket_attributes` (merged), `is_shared`."""
        ticket = self._find(self.tickets, request, "ticket_not_found", "Ticket not found")
        body = await body_of(request)
        before = ticket["ticket_state"]
        try:
            sid = requested_state(request, body, self.states, str(ticket["ticket_type"]["id"]))
        except StateRefused as refused:
            raise fail(400, refused.code, refused.message) from None
        if sid is not None:
            self.state_of[ticket["id"]] = sid
            ticket["ticket_state"] = state = self.states[sid]["category"]
            ticket["open"] = state != "resolved" or ticket["open"]
        if "open" in body:
            ticket["open"] = bool(body["open"])
        if isinstance(body.get("ticket_attributes"), dict):
            ticket["ticket_attributes"].update(body["ticket_attributes"])
        ticket["updated_at"] = int(time.time())
        view = self._ticket_view(request, ticket)
        if ticket["ticket_state"] != before:
            self.webhooks.emit(webhook_payloads.intercom("ticket.state.updated", view))
        return json_response(view)

    async def reply_ticket(self, request: web.Request) -> web.Response:
        """A note or comment by an admin → the ticket part."""
        ticket = self._find(self.tickets, request, "ticket_not_found", "Ticket not found")
        part = self._part(await body_of(request), ("note", "comment"))
        ticket["ticket_parts"]["ticket_parts"].append(part)
        ticket["ticket_parts"]["total_count"] += 1
        return json_response({**part, "type": "ticket_part"})

    def _part(self, body: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
        if body.get("message_type") not in kinds or body.get("type") != "admin" or str(body.get("admin_id")) not in self.admins:
            raise fail(400, "parameter_invalid", f"message_type must be one of {', '.join(kinds)}, by a known admin_id")
        now = int(time.time())
        return {"type": "conversation_part", "id": str(next(self._part_ids)), "part_type": body["message_type"],
                "body": body.get("body"), "created_at": now, "updated_at": now, "notified_at": now,
                "assigned_to": None, "author": {"type": "admin", "id": str(body["admin_id"])}, "attachments": [], "redacted": False}

    # --- conversations ----------------------------------------------------------------------------

    async def create_conversation(self, request: web.Request) -> web.Response:
        """From a contact (`from: {type: user|lead|contact, id}`) → the user_message with its conversation_id."""
        body = await body_of(request)
        sender = body.get("from") if isinstance(body.get("from"), dict) else {}
        if sender.get("type") not in ("user", "lead", "contact") or sender.get("id") not in self.contacts:
            raise fail(404, "not_found", "User Not Found")
        if not body.get("body"):
            raise fail(400, "parameter_not_found", "body is required")
        cid, now = str(next(self._conversation_ids)), int(time.time())
        self.conversations[cid] = {
            "type": "conversation", "id": cid, "title": None, "created_at": now, "updated_at": now, "waiting_since": now,
            "snoozed_until": None, "open": True, "state": "open", "read": False, "priority": "not_priority",
            "admin_assignee_id": None, "team_assignee_id": None, "tags": {"type": "tag.list", "tags": []},
            "source": {"type": "conversation", "id": str(next(self._part_ids)), "delivered_as": "customer_initiated",
                       "body": body["body"], "author": {"type": sender["type"], "id": sender["id"]}},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": sender["id"]}]},
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [], "total_count": 0},
        }
        return json_response({"type": "user_message", "id": str(next(self._part_ids)), "created_at": now,
                              "body": body["body"], "message_type": "inapp", "conversation_id": cid})

    async def get_conversation(self, request: web.Request) -> web.Response:
        return json_response(self._find(self.conversations, request, "conversation_not_found", "Conversation not found"))

    def _add_part(self, conversation: dict[str, Any], part: dict[str, Any]) -> web.Response:
        parts = conversation["conversation_parts"]
        parts["conversation_parts"].append(part)
        parts["total_count"] += 1
        conversation["updated_at"] = part["created_at"]
        return json_response(conversation)

    async def reply_conversation(self, request: web.Request) -> web.Response:
        conversation = self._find(self.conversations, request, "conversation_not_found", "Conversation not found")
        return self._add_part(conversation, self._part(await body_of(request), ("note", "comment")))

    async def manage_conversation(self, request: web.Request) -> web.Response:
        """assignment (to an admin or team id; 0 unassigns), close, open, snoozed."""
        conversation = self._find(self.conversations, request, "conversation_not_found", "Conversation not found")
        body = await body_of(request)
        part = self._part(body, ("assignment", "close", "open", "snoozed"))
        kind = body["message_type"]
        if kind == "assignment":
            target = str(body.get("assignee_id"))
            if target in self.teams:
                conversation["team_assignee_id"] = target
            elif target in self.admins:
                conversation["admin_assignee_id"] = int(target)
                self.webhooks.emit(webhook_payloads.intercom("conversation.admin.assigned", dict(conversation)))
            else:
                raise fail(400, "parameter_invalid", "assignee_id is not an admin or team")
        else:
            conversation["state"] = {"close": "closed", "open": "open", "snoozed": "snoozed"}[kind]
            conversation["open"] = kind != "close"
            if kind == "close":
                self.webhooks.emit(webhook_payloads.intercom("conversation.admin.closed", dict(conversation)))
        return self._add_part(conversation, part)

    async def run_assignment_rules(self, request: web.Request) -> web.Response:
        """The workspace's rules: the team, then its first available admin."""
        conversation = self._find(self.conversations, request, "conversation_not_found", "Conversation not found")
        conversation["team_assignee_id"] = TEAM
        free = [a for a in self.admins.values() if not a["away_mode_enabled"]]
        if free:
            conversation["admin_assignee_id"] = int(free[0]["id"])
            self.webhooks.emit(webhook_payloads.intercom("conversation.admin.assigned", dict(conversation)))
        return json_response(conversation)
