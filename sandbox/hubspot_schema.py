"""What the HubSpot emulator knows of a portal's schema: object types and properties, association types, pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Kind:
    """What the emulator knows of one object type: its properties, defaults, required and enumerated values."""

    singular: str  # in association type names, e.g. ticket_to_contact
    writable: frozenset[str]
    defaults: tuple[str, ...]  # returned when a read names no properties
    created: str
    modified: str
    required: tuple[str, ...] = ()
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    searchable: tuple[str, ...] = ()  # what a free-text `query` looks in

    @property
    def read_only(self) -> frozenset[str]:
        """Properties HubSpot calculates."""
        return frozenset({"hs_object_id", self.created, self.modified})

    @property
    def always(self) -> tuple[str, ...]:
        """Properties every read returns, named or not."""
        return (self.created, "hs_object_id", self.modified)


KINDS: dict[str, Kind] = {
    "contacts": Kind(
        "contact",
        frozenset({"firstname", "lastname", "email", "phone", "mobilephone", "company", "jobtitle", "lifecyclestage",
                   "hs_lead_status", "customer_tier"}),
        ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
        "createdate",
        "lastmodifieddate",
        enums={"lifecyclestage": ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                                  "customer", "evangelist", "other")},
        searchable=("firstname", "lastname", "email", "phone", "mobilephone", "company"),  # HubSpot's defaults we store
    ),
    "deals": Kind(
        "deal",
        frozenset({"dealname", "dealstage", "amount", "pipeline", "closedate", "hubspot_owner_id"}),
        ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
         "pipeline"),
        "createdate",
        "hs_lastmodifieddate",
        enums={"dealstage": ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                             "contractsent", "closedwon", "closedlost")},
        searchable=("dealname", "pipeline", "dealstage"),
    ),
    "tickets": Kind(
        "ticket",
        frozenset({"subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "hs_ticket_category",
                   "source_type", "hubspot_owner_id", "order_id"}),  # order_id: the portal's custom property
        ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline", "hs_pipeline_stage",
         "hs_ticket_category", "hs_ticket_priority", "subject"),
        "createdate",
        "hs_lastmodifieddate",
        required=("subject", "hs_pipeline", "hs_pipeline_stage"),
        enums={
            "hs_pipeline": ("0",),
            "hs_pipeline_stage": ("1", "2", "3", "4"),  # New, Waiting on contact, Waiting on us, Closed
            "hs_ticket_priority": ("LOW", "MEDIUM", "HIGH", "URGENT"),
            "hs_ticket_category": ("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"),
            "source_type": ("CHAT", "EMAIL", "FORM", "PHONE"),
        },
        searchable=("subject", "content", "hs_pipeline_stage", "hs_ticket_category"),
    ),
    "notes": Kind(
        "note",
        frozenset({"hs_note_body", "hs_timestamp", "hubspot_owner_id"}),
        ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
        "hs_createdate",
        "hs_lastmodifieddate",
        required=("hs_timestamp",),
        searchable=("hs_note_body",),
    ),
}
KIND_PATTERN = "|".join(KINDS)

# HUBSPOT_DEFINED association type ids: (from, to).
ASSOCIATION_TYPES: dict[int, tuple[str, str]] = {
    3: ("deals", "contacts"),
    4: ("contacts", "deals"),
    15: ("contacts", "tickets"),
    16: ("tickets", "contacts"),
    227: ("tickets", "notes"),
    228: ("notes", "tickets"),
}


# Each portal's default pipelines: (id, label, stages as (id, label, metadata)). Shapes per
# https://developers.hubspot.com/docs/api-reference/latest/crm/pipelines/get-pipelines
PIPELINES: dict[str, list[tuple[str, str, list[tuple[str, str, dict[str, str]]]]]] = {
    "tickets": [("0", "Support Pipeline", [
        ("1", "New", {"ticketState": "OPEN"}), ("2", "Waiting on contact", {"ticketState": "OPEN"}),
        ("3", "Waiting on us", {"ticketState": "OPEN"}), ("4", "Closed", {"ticketState": "CLOSED"}),
    ])],
    "deals": [("default", "Sales Pipeline", [
        (stage, stage, {"isClosed": str(stage.startswith("closed")).lower(), "probability": p})
        for stage, p in (("appointmentscheduled", "0.2"), ("qualifiedtobuy", "0.4"), ("presentationscheduled", "0.6"),
                         ("decisionmakerboughtin", "0.8"), ("contractsent", "0.9"), ("closedwon", "1.0"),
                         ("closedlost", "0.0"))
    ])],
}  # fmt: skip
PIPELINES_CREATED = "2019-10-30T03:30:17.883Z"


def pipeline_view(pid: str, label: str, stages: list[tuple[str, str, dict[str, str]]]) -> dict[str, Any]:
    """One pipeline as HubSpot's pipelines API answers it."""
    stamps = {"createdAt": PIPELINES_CREATED, "updatedAt": PIPELINES_CREATED, "archived": False}
    return {
        "id": pid, "label": label, "displayOrder": 0, **stamps,
        "stages": [{"id": sid, "label": name, "displayOrder": n, "metadata": meta, **stamps}
                   for n, (sid, name, meta) in enumerate(stages)],
    }  # fmt: skip
