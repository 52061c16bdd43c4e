"""Salesforce sObject Collections: a ticket batch's Cases created in one call, then read back in one.

`POST /composite/sobjects` with allOrNone false creates up to 200 records and answers each one's id or errors,
in order; `GET /composite/sobjects/Case?ids=&fields=` reads them back.
Docs: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_retrieve.htm
"""

from __future__ import annotations

from typing import Any, ClassVar

from errors import CRMError, MalformedAnswer, ValidationFailed
from models import Ticket, TicketCreateRequest

COLLECTION_MAX = 200  # records in one collection create


class CaseCollections:
    """The bulk create for the Salesforce connector (a mixin over its `_case_body`, `_json` and `_ticket`)."""

    bulk_create_max: ClassVar[int] = COLLECTION_MAX

    async def create_tickets(self: Any, tickets: list[tuple[TicketCreateRequest, str | None]]) -> list[Ticket | CRMError]:
        """Each (ticket, marker) as a Case, or that record's own error; a whole-call failure raises, as one create's."""
        bodies = [await self._case_body(ticket, marker) for ticket, marker in tickets]
        records = [{"attributes": {"type": "Case"}, **body} for body in bodies]
        answer = await self._json(
            "POST", self._data("/composite/sobjects"), json={"allOrNone": False, "records": records},
            idempotent=False, operation="create_ticket",
        )  # fmt: skip
        if not isinstance(answer, list) or len(answer) != len(records):
            raise MalformedAnswer("the Salesforce collection answer does not list every record", crm_type=self.vendor)
        ids = [r.get("id") if isinstance(r, dict) and r.get("success") else None for r in answer]
        read = await self._read_cases([i for i in ids if isinstance(i, str)])
        results: list[Ticket | CRMError] = []
        for body, result, case_id in zip(bodies, answer, ids, strict=True):
            if isinstance(case_id, str):
                # A Case that could not be read back is still made: answered with what was sent, never an error.
                results.append(read.get(case_id) or self._ticket({**body, "Id": case_id, "Status": body.get("Status", "New")}))
                continue
            error = next(iter(result.get("errors") or []), {}) if isinstance(result, dict) else {}
            code = str(error.get("statusCode") or "UNKNOWN")
            kind = self.error_codes.get(code, ValidationFailed)
            results.append(kind(f"{code}: {error.get('message') or 'the record was not created'}", crm_type=self.vendor))
        return results

    async def _read_cases(self: Any, ids: list[str]) -> dict[str, Ticket]:
        """The created Cases by id, read in one call; none when that read fails (the creates stand)."""
        if not ids:
            return {}
        fields = ",".join(dict.fromkeys([*self.case_read_fields, *self._mapping.ticket.values()]))
        try:
            data = await self._json(
                "GET", self._data("/composite/sobjects/Case"), params={"ids": ",".join(ids), "fields": fields},
                operation="create_ticket",
            )  # fmt: skip
        except CRMError:
            return {}
        cases = [self._ticket(c) for c in data if isinstance(c, dict)] if isinstance(data, list) else []
        return {case.id: case for case in cases}
