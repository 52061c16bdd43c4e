"""Dynamics 365 field mapping: mapped contact and incident columns in `$select`, incident writes, the save-time check.

Names are checked against the table definitions, `GET EntityDefinitions(LogicalName='{table}')/Attributes?$select=LogicalName`
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-metadata-web-api, "Query table
definitions using the Web API"); an unknown one is refused in the words Dataverse answers a `$select` of it with.
"""

from __future__ import annotations

from typing import Any

from connectors.base import require
from connectors.field_mapping import NO_MAPPING, FieldMapping, unknown_fields

# A mapping kind -> the table (logical name) its columns belong to.
TABLES: dict[str, str] = {"customer": "contact", "ticket": "incident"}
UNKNOWN = "Could not find a property named '{{name}}' on type 'Microsoft.Dynamics.CRM.{table}'."


class DynamicsFieldMapping:
    """The field-mapping half of DynamicsConnector (its config carries `field_mapping`)."""

    config: Any
    vendor: str

    @property
    def _mapping(self) -> FieldMapping:
        return self.config.field_mapping or NO_MAPPING

    def _columns(self, base: tuple[str, ...], kind: str) -> str:
        """`$select` of the connector's columns and the kind's mapped ones, so a read needs no second call."""
        return ",".join(dict.fromkeys([*base, *getattr(self._mapping, kind).values()]))

    async def check_field_mapping(self, mapping: FieldMapping) -> list[dict[str, Any]]:
        """Each mapped column its table lacks (one metadata read per kind that has entries)."""
        problems: list[dict[str, Any]] = []
        for kind, table in TABLES.items():
            entries = getattr(mapping, kind)
            if entries:
                data = await self._odata(  # type: ignore[attr-defined]
                    "GET", f"EntityDefinitions(LogicalName='{table}')/Attributes", params={"$select": "LogicalName"},
                    operation="list_fields",
                )
                attributes = require(data, "value", self.vendor, kind=list)
                known = {str(a.get("LogicalName")) for a in attributes if isinstance(a, dict)}
                problems += unknown_fields(kind, entries, known, None, UNKNOWN.format(table=table))
        return problems
