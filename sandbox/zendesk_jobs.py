"""Zendesk's bulk ticket calls: create_many as a job (completed at once here), its job status, show_many.

Docs: https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#create-many-tickets,
https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/#show-job-status,
https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#show-multiple-tickets
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import orjson
from aiohttp import web

from sandbox.core import json_response


class Jobs:
    """The job statuses a ZendeskEmulator's create_many calls made."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.statuses: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    async def create_many(self, request: web.Request) -> web.StreamResponse:
        """`POST /tickets/create_many.json` → 200 `{job_status}`; each ticket made (or refused) by its index."""
        try:
            tickets = orjson.loads(await request.read())["tickets"]
            assert isinstance(tickets, list) and 0 < len(tickets) <= 100
        except (orjson.JSONDecodeError, KeyError, TypeError, AssertionError):
            return json_response({"error": "InvalidEndpoint", "description": "tickets parameter is required"}, 400)
        results: list[dict[str, Any]] = []
        for index, fields in enumerate(tickets):
            made = self.emulator.make_ticket(fields)
            if isinstance(made, web.Response):
                error = orjson.loads(made.body)
                results.append({"index": index, "error": error["error"], "details": str(error.get("details"))})
            else:
                results.append({"index": index, "id": made["ticket"]["id"], "status": "Created", "success": True})
        job_id = uuid.uuid4().hex
        url = f"https://{request.host}/api/v2/job_statuses/{job_id}.json"
        status = {"id": job_id, "url": url, "job_type": "Bulk Create Job", "total": len(tickets),
                  "progress": len(tickets), "status": "completed", "message": "Completed", "results": results}  # fmt: skip
        self.statuses[job_id] = status
        # The create answer says the job is queued; its status, read next, is completed.
        return json_response({"job_status": {**status, "status": "queued", "progress": None, "results": None}})

    async def job_status(self, request: web.Request) -> web.StreamResponse:
        """`GET /job_statuses/{id}.json`."""
        job = self.statuses.get(request.match_info["id"].removesuffix(".json"))
        return json_response({"job_status": job}) if job else self.emulator.not_found()

    async def show_many(self, request: web.Request) -> web.StreamResponse:
        """`GET /tickets/show_many.json?ids=1,2`: the tickets that exist, in id order."""
        ids = {int(i) for i in request.query.get("ids", "").split(",") if i.strip().isdigit()}
        return json_response({"tickets": [t for tid, t in sorted(self.emulator.tickets.items()) if tid in ids]})
