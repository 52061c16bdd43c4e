"""Zendesk create_many: a ticket batch's tickets made by one background job, each result paired by its `index`.

`POST /api/v2/tickets/create_many.json` `{"tickets": [...]}` (up to 100) answers a `job_status`; the job is polled
at `GET /api/v2/job_statuses/{id}.json` (within the request deadline) until `completed`, whose `results` carry each
input's `index` with its `id` or its `error`; the made tickets are then read with `GET /tickets/show_many.json`.
create_many documents no Idempotency-Key, so each input carries its creation marker as a tag, and `find_created`
looks it up through the Search API (an index that trails writes: `marker_search_lag_seconds`).
Docs: https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#create-many-tickets,
https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/#show-job-status,
https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#show-multiple-tickets,
https://developer.zendesk.com/api-reference/ticketing/ticket-management/search/#list-search-results
"""

from __future__ import annotations

from typing import Any, ClassVar

from connectors.base import require
from errors import CRMError, MalformedAnswer, UpstreamUnavailable, ValidationFailed
from models import Ticket, TicketCreateRequest

BATCH_MAX = 100  # tickets in one create_many
POLL_SECONDS = 0.5  # between job status reads; the request deadline bounds the whole wait
JOB_FAILED = frozenset({"failed", "killed"})


class TicketBatches:
    """The bulk create for the Zendesk connector (a mixin over its `_create_body`, `_json` and `_ticket`)."""

    bulk_create_max: ClassVar[int] = BATCH_MAX
    marker_search_lag_seconds: ClassVar[float] = 120.0  # Search API results trail writes (docs: "a few minutes")

    async def create_tickets(self: Any, tickets: list[tuple[TicketCreateRequest, str | None]]) -> list[Ticket | CRMError]:
        """Each (ticket, marker) as a ticket, or that input's own error; a whole-call failure raises, as one create's."""
        bodies, sent, refused = [], [], {}  # sent: each body's input position; refused: inputs failing before the call
        for n, (ticket, marker) in enumerate(tickets):
            try:
                body = await self._create_body(ticket)
            except CRMError as exc:  # e.g. an invalid customer_id: that item's error, not the batch's
                refused[n] = exc
                continue
            if marker:  # create_many has no Idempotency-Key: the marker tag is how a lost answer is found
                body["tags"] = [*(body.get("tags") or []), marker]
            bodies.append(body)
            sent.append(n)
        if not bodies:
            return [refused[n] for n in range(len(tickets))]
        answer = await self._json(
            "POST", "/api/v2/tickets/create_many.json", json={"tickets": bodies}, idempotent=False, operation="create_ticket"
        )
        job = require(answer, "job_status", self.vendor)
        while job.get("status") != "completed":
            if job.get("status") in JOB_FAILED:
                raise UpstreamUnavailable(
                    f"the Zendesk create_many job {job.get('status')}: {job.get('message') or 'no message'}",
                    crm_type=self.vendor,
                )  # fmt: skip
            await self.ctx.sleep(POLL_SECONDS)  # ctx.sleep: tests record it rather than wait
            polled = await self._json(
                "GET", f"/api/v2/job_statuses/{require(job, 'id', self.vendor)}.json", operation="create_ticket"
            )
            job = require(polled, "job_status", self.vendor)
        results_of = [r for r in job.get("results") or [] if isinstance(r, dict) and isinstance(r.get("index"), int)]
        by_index = {sent[r["index"]]: r for r in results_of if 0 <= r["index"] < len(sent)}
        ids = [str(r["id"]) for r in by_index.values() if r.get("id") is not None]
        made: dict[str, dict[str, Any]] = {}
        if ids:
            shown = await self._json("GET", "/api/v2/tickets/show_many.json", params={"ids": ",".join(ids)}, operation="create_ticket")
            made = {str(t.get("id")): t for t in require(shown, "tickets", self.vendor) if isinstance(t, dict)}
        results: list[Ticket | CRMError] = []
        for n in range(len(tickets)):
            result = by_index.get(n) or {}
            if n in refused:
                results.append(refused[n])
            elif (record := made.get(str(result.get("id")))) is not None:
                results.append(self._ticket(record))
            elif result.get("error") or result.get("errors"):
                message = str(result.get("details") or result.get("error") or result.get("errors"))[:300]
                results.append(ValidationFailed(message, crm_type=self.vendor))
            else:
                results.append(MalformedAnswer("the Zendesk job status does not account for this ticket", crm_type=self.vendor))
        return results

    async def find_created(self: Any, marker: str, ticket: TicketCreateRequest) -> str | None:
        """`GET /api/v2/search.json?query=type:ticket tags:<marker>`: the ticket a create tagged with the marker."""
        data = await self._json(
            "GET", "/api/v2/search.json", params={"query": f"type:ticket tags:{marker}"}, operation="create_ticket"
        )
        for record in require(data, "results", self.vendor):
            if isinstance(record, dict) and marker in (record.get("tags") or []):
                return str(require(record, "id", self.vendor))
        return None
