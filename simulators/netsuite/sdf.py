"""The custom fields of the simulated account, read from d2r's SDF project
(vendor/netsuite/src/Objects/*.xml, deployed to a real account with `suitecloud
project:deploy`), so the simulator refuses a field a real account would not have.

Where a field applies (SDF's own flags): transaction body fields `bodysale` (sales order,
invoice, credit memo), `bodyjournal`, `bodycustomerpayment`; column fields `colsale` (their
item lines), `coljournal` (journal lines), `coltime` (time bills); entity fields
`appliestocustomer`, `appliestoproject`, `appliestoemployee`. A field's kind comes from its
`fieldtype` (CHECKBOX, DATE, FLOAT / CURRENCY / INTEGER / PERCENT, else text).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_OBJECTS = Path(__file__).resolve().parents[2] / "vendor" / "netsuite" / "src" / "Objects"

_SALES = ("salesOrder", "invoice", "creditMemo")
# SDF applies-to flag -> (record types, where: "body" or a sublist name)
_APPLIES: dict[str, tuple[tuple[str, ...], str]] = {
    "bodysale": (_SALES, "body"),
    "bodyjournal": (("journalEntry",), "body"),
    "bodycustomerpayment": (("customerPayment",), "body"),
    "colsale": (_SALES, "item"),
    "coljournal": (("journalEntry",), "line"),
    "coltime": (("timeBill",), "body"),
    "appliestocustomer": (("customer",), "body"),
    "appliestoproject": (("job",), "body"),
    "appliestoemployee": (("employee",), "body"),
}
_KINDS = {"CHECKBOX": "bool", "DATE": "date", "FLOAT": "num", "CURRENCY": "num", "INTEGER": "num", "PERCENT": "num"}
# A simulator-only field: NetSuite's Period Close Checklist locks a period per subsidiary,
# which the REST API does not expose; the simulator keeps those locks on the period.
SIMULATOR_FIELDS = {("accountingPeriod", "body", "custrecord_d2r_locked_subsidiaries"): "str"}


@dataclass
class CustomFields:
    """(record type, "body" or sublist, field id) -> kind."""

    fields: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def kind(self, rtype: str, where: str, name: str) -> str | None:
        return self.fields.get((rtype, where, name.lower()))

    def columns(self) -> dict[str, str]:
        """field id -> kind, for SuiteQL (its tables say which prefixes they carry)."""
        return {name: kind for (_t, _w, name), kind in self.fields.items()}


def load(objects: Path = DEFAULT_OBJECTS) -> CustomFields:
    if not objects.is_dir():
        raise FileNotFoundError(f"the SDF objects folder {objects} is missing (vendor/netsuite/src/Objects)")
    out = CustomFields(dict(SIMULATOR_FIELDS))
    for path in sorted(objects.glob("*.xml")):
        root = ET.parse(path).getroot()
        scriptid = (root.get("scriptid") or "").lower()
        if not scriptid.startswith(("custbody", "custcol", "custentity", "custrecord", "custitem")):
            continue  # roles and other objects
        kind = _KINDS.get((root.findtext("fieldtype") or "").strip().upper(), "str")
        for flag, (types, where) in _APPLIES.items():
            if (root.findtext(flag) or "").strip().upper() == "T":
                for rtype in types:
                    out.fields[(rtype, where, scriptid)] = kind
    return out
