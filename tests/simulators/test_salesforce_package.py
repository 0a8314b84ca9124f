"""The Salesforce DX source tree in vendor/salesforce is what a real org gets from
`sf project deploy start`, and what the simulated org is built from: every custom name
the Salesforce and Certinia connectors use must be in it, in valid metadata, granted by
the integration user's permission set; the simulator refuses what it lacks."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx

from simulators.salesforce import package
from tests.simulators.conftest import SF_V

REPO = Path(__file__).resolve().parents[2]
NS = "{http://soap.sforce.com/2006/04/metadata}"
CONNECTORS = [REPO / "connectors" / "salesforce", REPO / "connectors" / "certinia"]
CUSTOM_NAME = re.compile(r"\bD2R_[A-Za-z0-9_]+?__[cr]\b")
PERMISSION_SET = package.SOURCE / "permissionsets" / "D2R_Integration.permissionset-meta.xml"


def _package_names() -> set[str]:
    fields = {f.name for fs in package.custom_fields().values() for f in fs}
    return fields | {o.name for o in package.custom_objects()}


def test_every_custom_name_the_connectors_use_is_in_the_package() -> None:
    used: dict[str, set[str]] = {}
    for folder in CONNECTORS:
        for source in folder.rglob("*.py"):
            for name in CUSTOM_NAME.findall(source.read_text()):
                used.setdefault(name.removesuffix("__r") + "__c" if name.endswith("__r") else name, set()).add(
                    str(source.relative_to(REPO))
                )
    assert len(used) > 30  # the scan sees the connectors' names
    missing = {name: sorted(where) for name, where in used.items() if name not in _package_names()}
    assert not missing, (
        "custom names the connectors use but vendor/salesforce does not deploy (add a "
        f"<Object>/fields/<Name>.field-meta.xml): {missing}"
    )


def test_the_package_is_valid_sfdx_source() -> None:
    project = json.loads((package.SOURCE.parents[2] / "sfdx-project.json").read_text())
    assert [d["path"] for d in project["packageDirectories"]] == ["force-app"]
    assert re.fullmatch(r"\d+\.0", project["sourceApiVersion"])
    files = sorted((package.SOURCE / "objects").glob("*/fields/*.field-meta.xml"))
    assert len(files) > 50
    for path in files:
        root = ET.parse(path).getroot()
        assert root.tag == NS + "CustomField", path
        text = {child.tag.removeprefix(NS): (child.text or "").strip() for child in root}
        assert text["fullName"] == path.name.removesuffix(".field-meta.xml"), path
        assert len(text["fullName"]) <= 43 and text["fullName"].endswith("__c"), path  # 40 + "__c"
        assert text["label"] and len(text["label"]) <= 40, path
        kind = text["type"]
        if kind == "Text":
            assert 1 <= int(text["length"]) <= 255, path
        elif kind == "LongTextArea":
            assert int(text["length"]) <= 131072 and int(text["visibleLines"]) > 0, path
        elif kind in ("Number", "Currency"):
            assert int(text["scale"]) <= int(text["precision"]) <= 18, path
        elif kind == "Checkbox":
            assert text["defaultValue"] in ("true", "false"), path  # Salesforce requires it
        elif kind == "Picklist":
            assert root.find(f"{NS}valueSet/{NS}valueSetDefinition/{NS}value") is not None, path
        else:
            assert kind in ("Date", "DateTime", "TextArea"), path
        if text.get("unique") == "true":
            assert text.get("externalId") == "true" and kind == "Text", path
    objects = package.custom_objects()
    assert [o.name for o in objects] == ["D2R_Service_Package__c"]
    meta = ET.parse(package.SOURCE / "objects" / "D2R_Service_Package__c" / "D2R_Service_Package__c.object-meta.xml")
    for required in ("label", "pluralLabel", "nameField", "deploymentStatus", "sharingModel"):
        assert meta.getroot().find(NS + required) is not None, required


def test_the_permission_set_grants_every_field_of_the_package() -> None:
    root = ET.parse(PERMISSION_SET).getroot()
    granted = {
        fp.findtext(NS + "field"): (fp.findtext(NS + "readable"), fp.findtext(NS + "editable"))
        for fp in root.iter(NS + "fieldPermissions")
    }
    deployed = {
        f"{folder.name}.{p.name.removesuffix('.field-meta.xml')}"
        for folder in (package.SOURCE / "objects").iterdir()
        for p in (folder / "fields").glob("*.field-meta.xml")
    }
    assert set(granted) == deployed
    assert all(g == ("true", "true") for g in granted.values())
    readable = {op.findtext(NS + "object") for op in root.iter(NS + "objectPermissions")}
    assert {"Account", "Opportunity", "pse__Proj__c", "D2R_Service_Package__c", "pse__Region__c"} <= readable
    assert {"ApiEnabled", "EditTask"} <= {up.findtext(NS + "name") for up in root.iter(NS + "userPermissions")}


def test_activity_fields_reach_task_and_unique_external_ids_are_enforced() -> None:
    task = {f.name: f for f in package.custom_fields()["Task"]}
    assert task["D2R_External_Id__c"].external_id and not task["D2R_External_Id__c"].unique
    project = {f.name: f for f in package.custom_fields()["pse__Proj__c"]}
    assert project["D2R_External_Id__c"].unique and project["D2R_Unbilled_WIP__c"].type == "num"


async def test_the_simulated_org_refuses_what_the_package_lacks(sf: httpx.AsyncClient) -> None:
    r = await sf.post(f"{SF_V}/sobjects/Account", json={"Name": "X", "D2R_Not_Deployed__c": "y"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"
    r = await sf.get(f"{SF_V}/query", params={"q": "SELECT D2R_Not_Deployed__c FROM Account"})
    assert r.status_code == 400 and "No such column" in r.json()[0]["message"]
    r = await sf.post(f"{SF_V}/sobjects/Contact", json={"LastName": "X", "D2R_Home_Legal_Entity__c": "X" * 17})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "STRING_TOO_LONG"  # the package says 16
    fields = {f["name"] for f in (await sf.get(f"{SF_V}/sobjects/Task/describe")).json()["fields"]}
    assert {"D2R_Audience__c", "D2R_External_Id__c"} <= fields
