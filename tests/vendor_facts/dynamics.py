"""Dynamics 365's row in the shared contract tests (tests/test_api_contract.py `Vendor`): what its emulator
refuses and how its errors read. Found by the vendor slug; seed ids come from the connector's `sandbox_seed`."""

from __future__ import annotations

from typing import Any


# Dynamics 365 (Dataverse): GUID ids; the token comes from Entra ID, whose refusal names its AADSTS number.
DYNAMICS_CASE = "a1b2c3d4-0000-4000-8000-{:012d}"
FACTS: dict[str, Any] = dict(
    unknown_ids={"ticket": (DYNAMICS_CASE.format(999999), 404), "customer": ("6f1c1c0e-0000-4000-8000-000000999999", 404)},
    bad_ids=("12345", "6f1c1c0e-0000-4000-8000-00000000100", "x' or contactid ne null or '", "../contacts",
             "6f1c1c0e-0000-4000-8000-000000001001)", "{6f1c1c0e-0000-4000-8000-000000001001}"),
    invalid_credentials=({"client_secret": "invalid"},),
    auth_upstream_status=401,
    auth_message="AADSTS7000215",
    ssrf_configs=(
        {"instance_url": "http://169.254.169.254/latest/meta-data"},
        {"instance_url": "https://evil.example.com"},
        {"instance_url": "https://contoso.crm.dynamics.com.evil.com"},
        {"instance_url": "http://contoso.crm.dynamics.com"},
        {"instance_url": "http://127.0.0.1:22"},
        {"authority_url": "https://login.microsoftonline.com.evil.com"},
        {"authority_url": "http://169.254.169.254"},
    ),
    sandbox_url_key="instance_url",
    first_new_ticket_id=DYNAMICS_CASE.format(54322),
    create_path="/incidents",
    read_path="/incidents(",  # not the token endpoint, whose calls depend on what earlier tests cached
    rate_limit_message="0x80072322",  # service protection's "number of requests" limit
    redirect_audited=False,
)
