"""The layer rules of DESIGN §2, read from the code's imports (ast, every module of every
first-party package): imports go downward only, nothing imports simulators/ except tests
and the dev launcher, and above connectors/ nothing names a vendor package."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# package -> the first-party packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "reporting": {"domain"},
    "contracts": {"domain"},
    "connectors": {"domain"},
    "activities": {"connectors", "contracts", "domain", "reporting"},
    "workflows": {"contracts", "domain"},
    "security": {"domain"},
    "workers": {"workflows", "activities", "connectors", "contracts", "domain", "reporting", "security"},
    "api": {"workers", "workflows", "contracts", "connectors", "domain", "reporting", "security"},
    "cli": {"security", "domain", "workers"},  # workers: the demo it draws (demo_month_end)
    "simulators": set(),
}
# the dev launcher starts the simulators (DESIGN §2); nothing else in production code may
SIMULATOR_USERS = {"workers/devstack.py"}
# what code outside connectors/ may import from it: the ports (feeds: the pull-side event
# port), routing, the registry and what it builds from, errors
CONNECTOR_SURFACE = {"ports", "feeds", "routing", "registry", "endpoints", "errors"}


def imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # `from connectors import netsuite` names a submodule
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def violations(root: Path) -> list[str]:
    found = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for line, module in imports(path):
                top, _, rest = module.partition(".")
                if top not in ALLOWED or top == package:
                    continue
                if top == "simulators":
                    if rel not in SIMULATOR_USERS:
                        found.append(f"{rel}:{line} imports {module} (only tests and the dev launcher may)")
                elif top not in allowed:
                    found.append(f"{rel}:{line} imports {module} ({package} may import {sorted(allowed)})")
                elif top == "connectors" and rest and rest.split(".")[0] not in CONNECTOR_SURFACE:
                    found.append(f"{rel}:{line} imports {module} (above connectors/, nothing names a vendor)")
    return found


def test_imports_go_downward_only() -> None:
    assert violations(ROOT) == []


def test_every_first_party_package_has_a_rule() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages <= set(ALLOWED), packages - set(ALLOWED)


def test_the_check_sees_an_upward_import_a_simulator_and_a_vendor(tmp_path: Path) -> None:
    for package, body in {
        "domain": "from contracts.engagement import EngagementInput\n",
        "workflows": "from activities.erp import ErpActivities\nfrom simulators import netsuite\n",
        "activities": "from connectors.netsuite.erp import NetSuiteErp\nfrom connectors.ports import ErpPort\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "bad.py").write_text(body)
    found = violations(tmp_path)
    assert [f.split(" (")[0] for f in found] == [
        "domain/bad.py:1 imports contracts.engagement",
        "domain/bad.py:1 imports contracts.engagement.EngagementInput",
        "activities/bad.py:1 imports connectors.netsuite.erp",
        "activities/bad.py:1 imports connectors.netsuite.erp.NetSuiteErp",
        "workflows/bad.py:1 imports activities.erp",
        "workflows/bad.py:1 imports activities.erp.ErpActivities",
        "workflows/bad.py:2 imports simulators",
        "workflows/bad.py:2 imports simulators.netsuite",
    ]
