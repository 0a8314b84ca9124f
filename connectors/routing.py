"""Which instance of a system serves a legal entity (an acquired unit keeps its own ERP)."""

from __future__ import annotations

from connectors.errors import ConfigurationError
from connectors.netsuite.client import SYSTEM
from connectors.ports import ErpPort


class ErpRouter:
    """The legal entity decides which NetSuite instance holds its books."""

    def __init__(self, instances: dict[str, ErpPort], routing: dict[str, str], default: str | None = None) -> None:
        self._instances = instances
        self._routing = routing
        self._default = default

    def for_entity(self, legal_entity: str) -> ErpPort:
        return self._instances[self.instance_name(legal_entity)]

    def instance_name(self, legal_entity: str) -> str:
        name = self._routing.get(legal_entity, self._default)
        if name is None or name not in self._instances:
            raise ConfigurationError(f"no ERP instance is configured for legal entity {legal_entity!r}", system=SYSTEM)
        return name

    def instance(self, name: str | None) -> ErpPort:
        """An instance by name (inbound events name their sender, not a legal entity)."""
        chosen = name or self._default
        if chosen is None or chosen not in self._instances:
            raise ConfigurationError(f"no ERP instance named {chosen!r}", system=SYSTEM)
        return self._instances[chosen]
