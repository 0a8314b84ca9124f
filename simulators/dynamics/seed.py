"""The demo seed of the D365 simulator: companies, chart of accounts, products, tax groups,
one existing customer per company, the consultants as employees, fiscal periods."""

from __future__ import annotations

import calendar
import json
from typing import TYPE_CHECKING, Any

from ..demo_data import CONSULTANTS, FX_RATES, GL_ACCOUNTS, LEGAL_ENTITIES, PRODUCTS
from . import odata
from .entities import ENTITY_SETS

if TYPE_CHECKING:
    from .app import DynamicsSimulator

# dataAreaId -> (currency, country, name, tax group, rate %); the demo firm's entities plus
# an acquired Irish unit that only ever ran on D365
STANDARD_VAT = {"GB": "20", "IE": "23", "DE": "19", "JP": "10", "US": "0"}  # percent
COMPANIES: dict[str, tuple[str, str, str, str, str]] = {
    **{
        code.lower(): (cur, country, name, f"{country}S{STANDARD_VAT[country]}", STANDARD_VAT[country])
        for code, (cur, country, name, _region) in LEGAL_ENTITIES.items()
    },
    "ie01": ("EUR", "IE", "Northwind Consulting Ireland DAC", "IES23", "23"),
}
EXISTING_CUSTOMERS = {"uk01": "Wayne Enterprises Ltd", "ie01": "Dublin Data DAC"}
PERIOD_YEARS = (2025, 2026, 2027)


def ensure_seeded(sim: DynamicsSimulator) -> dict[str, Any]:
    """Seed only into an empty database; otherwise return the stored seed info."""
    if sim.store.is_empty() and sim.settings.seed not in ("none", ""):
        return seed(sim, sim.settings.seed)
    raw = sim.store.get_meta("seed_info")
    return json.loads(raw) if raw else {"seed": "none"}


def seed(sim: DynamicsSimulator, kind: str) -> dict[str, Any]:
    if kind in ("none", ""):
        info: dict[str, Any] = {"seed": "none"}
    elif kind in ("demo", "bench"):
        info = _demo(sim)
    else:
        raise ValueError(f"unknown seed {kind!r} (demo | none)")
    with sim.store.tx():
        sim.store.set_meta("seed_info", json.dumps(info))
    sim.seed_info_cached = info
    return info


def _put(sim: DynamicsSimulator, entity_set: str, rec: dict[str, Any]) -> None:
    es = ENTITY_SETS[entity_set]
    full = {**es.defaults, **rec, "_v": 1}
    sim.store.insert(entity_set, odata.record_id(es, full), full, full.get("D2RReference"))


def _demo(sim: DynamicsSimulator) -> dict[str, Any]:
    from ..salesforce.app import sf_id

    s = sim.settings
    companies = s.company_list()
    unknown = [c for c in companies if c not in COMPANIES]
    if unknown:
        raise ValueError(f"no demo data for companies {unknown}; known: {sorted(COMPANIES)}")
    info: dict[str, Any] = {
        "seed": "demo",
        "tenant": s.tenant,
        "resource": s.resource_url(),
        "token_path": f"/{s.tenant}/oauth2/v2.0/token",
        "scope": s.resource_url() + "/.default",
        "companies": companies,
        "default_company": companies[0],
        "customers": {},
        "employees": {},
        "tax_groups": {},
        "periods": f"{PERIOD_YEARS[0]}-01 .. {PERIOD_YEARS[-1]}-12, all Open",
    }
    with sim.store.tx():
        for base, quote, rate, start in FX_RATES:  # the ledger's default exchange rate type
            _put(
                sim,
                "ExchangeRates",
                {
                    "RateTypeName": "Default",
                    "FromCurrency": base,
                    "ToCurrency": quote,
                    "StartDate": f"{start}T12:00:00Z",
                    "Rate": float(rate),
                    "ConversionFactor": "One",
                },
            )
        for num, name, typ in GL_ACCOUNTS:
            _put(
                sim,
                "MainAccounts",
                {"ChartOfAccounts": "Shared", "MainAccountId": num, "Name": name, "MainAccountType": typ},
            )
        for company in companies:
            cur, country, name, group, rate = COMPANIES[company]
            _put(
                sim,
                "LegalEntities",
                {
                    "LegalEntityId": company.upper(),
                    "Name": name,
                    "AddressCountryRegionId": country,
                    "AccountingCurrency": cur,
                    "TimeZone": "GMT Standard Time" if country in ("GB", "IE") else "UTC",
                },
            )
            for pname, code, _family in PRODUCTS:
                _put(
                    sim,
                    "ReleasedProductsV2",
                    {
                        "dataAreaId": company,
                        "ItemNumber": code,
                        "ProductName": pname,
                        "ProductType": "Service",
                        "SalesUnitSymbol": "ea",
                    },
                )
            _put(
                sim,
                "SalesTaxGroups",
                {
                    "dataAreaId": company,
                    "TaxGroupCode": group,
                    "Description": f"{country} standard rate",
                    "TaxRatePercent": rate,
                },
            )
            info["tax_groups"][company] = {group: rate}
            number = "C{n:06d}".format(n=sim.store.next_counter(f"{company}:CustomersV3"))
            _put(
                sim,
                "CustomersV3",
                {
                    "dataAreaId": company,
                    "CustomerAccount": number,
                    "OrganizationName": EXISTING_CUSTOMERS.get(company, f"Customer of {company}"),
                    "CustomerGroupId": "30",
                    "SalesCurrencyCode": cur,
                    "PaymentTerms": "Net30",
                    "AddressCountryRegionId": country,
                    "SalesTaxGroup": group,
                },
            )
            info["customers"][company] = [number]
            for year in PERIOD_YEARS:
                for month in range(1, 13):
                    last = calendar.monthrange(year, month)[1]
                    _put(
                        sim,
                        "LedgerFiscalPeriods",
                        {
                            "LedgerName": company.upper(),
                            "Calendar": "Fiscal",
                            "YearName": str(year),
                            "PeriodName": f"Period {month}",
                            "StartDate": f"{year}-{month:02d}-01T12:00:00Z",
                            "EndDate": f"{year}-{month:02d}-{last:02d}T12:00:00Z",
                            "PeriodStatus": "Open",
                        },
                    )
        # every consultant is a worker here, as in NetSuite: a consultant who moves to a company
        # of this environment books time in it (employment is master data, not d2r's to write)
        for i, (first, last_name, role, home, _cost) in enumerate(CONSULTANTS, 1):
            company = home.lower()
            number = "{n:06d}".format(n=sim.store.next_counter(":Employees"))
            contact = sf_id("003", i)
            _put(
                sim,
                "Employees",
                {
                    "PersonnelNumber": number,
                    "Name": f"{first} {last_name}",
                    "FirstName": first,
                    "LastName": last_name,
                    "EmploymentLegalEntityId": company.upper(),
                    "EmploymentStartDate": "2024-01-01T12:00:00Z",
                    "D2RReference": contact,
                    "D2RRole": role,
                    "PrimaryContactEmail": f"{first}.{last_name}@northwind.example".lower(),
                },
            )
            info["employees"][contact] = number
    return info
