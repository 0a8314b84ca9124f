"""d2r's Salesforce metadata, read from the SFDX source tree in vendor/salesforce (the
files `sf project deploy start` deploys to a real org): the simulated org gets exactly
the custom fields and objects a real org gets, so the two cannot drift.

Custom fields of activities live on the `Activity` object in metadata and appear on
Task (and Event) in the API, as in Salesforce."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "vendor" / "salesforce" / "force-app" / "main" / "default"
_NS = "{http://soap.sforce.com/2006/04/metadata}"
ACTIVITY_OBJECTS = ("Task",)  # the API objects that carry Activity's custom fields

# metadata field type -> the simulator's field type (see schema.py)
_TYPES = {
    "Text": "str",
    "TextArea": "str",
    "LongTextArea": "str",
    "Email": "str",
    "Phone": "str",
    "Url": "str",
    "Number": "num",
    "Currency": "num",
    "Percent": "num",
    "Checkbox": "bool",
    "Date": "date",
    "DateTime": "datetime",
}
_TEXT_AREA_LENGTH = 255  # a TextArea field has no <length>: it holds 255 characters


@dataclass(frozen=True)
class CustomField:
    name: str
    type: str  # the simulator's type string: str, num, bool, date, datetime, ref:<Object>, pick:<a|b>
    length: int | None
    external_id: bool
    unique: bool
    required: bool


@dataclass(frozen=True)
class CustomObject:
    name: str
    label: str
    fields: tuple[CustomField, ...]


def _text(el: ET.Element, tag: str) -> str | None:
    found = el.find(_NS + tag)
    return None if found is None or found.text is None else found.text.strip()


def parse_field(path: Path) -> CustomField:
    root = ET.parse(path).getroot()
    name = _text(root, "fullName") or path.name.removesuffix(".field-meta.xml")
    kind = _text(root, "type") or ""
    if kind == "Picklist":
        values = [_text(v, "fullName") or "" for v in root.iter(_NS + "value")]
        value_set = root.find(_NS + "valueSet")
        restricted = value_set is not None and _text(value_set, "restricted") == "true"
        sim_type = "pick:" + "|".join(values) if restricted else "str"
    elif kind in ("Lookup", "MasterDetail"):
        sim_type = "ref:" + (_text(root, "referenceTo") or "")
    elif kind in _TYPES:
        sim_type = _TYPES[kind]
    else:
        raise ValueError(f"{path}: field type {kind!r} is not one the simulator knows")
    length = _text(root, "length")
    return CustomField(
        name=name,
        type=sim_type,
        length=int(length) if length else (_TEXT_AREA_LENGTH if kind == "TextArea" else None),
        external_id=_text(root, "externalId") == "true",
        unique=_text(root, "unique") == "true",
        required=_text(root, "required") == "true" or kind == "MasterDetail",
    )


@cache
def custom_fields(source: Path = SOURCE) -> dict[str, tuple[CustomField, ...]]:
    """API object -> the package's custom fields on it (Activity's on Task)."""
    out: dict[str, tuple[CustomField, ...]] = {}
    for folder in sorted((source / "objects").iterdir()):
        fields = tuple(parse_field(p) for p in sorted((folder / "fields").glob("*.field-meta.xml")))
        for target in ACTIVITY_OBJECTS if folder.name == "Activity" else (folder.name,):
            out[target] = fields
    return out


@cache
def custom_objects(source: Path = SOURCE) -> tuple[CustomObject, ...]:
    """The custom objects the package creates (those with an .object-meta.xml)."""
    out = []
    for meta in sorted((source / "objects").glob("*/*.object-meta.xml")):
        root = ET.parse(meta).getroot()
        name = meta.name.removesuffix(".object-meta.xml")
        out.append(CustomObject(name=name, label=_text(root, "label") or name, fields=custom_fields(source)[name]))
    return tuple(out)
