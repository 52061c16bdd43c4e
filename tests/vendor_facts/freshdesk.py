"""Freshdesk's row in the shared contract tests (tests/test_api_contract.py `Vendor`): what its emulator
refuses and how its errors read. Found by the vendor slug; seed ids come from the connector's `sandbox_seed`."""

from __future__ import annotations

from typing import Any

from tests.vendor_facts import SSRF_BASE_URLS

CONFIG = {"domain": "yourcompany.freshdesk.com", "api_key": "your_api_key"}

FACTS: dict[str, Any] = dict(
    # Freshdesk answers an unknown id with an empty 404 body.
    unknown_ids={"ticket": ("999999", 404), "customer": ("424242", 404)},
    bad_ids=("abc", "12-3", "../3001"),
    config=CONFIG,
    invalid_credentials=({"api_key": "invalid"},),
    auth_upstream_status=401,
    auth_message="You have to be logged in",
    ssrf_configs=(
        {"domain": "169.254.169.254"},
        {"domain": "evil.com"},
        {"domain": "yourcompany.freshdesk.com.evil.com"},
        {"domain": "yourcompany.freshdesk.com/../x"},
        {"domain": "https://yourcompany.freshdesk.com"},
        {"domain": ""},
        *SSRF_BASE_URLS,
    ),
    sandbox_url_key="base_url",
    first_new_ticket_id="54322",
    create_path="/tickets",
)
