"""Which system owns which master-data object and field: the firm's ownership table.

It is configuration (a TOML file named by the settings' `ownership_file`; the shipped
default is `domain/ownership.toml`), read once at start. A file that names an unknown
object or field, or gives a field to a system that cannot own it, is refused with a
message naming the line to fix, so a worker never runs on a table it cannot honour.

What a firm may change (docs/operations.md, "Master data: who owns what"): customer
billing/tax data may be owned by the CRM or the ERP; account identity and hierarchy stay
with the CRM, consultants and projects with the PSA, and ERP employees are derived (d2r
writes them from the PSA's consultants and never reads them back as a source).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

System = Literal["crm", "psa", "erp"]

SHIPPED_FILE = Path(__file__).with_name("ownership.toml")

# object -> field -> the systems that may own it (the first is the shipped default)
OWNABLE: dict[str, dict[str, tuple[System, ...]]] = {
    "customer": {
        "name": ("crm",),
        "parent_id": ("crm",),  # the account hierarchy
        "tax_id": ("crm", "erp"),  # billing/tax data: the firm chooses
    },
    "consultant": {
        "name": ("psa",),
        "home_legal_entity": ("psa",),
        "cost_rate": ("psa",),
    },
    "project": {
        "name": ("psa",),
        "stage": ("psa",),
    },
}
# records d2r writes from another object and never treats as a source
DERIVED: dict[str, str] = {"employee": "consultant", "vendor": "consultant"}


class OwnershipError(ValueError):
    """The ownership file cannot be read, or holds a table d2r cannot honour."""


class Ownership(BaseModel):
    """object -> field -> owning system; `derived`: ERP record -> the object it comes from."""

    model_config = ConfigDict(frozen=True)

    fields: dict[str, dict[str, System]]
    derived: dict[str, str]

    def owner(self, obj: str, field: str) -> System:
        return self.fields[obj][field]

    def owned_by(self, obj: str, system: str) -> list[str]:
        return sorted(f for f, s in self.fields.get(obj, {}).items() if s == system)


def default_ownership() -> Ownership:
    return load_ownership_file(SHIPPED_FILE)


def load_ownership_file(path: Path) -> Ownership:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OwnershipError(f"ownership file {path}: {exc}") from exc
    return parse_ownership(raw, str(path))


def parse_ownership(raw: dict[str, object], where: str = "ownership") -> Ownership:
    """Validate a table; fields it leaves out keep their shipped owner."""
    fields: dict[str, dict[str, System]] = {
        obj: {f: owners[0] for f, owners in fs.items()} for obj, fs in OWNABLE.items()
    }
    derived = dict(DERIVED)
    for obj, section in raw.items():
        if not isinstance(section, dict):
            raise OwnershipError(f"{where}: [{obj}] must be a table of field = system")
        if obj in DERIVED:
            source = section.get("derived_from")
            if set(section) != {"derived_from"} or source != DERIVED[obj]:
                raise OwnershipError(
                    f"{where}: [{obj}] is derived by d2r: only derived_from = {DERIVED[obj]!r} is allowed"
                )
            continue
        if obj not in OWNABLE:
            known = ", ".join(sorted([*OWNABLE, *DERIVED]))
            raise OwnershipError(f"{where}: unknown object [{obj}] (known: {known})")
        for field, system in section.items():
            allowed = OWNABLE[obj].get(field)
            if allowed is None:
                raise OwnershipError(f"{where}: unknown field {obj}.{field} (known: {', '.join(sorted(OWNABLE[obj]))})")
            if system not in allowed:
                raise OwnershipError(
                    f"{where}: {obj}.{field} = {system!r} is not allowed; it can be owned by "
                    + " or ".join(repr(s) for s in allowed)
                )
            fields[obj][field] = system
    try:
        return Ownership(fields=fields, derived=derived)
    except ValidationError as exc:  # pragma: no cover - the checks above cover every value
        raise OwnershipError(f"{where}: {exc}") from exc
