"""HubSpot's batch create for the emulator: up to 100 objects in one call, each refused input its own error.

`POST .../objects/{kind}/batch/create` `{"inputs": [{properties, associations, objectWriteTraceId}]}` answers 201
`{"status": "COMPLETE", "results": [...]}`, or 207 with `errors` (each naming its input's objectWriteTraceId in
`context`) and `numErrors` beside the objects made. Results carry no promise of order: the trace id pairs them.
Docs: https://developers.hubspot.com/docs/api-reference/latest/crm/objects/objects/batch/create-objects
and (v3) https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/objects/batch/create-objects
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from sandbox.core import VendorError, json_response
from sandbox.hubspot_wire import api_version, bad_request, instant

if TYPE_CHECKING:
    from sandbox.hubspot import HubSpotEmulator

MAX_INPUTS = 100


def _error(exc: VendorError, trace: str | None) -> dict[str, Any]:
    """An input's 400 as the batch lists it, its trace id in `context`."""
    body = exc.body if isinstance(exc.body, dict) else {}
    if body == {} and exc.prebuilt is not None:
        body = orjson.loads(exc.prebuilt.body)
    context = {**(body.get("context") or {}), **({"objectWriteTraceId": [trace]} if trace else {})}
    return {"status": "error", "category": body.get("category") or "VALIDATION_ERROR",
            "message": body.get("message") or "the input was not valid", "context": context}  # fmt: skip


async def create(emulator: HubSpotEmulator, request: web.Request) -> web.StreamResponse:
    """Each input made, or its own error; 201 when every one was made, else 207."""
    kind, version = request.match_info["kind"], api_version(request)
    inputs = (await emulator._body(request)).get("inputs")
    if not isinstance(inputs, list) or not 0 < len(inputs) <= MAX_INPUTS:
        raise bad_request(f"inputs must hold 1 to {MAX_INPUTS} objects")
    started = instant()
    results, errors = [], []
    for item in inputs:
        trace = item.get("objectWriteTraceId") if isinstance(item, dict) else None
        try:
            record = emulator.make(kind, item if isinstance(item, dict) else {}, version)
        except VendorError as exc:
            errors.append(_error(exc, trace))
            continue
        view = emulator._view(kind, record, None)
        results.append({**view, "objectWriteTraceId": trace} if trace else view)
    answer: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": instant()}
    if errors:
        answer |= {"errors": errors, "numErrors": len(errors)}
    return json_response(answer, status=207 if errors else 201)
