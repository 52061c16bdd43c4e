"""The OpenAPI request examples: one per vendor per endpoint, with the sandbox's seed ids (sandbox/*.py), so each works."""

from __future__ import annotations

from typing import Any

# The design's handoff example: the model's own example and the OpenAPI tables share it.
HANDOFF_CONTEXT = {
    "call_id": "call_abc123",
    "customer_name": "Ahmed Al-Mansoori",
    "customer_phone": "+971501234567",
    "customer_email": "ahmed@example.ae",
    "transcript": [
        {"role": "user", "text": "I need help with my order"},
        {"role": "bot", "text": "I'd be happy to help. What's your order number?"},
        {"role": "user", "text": "ORD12345"},
    ],
    "reason": "customer_request",
    "urgency": "medium",
    "metadata": {"order_id": "ORD12345", "language": "en"},
}

# Each CRM emulator's seed (the same caller, Ahmed, and one open ticket, under the vendor's own ids) is the
# connector class's `sandbox_seed`; deps.REQUEST_EXAMPLES expands these tables over the registry.
SeedExample = Any  # a function of one CRM's seed ids -> the request body's vendor part


def _per_vendor(body: SeedExample) -> SeedExample:
    """Marks a table entry as one example per registered CRM (expanded by `expand_examples`)."""
    return ("per_vendor", body)


def expand_examples(seeds: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """REQUEST_EXAMPLES with every per-CRM entry expanded over `seeds` ({crm_type: seed ids})."""
    def expand(value: Any) -> dict[str, Any]:
        _, body = value
        examples = {vendor: body(seed) for vendor, seed in seeds.items()}  # None: not for this vendor
        return {
            vendor: {"summary": f"{vendor} (sandbox seed)", "value": {"crm_type": vendor, **example}}
            for vendor, example in examples.items()
            if example is not None
        }

    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for path, examples in REQUEST_EXAMPLES.items():
        if isinstance(examples, tuple):
            tables[path] = expand(examples)
        else:
            tables[path] = {}
            for name, example in examples.items():
                tables[path].update(expand(example) if isinstance(example, tuple) else {name: example})
    return tables


REQUEST_EXAMPLES: dict[str, Any] = {
    "/crm/customer": _per_vendor(lambda seed: {"customer_id": seed["customer_id"]}),
    "/crm/customer/search": {
        "per vendor": _per_vendor(lambda seed: {"phone": seed["phone"]}),
        "by email": {"summary": "zendesk, by email", "value": {"crm_type": "zendesk", "email": "ahmed@example.ae"}},
    },
    "/crm/ticket": _per_vendor(lambda seed: {"ticket_id": seed["ticket_id"]}),
    "/crm/ticket/create": _per_vendor(
        lambda seed: {
            "subject": "Callback request",
            "description": "Caller asked for a callback about order ORD12345.",
            "customer_id": seed["customer_id"],
            "priority": "high",
            "tags": ["voice_ai"],
        }
    ),
    "/crm/ticket/update": _per_vendor(
        lambda seed: {
            "ticket_id": seed["ticket_id"],
            "status": "pending",
            "comment": {"body": "Customer called back; waiting on the courier.", "public": False},
        }
    ),
    "/crm/customer/context": _per_vendor(lambda seed: {"phone": seed["phone"], "include": ["tickets", "deals", "handoffs"]}),
    "/crm/ticket/search": _per_vendor(
        lambda seed: {"customer_id": seed["customer_id"], "status": ["open", "new"], "limit": 5}
        if seed["lists_tickets"]
        else None
    ),
    "/crm/ticket/batch": _per_vendor(
        lambda seed: {
            "tickets": [
                {"subject": "Callback request", "description": "Caller asked for a callback.", "customer_id": seed["customer_id"],
                 "idempotency_key": "call_abc123-1"},
                {"subject": "Refund question", "description": "Caller asked about a refund.", "customer_id": seed["customer_id"],
                 "idempotency_key": "call_abc123-2"},
            ]
        }
    ),
    "/handoff/create": {
        "livechat": {"summary": "livechat (the sandbox's agent Sara takes it)", "value": {"chat_type": "livechat", "context": HANDOFF_CONTEXT}},
        "fallback to hubspot": {
            "summary": "livechat, with a HubSpot ticket when no agent can take it",
            "value": {"chat_type": "livechat", "context": {**HANDOFF_CONTEXT, "call_id": "call_def456"}, "config": {"fallback_crm": "hubspot"}},
        },
    },
    "/handoff/status": {
        "fallback ticket": {
            "summary": "a fallback ticket (the Zendesk seed ticket)",
            "value": {"chat_type": "livechat", "handoff_id": "ticket:zendesk:12345"},
        },
        "livechat chat": {
            "summary": "the first chat a fresh sandbox opens (run /handoff/create first)",
            "value": {"chat_type": "livechat", "handoff_id": "C000000001"},
        },
    },
}
