"""An installed d2r (a wheel, not this checkout) carries the vendor trees the simulators read:
the NetSuite SDF objects and the Salesforce SFDX source, installed as `vendor/` beside the
packages, which is where simulators/netsuite/sdf.py and simulators/salesforce/package.py look
(two levels above their module, in a checkout and in site-packages alike)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from setuptools.dist import Distribution

from simulators.netsuite import sdf
from simulators.salesforce import package

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "vendor"


def test_the_package_data_ships_every_file_of_the_vendor_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    dist = Distribution()
    with warnings.catch_warnings():  # older setuptools call [tool.setuptools] "beta"
        warnings.simplefilter("ignore")
        dist.parse_config_files()  # pyproject.toml, as a wheel build reads it
    assert "vendor" in (dist.packages or [])
    build = dist.get_command_obj("build_py")
    build.ensure_finalized()
    build.manifest_files = {}  # only what package-data selects (no sdist manifest)
    shipped = {Path(f).resolve().relative_to(VENDOR) for f in build.find_data_files("vendor", "vendor")}
    # every file but dotfiles (a .gitkeep holding an empty folder in git)
    every = {p.relative_to(VENDOR) for p in VENDOR.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert shipped == every
    assert Path("netsuite/src/Objects/custbody_d2r_opportunity_id.xml") in shipped
    assert Path("salesforce/sfdx-project.json") in shipped


def test_the_simulators_look_for_them_beside_their_packages() -> None:
    # site-packages/simulators/netsuite/sdf.py -> site-packages/vendor/netsuite/src/Objects
    assert sdf.DEFAULT_OBJECTS == Path(sdf.__file__).resolve().parents[2] / "vendor" / "netsuite" / "src" / "Objects"
    assert package.SOURCE.is_relative_to(Path(package.__file__).resolve().parents[2] / "vendor" / "salesforce")
    assert sdf.DEFAULT_OBJECTS.is_dir() and package.SOURCE.is_dir()
