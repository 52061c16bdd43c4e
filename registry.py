"""The one plugin registry (Netflix dispatch's plugin manager is the model): connector classes by slug.

Everything vendor-specific derives from the classes registered here: settings' `{VENDOR}_{FIELD}` variables
(from each config model), the sandbox's emulators and credentials, the OpenAPI examples, the supported lists
in errors, readiness and the contract tests. Adding a vendor is one class, one emulator and one line in PLUGINS.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from connectors.base import BaseCRMConnector
from connectors.chat import ChatConnector
from connectors.dynamics import DynamicsConnector
from connectors.freshdesk import FreshdeskConnector
from connectors.context import ConnectorContext
from connectors.http import UpstreamConnector
from connectors.hubspot import HubSpotConnector
from connectors.intercom import IntercomConnector
from connectors.salesforce import SalesforceConnector
from connectors.servicenow import ServiceNowConnector
from connectors.zendesk import ZendeskConnector
from errors import UnsupportedCRM
from livechat_connector import LiveChatConnector

C = TypeVar("C", bound=UpstreamConnector)

# Every vendor this service serves: CRMs and chat (handoff) connectors alike. The kind follows from the base class.
PLUGINS: tuple[type[UpstreamConnector], ...] = (
    DynamicsConnector,
    FreshdeskConnector,
    HubSpotConnector,
    IntercomConnector,  # both a CRM and a chat (handoff) connector
    SalesforceConnector,
    ServiceNowConnector,
    ZendeskConnector,
    LiveChatConnector,
)


class Registry(Generic[C]):
    """Connector classes of one kind (CRM or chat) by slug; an unknown slug is one typed 400 listing the known ones."""

    def __init__(self, kind: type[C], field: str) -> None:
        self.kind = kind
        self.field = field  # the request field that names the slug: crm_type or chat_type
        self._classes: dict[str, type[C]] = {}

    def register(self, connector: type[C]) -> type[C]:
        """Add a connector class under its `vendor` slug (usable as a class decorator)."""
        self._classes[connector.vendor] = connector
        return connector

    def supported(self) -> list[str]:
        """The slugs this registry serves, sorted."""
        return sorted(self._classes)

    def __iter__(self) -> Iterator[type[C]]:
        return iter(self._classes[slug] for slug in self.supported())

    def connector_class(self, slug: str) -> type[C]:
        """The class for a slug, or a 400 that lists the supported ones."""
        try:
            return self._classes[slug.strip().lower()]
        except KeyError:
            supported = ", ".join(self.supported())
            raise UnsupportedCRM(f"unsupported {self.field} {slug!r}; supported: {supported}") from None

    def create(self, slug: str, config: Mapping[str, Any] | None, context: ConnectorContext) -> C:
        """A ready connector: config merged over the environment, validated, host-guarded."""
        connector = self.connector_class(slug).from_request(config, context)
        assert isinstance(connector, self.kind)
        return connector


CRMS: Registry[BaseCRMConnector] = Registry(BaseCRMConnector, "crm_type")
CHATS: Registry[ChatConnector] = Registry(ChatConnector, "chat_type")


def register(connector: type[UpstreamConnector]) -> type[UpstreamConnector]:
    """Register a connector in the registry of each kind it is (a vendor may be both a CRM and a chat target)."""
    kinds = [registry for registry in (CRMS, CHATS) if issubclass(connector, registry.kind)]
    if not kinds:
        raise TypeError(f"{connector.__name__} is neither a CRM nor a chat connector")
    for registry in kinds:
        registry.register(connector)  # type: ignore[arg-type]
    return connector


def all_connectors() -> list[type[UpstreamConnector]]:
    """Every registered connector class once, CRMs first, each kind sorted by slug."""
    return list(dict.fromkeys([*CRMS, *CHATS]))


for _plugin in PLUGINS:
    register(_plugin)
