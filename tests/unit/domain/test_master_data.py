"""Master data rules: the ownership table (shipped default, a firm's change, refusals that
name the line to fix) and the three-way comparison that tells an owner's change from an
edit in the wrong system."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.master_data import (
    Decision,
    agreed_json,
    decide,
    employees_of,
    normalized_domain,
    normalized_tax_id,
    parse_agreed,
)
from domain.model import Resource, ResourceTransfer
from domain.money import Money
from domain.ownership import OwnershipError, default_ownership, load_ownership_file, parse_ownership
from workers.settings import WorkerSettings


def test_the_shipped_table_gives_accounts_to_the_crm_and_consultants_to_the_psa() -> None:
    table = default_ownership()
    assert table.owner("customer", "name") == "crm"
    assert table.owner("customer", "parent_id") == "crm"
    assert table.owner("customer", "tax_id") == "crm"
    assert table.owner("consultant", "home_legal_entity") == "psa"
    assert table.owner("project", "name") == "psa"
    assert table.derived == {"employee": "consultant", "vendor": "consultant"}


def test_a_firm_gives_billing_tax_data_to_the_erp(tmp_path: Path) -> None:
    path = tmp_path / "ownership.toml"
    path.write_text('[customer]\ntax_id = "erp"\n')
    table = load_ownership_file(path)
    assert table.owner("customer", "tax_id") == "erp"
    assert table.owner("customer", "name") == "crm"  # left out: the shipped owner
    assert table.owned_by("customer", "erp") == ["tax_id"]
    assert WorkerSettings(ownership_file=path).ownership().owner("customer", "tax_id") == "erp"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[customer]\nname = "erp"\n', "customer.name = 'erp' is not allowed; it can be owned by 'crm'"),
        ('[customer]\ntax_id = "psa"\n', "it can be owned by 'crm' or 'erp'"),
        ('[customer]\ncolour = "crm"\n', "unknown field customer.colour"),
        ('[invoice]\nnumber = "erp"\n', "unknown object [invoice]"),
        ('[employee]\nname = "erp"\n', "[employee] is derived by d2r"),
        ("[customer\n", "ownership file"),
    ],
)
def test_a_table_d2r_cannot_honour_is_refused_at_start(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ownership.toml"
    path.write_text(text)
    with pytest.raises(OwnershipError) as caught:
        load_ownership_file(path)
    assert message in str(caught.value)
    # the worker's settings refuse it when the process starts, with the same message
    with pytest.raises(ValidationError) as at_start:
        WorkerSettings(ownership_file=path)
    assert message in str(at_start.value)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(OwnershipError, match=r"nowhere\.toml"):
        load_ownership_file(tmp_path / "nowhere.toml")
    with pytest.raises(OwnershipError, match="must be a table"):
        parse_ownership({"customer": "crm"})


def test_who_moved_decides_push_or_conflict() -> None:
    agreed = {"name": "Globex", "tax_id": None}
    assert decide("Globex", "Globex", agreed, "name") is Decision.IN_STEP
    # the owner renamed it, the ERP still holds what both agreed: write it downstream
    assert decide("Globex Corp", "Globex", agreed, "name") is Decision.PUSH
    # the ERP was edited directly: a person decides, whatever the owner did meanwhile
    assert decide("Globex", "Globex Intl", agreed, "name") is Decision.CONFLICT
    assert decide("Globex Corp", "Globex Intl", agreed, "name") is Decision.CONFLICT
    # no agreement recorded and the two differ: never overwrite blindly
    assert decide("Globex Corp", "Globex", None, "name") is Decision.CONFLICT
    # empty and missing are the same value
    assert decide(None, "", agreed, "tax_id") is Decision.IN_STEP
    assert decide("GB123", None, agreed, "tax_id") is Decision.PUSH


def test_the_agreement_round_trips_and_junk_is_no_agreement() -> None:
    values = {"name": "Globex", "parent_id": None, "tax_id": "GB1"}
    assert parse_agreed(agreed_json(values)) == values
    assert parse_agreed("not json") is None and parse_agreed("[1]") is None and parse_agreed(None) is None


def test_duplicate_keys_are_normalized() -> None:
    assert normalized_domain("https://www.Globex.com/about") == "globex.com"
    assert normalized_domain("globex.com:443") == "globex.com"
    assert normalized_domain("") is None
    assert normalized_tax_id("gb 123-456 78") == "GB12345678"
    assert normalized_tax_id(" - ") is None


def test_a_transferred_consultant_is_an_employee_where_they_sit() -> None:
    resource = Resource(
        resource_id="003X",
        name="Ada Lovelace",
        role="Architect",
        home_legal_entity="US01",
        cost_rate=Money(amount=Decimal(175), currency="USD"),
        transfers=[ResourceTransfer(effective_from=date(2026, 11, 15), legal_entity="UK01")],
    )
    employees = employees_of(resource, {"US01", "UK01", "DE01"})
    assert [(e.legal_entity, e.first_name, e.last_name) for e in employees] == [
        ("UK01", "Ada", "Lovelace"),
        ("US01", "Ada", "Lovelace"),
    ]
    assert employees_of(resource, {"DE01"}) == []
