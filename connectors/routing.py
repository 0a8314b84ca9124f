"""Which instance of a system serves a legal entity: one router for every system with
several instances (an acquired unit keeps its own ERP; which PSA delivers a deal is
configuration by legal entity)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from connectors.errors import ConfigurationError
from connectors.ports import ErpConnection, PsaConnection

T = TypeVar("T")


class EntityRouter(Generic[T]):
    def __init__(
        self, instances: Mapping[str, T], routing: Mapping[str, str], default: str | None = None, system: str = "erp"
    ) -> None:
        self._instances = dict(instances)
        self._routing = dict(routing)
        self._default = default
        self._system = system

    def for_entity(self, legal_entity: str) -> T:
        return self._instances[self.instance_name(legal_entity)]

    def instance_name(self, legal_entity: str) -> str:
        name = self._routing.get(legal_entity, self._default)
        if name is None or name not in self._instances:
            raise ConfigurationError(
                f"no {self._system.upper()} instance is configured for legal entity {legal_entity!r}",
                system=self._system,
            )
        return name

    def instance(self, name: str | None = None) -> T:
        """An instance by name (inbound events name their sender, not a legal entity);
        None: the default instance."""
        chosen = name or self._default
        if chosen is None or chosen not in self._instances:
            raise ConfigurationError(f"no {self._system.upper()} instance named {chosen!r}", system=self._system)
        return self._instances[chosen]

    def named(self) -> list[tuple[str, T]]:
        """Every instance with its name, in name order (master data reaches each instance)."""
        return sorted(self._instances.items(), key=lambda item: item[0])

    def all(self) -> list[T]:
        """Every instance, in name order (a transferred consultant's time sits in the
        instance of the entity employing them that day)."""
        return [self._instances[k] for k in sorted(self._instances)]

    def names(self) -> list[str]:
        """The instance names, in the order of `all`."""
        return sorted(self._instances)


ErpRouter = EntityRouter[ErpConnection]
PsaRouter = EntityRouter[PsaConnection]
