"""A vendor's configuration: the config model's base, which fields are secrets or hosts, and validating it once.

`UpstreamConnector.merged_config` / `from_request` (connectors/http.py) resolve a request's config with these.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, get_args

import orjson
from pydantic import BaseModel, ConfigDict, SecretStr

if TYPE_CHECKING:  # a stored connection's auth factory builds on the connector (oauth/grants.py)
    from connectors.auth import Auth
    from connectors.http import UpstreamConnector


@dataclass(frozen=True)
class CredentialCheck:
    """A vendor's cheapest authenticated call, and the docs page that documents it (readiness's `?deep=true`)."""

    method: str
    path: str  # may name the connector's config fields, e.g. {api_version}
    docs: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None


class VendorConfig(BaseModel):
    """Base of each vendor's config model: request `config` merged over the environment (frozen: it is shared)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
    # Start-up checks of a field's environment value ({VENDOR}_{FIELD}), beyond the model's own validators:
    # each returns the value to keep (normalised) or raises ValueError saying what to give. Requests keep
    # the connector's own checks when it is built.
    env_checks: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}
    # Fields beyond HOST_FIELDS that say where calls go (ServiceNow's `instance`): naming one drops env secrets.
    host_fields: ClassVar[frozenset[str]] = frozenset()

    base_url: str | None = None
    # The secret the vendor's webhooks are verified with ({VENDOR}_WEBHOOK_SECRET; webhooks/verify.py says how).
    webhook_secret: SecretStr | None = None


def _secret_value(value: Any) -> Any:
    """orjson's fallback for the cache key: a secret counts by its value (anything else is not cacheable)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    raise TypeError


class ConfigCache:
    """Validated configs by (model, merged config): each tenant's config is validated once, then reused.

    Bounded (least recently used goes first) so a stream of distinct tenants cannot grow it without end;
    invalid configs are never stored, so each one still gets its 400.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Any, VendorConfig] = OrderedDict()

    def validated(self, model: type[VendorConfig], merged: Mapping[str, Any]) -> VendorConfig:
        """The model for `merged`, from the cache or validated now (pydantic's ValidationError passes through)."""
        try:  # canonical JSON keeps `1`, `1.0` and `true` apart, and is one C call
            key = (model, orjson.dumps(merged, default=_secret_value, option=orjson.OPT_SORT_KEYS))
        except TypeError:  # a value JSON cannot hold: validate every time
            return model.model_validate(merged)
        config = self._entries.get(key)
        if config is not None:
            self._entries.move_to_end(key)
            return config
        config = model.model_validate(merged)
        self._entries[key] = config
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return config


CONFIGS = ConfigCache()


class StoredConfig(dict[str, Any]):
    """A stored connection's whole config: used as is, never merged with the environment's values."""

    # A connection authorized by OAuth: builds the connector's auth from its grant (oauth/grants.py).
    auth_factory: Callable[[UpstreamConnector], Auth] | None = None


# Config fields that never change who a tenant is (inbound webhooks only): outside tenant_fingerprint.
INBOUND_FIELDS = frozenset({"webhook_secret"})

# Config fields that say where calls go: the host, tenant or region a request may name.
HOST_FIELDS = frozenset({"base_url", "subdomain", "domain", "instance_url", "region", "license_id"})


@lru_cache(maxsize=256)  # asked on every request of a model whose fields never change
def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """A config model's secrets: its SecretStr fields (tokens, API keys, client secrets)."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if info.annotation is SecretStr or SecretStr in get_args(info.annotation)
    )
