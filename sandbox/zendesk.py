"""Zendesk Support API v2 emulator: users, organizations, search, paged lists, tickets with audits, idempotency."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import orjson
from aiohttp import web

from sandbox import webhook_payloads
from sandbox.core import Emulator, basic_credentials, bearer_token, json_response, record_id
from sandbox.oauth import Wire
from sandbox.zendesk_jobs import Jobs
from sandbox.zendesk_pages import PageError, by_id, cursor_page, list_page, offset_page
from sandbox.zendesk_records import (
    AGENT_ID,
    TICKET_FIELDS,
    USER_FIELDS,
    audit_record,
    now,
    ticket_record,
    user_record,
)
from sandbox.zendesk_search import RESULT_TYPES, Index, SearchError, sort_results

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent", None)
TYPES = ("problem", "incident", "question", "task", None)
SEARCH_LIMIT = 1000  # the Search API pages through at most this many results


def strip_type(record: dict[str, Any]) -> dict[str, Any]:
    """A search result as a list endpoint gives it (no `result_type`)."""
    return {k: v for k, v in record.items() if k != "result_type"}


def by_created(record: dict[str, Any]) -> tuple[Any, ...]:
    """The search export's order: created_at, then id."""
    return (record.get("created_at") or "", *by_id(record))


class ZendeskEmulator(Emulator):
    """Answers as `https://{subdomain}.zendesk.com` does for the calls the connector makes."""

    name = "zendesk"
    oauth_wire = Wire("/oauth/authorizations/new", "/oauth/tokens", rotates=True, expires_in=7200)

    def ticket_ids(self) -> list[str]:
        """The tickets held now."""
        return [str(i) for i in self.tickets]

    def reset(self) -> None:
        """Seed: Ahmed (user 1001) in Al-Mansoori Trading with open ticket 12345 and solved 12344; Layla; an agent."""
        created = "2023-01-15T09:00:00Z"
        self.organizations: dict[int, dict[str, Any]] = {
            501: {
                "id": 501,
                "name": "Al-Mansoori Trading",
                "domain_names": ["example.ae"],
                "tags": ["enterprise"],
                "organization_fields": {"tier": "Enterprise"},
                "created_at": created,
                "updated_at": created,
            }
        }
        self.users: dict[int, dict[str, Any]] = {}
        self._add_user(1001, "Ahmed Al-Mansoori", "ahmed@example.ae", "+971501234567", "end-user", 501, created)
        self.users[1001]["user_fields"] = {"loyalty_number": "LOY-7781"}
        self._add_user(1002, "Layla Hassan", "layla@example.com", "(415) 555-2671", "end-user", None, created)
        self._add_user(AGENT_ID, "Sara Ahmed", "sara@example.com", None, "admin", None, created)
        self.tickets: dict[int, dict[str, Any]] = {}
        self._ticket_ids = itertools.count(12346)
        self._user_ids = itertools.count(3001)
        self._event_ids = itertools.count(900_000)
        self.tickets[12345] = self._new_ticket(
            12345,
            {
                "subject": "Product not working",
                "description": "Customer reports the device stopped working after the latest update.",
                "status": "open",
                "priority": "high",
                "tags": ["technical", "urgent"],
            },
            requester_id=1001,
            stamp="2025-11-18T10:30:00Z",
        )
        self.tickets[12345]["updated_at"] = "2025-11-18T11:45:00Z"
        self.tickets[12344] = self._new_ticket(
            12344,
            {
                "subject": "Invoice copy requested",
                "description": "Caller asked for a copy of the September invoice.",
                "status": "solved",
                "priority": "low",
                "tags": ["billing"],
            },
            requester_id=1001,
            stamp="2025-10-02T08:00:00Z",
        )
        self.tickets[12344]["updated_at"] = "2025-10-02T09:10:00Z"
        self.jobs = Jobs(self)
        self.idempotency: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (body hash, first answer's body)

    def _add_user(
        self, uid: int, name: str, email: str | None, phone: str | None, role: str, org: int | None, stamp: str
    ) -> dict[str, Any]:
        user = user_record(uid, name, email, phone, role, org, stamp)
        self.users[uid] = user
        return user

    def _new_ticket(self, tid: int, fields: dict[str, Any], requester_id: int, stamp: str) -> dict[str, Any]:
        organization_id = self.users.get(requester_id, {}).get("organization_id")
        return ticket_record(tid, fields, requester_id, organization_id, stamp)

    # --- wire behaviour ---------------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> bool:
        """Basic `{email}/token:{token}` (or password), or Bearer; the word `invalid` is refused."""
        creds = basic_credentials(request)
        if creds:
            return bool(creds[0]) and creds[1] not in ("", "invalid")
        token = bearer_token(request)
        return token is not None and token != "invalid"

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        return json_response({"error": "Couldn't authenticate you"}, status=401)

    def not_found(self) -> web.StreamResponse:
        return json_response({"error": "RecordNotFound", "description": "Not found"}, status=404)

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        # Zendesk's 429 body is not JSON; the Retry-After header is what clients rely on.
        return web.Response(status=429, text="Rate limit exceeded", headers={"Retry-After": str(retry_after)})

    def rate_limit_headers(self) -> dict[str, str]:
        return {
            "x-rate-limit": "700",
            "x-rate-limit-remaining": "699",
            "ratelimit-limit": "700",
            "ratelimit-remaining": "699",
            "ratelimit-reset": "60",
        }

    def _invalid(self, details: dict[str, list[dict[str, str]]]) -> web.Response:
        return json_response(
            {"error": "RecordInvalid", "description": "Record validation errors", "details": details}, status=422
        )

    def add_routes(self, app: web.Application) -> None:
        for suffix in ("", ".json"):
            app.router.add_get(f"/api/v2/users/search{suffix}", self.search_users)
            app.router.add_get(f"/api/v2/search{suffix}", self.search)
            app.router.add_get(f"/api/v2/search/count{suffix}", self.search_count)
            app.router.add_get(f"/api/v2/search/export{suffix}", self.search_export)
            app.router.add_get(f"/api/v2/users{suffix}", self.list_users)
            app.router.add_get(f"/api/v2/tickets{suffix}", self.list_tickets)
            app.router.add_get(f"/api/v2/organizations{suffix}", self.list_organizations)
            app.router.add_get(f"/api/v2/users/{{id}}/tickets/requested{suffix}", self.requested_tickets)
            app.router.add_post(f"/api/v2/tickets{suffix}", self.create_ticket)
            app.router.add_post(f"/api/v2/tickets/create_many{suffix}", self.jobs.create_many)
            app.router.add_get(f"/api/v2/tickets/show_many{suffix}", self.jobs.show_many)
        app.router.add_get("/api/v2/job_statuses/{id}", self.jobs.job_status)
        for suffix in ("", ".json"):  # before {id}, which would take "me" for an id
            app.router.add_get(f"/api/v2/users/me{suffix}", self.get_me)
            app.router.add_get(f"/api/v2/ticket_fields{suffix}", self.list_ticket_fields)
            app.router.add_get(f"/api/v2/user_fields{suffix}", self.list_user_fields)
        app.router.add_get("/api/v2/users/{id}", self.get_user)
        app.router.add_get("/api/v2/organizations/{id}", self.get_organization)
        app.router.add_get("/api/v2/tickets/{id}", self.get_ticket)
        app.router.add_put("/api/v2/tickets/{id}", self.update_ticket)

    def _sideload(self, request: web.Request, users: list[dict[str, Any]]) -> dict[str, Any]:
        """`include=organizations` adds the users' organizations beside them."""
        if "organizations" not in request.query.get("include", "").split(","):
            return {}
        ids = {u["organization_id"] for u in users if u.get("organization_id")}
        return {"organizations": [self.organizations[i] for i in sorted(ids) if i in self.organizations]}

    async def get_user(self, request: web.Request) -> web.StreamResponse:
        user = self.users.get(record_id(request, ".json") or -1)
        if not user:
            return self.not_found()
        return json_response({"user": user, **self._sideload(request, [user])})

    async def get_me(self, request: web.Request) -> web.StreamResponse:
        """`GET /users/me`: the authenticated agent (readiness's credential check)."""
        return json_response({"user": self.users[AGENT_ID]})

    async def get_organization(self, request: web.Request) -> web.StreamResponse:
        org = self.organizations.get(record_id(request, ".json") or -1)
        return json_response({"organization": org}) if org else self.not_found()

    def _index(self) -> Index:
        return Index(self.users, self.tickets, self.organizations)

    def _search_error(self, message: str) -> web.Response:
        """Zendesk's 400 for a query it cannot run (`error` is `invalid`, as its API reference shows)."""
        return json_response({"error": "invalid", "description": message}, status=400)

    async def search_users(self, request: web.Request) -> web.StreamResponse:
        """`GET /users/search.json?query=phone:*501234567` (or `external_id=`): the search language over users."""
        query = request.query.get("query")
        if "external_id" in request.query:
            query = f'external_id:"{request.query["external_id"]}"'
        if query is None:
            return self._search_error("Invalid search: query or external_id is required")
        try:
            users = self._index().search(query, only="user") if query.strip() else []
            page = list_page(request, [strip_type(u) for u in users], "users")
        except (SearchError, PageError) as exc:
            return self._search_error(str(exc))
        return json_response({**page, **self._sideload(request, page["users"])})

    async def search(self, request: web.Request) -> web.StreamResponse:
        """`GET /search.json?query=type:ticket status<solved&sort_by=&sort_order=`: offset pages, 1000 results at most."""
        query = request.query.get("query", "")
        if not query.strip():
            return self._search_error("Invalid search: query is required")
        try:
            results = self._index().search(query)
            results = sort_results(results, request.query.get("sort_by"), request.query.get("sort_order"))
            page = offset_page(request, results, "results", limit=SEARCH_LIMIT)
        except SearchError as exc:
            return self._search_error(str(exc))
        except PageError as exc:  # past the 1000th result Zendesk answers 422 (zenpy's SearchResponseLimitExceeded)
            return json_response({"error": "invalid", "description": str(exc)}, status=422)
        return json_response({**page, "facets": None})

    async def search_count(self, request: web.Request) -> web.StreamResponse:
        """`GET /search/count.json?query=` → `{"count": N}`."""
        try:
            return json_response({"count": len(self._index().search(request.query.get("query", "")))})
        except SearchError as exc:
            return self._search_error(str(exc))

    async def search_export(self, request: web.Request) -> web.StreamResponse:
        """`GET /search/export.json?query=&filter[type]=user&page[size]=`: one type, by created_at, cursor only."""
        kind = request.query.get("filter[type]", "")
        if kind not in RESULT_TYPES:
            return self._search_error("Invalid search: filter[type] must be ticket, user or organization")
        try:
            results = self._index().search(request.query.get("query", ""), only=kind)
            page = cursor_page(request, results, "results", by_created, backward=False)
        except (SearchError, PageError) as exc:
            return self._search_error(str(exc))
        return json_response({**page, "facets": None})

    async def list_users(self, request: web.Request) -> web.StreamResponse:
        """`GET /users.json`, offset or cursor paged (`page[size]`), organizations sideloaded on request."""
        return self._list(request, list(self.users.values()), "users", sideload=True)

    async def list_tickets(self, request: web.Request) -> web.StreamResponse:
        """`GET /tickets.json`, offset or cursor paged."""
        return self._list(request, list(self.tickets.values()), "tickets")

    async def list_organizations(self, request: web.Request) -> web.StreamResponse:
        """`GET /organizations.json`, offset or cursor paged."""
        return self._list(request, list(self.organizations.values()), "organizations")

    async def requested_tickets(self, request: web.Request) -> web.StreamResponse:
        """`GET /users/{id}/tickets/requested.json`: the tickets the user asked for, paged."""
        uid = record_id(request)
        if uid not in self.users:
            return self.not_found()
        tickets = [t for t in self.tickets.values() if t["requester_id"] == uid]
        return self._list(request, tickets, "tickets")

    def _list(
        self, request: web.Request, items: list[dict[str, Any]], key: str, sideload: bool = False
    ) -> web.StreamResponse:
        try:
            page = list_page(request, items, key)
        except PageError as exc:
            return json_response({"error": "InvalidPaginationParameter", "description": str(exc)}, status=400)
        return json_response({**page, **(self._sideload(request, page[key]) if sideload else {})})

    async def get_ticket(self, request: web.Request) -> web.StreamResponse:
        ticket = self.tickets.get(record_id(request, ".json") or -1)
        return json_response({"ticket": ticket}) if ticket else self.not_found()

    def _validate(self, fields: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
        details: dict[str, list[dict[str, str]]] = {}
        if "status" in fields and fields["status"] not in STATUSES:
            details["status"] = [{"description": f"Status: {fields['status']} is not valid", "error": "InvalidValue"}]
        if "priority" in fields and fields["priority"] not in PRIORITIES:
            details["priority"] = [{"description": "Priority: is not valid", "error": "InvalidValue"}]
        if "type" in fields and fields["type"] not in TYPES:
            details["type"] = [{"description": "Type: is not valid", "error": "InvalidValue"}]
        return details

    def _resolve_requester(self, fields: dict[str, Any]) -> int | None:
        """requester_id, or find-or-create from `requester: {name, email}`; default the agent."""
        if "requester_id" in fields:
            rid = fields["requester_id"]
            return rid if rid in self.users else None
        requester = fields.get("requester")
        if not requester:
            return AGENT_ID
        email = requester.get("email")
        for user in self.users.values():
            if email and (user.get("email") or "").lower() == email.lower():
                return user["id"]
        uid = next(self._user_ids)
        domain = (email or "").rpartition("@")[2].lower()
        org = next((o["id"] for o in self.organizations.values() if domain and domain in o["domain_names"]), None)
        self._add_user(uid, requester.get("name") or email or "Unknown", email, None, "end-user", org, now())
        return uid

    async def list_ticket_fields(self, request: web.Request) -> web.StreamResponse:
        """`GET /ticket_fields.json`: the account's ticket fields, system and custom (one custom: order number)."""
        return json_response({"ticket_fields": TICKET_FIELDS, "next_page": None, "previous_page": None,
                              "count": len(TICKET_FIELDS)})  # fmt: skip

    async def list_user_fields(self, request: web.Request) -> web.StreamResponse:
        """`GET /user_fields.json`: the account's custom user fields."""
        return json_response({"user_fields": USER_FIELDS, "next_page": None, "previous_page": None,
                              "count": len(USER_FIELDS)})  # fmt: skip

    async def create_ticket(self, request: web.Request) -> web.StreamResponse:
        """`POST /tickets.json` → 201 `{ticket, audit}` + Location; Idempotency-Key replays the first answer."""
        raw = await request.read()
        try:
            fields = orjson.loads(raw)["ticket"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return json_response({"error": "InvalidEndpoint", "description": "ticket parameter is required"}, 400)
        key = request.headers.get("Idempotency-Key")
        digest = hashlib.sha256(raw).hexdigest()
        if key and key in self.idempotency:
            seen_digest, first = self.idempotency[key]
            if seen_digest != digest:
                return json_response(
                    {"error": "IdempotentRequestError", "description": "Idempotency key reused with a different payload"},
                    status=400,
                )
            # The first answer is replayed as it was (ticket and audit), not the ticket as it is now.
            headers = {"x-idempotency-lookup": "hit", "Location": first["ticket"]["url"]}
            return json_response(first, 201, headers)
        made = self.make_ticket(fields)
        if isinstance(made, web.Response):
            return made
        body = orjson.loads(orjson.dumps(made))  # a snapshot, for a replay
        if key:
            self.idempotency[key] = (digest, body)
        ticket = made["ticket"]
        headers = {"Location": ticket["url"], **({"x-idempotency-lookup": "miss"} if key else {})}
        return json_response(body, 201, headers)

    def make_ticket(self, fields: dict[str, Any]) -> dict[str, Any] | web.Response:
        """A ticket made from `fields` (`{ticket, audit}`), or the 422 its validation errors answer."""
        comment = fields.get("comment") or ({"body": fields["description"]} if fields.get("description") else None)
        details = self._validate(fields)
        if not comment or not comment.get("body"):
            details["description"] = [{"description": "Description: cannot be blank", "error": "BlankValue"}]
        requester_id = self._resolve_requester(fields)
        if requester_id is None:
            details["requester"] = [{"description": "Requester: is invalid", "error": "InvalidValue"}]
        if details:
            return self._invalid(details)
        assert comment and requester_id is not None
        tid = next(self._ticket_ids)
        public = comment.get("public", True) is not False
        ticket = self._new_ticket(
            tid, {**fields, "description": comment["body"], "is_public": public}, requester_id, now()
        )
        self.tickets[tid] = ticket
        created = ("subject", "requester_id", "priority", "type", "status", "organization_id")
        audit = audit_record(ticket, {k: ticket[k] for k in created}, comment, "Create", self._event_ids)
        self.webhooks.emit(webhook_payloads.zendesk_ticket("created", ticket, {"current": {"status": ticket["status"]}}))
        return {"ticket": ticket, "audit": audit}

    async def update_ticket(self, request: web.Request) -> web.StreamResponse:
        """`PUT /tickets/{id}.json` → 200 `{ticket, audit}`; closed tickets cannot change."""
        ticket = self.tickets.get(record_id(request, ".json") or -1)
        if not ticket:
            return self.not_found()
        try:
            fields = (await request.json())["ticket"]
        except (ValueError, KeyError, TypeError):
            return json_response({"error": "InvalidEndpoint", "description": "ticket parameter is required"}, 400)
        details = self._validate(fields)
        if ticket["status"] == "closed":
            details["status"] = [{"description": "Status: closed prevents ticket update", "error": "InvalidValue"}]
        if details:
            return self._invalid(details)
        updatable = ("status", "priority", "subject", "type", "tags", "external_id")
        changes = {k: fields[k] for k in updatable if k in fields and fields[k] != ticket.get(k)}
        if fields.get("custom_fields"):  # entries by id replace the ticket's own
            given = {str(e.get("id")): e for e in fields["custom_fields"] if isinstance(e, dict)}
            kept = [e for e in ticket["custom_fields"] if str(e.get("id")) not in given]
            changes["custom_fields"] = kept + list(given.values())
        previous = {k: ticket.get(k) for k in changes}
        ticket.update(changes)
        if "subject" in changes:
            ticket["raw_subject"] = changes["subject"]
        comment = fields.get("comment")
        if comment and comment.get("public", True) is not False:
            ticket["is_public"] = True  # true when any comment is public
        ticket["updated_at"] = now()
        audit = audit_record(ticket, changes, comment, "Change", self._event_ids, previous)
        for event in webhook_payloads.zendesk_changes(ticket, previous, comment):
            self.webhooks.emit(event)
        return json_response({"ticket": ticket, "audit": audit})
