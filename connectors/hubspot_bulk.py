"""HubSpot batch create: a ticket batch's tickets created in one call, each input paired by its trace id.

`POST .../objects/tickets/batch/create` `{"inputs": [{properties, associations, objectWriteTraceId}]}` makes up
to 100; it answers 201, or 207 with `errors` beside the `results` made. Results are not promised in input order,
so each input carries its index as `objectWriteTraceId` (and its marker in `content`, the fallback pairing).
Docs: https://developers.hubspot.com/docs/api-reference/latest/crm/objects/objects/batch/create-objects,
(v3) https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/objects/batch/create-objects
"""

from __future__ import annotations

from typing import Any, ClassVar

from connectors.base import MARKER_LINE, require
from errors import CRMError, MalformedAnswer, NotFound, ValidationFailed
from models import Ticket, TicketCreateRequest

BATCH_MAX = 100  # inputs in one batch create
# An input's error category -> the contract error that item answers.
CATEGORY_ERRORS: dict[str, type[CRMError]] = {"VALIDATION_ERROR": ValidationFailed, "OBJECT_NOT_FOUND": NotFound}


def _traces(error: dict[str, Any]) -> list[str]:
    """The trace ids an error entry names in its `context`."""
    found = (error.get("context") or {}).get("objectWriteTraceId") if isinstance(error, dict) else None
    return [str(t) for t in found] if isinstance(found, list) else []


class TicketBatches:
    """The bulk create for the HubSpot connector (a mixin over its `_create_body`, `_json`, `_path` and `_ticket`)."""

    bulk_create_max: ClassVar[int] = BATCH_MAX

    async def create_tickets(self: Any, tickets: list[tuple[TicketCreateRequest, str | None]]) -> list[Ticket | CRMError]:
        """Each (ticket, marker) as a ticket, or that input's own error; a whole-call failure raises, as one create's."""
        made = [await self._create_body(ticket, marker) for ticket, marker in tickets]
        inputs = [{**body, "objectWriteTraceId": str(n)} for n, (body, _) in enumerate(made)]
        answer = await self._json(
            "POST", self._path("objects", "tickets/batch/create"), json={"inputs": inputs},
            idempotent=False, operation="create_ticket",
        )  # fmt: skip
        by_trace: dict[str, dict[str, Any]] = {}
        markers = {marker: str(n) for n, (_, marker) in enumerate(tickets) if marker}
        for record in require(answer, "results", self.vendor):
            trace = record.get("objectWriteTraceId") if isinstance(record, dict) else None
            if trace is None:  # no trace id echoed: the marker ending `content` names the input
                line = MARKER_LINE.search(((record or {}).get("properties") or {}).get("content") or "")
                trace = markers.get(line.group(1)) if line else None
            if trace is not None:
                by_trace[str(trace)] = record
        refused = {t: e for e in answer.get("errors") or [] for t in _traces(e)}
        results: list[Ticket | CRMError] = []
        for n, (_, contact_id) in enumerate(made):
            if (record := by_trace.get(str(n))) is not None:
                results.append(self._ticket(record, contact_ids=[contact_id] if contact_id else []))
            elif (error := refused.get(str(n))) is not None:
                kind = CATEGORY_ERRORS.get(str(error.get("category")), ValidationFailed)
                results.append(kind(str(error.get("message") or "the ticket was not created"), crm_type=self.vendor))
            else:
                results.append(MalformedAnswer("the HubSpot batch answer does not account for this ticket", crm_type=self.vendor))
        return results
