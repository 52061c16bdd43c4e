"""ServiceNow field mapping: mapped customer and incident fields in sysparm_fields, incident writes, the save-time check.

Names are checked against the Dictionary Entries table, `sys_dictionary`, read like any other through the Table API
(https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html;
the table: https://www.servicenow.com/docs/bundle/yokohama-platform-administration/page/administer/managing-data/concept/c_DataDictionaryTables.html).
A dictionary row names its table (`name`) and column (`element`); a field a table inherits is listed under the
table that defines it (incident's short_description under task), so each table is looked up with its ancestors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import require
from connectors.field_mapping import NO_MAPPING, FieldMapping, mapped, read_flat, to_write
from errors import AuthFailed
from models import Ticket

# A table -> itself and the tables it extends (base system hierarchy: incident extends task, CSM's
# customer_contact extends sys_user, customer_account extends core_company).
ANCESTRY: dict[str, tuple[str, ...]] = {
    "incident": ("incident", "task"),
    "sys_user": ("sys_user",),
    "customer_contact": ("customer_contact", "sys_user"),
    "core_company": ("core_company",),
    "customer_account": ("customer_account", "core_company"),
}
# A customer's reference a mapping may dot-walk through (company.u_tier) -> the table it points at.
WALKS: dict[str, str] = {"company": "core_company", "account": "customer_account"}
# ServiceNow's own words for a field a table lacks (what its invalid-query check logs and answers).
UNKNOWN = "Invalid query detected, please check logs for details [Unknown field {name} in table {table}]"


class ServiceNowFieldMapping:
    """The field-mapping half of ServiceNowConnector (its config carries `field_mapping`)."""

    config: Any
    vendor: str
    incident_fields: tuple[str, ...]  # the connector's own incident fields

    @property
    def _mapping(self) -> FieldMapping:
        return self.config.field_mapping or NO_MAPPING

    def _incident_fields(self) -> str:
        """sysparm_fields for an incident: the connector's own, then the mapped ones (one call per read)."""
        return ",".join(dict.fromkeys([*self.incident_fields, *self._mapping.ticket.values()]))

    def _mapped_customer(self, record: Mapping[str, Any], fallback_tier: Any) -> tuple[Any, dict[str, Any]]:
        """(tier, metadata) of a customer record: sysparm_fields answers dot-walked fields keyed by the whole path."""
        return mapped(self._mapping.customer, record, read_flat, fallback_tier)

    def _mapped_ticket(self, ticket: Ticket, record: Mapping[str, Any]) -> Ticket:
        """The ticket with its mapped metadata keys filled from the same incident record."""
        ticket.metadata.update(mapped(self._mapping.ticket, record, read_flat)[1])
        return ticket

    def _mapped_writes(self, metadata: Mapping[str, Any]) -> dict[str, str]:
        """The mapped metadata keys as incident fields (the Table API takes every value as a string)."""
        return {path: str(value) for path, value in to_write(self._mapping.ticket, metadata).items()}

    async def _dictionary(self, tables: set[str], elements: set[str]) -> set[tuple[str, str]]:
        """`GET /api/now/table/sys_dictionary?sysparm_query=nameIN...^elementIN...^ORelementISEMPTY`: the (table, column)
        pairs that exist. Each table's own row (empty element) comes too, so an empty answer means the user may not
        read the dictionary (its ACLs hide rows rather than refuse), not that every name is unknown."""
        query = f"nameIN{','.join(sorted(tables))}^elementIN{','.join(sorted(elements))}^ORelementISEMPTY"
        limit = min(1000, len(tables) * (len(elements) + 1))
        rows = await self._query("sys_dictionary", query, "name,element", limit, "list_fields")  # type: ignore[attr-defined]
        if not rows:
            raise AuthFailed(
                "ServiceNow lists no sys_dictionary entries for these tables: the integration user needs read access "
                "to sys_dictionary to check a field mapping", crm_type=self.vendor,
            )
        return {(str(require(r, "name", self.vendor)), str(r.get("element") or "")) for r in rows}

    async def check_field_mapping(self, mapping: FieldMapping) -> list[dict[str, Any]]:
        """Each mapped field its table lacks: customer fields on the customer table (or one walk through company or
        account), incident fields on incident; refused in ServiceNow's words."""
        wanted: list[tuple[str, str, str, str, str]] = []  # kind, key, path, table, column
        for kind, entries in (("customer", mapping.customer), ("ticket", mapping.ticket)):
            home = self.config.customer_table if kind == "customer" else "incident"
            for key, path in entries.items():
                head, _, rest = path.partition(".")
                if not rest:
                    wanted.append((kind, key, path, home, head))
                elif kind == "customer" and head in WALKS and "." not in rest:
                    wanted.append((kind, key, path, WALKS[head], rest))
                else:  # incident fields are written through the record; walks go one known reference deep
                    wanted.append((kind, key, path, home, path))
        tables = {t for *_, table, _ in wanted for t in ANCESTRY[table]}
        columns = {column for *_, column in wanted if "." not in column}
        known = await self._dictionary(tables, columns) if columns else set()
        problems = []
        for kind, key, path, table, column in wanted:
            if not any((t, column) in known for t in ANCESTRY[table]):
                words = UNKNOWN.format(name=column, table=table)
                problems.append({"loc": ["field_mapping", kind, key], "msg": f"{path}: {words}", "type": "unknown_field"})
        return problems
