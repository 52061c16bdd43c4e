"""Zendesk's row in the shared contract tests (tests/test_api_contract.py `Vendor`): what its emulator
refuses and how its errors read. Found by the vendor slug; seed ids come from the connector's `sandbox_seed`."""

from __future__ import annotations

from typing import Any

from tests.vendor_facts import SSRF_BASE_URLS

CONFIG = {"subdomain": "your-company", "email": "admin@yourcompany.com", "api_token": "your_token"}

FACTS: dict[str, Any] = dict(
    unknown_ids={"ticket": ("999999", 404), "customer": ("999999", 404)},
    bad_ids=("abc", "12-3", "../3001"),
    config=CONFIG,
    invalid_credentials=({"api_token": "invalid"},),
    auth_upstream_status=401,
    auth_message="Couldn't authenticate you",
    ssrf_configs=(
        {"subdomain": "169.254.169.254"},
        {"subdomain": "evil.com#"},
        {"subdomain": "a/../../x"},
        *SSRF_BASE_URLS,
        {"base_url": "http://127.0.0.1:22"},
        {"base_url": "gopher://internal:70"},
    ),
    sandbox_url_key="base_url",
    first_new_ticket_id="12346",
    create_path="/tickets",
)
