"""HubSpot CRM API v3 emulator: contacts, deals, tickets and notes as objects with associations, search, batch read."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web

from sandbox.core import Emulator, bearer_token, json_response

MAX_FILTER_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18  # HubSpot's search limits
DEFAULT_LIMIT, MAX_LIMIT, MAX_BATCH = 10, 200, 100
DAILY_LIMIT, WINDOW_LIMIT, WINDOW_MS = 250_000, 190, 10_000  # a Professional portal's private-app limits
MSG_AUTH = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
MSG_SCOPES = (
    "This app hasn't been granted all required scopes to make this call. "
    "Read more about required scopes here: https://developers.hubspot.com/scopes."
)


def instant(moment: datetime | None = None) -> str:
    """HubSpot's timestamps: UTC ISO 8601 with milliseconds, e.g. 2025-11-18T10:30:00.000Z."""
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_body(message: str, category: str | None = None, **extra: Any) -> dict[str, Any]:
    """HubSpot's error envelope: status, message, correlationId, then errors/context/links, then category."""
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), **extra}
    if category:
        body["category"] = category
    return body


@dataclass(frozen=True)
class Kind:
    """What the emulator knows of one object type: its properties, defaults, required and enumerated values."""

    singular: str  # in association type names, e.g. ticket_to_contact
    writable: frozenset[str]
    defaults: tuple[str, ...]  # returned when a read names no properties
    created: str
    modified: str
    required: tuple[str, ...] = ()
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    searchable: tuple[str, ...] = ()  # what a free-text `query` looks in

    @property
    def read_only(self) -> frozenset[str]:
        """Properties HubSpot calculates."""
        return frozenset({"hs_object_id", self.created, self.modified})

    @property
    def always(self) -> tuple[str, ...]:
        """Properties every read returns, named or not."""
        return (self.created, "hs_object_id", self.modified)


KINDS: dict[str, Kind] = {
    "contacts": Kind(
        "contact",
        frozenset({"firstname", "lastname", "email", "phone", "mobilephone", "company", "jobtitle", "lifecyclestage",
                   "hs_lead_status", "customer_tier"}),
        ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
        "createdate",
        "lastmodifieddate",
        enums={"lifecyclestage": ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                                  "customer", "evangelist", "other")},
        searchable=("firstname", "lastname", "email", "phone", "mobilephone", "company"),
    ),
    "deals": Kind(
        "deal",
        frozenset({"dealname", "dealstage", "amount", "pipeline", "closedate", "hubspot_owner_id"}),
        ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
         "pipeline"),
        "createdate",
        "hs_lastmodifieddate",
        enums={"dealstage": ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                             "contractsent", "closedwon", "closedlost")},
        searchable=("dealname",),
    ),
    "tickets": Kind(
        "ticket",
        frozenset({"subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "hs_ticket_category",
                   "source_type", "hubspot_owner_id"}),
        ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline", "hs_pipeline_stage",
         "hs_ticket_category", "hs_ticket_priority", "subject"),
        "createdate",
        "hs_lastmodifieddate",
        required=("subject", "hs_pipeline", "hs_pipeline_stage"),
        enums={
            "hs_pipeline": ("0",),
            "hs_pipeline_stage": ("1", "2", "3", "4"),  # New, Waiting on contact, Waiting on us, Closed
            "hs_ticket_priority": ("LOW", "MEDIUM", "HIGH", "URGENT"),
            "hs_ticket_category": ("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"),
            "source_type": ("CHAT", "EMAIL", "FORM", "PHONE"),
        },
        searchable=("subject", "content"),
    ),
    "notes": Kind(
        "note",
        frozenset({"hs_note_body", "hs_timestamp", "hubspot_owner_id"}),
        ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
        "hs_createdate",
        "hs_lastmodifieddate",
        required=("hs_timestamp",),
        searchable=("hs_note_body",),
    ),
}
KIND_PATTERN = "|".join(KINDS)

# HUBSPOT_DEFINED association type ids: (from, to).
ASSOCIATION_TYPES: dict[int, tuple[str, str]] = {
    3: ("deals", "contacts"),
    4: ("contacts", "deals"),
    15: ("contacts", "tickets"),
    16: ("tickets", "contacts"),
    227: ("tickets", "notes"),
    228: ("notes", "tickets"),
}


def _ordered(value: str) -> tuple[int, float | str]:
    """A value for GT/LT comparisons: numbers as numbers, other text case-folded."""
    try:
        return 0, float(value)
    except ValueError:
        return 1, value.casefold()


# Search operators over a stored value (None when unset) and the filter; strings compare case-insensitively.
OPERATORS: dict[str, Callable[[str | None, dict[str, Any]], bool]] = {
    "EQ": lambda v, f: v is not None and v.casefold() == str(f.get("value", "")).casefold(),
    "NEQ": lambda v, f: v is None or v.casefold() != str(f.get("value", "")).casefold(),
    # "values must be lowercase": HubSpot lowercases the stored value, not the listed ones.
    "IN": lambda v, f: v is not None and v.lower() in {str(x) for x in f.get("values") or []},
    "NOT_IN": lambda v, f: v is None or v.lower() not in {str(x) for x in f.get("values") or []},
    "HAS_PROPERTY": lambda v, f: v not in (None, ""),
    "NOT_HAS_PROPERTY": lambda v, f: v in (None, ""),
    "CONTAINS_TOKEN": lambda v, f: v is not None and str(f.get("value", "")).strip("*").casefold() in v.casefold(),
    "NOT_CONTAINS_TOKEN": lambda v, f: v is None or str(f.get("value", "")).strip("*").casefold() not in v.casefold(),
    "GT": lambda v, f: v is not None and _ordered(v) > _ordered(str(f.get("value", ""))),
    "GTE": lambda v, f: v is not None and _ordered(v) >= _ordered(str(f.get("value", ""))),
    "LT": lambda v, f: v is not None and _ordered(v) < _ordered(str(f.get("value", ""))),
    "LTE": lambda v, f: v is not None and _ordered(v) <= _ordered(str(f.get("value", ""))),
    "BETWEEN": lambda v, f: v is not None
    and _ordered(str(f.get("value", ""))) <= _ordered(v) <= _ordered(str(f.get("highValue", ""))),
}


def holds(props: dict[str, Any], item: dict[str, Any]) -> bool:
    """Whether one search filter holds for an object's properties."""
    return OPERATORS[item["operator"]](props.get(item["propertyName"]), item)


class BadInput(Exception):
    """A request HubSpot answers with a 400; carries the answer."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("bad input")
        self.response = response


def bad_request(message: str, category: str | None = "VALIDATION_ERROR", **extra: Any) -> BadInput:
    """A 400 in HubSpot's envelope."""
    return BadInput(json_response(error_body(message, category, **extra), status=400))


def property_errors(issues: list[tuple[str, str, str, str]]) -> BadInput:
    """HubSpot's `Property values were not valid: [...]` 400, one entry per (name, value, code, message)."""
    embedded = [
        {"isValid": False, "message": msg, "error": code, "name": name, "localizedErrorMessage": msg,
         "propertyValue": value}
        for name, value, code, msg in issues
    ]  # fmt: skip
    errors = [{"message": msg, "code": code, "context": {"propertyName": [name]}} for name, _, code, msg in issues]
    return bad_request("Property values were not valid: " + orjson.dumps(embedded).decode(), errors=errors)


def query_list(request: web.Request, name: str) -> list[str] | None:
    """A query list as HubSpot reads it: comma-separated, repeated, or both; None when absent."""
    values = request.query.getall(name, [])
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class HubSpotEmulator(Emulator):
    """Answers as `https://api.hubapi.com` does for the CRM v3 object calls the connector makes."""

    name = "hubspot"

    def reset(self) -> None:
        """Seed: Ahmed (contact 12345) with deals 2001 and 2002, ticket 3001; two more contacts."""
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.links: list[tuple[tuple[str, str], tuple[str, str]]] = []  # undirected, in creation order
        self._ids = {"contacts": itertools.count(12400), "deals": itertools.count(2100),
                     "tickets": itertools.count(3002), "notes": itertools.count(5001)}  # fmt: skip
        self.calls = 0
        self.token_expired = False
        self.revoked_scopes: set[str] = set()
        joined = "2023-01-15T09:00:00.000Z"
        self._seed("contacts", "12345", joined, firstname="Ahmed", lastname="Al-Mansoori", email="ahmed@example.ae",
                   phone="+971501234567", company="Al-Mansoori Trading", lifecyclestage="customer",
                   jobtitle="Operations Director", customer_tier="Enterprise")  # fmt: skip
        self._seed("contacts", "12346", joined, firstname="Layla", lastname="Hassan", email="layla@example.com",
                   phone="(415) 555-2671", lifecyclestage="lead")  # fmt: skip
        self._seed("contacts", "12347", joined, firstname="Omar", lastname="Khalid", email="omar@example.com",
                   mobilephone="+44 7700 900123", lifecyclestage="opportunity")  # fmt: skip
        self._seed("deals", "2001", "2025-09-01T08:00:00.000Z", dealname="Enterprise renewal", dealstage="contractsent",
                   amount="48000", pipeline="default", closedate="2025-12-31T00:00:00.000Z")  # fmt: skip
        self._seed("deals", "2002", "2025-03-10T08:00:00.000Z", dealname="Support add-on", dealstage="closedwon",
                   amount="12000.50", pipeline="default", closedate="2025-06-30T00:00:00.000Z")  # fmt: skip
        ticket = self._seed("tickets", "3001", "2025-11-18T10:30:00.000Z", subject="Product not working",
                            content="Customer reports the device stopped working after the latest update.",
                            hs_pipeline="0", hs_pipeline_stage="1", hs_ticket_priority="HIGH",
                            hs_ticket_category="PRODUCT_ISSUE", source_type="PHONE")  # fmt: skip
        ticket["updatedAt"] = ticket["properties"]["hs_lastmodifieddate"] = "2025-11-18T11:45:00.000Z"
        for deal in ("2001", "2002"):
            self._link(("contacts", "12345"), ("deals", deal))
        self._link(("tickets", "3001"), ("contacts", "12345"))

    def _seed(self, kind: str, oid: str, stamp: str, **props: str) -> dict[str, Any]:
        """Store one object with its calculated properties."""
        spec = KINDS[kind]
        record = {
            "id": oid,
            "properties": {**props, "hs_object_id": oid, spec.created: stamp, spec.modified: stamp},
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }
        self.objects[kind][oid] = record
        return record

    def _link(self, one: tuple[str, str], other: tuple[str, str]) -> None:
        """Associate two objects (either direction reads it)."""
        if (one, other) not in self.links and (other, one) not in self.links:
            self.links.append((one, other))

    def _associated(self, kind: str, oid: str, to_kind: str) -> list[str]:
        """Ids of `to_kind` objects associated with one object."""
        ids = []
        for a, b in self.links:
            for this, that in ((a, b), (b, a)):
                if this == (kind, oid) and that[0] == to_kind and that[1] in self.objects[to_kind]:
                    ids.append(that[1])
        return ids

    # --- wire behaviour ---------------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> bool:
        """A Bearer token (private app or OAuth); `invalid` is refused, as are switched-off tokens and scopes."""
        token = bearer_token(request)
        if token in (None, "invalid") or self.token_expired:
            return False
        return not any(f"/objects/{kind}" in request.path for kind in self.revoked_scopes)

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        """401 INVALID_AUTHENTICATION / EXPIRED_AUTHENTICATION, or 403 MISSING_SCOPES."""
        if bearer_token(request) in (None, "invalid"):
            return json_response(error_body(MSG_AUTH, "INVALID_AUTHENTICATION"), status=401)
        if self.token_expired:
            message = "The OAuth token used to make this call expired 0 second(s) ago."
            return json_response(error_body(message, "EXPIRED_AUTHENTICATION"), status=401)
        scopes = sorted(f"crm.objects.{kind}.read" for kind in self.revoked_scopes)
        errors = [{"message": "One or more of the following scopes are required.",
                   "context": {"requiredGranularScopes": scopes}}]  # fmt: skip
        links = {"scopes": "https://developers.hubspot.com/scopes"}
        body = error_body(MSG_SCOPES, "MISSING_SCOPES", errors=errors, links=links)
        return json_response(body, status=403)

    def not_found(self) -> web.StreamResponse:
        """An unknown path or a PATCH of a missing object: HubSpot's 404 without a category."""
        return json_response(error_body("resource not found"), status=404)

    def rate_limited(self, retry_after: int) -> web.StreamResponse:
        """HubSpot's 429 body and X-HubSpot-RateLimit-* headers; the fault's retry_after sets the window."""
        # No Retry-After (HubSpot does not promise one): the window header says how long the limit lasts.
        body = error_body("You have reached your ten_secondly_rolling limit.", errorType="RATE_LIMIT",
                          policyName="TEN_SECONDLY_ROLLING", groupName="api-calls-private-app")  # fmt: skip
        headers = {**self.rate_limit_headers(), "X-HubSpot-RateLimit-Remaining": "0",
                   "X-HubSpot-RateLimit-Interval-Milliseconds": str(retry_after * 1000)}  # fmt: skip
        return json_response(body, status=429, headers=headers)

    def server_error(self, status: int) -> web.StreamResponse:
        """A 5xx in HubSpot's error envelope."""
        return json_response(error_body("internal error"), status=status)

    def rate_limit_headers(self) -> dict[str, str]:
        """A private app's 10-second and daily limits, counting down with each answer."""
        self.calls += 1
        return {
            "X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, DAILY_LIMIT - self.calls)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(WINDOW_MS),
            "X-HubSpot-RateLimit-Max": str(WINDOW_LIMIT),
            "X-HubSpot-RateLimit-Remaining": str(WINDOW_LIMIT - 1 - (self.calls - 1) % WINDOW_LIMIT),
        }

    def control(self, action: str, payload: dict[str, Any]) -> Any:
        """`expire_token`: every token answers 401 EXPIRED_AUTHENTICATION; `revoke_scope` {object_type}: 403."""
        if action == "expire_token":
            self.token_expired = True
            return None
        if action == "revoke_scope" and payload.get("object_type") in KINDS:
            self.revoked_scopes.add(payload["object_type"])
            return None
        return super().control(action, payload)

    def add_routes(self, app: web.Application) -> None:
        """Object paths for every emulated type; search and batch read before `{id}` so they win."""
        base = f"/crm/v3/objects/{{kind:{KIND_PATTERN}}}"
        for slash in ("", "/"):  # HubSpot takes these collection paths with a trailing slash too
            app.router.add_post(f"{base}/search{slash}", self._guard(self.search))
            app.router.add_post(f"{base}/batch/read{slash}", self._guard(self.batch_read))
            app.router.add_post(f"{base}{slash}", self._guard(self.create))
        app.router.add_get(base, self._guard(self.list))
        app.router.add_get(f"{base}/{{id}}", self._guard(self.read))
        app.router.add_patch(f"{base}/{{id}}", self._guard(self.update))

    @staticmethod
    def _guard(handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        """Turn a BadInput raised anywhere in a handler into its 400."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            """The handler's answer, or the 400 it raised."""
            try:
                return await handler(request)
            except BadInput as bad:
                return bad.response

        return wrapped

    # --- reading ----------------------------------------------------------------------------------

    def _view(self, kind: str, record: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
        """SimplePublicObject: named properties (unset ones null, unknown ones left out) plus the calculated ones."""
        spec = KINDS[kind]
        stored = record["properties"]
        if names is None:
            props = dict(stored)
        else:
            known = spec.writable | spec.read_only
            props = {n: stored.get(n) for n in dict.fromkeys([*names, *spec.always]) if n in known}
        return {
            "id": record["id"],
            "properties": dict(sorted(props.items())),
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": record["archived"],
        }

    def _lookup(self, request: web.Request) -> tuple[str, dict[str, Any] | None, web.Response | None]:
        """The object in the path, or HubSpot's 404 (a non-numeric id says so)."""
        kind, oid = request.match_info["kind"], request.match_info["id"]
        if not oid.isdigit():
            message = "Object not found.  objectId are usually numeric."  # two spaces, as HubSpot writes it
            body = error_body(message, "OBJECT_NOT_FOUND", context={"id": [oid]})
            return kind, None, json_response(body, status=404)
        record = self.objects[kind].get(oid)
        return kind, record, None

    async def list(self, request: web.Request) -> web.StreamResponse:
        """`GET /crm/v3/objects/{kind}?limit=n`: the first page (readiness's credential check)."""
        kind = request.match_info["kind"]
        limit = int(request.query.get("limit", "10")) if request.query.get("limit", "10").isdigit() else 10
        records = [r for r in self.objects[kind].values() if not r["archived"]][:limit]
        return json_response({"results": [self._view(kind, r, None) for r in records]})

    async def read(self, request: web.Request) -> web.StreamResponse:
        """`GET /crm/v3/objects/{kind}/{id}?properties=...&associations=...`; a missing object is an empty 404."""
        kind, record, problem = self._lookup(request)
        if problem:
            return problem
        if record is None:
            return web.Response(status=404)
        view = self._view(kind, record, query_list(request, "properties") or list(KINDS[kind].defaults))
        associations = {}
        for to_kind in query_list(request, "associations") or []:
            ids = self._associated(kind, record["id"], to_kind) if to_kind in KINDS else []
            if ids:
                name = f"{KINDS[kind].singular}_to_{KINDS[to_kind].singular}"
                associations[to_kind] = {"results": [{"id": i, "type": name} for i in ids]}
        if associations:  # absent, not empty, when there are none
            view["associations"] = associations
        return json_response(view)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        """The JSON object body, or HubSpot's 400 for unreadable input."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise bad_request("Invalid input JSON on line 1, column 1: Unexpected character", None) from None
        if not isinstance(body, dict):
            raise bad_request("Invalid input JSON: the request body must be a JSON object")
        return body

    async def batch_read(self, request: web.Request) -> web.StreamResponse:
        """`POST .../batch/read` → 200 COMPLETE, or 207 with `errors` naming the ids that do not exist."""
        kind = request.match_info["kind"]
        body = await self._body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and "id" in i for i in inputs):
            raise bad_request("Invalid input JSON: some of required attributes are not set [inputs]")
        if len(inputs) > MAX_BATCH:
            raise bad_request(f"Too many inputs ({len(inputs)}); the limit is {MAX_BATCH}")
        started = instant()
        names = body.get("properties") or list(KINDS[kind].defaults)
        found, missing = [], []
        for oid in dict.fromkeys(str(i["id"]) for i in inputs):
            record = self.objects[kind].get(oid)
            if record:
                found.append(self._view(kind, record, names))
            else:
                missing.append(oid)
        answer: dict[str, Any] = {
            "status": "COMPLETE", "results": found, "startedAt": started, "completedAt": instant()
        }  # fmt: skip
        if not missing:
            return json_response(answer)
        what = KINDS[kind].singular.upper()
        answer["numErrors"] = 1
        answer["errors"] = [{
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {what} objects, they may be deleted or not exist. "
                       "Check that ids are valid.",
            "context": {"ids": missing},
        }]  # fmt: skip
        return json_response(answer, status=207)

    def _matches(self, kind: str, record: dict[str, Any], groups: list[list[dict[str, Any]]], query: str) -> bool:
        """Any group whose filters all hold (no groups: everything), and the free-text query if given."""
        props = record["properties"]
        if groups and not any(all(holds(props, f) for f in group) for group in groups):
            return False
        return not query or any(query.casefold() in str(props.get(p) or "").casefold() for p in KINDS[kind].searchable)

    @staticmethod
    def _filter_groups(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """The filterGroups, checked against HubSpot's limits and operators."""
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("filters"), list) for g in groups
        ):
            raise bad_request("Invalid input JSON: filterGroups must be a list of {filters: [...]}")
        parsed = [g["filters"] for g in groups]
        total = sum(len(f) for f in parsed)
        widest = max((len(f) for f in parsed), default=0)
        if len(parsed) > MAX_FILTER_GROUPS or total > MAX_FILTERS or widest > MAX_FILTERS_PER_GROUP:
            raise bad_request(
                f"Too many filters: up to {MAX_FILTER_GROUPS} filterGroups with up to {MAX_FILTERS_PER_GROUP} "
                f"filters each, {MAX_FILTERS} filters in all"
            )
        for item in (f for group in parsed for f in group):
            if not isinstance(item, dict) or not isinstance(item.get("propertyName"), str):
                raise bad_request("Invalid input JSON: each filter needs a propertyName")
            if item.get("operator") not in OPERATORS:
                raise bad_request(f"Invalid input JSON: operator must be one of {', '.join(OPERATORS)}")
        return parsed

    async def search(self, request: web.Request) -> web.StreamResponse:
        """`POST .../search`: groups OR, filters AND; `{total, results, paging.next.after}` sorted by id."""
        kind = request.match_info["kind"]
        body = await self._body(request)
        groups = self._filter_groups(body)
        after, limit = str(body.get("after") or "0"), body.get("limit", DEFAULT_LIMIT)
        if not after.isdigit() or isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise bad_request("Invalid input JSON: after must be a number as a string and limit a non-negative integer")
        limit, offset = min(limit, MAX_LIMIT), int(after)
        query = str(body.get("query") or "")
        hits = [r for r in self.objects[kind].values() if self._matches(kind, r, groups, query)]
        hits.sort(key=lambda r: int(r["id"]))
        names = body.get("properties") or list(KINDS[kind].defaults)
        answer: dict[str, Any] = {
            "total": len(hits),
            "results": [self._view(kind, r, names) for r in hits[offset : offset + limit]],
        }
        if limit and offset + limit < len(hits):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return json_response(answer)

    # --- writing ----------------------------------------------------------------------------------

    def _properties(self, kind: str, raw: Any, *, creating: bool) -> dict[str, str | None]:
        """Validate a `properties` map (values stored as strings; "" clears); every problem in one 400."""
        if not isinstance(raw, dict):
            raise bad_request("Invalid input JSON: some of required attributes are not set [properties]")
        spec = KINDS[kind]
        values: dict[str, str | None] = {}
        issues: list[tuple[str, str, str, str]] = []
        for name, value in raw.items():
            if value is None:
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if name in spec.read_only:
                message = f'"{name}" is a calculated property; its value cannot be set.'
                issues.append((name, text, "READ_ONLY_VALUE", message))
            elif name not in spec.writable:
                issues.append((name, text, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            elif text and name in spec.enums and text not in spec.enums[name]:
                allowed = ", ".join(spec.enums[name])
                issues.append((name, text, "INVALID_OPTION", f"{text} was not one of the allowed options: [{allowed}]"))
            else:
                values[name] = text or None
        if creating:
            for name in spec.required:
                if not values.get(name):
                    issues.append((name, "", "MISSING_REQUIRED_PROPERTY", f"{name} is required"))
        if issues:
            raise property_errors(issues)
        return values

    def _associations(self, kind: str, raw: Any) -> list[tuple[str, str]]:
        """The `associations` of a create body: each `to.id` must exist and each type fit this object type."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad_request("Invalid input JSON: associations must be a list")
        targets = []
        for item in raw:
            to_id = str(((item or {}).get("to") or {}).get("id", "")) if isinstance(item, dict) else ""
            types = item.get("types") if isinstance(item, dict) else None
            if not to_id or not isinstance(types, list) or not types:
                raise bad_request("Invalid input JSON: each association needs to.id and types")
            for spec in types:
                pair = ASSOCIATION_TYPES.get(spec.get("associationTypeId")) if isinstance(spec, dict) else None
                if not pair or spec.get("associationCategory") != "HUBSPOT_DEFINED" or pair[0] != kind:
                    raise bad_request(f"invalid association type {spec!r} for {kind}")
                if to_id not in self.objects[pair[1]]:
                    what = KINDS[pair[1]].singular.upper()
                    context = {"INVALID_OBJECT_IDS": [f"{what}={to_id} is not valid"], "objectId": [to_id]}
                    raise bad_request("One or more associations are invalid", context=context)
                targets.append((pair[1], to_id))
        return targets

    async def create(self, request: web.Request) -> web.StreamResponse:
        """`POST /crm/v3/objects/{kind}` `{properties, associations}` → 201 with every stored property."""
        kind = request.match_info["kind"]
        body = await self._body(request)
        values = self._properties(kind, body.get("properties"), creating=True)
        targets = self._associations(kind, body.get("associations"))
        oid = str(next(self._ids[kind]))
        record = self._seed(kind, oid, instant(), **{k: v for k, v in values.items() if v is not None})
        for target in targets:
            self._link((kind, oid), target)
        location = f"https://api.hubapi.com/crm/v3/objects/{kind}/{oid}"
        return json_response(self._view(kind, record, None), status=201, headers={"Location": location})

    async def update(self, request: web.Request) -> web.StreamResponse:
        """`PATCH /crm/v3/objects/{kind}/{id}` `{properties}` → 200 with every stored property."""
        kind, record, problem = self._lookup(request)
        if problem:
            return problem
        if record is None:
            return json_response(error_body("resource not found"), status=404)
        values = self._properties(kind, (await self._body(request)).get("properties"), creating=False)
        props = record["properties"]
        for name, value in values.items():
            if value is None:
                props.pop(name, None)
            else:
                props[name] = value
        record["updatedAt"] = props[KINDS[kind].modified] = instant()
        return json_response(self._view(kind, record, None))
