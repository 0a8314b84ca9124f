"""`d2r demo month-end` across the demo firm's four legal entities (US01, UK01 in D365, DE01
on Kantata, JP01) on a fresh `make run` stack with its reporting hub: every entity's close
ends CLOSED and locked, reconciliation is clean, and the hub's billed revenue matches the
invoices in each entity's ERP. The stack is the README test's fixture (its own, fresh)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_readme import fresh_stack

ROOT = Path(__file__).resolve().parents[2]  # the demo reads .d2r/keys from here, as make run writes them
pytestmark = pytest.mark.integration
ENTITIES = ("DE01", "JP01", "UK01", "US01")
__all__ = ["fresh_stack"]  # the fixture, used by name below


def test_the_demo_month_end_closes_all_four_entities_clean(fresh_stack: tuple[int, Path, dict[str, str]]) -> None:
    offset, _, env = fresh_stack
    ports = (("crm", 8301), ("ns", 8302), ("d365", 8303), ("kantata", 8304))
    at = {name: f"http://127.0.0.1:{port + offset}" for name, port in ports}
    urls = ["--crm", at["crm"], "--netsuite", at["ns"], "--d365", at["d365"], "--kantata", at["kantata"]]
    done = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "month-end", "--period", "2026-11", *urls],
        cwd=ROOT,
        env={**env, "COLUMNS": "250"},  # wide: few wrapped rows
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, out[-6000:] + done.stderr[-3000:]
    said = told(out)
    for entity in ENTITIES:
        lines = said.get(entity, [])
        assert any("lock approved by dev-finance" in line for line in lines), (entity, lines)
        assert any("CLOSED, locked=True" in line for line in lines), (entity, lines)
        assert any("reconciliation: clean" in line for line in lines), (entity, lines)
        match = r"billed revenue: hub \S+ vs (NetSuite|D365) invoices \S+ -> match"
        assert any(re.search(match, line) for line in lines), (entity, lines)
    assert any("clean: reconciliation and billed revenue agree" in line for line in said["month-end"]), out[-3000:]
    # UK01's and US01's two approved weeks were billed, and JP01's first milestone (DE01 bills
    # nothing in November: its retainer starts in December)
    assert any("billed {'GBP': '6000.00'}" in line for line in said["UK01"]), said["UK01"]
    assert any(re.search(r"billed \{'USD': '[1-9]", line) for line in said["US01"]), said["US01"]
    assert any(re.search(r"billed \{'JPY': '[1-9]", line) for line in said["JP01"]), said["JP01"]


def told(out: str) -> dict[str, list[str]]:
    """The demo's table as {subject: its status lines}: a subject's cell is filled on its
    first row only, and a long status wraps onto the next rows."""
    said: dict[str, list[str]] = {}
    subject = None
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) != 3:
            continue
        _, what, status = cells
        subject = what or subject  # later rows of a subject (and wrapped text) leave it blank
        if subject is not None:
            said.setdefault(subject, []).append(status)
    return said
