"""CRMFactory: crm_type to its connector class, over the one plugin registry (registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import BaseCRMConnector
from connectors.context import ConnectorContext
from registry import CRMS

__all__ = ["BaseCRMConnector", "CRMFactory"]


class CRMFactory:
    """Builds the CRM connector for a request; the classes come from registry.PLUGINS."""

    @classmethod
    def register(cls, connector: type[BaseCRMConnector]) -> type[BaseCRMConnector]:
        """Add a connector class under its `vendor` slug."""
        return CRMS.register(connector)

    @classmethod
    def supported(cls) -> list[str]:
        """The crm_type values this service serves."""
        return CRMS.supported()

    @classmethod
    def connector_class(cls, crm_type: str) -> type[BaseCRMConnector]:
        """The class for a slug, or a 400 that lists the supported ones."""
        return CRMS.connector_class(crm_type)

    @classmethod
    def create(cls, crm_type: str, config: Mapping[str, Any] | None, context: ConnectorContext) -> BaseCRMConnector:
        """A ready connector: config merged over the environment, validated, host-guarded."""
        return CRMS.create(crm_type, config, context)
