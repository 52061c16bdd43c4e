"""What a LiveChat connection is configured with: the token and how it authenticates, the license, the region, where chats go."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.vendor_config import VendorConfig
from livechat_links import DEFAULT_TEMPLATE, check_url_template

REGIONS = ("dal", "fra")  # LiveChat's data centres; tokens carry theirs as a prefix (`fra:...`)


class LiveChatConfig(VendorConfig):
    """`api_key` (PAT or OAuth token), `account_id` for PAT Basic auth, `license_id`, and where chats go.

    `client_id` (the app that issued the OAuth token) turns on the agent token grant at `accounts_url`.
    """

    license_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    api_key: SecretStr | None = None
    account_id: str | None = Field(None, max_length=200)
    region: Literal["dal", "fra"] | None = None
    group_id: int = Field(0, ge=0)
    agent_id: str | None = Field(None, min_length=1, max_length=254)
    chat_url_template: str = DEFAULT_TEMPLATE
    fallback_crm: str | None = Field(None, max_length=50)
    client_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    accounts_url: str | None = None

    @field_validator("chat_url_template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        """Bare placeholders we can fill, in a web link: a bad template fails now, not after the chat exists."""
        return check_url_template(value)

    @model_validator(mode="after")
    def _needs_credentials(self) -> LiveChatConfig:
        """A token to act with, and the license (organization) the customer-side calls name."""
        if not self.api_key or not self.license_id:
            raise ValueError("give api_key and license_id")
        return self
