"""Intercom's row in the shared contract tests (tests/test_api_contract.py `Vendor`): what its emulator
refuses and how its errors read. Found by the vendor slug; seed ids come from the connector's `sandbox_seed`."""

from __future__ import annotations

from typing import Any

from tests.vendor_facts import SSRF_BASE_URLS

FACTS: dict[str, Any] = dict(
    unknown_ids={"ticket": ("999999", 404), "customer": ("6657a1c2b1e5f2a3c4d5ffff", 404)},
    bad_ids=("abc", "12-3", "../3001", "6657A1C2B1E5F2A3C4D50001/x"),
    invalid_credentials=({"access_token": "invalid"},),
    auth_upstream_status=401,
    auth_message="Access Token Invalid",
    ssrf_configs=(
        {"region": "169.254.169.254"},
        {"region": "eu.evil.com"},
        *SSRF_BASE_URLS,
        {"base_url": "http://127.0.0.1:22"},
        {"base_url": "gopher://internal:70"},
    ),
    sandbox_url_key="base_url",
    first_new_ticket_id="203",
    create_path="/tickets",
    rate_limit_message="rate_limit_exceeded",
    echo_auth_audited=False,
    redirect_audited=False,
)
