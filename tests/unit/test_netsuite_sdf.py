"""d2r's NetSuite SDF project (vendor/netsuite): every custom field the connector names is
an object of the project (so `suitecloud project:deploy` creates what d2r writes), the
project has SDF's shape, and the simulator builds its custom fields from these same files."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from simulators.netsuite import sdf

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "vendor" / "netsuite"
OBJECTS = PROJECT / "src" / "Objects"
NAME = re.compile(r"""["'](cust(?:body|col|entity|record|item)_[a-z0-9_]*[a-z0-9])["']""")
# object type by script id prefix (SuiteCloud's object types)
ROOTS = {
    "custbody": "transactionbodycustomfield",
    "custcol": "transactioncolumncustomfield",
    "custentity": "entitycustomfield",
    "customrole": "role",
}


def connector_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "connectors" / "netsuite").glob("*.py"):
        names |= set(NAME.findall(path.read_text()))
    return names


def test_every_custom_field_the_connector_names_is_in_the_sdf_project() -> None:
    names = connector_names()
    assert len(names) > 20, names  # the scan sees them
    objects = {p.stem for p in OBJECTS.glob("*.xml")}
    simulator_only = {name for (_t, _w, name) in sdf.SIMULATOR_FIELDS}
    assert names - objects == simulator_only  # per-subsidiary period locks: see sdf.SIMULATOR_FIELDS


def test_objects_are_sdf_xml_named_by_their_script_id() -> None:
    for path in sorted(OBJECTS.glob("*.xml")):
        root = ET.parse(path).getroot()
        assert root.get("scriptid") == path.stem, path
        prefix = path.stem.split("_", 1)[0]
        assert root.tag == ROOTS[prefix], path
        if root.tag != "role":
            assert root.findtext("label") and root.findtext("fieldtype") in {"TEXT", "CHECKBOX"}, path
            flags = [
                child.tag for child in root if child.text == "T" and child.tag.startswith(("body", "col", "appliesto"))
            ]
            assert flags, f"{path.name} applies to nothing"


def test_the_project_deploys_its_objects() -> None:
    manifest = ET.parse(PROJECT / "src" / "manifest.xml").getroot()
    assert manifest.tag == "manifest" and manifest.get("projecttype") == "ACCOUNTCUSTOMIZATION"
    deploy = ET.parse(PROJECT / "src" / "deploy.xml").getroot()
    assert deploy.findtext("objects/path") == "~/Objects/*"
    assert "defaultProjectFolder" in (PROJECT / "suitecloud.config.js").read_text()
    role = ET.parse(OBJECTS / "customrole_d2r_integration.xml").getroot()
    keys = {p.findtext("permkey") for p in role.iter("permission")}
    assert {"ADMI_LOGIN_OAUTH2", "ADMI_RESTWEBSERVICES", "REPO_ANALYTICS", "TRAN_JOURNAL"} <= keys


def test_the_simulator_reads_its_custom_fields_from_the_project() -> None:
    fields = sdf.load(OBJECTS)
    assert fields.kind("invoice", "body", "custbody_d2r_opportunity_id") == "str"
    assert fields.kind("salesOrder", "body", "custbody_d2r_cancelled") == "bool"
    assert fields.kind("journalEntry", "line", "custcol_d2r_source_id") == "str"
    assert fields.kind("timeBill", "body", "custcol_d2r_entry_id") == "str"
    assert fields.kind("customer", "body", "custentity_d2r_crm_account_id") == "str"
    # where the project does not apply a field, the account has none
    assert fields.kind("journalEntry", "body", "custbody_d2r_cancelled") is None
    assert fields.kind("invoice", "item", "custcol_d2r_source_id") is None
