"""HubSpot's value tables and config: API paths per version, stage and priority codes, properties read, associations.

Sources: https://developers.hubspot.com/docs/api-reference/latest/overview (versioned paths),
https://developers.hubspot.com/docs/api-reference/latest/crm/objects/tickets/guide (ticket properties, associations).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.field_mapping import FieldMapping
from connectors.vendor_config import VendorConfig
from models import TicketPriority, TicketStatus

VENDOR_URL = "https://api.hubapi.com"  # one host for every portal: the token says which portal

HUBSPOT_API_VERSION_PATTERN = r"^(v3|\d{4}-(0[1-9]|1[0-2]))$"  # legacy `v3`, or a date version such as 2026-09
DEFAULT_API_VERSION = "2026-09"  # HUBSPOT_API_VERSION: `v3` paths are unsupported from September 2027
# API -> (legacy path, date-versioned path); the date pattern is /api-name/YYYY-MM/resource, same host:
# https://developers.hubspot.com/docs/api-reference/latest/overview
# objects (read, create, update): .../latest/crm/objects/tickets/guide; search: .../latest/crm/search-the-crm;
# batch read: .../latest/crm/objects/objects/batch/get-objects; associations (the v4 API's successor):
# .../latest/crm/associations/associate-records/batch/get-associations; pipelines: .../2026-03/crm/pipelines/get-pipelines
API_PATHS: dict[str, tuple[str, str]] = {
    "objects": ("/crm/v3/objects/{resource}", "/crm/objects/{version}/{resource}"),
    "associations": ("/crm/v4/associations/{resource}", "/crm/associations/{version}/{resource}"),
    "pipelines": ("/crm/v3/pipelines/{resource}", "/crm/pipelines/{version}/{resource}"),
    # https://developers.hubspot.com/docs/api-reference/latest/crm/properties/get-properties (the field-mapping check)
    "properties": ("/crm/v3/properties/{resource}", "/crm/properties/{version}/{resource}"),
}


def api_path(version: str, api: str, resource: str) -> str:
    """The path of `resource` (e.g. `contacts/search`) in one API (`objects`, ...) for the configured version."""
    legacy, dated = API_PATHS[api]
    return (legacy if version == "v3" else dated).format(version=version, resource=resource)


# Our status -> stage of HubSpot's default ticket pipeline "0" (1 New, 2 Waiting on contact, 3 Waiting on us,
# 4 Closed). Portals with their own pipelines override entries with `stage_map` / HUBSPOT_STAGE_MAP.
STAGE_TO_HUBSPOT: dict[TicketStatus, str] = {
    TicketStatus.new: "1",
    TicketStatus.open: "3",
    TicketStatus.pending: "2",
    TicketStatus.solved: "4",  # the default pipeline has no "solved": Closed is the nearest
    TicketStatus.closed: "4",
}
PRIORITY_FROM_HUBSPOT: dict[str, TicketPriority] = {
    "LOW": TicketPriority.low,
    "MEDIUM": TicketPriority.medium,
    "HIGH": TicketPriority.high,
    "URGENT": TicketPriority.urgent,
}
PRIORITY_TO_HUBSPOT: dict[TicketPriority, str] = {unified: vendor for vendor, unified in PRIORITY_FROM_HUBSPOT.items()}

# HUBSPOT_DEFINED association type ids used in create bodies.
TICKET_TO_CONTACT = 16
NOTE_TO_TICKET = 228

CONTACT_PROPERTIES = (
    "firstname", "lastname", "email", "phone", "mobilephone", "company", "lifecyclestage", "jobtitle",
    "hs_lead_status", "createdate", "lastmodifieddate",
)  # fmt: skip
PHONE_PROPERTIES = ("phone", "mobilephone")
DEAL_PROPERTIES = ("dealname", "dealstage", "amount", "pipeline", "closedate")
TICKET_PROPERTIES = (
    "subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "hs_ticket_category",
    "source_type", "hubspot_owner_id", "createdate", "hs_lastmodifieddate",
)  # fmt: skip
# Ticket properties a caller may set through `metadata` on create.
CREATE_PASSTHROUGH = ("hs_ticket_category", "source_type", "hubspot_owner_id")

_HUBSPOT_ID = r"^[A-Za-z0-9_-]{1,64}$"  # pipeline and stage ids: "0", "4", or a portal's numeric ids
_PROPERTY_NAME = r"^[a-z0-9_]{1,100}$"  # HubSpot internal property names


def association(to_id: str, type_id: int) -> dict[str, Any]:
    """One `associations` entry of a v3 create body, with a HUBSPOT_DEFINED type."""
    return {"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


def associated_ids(record: dict[str, Any], kind: str) -> list[str]:
    """Ids under `associations.{kind}.results`, once each (labelled associations repeat an id)."""
    results = ((record.get("associations") or {}).get(kind) or {}).get("results") or []
    return list(dict.fromkeys(str(r["id"]) for r in results if isinstance(r, dict) and r.get("id") is not None))


# Our update fields -> HubSpot ticket properties.
UPDATE_PROPERTIES: dict[str, str] = {"status": "hs_pipeline_stage", "priority": "hs_ticket_priority", "subject": "subject"}


class HubSpotConfig(VendorConfig):
    """`api_key`: a private-app or OAuth access token (alias `access_token`); pipeline; API version (`v3`/`YYYY-MM`)."""

    api_key: SecretStr
    pipeline: str = Field("0", pattern=_HUBSPOT_ID)
    stage_map: dict[str, str] = Field(default_factory=dict)
    tier_property: str | None = Field(None, pattern=_PROPERTY_NAME)
    api_version: str = Field(DEFAULT_API_VERSION, pattern=HUBSPOT_API_VERSION_PATTERN)
    # contact property names for customers, ticket property names for tickets (connectors/field_mapping.py)
    field_mapping: FieldMapping | None = None

    @model_validator(mode="before")
    @classmethod
    def _token_alias(cls, data: Any) -> Any:
        """`access_token`, OAuth's name for the same Bearer credential, wins over an environment `api_key`."""
        if isinstance(data, dict) and "access_token" in data:
            data = {**data, "api_key": data["access_token"]}
            del data["access_token"]
        return data

    @field_validator("stage_map")
    @classmethod
    def _check_stage_map(cls, value: dict[str, str]) -> dict[str, str]:
        """Keys are our statuses, values HubSpot stage ids (they go into request bodies as sent)."""
        statuses = {s.value for s in TicketStatus}
        unknown = sorted(set(value) - statuses)
        if unknown:
            raise ValueError(f"keys must be ticket statuses ({', '.join(sorted(statuses))}), not {unknown}")
        if not all(re.fullmatch(_HUBSPOT_ID, stage) for stage in value.values()):
            raise ValueError("stage ids are letters, digits, '_' or '-'")
        return value
