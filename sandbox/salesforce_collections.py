"""Salesforce sObject Collections for the emulator: create up to 200 records in one call, retrieve many by id.

POST /composite/sobjects `{"allOrNone", "records": [{"attributes": {"type"}, ...}]}` answers 200 with one
`{"id","success","errors":[{"statusCode","message","fields"}]}` per record, in order; allOrNone rolls every
record back when one fails. GET /composite/sobjects/{type}?ids=&fields= answers the records (null where absent).
Docs: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm
and .../resources_composite_sobjects_collections_retrieve.htm
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from sandbox.core import json_response

if TYPE_CHECKING:
    from sandbox.salesforce import SalesforceEmulator

MAX_RECORDS = 200
ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not all records were valid and the request was using AllOrNone header", "fields": []}  # fmt: skip


def _refused(code: str, message: str) -> web.Response:
    return json_response([{"message": message, "errorCode": code}], status=400)


def _failure(exc: Any) -> dict[str, Any]:
    """A record's failure as the collection reports it, from the single-record error answer."""
    body = orjson.loads(exc.prebuilt.body) if getattr(exc, "prebuilt", None) is not None else []
    errors = [{"statusCode": e.get("errorCode"), "message": e.get("message"), "fields": e.get("fields", [])} for e in body]
    return {"success": False, "errors": errors}


async def create(emulator: SalesforceEmulator, request: web.Request) -> web.StreamResponse:
    """`POST /composite/sobjects`: each record created (or its errors), in the order sent."""
    from sandbox.salesforce import ApiError

    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _refused("JSON_PARSER_ERROR", "The request body is not valid JSON")
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not 0 < len(records) <= MAX_RECORDS:
        return _refused("INVALID_FIELD", f"records must hold 1 to {MAX_RECORDS} records")
    results: list[dict[str, Any]] = []
    made: list[tuple[str, str]] = []
    for record in records:
        fields = dict(record) if isinstance(record, dict) else {}
        kind = (fields.pop("attributes", None) or {}).get("type")
        try:
            if not isinstance(kind, str):
                raise ApiError(json_response([{"message": "a record needs attributes.type", "errorCode": "INVALID_TYPE"}], status=400))
            created = emulator.create(kind, fields)
        except ApiError as exc:
            results.append(_failure(exc))
            continue
        made.append((kind, created["Id"]))
        results.append({"id": created["Id"], "success": True, "errors": []})
    if body.get("allOrNone") and any(not r["success"] for r in results):
        for kind, record_id in made:
            emulator.records[kind].pop(record_id[:15], None)
        results = [r if not r["success"] else {"id": None, "success": False, "errors": [ROLLED_BACK]} for r in results]
    return json_response(results)


async def retrieve(emulator: SalesforceEmulator, request: web.Request) -> web.StreamResponse:
    """`GET /composite/sobjects/{type}?ids=a,b&fields=x,y`: the records in the order asked, null for one not found."""
    sobject = emulator._sobject(request)
    ids = [i for i in request.query.get("ids", "").split(",") if i]
    fields = [f for f in request.query.get("fields", "").split(",") if f]
    if not ids or len(ids) > 2000 or not fields:
        return _refused("INVALID_FIELD", "ids (up to 2000) and fields are required")
    found = [emulator._find(sobject, i) for i in ids]
    version = request.match_info["version"]
    return json_response([None if r is None else emulator._project(version, sobject, r, fields) for r in found])
