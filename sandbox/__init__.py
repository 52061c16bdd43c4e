"""The sandbox: real-wire emulators of each vendor, on loopback, for `make run`, tests and benchmarks."""

from __future__ import annotations

from sandbox.core import Emulator, SandboxRunner
from sandbox.freshdesk import FreshdeskEmulator
from sandbox.hubspot import HubSpotEmulator
from sandbox.livechat import LiveChatEmulator
from sandbox.salesforce import SalesforceEmulator
from sandbox.zendesk import ZendeskEmulator

EMULATORS: tuple[type[Emulator], ...] = (
    FreshdeskEmulator,
    HubSpotEmulator,
    LiveChatEmulator,
    SalesforceEmulator,
    ZendeskEmulator,
)

# Credentials the sandbox-mode service uses when neither the environment nor the request gives any.
# The emulators accept any credential except the word `invalid`.
SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {
    "freshdesk": {"domain": "sandbox.freshdesk.com", "api_key": "sandbox-key"},
    # The portal has a custom contact property customer_tier (HubSpot has no built-in tier).
    "hubspot": {"api_key": "sandbox-token", "tier_property": "customer_tier"},
    # A personal access token (Basic account_id:token); license_id stands for the organization id.
    "livechat": {"license_id": "sandbox-organization", "account_id": "voice-bot@example.com", "api_key": "sandbox-pat"},
    # The client-credentials flow runs against the emulator's token endpoint; the org has Account.Tier__c.
    "salesforce": {
        "instance_url": "https://sandbox.my.salesforce.com",
        "client_id": "sandbox-client-id",
        "client_secret": "sandbox-client-secret",
        "tier_field": "Account.Tier__c",
    },
    "zendesk": {"subdomain": "sandbox", "email": "agent@example.com", "api_token": "sandbox-token"},
}


async def start_sandbox(host: str = "127.0.0.1", port: int = 0) -> SandboxRunner:
    """Start every emulator on one loopback port; each vendor lives under /{name}."""
    runner = SandboxRunner({cls.name: cls() for cls in EMULATORS}, SANDBOX_CREDENTIALS)
    await runner.start(host, port)
    return runner
