"""HubSpot's row in the shared contract tests (tests/test_api_contract.py `Vendor`): what its emulator
refuses and how its errors read. Found by the vendor slug; seed ids come from the connector's `sandbox_seed`."""

from __future__ import annotations

from typing import Any

from tests.vendor_facts import SSRF_BASE_URLS

FACTS: dict[str, Any] = dict(
    unknown_ids={"ticket": ("999999", 404), "customer": ("999999", 404)},
    bad_ids=("abc", "12-3", "../3001"),
    invalid_credentials=({"api_key": "invalid"}, {"access_token": "invalid"}),
    auth_upstream_status=401,
    auth_message="INVALID_AUTHENTICATION",
    ssrf_configs=(
        *SSRF_BASE_URLS,
        {"base_url": "http://127.0.0.1:22"},
        {"base_url": "gopher://internal:70"},
        {"base_url": "https://user:pw@api.hubapi.com"},
    ),
    sandbox_url_key="base_url",
    first_new_ticket_id="3002",
    create_path="/tickets",  # /crm/objects/2026-09/tickets or /crm/v3/objects/tickets
    rate_limit_message="TEN_SECONDLY_ROLLING",  # HubSpot names the window that was exceeded
)
