"""The sandbox workspace's data attributes and ticket type attributes, as Intercom lists them.

Shapes: "List all data attributes", `GET /data_attributes?model=contact|company|conversation` → `{"type":"list",
"data":[{"type":"data_attribute","model","name","full_name","label","data_type","custom",...}]}` (a custom one's
full_name is `custom_attributes.<name>`), and a ticket type's `ticket_type_attributes`, `{"type":
"ticket_type_attributes.list","ticket_type_attributes":[{"type":"ticket_type_attribute","name",...}]}`
(https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/ Data Attributes, Ticket Types).
Custom ones (contact `loyalty_number`, ticket `order_number`) show the field-mapping feature.
"""

from __future__ import annotations

from typing import Any

SEEDED = 1_700_000_000
# model -> (name, data_type, custom); a standard attribute's full_name is its name.
DATA_ATTRIBUTES: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "contact": (
        ("name", "string", False), ("email", "string", False), ("phone", "string", False), ("role", "string", False),
        ("external_id", "string", False), ("created_at", "date", False), ("updated_at", "date", False),
        ("loyalty_number", "string", True),
    ),
    "company": (("name", "string", False), ("plan", "string", False), ("tier", "string", True)),
    "conversation": (("priority", "string", False),),
}
# The ticket type's attributes: the two defaults, the priority, and a custom order number.
TICKET_TYPE_ATTRIBUTES = (
    ("11", "_default_title_", "string", "Title"), ("12", "_default_description_", "string", "Description"),
    ("13", "priority", "string", "Priority"), ("14", "order_number", "string", "Order number"),
)


def data_attributes(model: str | None) -> list[dict[str, Any]]:
    """The workspace's data attributes of one model (every model without one)."""
    listed = []
    for kind, attributes in DATA_ATTRIBUTES.items():
        if model in (None, kind):
            for index, (name, data_type, custom) in enumerate(attributes, 1):
                listed.append({
                    "type": "data_attribute", **({"id": 100 + index} if custom else {}), "model": kind, "name": name,
                    "full_name": f"custom_attributes.{name}" if custom else name,
                    "label": name.replace("_", " ").capitalize(), "description": "", "data_type": data_type,
                    "api_writable": True, "ui_writable": True, "messenger_writable": False, "custom": custom,
                    "archived": False, **({"admin_id": "991267001", "created_at": SEEDED, "updated_at": SEEDED} if custom else {}),
                })  # fmt: skip
    return listed


def ticket_type_attributes(ticket_type_id: str) -> dict[str, Any]:
    """A ticket type's `ticket_type_attributes` list."""
    return {"type": "ticket_type_attributes.list", "ticket_type_attributes": [
        {"type": "ticket_type_attribute", "id": aid, "workspace_id": "sandbox", "name": name, "description": label,
         "data_type": data_type, "input_options": {}, "order": int(aid) - 11, "required_to_create": name == "_default_title_",
         "required_to_create_for_contacts": False, "visible_on_create": True, "visible_to_contacts": True,
         "default": name.startswith("_default_"), "ticket_type_id": int(ticket_type_id), "archived": False,
         "created_at": SEEDED, "updated_at": SEEDED}
        for aid, name, data_type, label in TICKET_TYPE_ATTRIBUTES
    ]}  # fmt: skip
