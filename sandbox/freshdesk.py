"""Freshdesk API v2 emulator: contacts (filters, filter-query search), companies, tickets (list, search), notes."""

from __future__ import annotations

import itertools
import re
from typing import Any

import orjson
from aiohttp import web

from sandbox.core import Emulator, basic_credentials, json_response, record_id
from sandbox.freshdesk_query import CONTACT_FIELDS, TICKET_FIELDS, QueryError, search
from sandbox.freshdesk_records import AGENT_ID, contact_record, later, note_record, now, plain_text, ticket_record

STATUSES = (2, 3, 4, 5)  # Open, Pending, Resolved, Closed (the sandbox account has no custom statuses)
PRIORITIES = (1, 2, 3, 4)  # Low, Medium, High, Urgent
SOURCES = (1, 2, 3, 7, 9, 10)  # Email, Portal, Phone, Chat, Feedback Widget, Outbound Email
REQUESTER_KEYS = ("requester_id", "phone", "email", "twitter_id", "facebook_id", "unique_external_id")
TICKET_CREATE_FIELDS = frozenset(
    {
        *REQUESTER_KEYS,
        *("name", "subject", "description", "status", "priority", "source", "tags", "type", "responder_id"),
        *("group_id", "product_id", "company_id", "custom_fields", "cc_emails", "due_by", "fr_due_by"),
        *("email_config_id", "parent_id", "attachments"),
    }
)
TICKET_UPDATE_FIELDS = TICKET_CREATE_FIELDS
NOTE_FIELDS = frozenset({"body", "private", "incoming", "notify_emails", "user_id", "attachments"})
CONTACT_FILTERS = frozenset({"email", "phone", "mobile", "company_id", "state", "_updated_since"})
PAGING = frozenset({"page", "per_page"})
TICKET_FILTERS = frozenset({"filter", "requester_id", "email", "company_id", "updated_since", "order_by", "order_type"})
LIST_WINDOW_DAYS = 30  # without updated_since, GET /tickets lists only tickets created this recently
DEFAULT_PER_PAGE, MAX_PER_PAGE = 30, 100
RATE_LIMIT_TOTAL = 700  # calls per minute on the plan the sandbox pretends to be
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Freshdesk's own error bodies, keyed by status; 404 is (often) empty and so is absent.
ERROR_BODIES: dict[int, dict[str, str]] = {
    401: {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."},
    403: {"code": "access_denied", "message": "You are not authorized to perform this action."},
    415: {"code": "invalid_content_type", "message": "Content-Type header should have application/json"},
}
UNEXPECTED_FIELD = "Unexpected/invalid field in request"
# The account's custom fields (`GET /contact_fields`, `/ticket_fields` list them beside the default ones).
CUSTOM_CONTACT_FIELDS = ("loyalty_number",)
CUSTOM_TICKET_FIELDS = ("cf_order_id",)
INVALID_JSON = {"code": "invalid_json", "message": "Request body has invalid json format"}


def error(field: str, message: str, code: str) -> dict[str, str]:
    """One entry of a validation failure's `errors`."""
    return {"field": field, "message": message, "code": code}


def is_int(value: Any) -> bool:
    """A JSON integer (not a boolean, which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


class FreshdeskEmulator(Emulator):
    """Answers as `https://{name}.freshdesk.com/api/v2` does for the calls the connector makes."""

    name = "freshdesk"

    def ticket_ids(self) -> list[str]:
        """The tickets held now."""
        return [str(i) for i in self.tickets]

    def reset(self) -> None:
        """Seed: Ahmed (contact 1001) in Al-Mansoori Trading (2001), Layla (mobile only); Ahmed's open ticket 54321 and resolved 54320."""
        created = "2023-01-15T09:00:00Z"
        self.calls = 0
        self.required_for_closure: set[str] = set()  # ticket fields an admin made mandatory on resolve/close
        self.companies: dict[int, dict[str, Any]] = {
            2001: {
                "id": 2001,
                "name": "Al-Mansoori Trading",
                "description": "Trading house, Dubai",
                "domains": ["example.ae"],
                "note": None,
                "custom_fields": {},
                "health_score": "Happy",
                "account_tier": "Enterprise",
                "renewal_date": None,
                "industry": "Retail",
                "created_at": created,
                "updated_at": created,
            }
        }
        self.contacts: dict[int, dict[str, Any]] = {}
        ahmed = self._add_contact(1001, "Ahmed Al-Mansoori", "ahmed@example.ae", phone="+971501234567", company_id=2001)
        ahmed["custom_fields"] = {"loyalty_number": "LOY-7781"}
        self._add_contact(1002, "Layla Hassan", "layla@example.com", mobile="(415) 555-2671")
        self._add_contact(1003, "Omar Khalid", None, phone="+44 20 7946 0958")
        self._contact_ids = itertools.count(1100)
        self._ticket_ids = itertools.count(54322)
        self._note_ids = itertools.count(7_000_001)
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        seed = self._new_ticket(
            54321,
            {
                "subject": "Product not working",
                "description": "<div>Customer reports the device stopped working after the latest update.</div>",
                "status": 2,
                "priority": 3,
                "source": 3,
                "tags": ["technical", "urgent"],
            },
            requester_id=1001,
            stamp="2025-11-18T10:30:00Z",
        )
        seed["updated_at"] = "2025-11-18T11:45:00Z"
        self.tickets[54321] = seed
        resolved = self._new_ticket(
            54320,
            {
                "subject": "Invoice copy requested",
                "description": "<div>Caller asked for a copy of the September invoice.</div>",
                "status": 4,
                "priority": 1,
                "source": 3,
                "tags": ["billing"],
            },
            requester_id=1001,
            stamp="2025-10-02T08:00:00Z",
        )
        resolved["updated_at"] = "2025-10-02T09:10:00Z"
        self.tickets[54320] = resolved

    def _add_contact(self, cid: int, name: str, email: str | None, **where: Any) -> dict[str, Any]:
        """Store a contact (`where`: its phone, mobile and company_id, as contact_record takes them)."""
        contact = contact_record(cid, name, email, **where)
        self.contacts[cid] = contact
        return contact

    def _new_ticket(self, tid: int, fields: dict[str, Any], requester_id: int, stamp: str) -> dict[str, Any]:
        """A v2 ticket as GET /tickets/{id} returns it, with description_text derived from the HTML."""
        company_id = self.contacts.get(requester_id, {}).get("company_id")
        return ticket_record(tid, fields, requester_id, company_id, stamp)

    # --- wire behaviour ---------------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> bool:
        """Basic `{api_key}:X` (the password is ignored); the key `invalid` is refused."""
        creds = basic_credentials(request)
        return creds is not None and creds[0] not in ("", "invalid")

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """Freshdesk's 401 body."""
        return json_response(ERROR_BODIES[401], status=401)

    def not_found(self) -> web.StreamResponse:
        """A missing record (or path): Freshdesk answers 404 with no body at all."""
        return web.Response(status=404)

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        """429 whose headers are the signal: wait Retry-After seconds; nothing remains of the quota."""
        return web.Response(
            status=429,
            headers={
                "Retry-After": str(retry_after),
                "X-RateLimit-Total": str(RATE_LIMIT_TOTAL),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Used-CurrentRequest": "1",
            },
        )

    def server_error(self, status: int) -> web.StreamResponse:
        """A switched-on error: Freshdesk's JSON body where it has one (403 access_denied), else text."""
        body = ERROR_BODIES.get(status)
        return json_response(body, status=status) if body else web.Response(status=status, text="Service Unavailable")

    def rate_limit_headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers Freshdesk puts on every answer, counting calls since the reset."""
        self.calls += 1
        return {
            "X-RateLimit-Total": str(RATE_LIMIT_TOTAL),
            "X-RateLimit-Remaining": str(max(0, RATE_LIMIT_TOTAL - self.calls)),
            "X-RateLimit-Used-CurrentRequest": "1",
        }

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        """`require_for_closure {"field"}`: a field Freshdesk then demands when a ticket is resolved or closed."""
        if action == "require_for_closure":
            self.required_for_closure.add(str(payload["field"]))
            return {"required_for_closure": sorted(self.required_for_closure)}
        return super().control(action, payload)

    def _invalid(self, errors: list[dict[str, str]]) -> web.Response:
        """Freshdesk's 400 for field errors."""
        return json_response({"description": "Validation failed", "errors": errors}, status=400)

    def add_routes(self, app: web.Application) -> None:
        """The v2 paths the connector (and python-freshdesk) use for contacts, companies, tickets, notes, search."""
        app.router.add_get("/api/v2/agents/me", self.get_me)
        app.router.add_get("/api/v2/contact_fields", self.list_fields)
        app.router.add_get("/api/v2/ticket_fields", self.list_fields)
        app.router.add_get("/api/v2/contacts", self.list_contacts)
        app.router.add_get("/api/v2/contacts/{id}", self.get_contact)
        app.router.add_get("/api/v2/companies/{id}", self.get_company)
        app.router.add_get("/api/v2/search/contacts", self.search_contacts)
        app.router.add_get("/api/v2/search/tickets", self.search_tickets)
        app.router.add_get("/api/v2/tickets", self.list_tickets)
        app.router.add_post("/api/v2/tickets", self.create_ticket)
        app.router.add_get("/api/v2/tickets/{id}", self.get_ticket)
        app.router.add_put("/api/v2/tickets/{id}", self.update_ticket)
        app.router.add_post("/api/v2/tickets/{id}/notes", self.create_note)
        app.router.add_get("/api/v2/tickets/{id}/conversations", self.list_conversations)

    async def _json_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The JSON object a POST/PUT carries, or Freshdesk's 415/400 for anything else."""
        if request.content_type != "application/json":
            return json_response(ERROR_BODIES[415], status=415)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return json_response(INVALID_JSON, status=400)
        return body if isinstance(body, dict) else json_response(INVALID_JSON, status=400)

    def _page(
        self, request: web.Request, items: list[dict[str, Any]], errors: list[dict[str, str]] | None = None
    ) -> web.StreamResponse:
        """`page`/`per_page` (default 30, at most 100) with a `link: <...>; rel="next"` header when more remain."""
        errors = list(errors or [])
        page_raw, per_page_raw = request.query.get("page", "1"), request.query.get("per_page", str(DEFAULT_PER_PAGE))
        if not page_raw.isdigit() or int(page_raw) < 1:
            errors.append(error("page", "It should be a Positive Integer", "invalid_value"))
        if not per_page_raw.isdigit() or not 1 <= int(per_page_raw) <= MAX_PER_PAGE:
            message = f"It should be a Positive Integer less than or equal to {MAX_PER_PAGE}"
            errors.append(error("per_page", message, "invalid_value"))
        if errors:
            return self._invalid(errors)
        page, per_page = int(page_raw), int(per_page_raw)
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            following = request.url.update_query(page=str(page + 1))
            headers["link"] = f'<{following}>; rel="next"'
        return json_response(chunk, headers=headers)

    # --- contacts and companies -------------------------------------------------------------------

    async def list_fields(self, request: web.Request) -> web.StreamResponse:
        """`GET /contact_fields` or `/ticket_fields`: a bare list; default fields have `default: true`."""
        contacts = request.path.endswith("contact_fields")
        defaults = ("name", "email", "phone", "mobile", "job_title") if contacts else ("subject", "status", "priority")
        custom = CUSTOM_CONTACT_FIELDS if contacts else CUSTOM_TICKET_FIELDS
        listed = [(n, True) for n in defaults] + [(n, False) for n in custom]
        fields = [{"id": i, "name": n, "label": n.removeprefix("cf_").replace("_", " ").title(), "position": i,
                   "type": f"{'default' if d else 'custom'}_{'text' if n not in ('status', 'priority') else 'dropdown'}",
                   "default": d} for i, (n, d) in enumerate(listed, 1)]  # fmt: skip
        return json_response(fields)

    async def get_me(self, request: web.Request) -> web.StreamResponse:
        """`GET /agents/me`: the agent the API key belongs to (readiness's credential check)."""
        return json_response({"id": AGENT_ID, "available": True, "contact": {"name": "Sandbox Agent"}})

    async def list_contacts(self, request: web.Request) -> web.StreamResponse:
        """`GET /contacts?email=|phone=|mobile=|company_id=`: each filter an exact match, filters ANDed."""
        unknown = sorted(set(request.query) - CONTACT_FILTERS - PAGING)
        errors = [error(f, UNEXPECTED_FIELD, "invalid_field") for f in unknown]
        query = request.query
        contacts = [c for c in self.contacts.values() if not c["deleted"]]
        if "email" in query:
            contacts = [c for c in contacts if (c["email"] or "").lower() == query["email"].lower()]
        for field in ("phone", "mobile"):
            if field in query:
                contacts = [c for c in contacts if c[field] is not None and c[field] == query[field]]
        if "company_id" in query:
            contacts = [c for c in contacts if str(c["company_id"]) == query["company_id"]]
        return self._page(request, contacts, errors)

    async def get_contact(self, request: web.Request) -> web.StreamResponse:
        """`GET /contacts/{id}` → bare contact."""
        contact = self.contacts.get(record_id(request) or -1)
        return json_response(contact) if contact and not contact["deleted"] else self.not_found()

    async def get_company(self, request: web.Request) -> web.StreamResponse:
        """`GET /companies/{id}` → bare company."""
        company = self.companies.get(record_id(request) or -1)
        return json_response(company) if company else self.not_found()

    def _search(self, request: web.Request, records: list[dict[str, Any]], fields: dict) -> web.StreamResponse:
        """The filter API: `query="..."` and `page` (1..10) only, 30 results a page, or Freshdesk's 400."""
        unknown = sorted(set(request.query) - {"query", "page"})
        if unknown:
            return self._invalid([error(f, UNEXPECTED_FIELD, "invalid_field") for f in unknown])
        try:
            return json_response(search(records, request.query.get("query"), fields, request.query.get("page", "1")))
        except QueryError as exc:
            return self._invalid([error(exc.field, str(exc), "invalid_value")])

    async def search_contacts(self, request: web.Request) -> web.StreamResponse:
        """`GET /search/contacts?query="email:'a@b.com' OR phone:'...'"` → `{"results", "total"}`."""
        return self._search(request, [c for c in self.contacts.values() if not c["deleted"]], CONTACT_FIELDS)

    async def search_tickets(self, request: web.Request) -> web.StreamResponse:
        """`GET /search/tickets?query="status:2 AND created_at:>'2024-01-01'"` → `{"results", "total"}`."""
        return self._search(request, list(self.tickets.values()), TICKET_FIELDS)

    # --- tickets ----------------------------------------------------------------------------------

    async def list_tickets(self, request: web.Request) -> web.StreamResponse:
        """`GET /tickets[?filter=new_and_my_open|requester_id=|email=|company_id=|updated_since=]`, newest first."""
        query = request.query
        errors = [error(f, UNEXPECTED_FIELD, "invalid_field") for f in sorted(set(query) - TICKET_FILTERS - PAGING)]
        window = later(now(), -24 * LIST_WINDOW_DAYS)  # Freshdesk lists recent tickets unless told updated_since
        email = query.get("email", "").lower()
        checks = {  # parameter -> whether a ticket passes it
            "filter": lambda t, v: v == "new_and_my_open" and t["status"] == 2 and t["responder_id"] in (None, AGENT_ID),
            "requester_id": lambda t, v: str(t["requester_id"]) == v,
            "company_id": lambda t, v: str(t["company_id"]) == v,
            "email": lambda t, v: (self.contacts[t["requester_id"]]["email"] or "").lower() == email,
            "updated_since": lambda t, v: t["updated_at"] >= v,
        }
        tickets = [
            t
            for t in self.tickets.values()
            if all(check(t, query[k]) for k, check in checks.items() if k in query)
            and ("updated_since" in query or t["created_at"] >= window)
        ]
        order_by = query.get("order_by") if query.get("order_by") in ("updated_at", "status") else "created_at"
        tickets.sort(key=lambda t: (t[order_by], t["id"]), reverse=query.get("order_type") != "asc")
        return self._page(request, tickets, errors)

    def _check_fields(self, fields: dict[str, Any], allowed: frozenset[str]) -> list[dict[str, str]]:
        """Freshdesk rejects unknown keys and values outside its lists, field by field."""
        errors = [error(k, UNEXPECTED_FIELD, "invalid_field") for k in fields if k not in allowed]
        custom = fields.get("custom_fields")
        if isinstance(custom, dict):
            errors += [error(k, UNEXPECTED_FIELD, "invalid_field") for k in custom if k not in CUSTOM_TICKET_FIELDS]
        for key, values in (("status", STATUSES), ("priority", PRIORITIES), ("source", SOURCES)):
            if key in fields and fields[key] not in values:
                listed = ",".join(map(str, values))
                errors.append(error(key, f"It should be one of these values: '{listed}'", "invalid_value"))
        for key in ("subject", "description", "name", "phone", "email", "type"):
            if key in fields and not isinstance(fields[key], str):
                errors.append(error(key, "It should be a/an String", "datatype_mismatch"))
        tags = fields.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            errors.append(error("tags", "It should be a/an Array", "datatype_mismatch"))
        if isinstance(fields.get("email"), str) and not EMAIL.match(fields["email"]):
            errors.append(error("email", "It should be in the 'valid email address' format", "invalid_value"))
        return errors

    def _resolve_requester(self, fields: dict[str, Any], errors: list[dict[str, str]]) -> int | None:
        """requester_id, or the contact with that email or exact phone, created when there is none."""
        if not any(fields.get(k) is not None for k in REQUESTER_KEYS):
            errors.append(
                error(
                    "requester_id",
                    "Please fill at least 1 of requester_id, phone, email, twitter_id, facebook_id fields",
                    "missing_field",
                )
            )
            return None
        if "requester_id" in fields:
            rid = fields["requester_id"]
            if is_int(rid) and rid in self.contacts:
                return rid
            errors.append(error("requester_id", "There is no contact matching the given requester_id", "invalid_value"))
            return None
        email, phone = fields.get("email"), fields.get("phone")
        if phone and not email and not fields.get("name"):
            errors.append(error("name", "It should be given when the phone is given without an email", "missing_field"))
        if errors:
            return None
        for contact in self.contacts.values():
            if email and (contact["email"] or "").lower() == email.lower():
                return contact["id"]
            if phone and not email and contact["phone"] == phone:  # Freshdesk matches the phone as spelled
                return contact["id"]
        cid = next(self._contact_ids)
        name = fields.get("name") or (email.split("@")[0] if email else f"Contact {cid}")
        self._add_contact(cid, name, email, phone=phone)
        return cid

    async def create_ticket(self, request: web.Request) -> web.StreamResponse:
        """`POST /tickets` → 201 bare ticket + Location; subject, description, status, priority required."""
        fields = await self._json_body(request)
        if isinstance(fields, web.Response):
            return fields
        errors = self._check_fields(fields, TICKET_CREATE_FIELDS)
        for key in ("subject", "description"):
            if key not in fields:
                errors.append(error(key, "It should be a/an String", "missing_field"))
        for key, values in (("status", STATUSES), ("priority", PRIORITIES)):
            if key not in fields:
                listed = ",".join(map(str, values))
                errors.append(error(key, f"It should be one of these values: '{listed}'", "missing_field"))
        requester_id = self._resolve_requester(fields, errors)
        if errors or requester_id is None:
            return self._invalid(errors)
        tid = next(self._ticket_ids)
        ticket = self._new_ticket(tid, fields, requester_id, now())
        self.tickets[tid] = ticket
        self.webhooks.emit({"event": "ticket_created", "id": str(tid)})  # the automation rule's body (docs/events.md)
        location = f"https://sandbox.freshdesk.com/api/v2/tickets/{tid}"
        return json_response(ticket, status=201, headers={"Location": location})

    async def get_ticket(self, request: web.Request) -> web.StreamResponse:
        """`GET /tickets/{id}` → bare ticket."""
        ticket = self.tickets.get(record_id(request) or -1)
        return json_response(ticket) if ticket else self.not_found()

    async def update_ticket(self, request: web.Request) -> web.StreamResponse:
        """`PUT /tickets/{id}` → 200 bare ticket with the changes applied."""
        ticket = self.tickets.get(record_id(request) or -1)
        if not ticket:
            return self.not_found()
        fields = await self._json_body(request)
        if isinstance(fields, web.Response):
            return fields
        errors = self._check_fields(fields, TICKET_UPDATE_FIELDS)
        if fields.get("status") in (4, 5):
            merged = {**ticket, **fields}
            missing = sorted(f for f in self.required_for_closure if merged.get(f) in (None, ""))
            errors += [error(f, "It should be a/an String", "missing_field") for f in missing]
        if errors:
            return self._invalid(errors)
        for key in ("status", "priority", "subject", "tags", "type", "group_id", "responder_id"):
            if key in fields:
                ticket[key] = fields[key]
        if isinstance(fields.get("custom_fields"), dict):  # only the custom fields sent change
            ticket["custom_fields"] = {**ticket["custom_fields"], **fields["custom_fields"]}
        if "description" in fields:
            ticket["description"], ticket["description_text"] = fields["description"], plain_text(fields["description"])
        ticket["updated_at"] = now()
        self.webhooks.emit({"event": "ticket_updated", "id": str(ticket["id"])})
        return json_response(ticket)

    async def create_note(self, request: web.Request) -> web.StreamResponse:
        """`POST /tickets/{id}/notes` `{"body","private"}` → 201 note (private unless told otherwise)."""
        ticket = self.tickets.get(record_id(request) or -1)
        if not ticket:
            return self.not_found()
        fields = await self._json_body(request)
        if isinstance(fields, web.Response):
            return fields
        errors = [error(k, UNEXPECTED_FIELD, "invalid_field") for k in fields if k not in NOTE_FIELDS]
        if not isinstance(fields.get("body"), str) or not fields["body"]:
            errors.append(error("body", "It should be a/an String", "missing_field"))
        if not isinstance(fields.get("private", True), bool):
            errors.append(error("private", "It should be a/an Boolean", "datatype_mismatch"))
        if errors:
            return self._invalid(errors)
        stamp = now()
        note = note_record(next(self._note_ids), ticket["id"], fields, stamp)
        self.notes.setdefault(ticket["id"], []).append(note)
        ticket["updated_at"] = stamp
        return json_response(note, status=201)

    async def list_conversations(self, request: web.Request) -> web.StreamResponse:
        """`GET /tickets/{id}/conversations`: its replies and notes, oldest first, paged."""
        ticket = self.tickets.get(record_id(request) or -1)
        if not ticket:
            return self.not_found()
        return self._page(request, self.notes.get(ticket["id"], []))
