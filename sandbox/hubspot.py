"""HubSpot CRM emulator: contacts, deals, tickets and notes with associations, search, batch read and pipelines.

One handler set on both path families: legacy `/crm/v3/objects/...` and date-versioned `/crm/objects/{YYYY-MM}/...`
(https://developers.hubspot.com/docs/api-reference/latest/overview); from 2026-09 writes also enforce the portal's
validation rules (https://developers.hubspot.com/changelog/crm-api-write-validation-enforcement).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from sandbox import hubspot_batch as batches
from sandbox import hubspot_search as search
from sandbox import webhook_payloads
from sandbox.core import Emulator, bearer_token, json_response
from sandbox.oauth import Wire, hubspot_error, hubspot_expired
from sandbox.hubspot_schema import ASSOCIATION_TYPES, KIND_PATTERN, KINDS, PIPELINES, pipeline_view
from sandbox.hubspot_wire import (
    MSG_AUTH,
    MSG_SCOPES,
    api_version,
    bad_request,
    enforces_rules,
    error_body,
    instant,
    property_errors,
    query_list,
)

MAX_BATCH = 100
DATE_VERSION = r"\d{4}-(?:0[1-9]|1[0-2])"  # /crm/objects/2026-09/contacts
DAILY_LIMIT, WINDOW_LIMIT, WINDOW_MS = 250_000, 190, 10_000  # a Professional portal's private-app limits


class HubSpotEmulator(Emulator):
    """Answers as `https://api.hubapi.com` does for the CRM object calls the connector makes, v3 or dated."""

    name = "hubspot"
    oauth_wire = Wire("/oauth/authorize", "/oauth/v1/token", rotates=False, expires_in=1800, error=hubspot_error,
                      expired=hubspot_expired)

    def ticket_ids(self) -> list[str]:
        """The tickets held now."""
        return [str(i) for i in self.objects["tickets"]]

    def reset(self) -> None:
        """Seed: Ahmed (contact 12345) with deals 2001 and 2002, open ticket 3001 and closed 3000; two more contacts."""
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.links: list[tuple[tuple[str, str], tuple[str, str]]] = []  # undirected, in creation order
        self._ids = {"contacts": itertools.count(12400), "deals": itertools.count(2100),
                     "tickets": itertools.count(3002), "notes": itertools.count(5001)}  # fmt: skip
        self.calls = 0
        self.token_expired = False
        self.revoked_scopes: set[str] = set()
        self.api_versions: Counter[str] = Counter()  # which path family (v3 or a date version) each call used
        # Admin-configured conditional required properties: (kind, property, when-property, when-value).
        self.required_when: list[tuple[str, str, str, str]] = []
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
        closed = self._seed("tickets", "3000", "2025-10-02T08:00:00.000Z", subject="Invoice copy requested",
                            content="Caller asked for a copy of the September invoice.",
                            hs_pipeline="0", hs_pipeline_stage="4", hs_ticket_priority="LOW",
                            hs_ticket_category="BILLING_ISSUE", source_type="PHONE")  # fmt: skip
        closed["updatedAt"] = closed["properties"]["hs_lastmodifieddate"] = "2025-10-02T09:10:00.000Z"
        for deal in ("2001", "2002"):
            self._link(("contacts", "12345"), ("deals", deal))
        for seeded in ("3001", "3000"):
            self._link(("tickets", seeded), ("contacts", "12345"))

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
        return not any(kind in request.path.split("/") for kind in self.revoked_scopes)

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
        """`expire_token` (401), `revoke_scope` {object_type} (403), `api_versions` (calls per path family), and
        `require_property` {object_type, property, when: {name: value}}: a portal rule 2026-09 writes must meet."""
        if action == "api_versions":
            return dict(self.api_versions)
        if action == "require_property" and payload.get("object_type") in KINDS:
            (when, value), = (payload.get("when") or {}).items()
            self.required_when.append((payload["object_type"], str(payload["property"]), str(when), str(value)))
            return None
        if action == "expire_token":
            self.token_expired = True
            return None
        if action == "revoke_scope" and payload.get("object_type") in KINDS:
            self.revoked_scopes.add(payload["object_type"])
            return None
        return super().control(action, payload)

    def add_routes(self, app: web.Application) -> None:
        """Both path families to one handler set; search and batch read before `{id}` so they win."""
        for family in (lambda api: f"/crm/v3/{api}", lambda api: f"/crm/{api}/{{version:{DATE_VERSION}}}"):
            base = family("objects") + f"/{{kind:{KIND_PATTERN}}}"
            for slash in ("", "/"):  # HubSpot takes these collection paths with a trailing slash too
                app.router.add_post(f"{base}/search{slash}", self._guard(self.search))
                app.router.add_post(f"{base}/batch/read{slash}", self._guard(self.batch_read))
                app.router.add_post(f"{base}/batch/create{slash}", self._guard(partial(batches.create, self)))
                app.router.add_post(f"{base}{slash}", self._guard(self.create))
            app.router.add_get(base, self._guard(self.list))
            app.router.add_get(f"{base}/{{id}}", self._guard(self.read))
            app.router.add_patch(f"{base}/{{id}}", self._guard(self.update))
            app.router.add_get(family("properties") + f"/{{kind:{KIND_PATTERN}}}", self._guard(self.properties))
            pipelines = family("pipelines") + f"/{{kind:{'|'.join(PIPELINES)}}}"
            app.router.add_get(pipelines, self._guard(self.pipelines))
            app.router.add_get(f"{pipelines}/{{pipeline}}", self._guard(self.pipelines))

    def _guard(self, handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        """Count the call's API version (a BadInput raised anywhere in a handler is the middleware's 400)."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            """The handler's answer."""
            self.api_versions[api_version(request)] += 1
            return await handler(request)

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

    async def properties(self, request: web.Request) -> web.StreamResponse:
        """`GET .../properties/{kind}`: `{"results": [Property]}`, one per property the portal has (name and type)."""
        spec = KINDS[request.match_info["kind"]]
        names = sorted(spec.writable | spec.read_only)
        results = [{"name": n, "label": n, "type": "enumeration" if n in spec.enums else "string",
                    "fieldType": "select" if n in spec.enums else "text", "calculated": n in spec.read_only,
                    "hubspotDefined": n not in ("customer_tier", "order_id"), "archived": False} for n in names]
        return json_response({"results": results})

    async def list(self, request: web.Request) -> web.StreamResponse:
        """`GET /crm/v3/objects/{kind}?limit=n`: the first page (readiness's credential check)."""
        kind = request.match_info["kind"]
        limit = int(request.query.get("limit", "10")) if request.query.get("limit", "10").isdigit() else 10
        records = [r for r in self.objects[kind].values() if not r["archived"]][:limit]
        return json_response({"results": [self._view(kind, r, None) for r in records]})

    async def read(self, request: web.Request) -> web.StreamResponse:
        """`GET .../objects/{kind}/{id}?properties=...&associations=...`; a missing object is an empty 404."""
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

    async def pipelines(self, request: web.Request) -> web.StreamResponse:
        """`GET .../pipelines/{kind}` → `{results: [...]}`, or `.../{pipelineId}` → one pipeline (404 if unknown)."""
        views = {pid: pipeline_view(pid, label, stages) for pid, label, stages in PIPELINES[request.match_info["kind"]]}
        wanted = request.match_info.get("pipeline")
        if wanted is None:
            return json_response({"results": list(views.values())})
        if wanted not in views:
            return json_response(error_body(f"Unable to find pipeline {wanted}", "OBJECT_NOT_FOUND"), status=404)
        return json_response(views[wanted])

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

    async def search(self, request: web.Request) -> web.StreamResponse:
        """`POST .../objects/{kind}/search` with HubSpot's semantics (sandbox/hubspot_search.py); `paging.next.after`."""
        kind = request.match_info["kind"]
        body = await self._body(request)
        records = list(self.objects[kind].values())
        # `associations.{type}` EQ an id: records associated with it (the Search guide's "filter by associations").
        for group in body.get("filterGroups") or []:
            for item in list(group.get("filters") or []) if isinstance(group, dict) else []:
                name = item.get("propertyName", "") if isinstance(item, dict) else ""
                if name.startswith("associations.") and item.get("operator", "EQ") == "EQ":
                    to_kind = name.removeprefix("associations.") + "s"
                    linked = set(self._associated(to_kind, str(item.get("value")), kind)) if to_kind in self.objects else set()
                    records = [r for r in records if r["id"] in linked]
                    group["filters"].remove(item)
        try:
            total, hits, after = search.run(records, body, KINDS[kind].searchable)
        except search.SearchError as exc:
            raise bad_request(str(exc)) from None
        names = body.get("properties") or list(KINDS[kind].defaults)
        answer: dict[str, Any] = {"total": total, "results": [self._view(kind, r, names) for r in hits]}
        if after:
            answer["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return json_response(answer)

    # --- writing ----------------------------------------------------------------------------------

    def _properties(
        self, kind: str, raw: Any, version: str, current: dict[str, Any] | None = None
    ) -> dict[str, str | None]:
        """Validate a `properties` map (values stored as strings; "" clears); every problem in one 400.

        `current` is the stored object on an update (None on a create); from 2026-09 the portal's rules apply too.
        """
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
        if current is None:
            for name in spec.required:
                if not values.get(name):
                    issues.append((name, "", "MISSING_REQUIRED_PROPERTY", f"{name} is required"))
        if enforces_rules(version):
            merged = {**(current or {}), **values}
            for rule_kind, name, when, value in self.required_when:
                if rule_kind == kind and str(merged.get(when)) == value and not merged.get(name):
                    message = f"{name} is required when {when} is {value}"
                    issues.append((name, "", "MISSING_REQUIRED_PROPERTY", message))
        if issues:
            raise property_errors(issues, version)
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

    def make(self, kind: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        """One object from a create body (its properties and associations checked first), stored and announced."""
        values = self._properties(kind, body.get("properties"), version)
        targets = self._associations(kind, body.get("associations"))
        oid = str(next(self._ids[kind]))
        record = self._seed(kind, oid, instant(), **{k: v for k, v in values.items() if v is not None})
        for target in targets:
            self._link((kind, oid), target)
        self.webhooks.emit(webhook_payloads.hubspot(f"{kind.removesuffix('s')}.creation", oid))
        return record

    async def create(self, request: web.Request) -> web.StreamResponse:
        """`POST .../objects/{kind}` `{properties, associations}` → 201 with every stored property."""
        kind, version = request.match_info["kind"], api_version(request)
        record = self.make(kind, await self._body(request), version)
        oid = record["id"]
        prefix = "/crm/v3/objects" if version == "v3" else f"/crm/objects/{version}"
        location = f"https://api.hubapi.com{prefix}/{kind}/{oid}"
        return json_response(self._view(kind, record, None), status=201, headers={"Location": location})

    async def update(self, request: web.Request) -> web.StreamResponse:
        """`PATCH .../objects/{kind}/{id}` `{properties}` → 200 with every stored property."""
        kind, record, problem = self._lookup(request)
        if problem:
            return problem
        if record is None:
            return json_response(error_body("resource not found"), status=404)
        raw = (await self._body(request)).get("properties")
        values = self._properties(kind, raw, api_version(request), record["properties"])
        props = record["properties"]
        for name, value in values.items():
            if value is None:
                props.pop(name, None)
            else:
                props[name] = value
        record["updatedAt"] = props[KINDS[kind].modified] = instant()
        self.webhooks.emit(webhook_payloads.hubspot(f"{kind.removesuffix('s')}.propertyChange", record["id"], values))
        return json_response(self._view(kind, record, None))
