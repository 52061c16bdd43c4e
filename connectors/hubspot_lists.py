"""HubSpot ticket listing (POST /crm/ticket/search, the context's tickets): a contact's tickets, or a ticket search.

A contact's tickets come through its associations and one batch read (the search index lags a fresh create);
any other filter is one CRM search. Docs: https://developers.hubspot.com/docs/guides/api/crm/search,
https://developers.hubspot.com/docs/api-reference/latest/crm/objects/objects/batch/get-objects
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.base import TicketPage, TicketQuery, require
from connectors.hubspot_tables import associated_ids
from errors import NotSupported


class TicketLists:
    """The ticket listing of the HubSpot connector (a mixin over its `_json`, `_path`, `stage_for`,
    `ticket_properties`, `search_page_max` and `_ticket`)."""

    def _ticket_filters(self: Any, query: TicketQuery) -> list[dict[str, Any]]:
        """Search filters (https://developers.hubspot.com/docs/guides/api/crm/search): values are JSON values,
        never query text, so nothing a caller sends changes the search; the contact by `associations.contact`."""
        if query.tags:
            raise NotSupported("HubSpot tickets have no tags: search by status, text or updated_since", crm_type=self.vendor)
        filters: list[dict[str, Any]] = []
        if query.customer_id:
            filters.append({"propertyName": "associations.contact", "operator": "EQ", "value": self.customer_id(query.customer_id)})
        if query.statuses:
            stages = sorted({self.stage_for[s] for s in query.statuses})
            filters.append({"propertyName": "hs_pipeline_stage", "operator": "IN", "values": stages})
        if query.updated_since:
            moment = datetime.fromisoformat(query.updated_since.replace("Z", "+00:00"))
            filters.append({"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(int(moment.timestamp() * 1000))})
        return filters

    async def _contact_tickets(self: Any, customer_id: str, limit: int, page: Mapping[str, Any] | None) -> TicketPage:
        """The contact's ticket associations (one GET), then one batch read of a page of them, newest id first.

        Not the search: HubSpot's search index lags, and a ticket the handoff fallback made a moment ago must show.
        """
        offset = page.get("offset", 0) if page else 0
        offset = offset if isinstance(offset, int) and 0 <= offset <= 10_000 else 0
        contact = await self._json(
            "GET", self._path("objects", f"contacts/{self.customer_id(customer_id)}"),
            params={"associations": "tickets"}, operation="list_tickets",
        )
        ids = sorted(associated_ids(contact, "tickets"), key=lambda i: (len(i), i), reverse=True)
        chunk = ids[offset : offset + min(limit, 100)]  # a batch read takes up to 100 ids
        tickets: list[dict[str, Any]] = []
        if chunk:
            data = await self._json(
                "POST", self._path("objects", "tickets/batch/read"),
                json={"properties": self.ticket_properties, "inputs": [{"id": i} for i in chunk]},
                idempotent=True, operation="list_tickets",
            )
            order = {ticket_id: n for n, ticket_id in enumerate(chunk)}
            tickets = sorted(require(data, "results", self.vendor), key=lambda t: order.get(str(t.get("id")), len(order)))
        following = {"offset": offset + len(chunk)} if offset + len(chunk) < len(ids) else None
        return TicketPage([self._ticket(t, contact_ids=[customer_id]) for t in tickets], following)

    async def list_tickets(self: Any, query: TicketQuery, page: Mapping[str, Any] | None) -> TicketPage:
        """A contact's tickets through its associations; any other filter: one `POST .../objects/tickets/search`
        (newest change first, paged by HubSpot's `after`)."""
        if query.customer_id and not (query.statuses or query.updated_since or query.text or query.tags):
            return await self._contact_tickets(query.customer_id, query.limit, page)
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}] if (filters := self._ticket_filters(query)) else [],
            "properties": self.ticket_properties,
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
            "limit": min(query.limit, self.search_page_max),
        }
        if query.text:
            body["query"] = query.text
        after = page.get("after") if page else None
        if isinstance(after, str) and after.isdigit():
            body["after"] = after
        data = await self._json(
            "POST", self._path("objects", "tickets/search"), json=body, idempotent=True, operation="list_tickets"
        )
        contact = [query.customer_id] if query.customer_id else None
        tickets = [self._ticket(t, contact_ids=contact) for t in require(data, "results", self.vendor)]
        following = ((data.get("paging") or {}).get("next") or {}).get("after")
        return TicketPage(tickets, {"after": str(following)} if following else None)
