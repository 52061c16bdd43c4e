"""CRMFactory: the registry from crm_type to its connector class; an unknown slug is one typed error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import BaseCRMConnector
from connectors.freshdesk import FreshdeskConnector
from connectors.http import ConnectorContext
from connectors.hubspot import HubSpotConnector
from connectors.salesforce import SalesforceConnector
from connectors.zendesk import ZendeskConnector
from errors import UnsupportedCRM

__all__ = ["BaseCRMConnector", "CRMFactory"]


class CRMFactory:
    """Builds the connector for a request; adding a CRM is one class and one line in CONNECTORS."""

    _registry: dict[str, type[BaseCRMConnector]] = {}

    @classmethod
    def register(cls, connector: type[BaseCRMConnector]) -> type[BaseCRMConnector]:
        """Add a connector class under its `vendor` slug."""
        cls._registry[connector.vendor] = connector
        return connector

    @classmethod
    def supported(cls) -> list[str]:
        """The crm_type values this service serves."""
        return sorted(cls._registry)

    @classmethod
    def connector_class(cls, crm_type: str) -> type[BaseCRMConnector]:
        """The class for a slug, or a 400 that lists the supported ones."""
        try:
            return cls._registry[crm_type.strip().lower()]
        except KeyError:
            supported = ", ".join(cls.supported())
            raise UnsupportedCRM(f"unsupported crm_type {crm_type!r}; supported: {supported}") from None

    @classmethod
    def create(cls, crm_type: str, config: Mapping[str, Any] | None, context: ConnectorContext) -> BaseCRMConnector:
        """A ready connector: config merged over the environment, validated, host-guarded."""
        connector = cls.connector_class(crm_type).from_request(config, context)
        assert isinstance(connector, BaseCRMConnector)
        return connector


CONNECTORS: tuple[type[BaseCRMConnector], ...] = (
    FreshdeskConnector,
    HubSpotConnector,
    SalesforceConnector,
    ZendeskConnector,
)
for _connector in CONNECTORS:
    CRMFactory.register(_connector)
