"""Reference data from one configuration file, loaded through settings: a firm configures
legal entities, tax rates, FX rates and its chart of accounts without editing code."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from activities.config import ConfigActivities
from contracts.config import FinanceConfigInput
from domain.deal import DealRules
from domain.journals import revenue_journal
from domain.reference_data import ReferenceDataError, load_reference_data_file
from workers.settings import WorkerSettings

FIRM = """
fx_pivot = "USD"

[legal_entities.US01]
code = "US01"
name = "Acme Advisory Inc."
functional_currency = "USD"
tax_jurisdiction = "US"
erp_instance = "default"

[legal_entities.KW01]
code = "KW01"
name = "Acme Advisory Kuwait W.L.L."
functional_currency = "KWD"
tax_jurisdiction = "KW"
erp_instance = "gulf"

[[tax_rates]]
jurisdiction = "KW"
rate = "0.05"
effective_from = 2026-01-01

[[fx_rates]]
base = "KWD"
quote = "USD"
rate = "3.2563"
as_of = 2026-01-01

[chart_of_accounts]
revenue = "4100 Consulting revenue"
"""


def firm_file(tmp_path: Path, text: str = FIRM) -> Path:
    path = tmp_path / "firm.toml"
    path.write_text(text)
    return path


async def test_the_file_configures_entities_tax_fx_and_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KW01 (KWD, 5 % VAT from 2026, 1 KWD = 3.2563 USD) exists only in the file; the
    settings' legal entities come from it; finance config carries its tax, FX and the
    firm's revenue account, which the revenue journal then uses."""
    monkeypatch.setenv("D2R_REFERENCE_DATA_FILE", str(firm_file(tmp_path)))
    settings = WorkerSettings()
    assert settings.legal_entities == {"US01": "USD", "KW01": "KWD"}
    ref = settings.reference_data()
    assert ref.fx().lookup("KWD", "USD", date(2026, 3, 1))[0] == Decimal("3.2563")
    config = ConfigActivities(
        DealRules(legal_entities=settings.legal_entities),
        entities=ref.legal_entities,
        tax_rules=ref.tax_rules(),
        fx=ref.fx(),
        chart_of_accounts=ref.chart_of_accounts,
    )
    finance = await config.finance(FinanceConfigInput(legal_entity="KW01"))
    assert (finance.legal_entity.name, finance.legal_entity.erp_instance) == ("Acme Advisory Kuwait W.L.L.", "gulf")
    assert [(r.jurisdiction, r.rate) for r in finance.tax_rules.rates] == [("KW", Decimal("0.05"))]
    assert finance.chart_of_accounts.revenue == "4100 Consulting revenue"
    assert finance.chart_of_accounts.receivables == "1200 Accounts receivable"  # not overridden: the default
    # the revenue journal of a period credits the configured revenue account
    from domain.revenue import recognize_period
    from tests.unit.domain.test_documents import billed_tm

    state, _, facts = billed_tm()  # 15 h x 100 GBP = 1,500 recognized in January
    entries = recognize_period(state, "2026-01", facts).entries
    journal = revenue_journal(entries, "2026-01", date(2026, 1, 31), finance.chart_of_accounts)
    credits = {line.account: line.credit.amount for line in journal.lines if line.credit.amount}
    assert credits == {"4100 Consulting revenue": Decimal("1500.00")}


def test_a_bad_file_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match=r"firm\.toml"):
        load_reference_data_file(firm_file(tmp_path, FIRM.replace('code = "KW01"', 'code = "KW02"')))
    with pytest.raises(ReferenceDataError, match=r"firm\.toml"):
        load_reference_data_file(firm_file(tmp_path, "unknown_setting = 1\n" + FIRM))
    with pytest.raises(ReferenceDataError, match="revenu"):  # a misspelt account name
        load_reference_data_file(firm_file(tmp_path, FIRM.replace("revenue =", "revenu =")))
    with pytest.raises(ReferenceDataError):
        load_reference_data_file(tmp_path / "missing.toml")


def test_without_a_file_the_demo_firm_applies() -> None:
    settings = WorkerSettings()
    assert set(settings.reference_data().legal_entities) == {"US01", "UK01", "DE01", "JP01"}
