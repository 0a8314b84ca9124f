"""Deterministic seeds for the NetSuite simulator: `demo` and `bench`."""

from __future__ import annotations

import calendar
import json
import time
from typing import TYPE_CHECKING, Any

from ..demo_data import CONSULTANTS, FX_RATES, GL_ACCOUNTS, LEGAL_ENTITIES, PRODUCTS

if TYPE_CHECKING:
    from .app import NetSuiteSimulator

PERIOD_YEARS = (2025, 2026, 2027)


def seed(sim: NetSuiteSimulator, kind: str) -> dict[str, Any]:
    if kind in ("none", ""):
        return {"seed": "none"}
    if kind == "demo":
        return seed_demo(sim)
    if kind == "bench":
        return seed_bench(sim, sim.settings.seed_opportunities)
    raise ValueError(f"unknown seed {kind!r} (demo | none | bench)")


def seed_demo(sim: NetSuiteSimulator) -> dict[str, Any]:
    from ..salesforce.app import sf_id

    wanted = [s.strip() for s in sim.settings.subsidiaries.split(",") if s.strip()]
    info: dict[str, Any] = {"seed": "demo", "instance": sim.settings.instance}
    with sim.store.tx():
        sim._seeding = True
        try:
            cur_ids = {}
            for code in ("USD", "GBP", "EUR", "JPY"):
                cur_ids[code] = sim._insert(
                    "currency", {"name": code, "symbol": code, "externalId": code, "isBaseCurrency": code == "USD"}
                )
            for foreign, base, rate, effective in FX_RATES:  # against each base currency, as OneWorld keeps them
                sim._insert(
                    "currencyRate",
                    {
                        "baseCurrency": {"id": cur_ids[base], "refName": base},
                        "transactionCurrency": {"id": cur_ids[foreign], "refName": foreign},
                        "exchangeRate": float(rate),
                        "effectiveDate": effective,
                    },
                )
            subs = {}
            for code, (cur, country, name, _region) in LEGAL_ENTITIES.items():
                if code not in wanted:
                    continue
                subs[code] = sim._insert(
                    "subsidiary",
                    {
                        "name": name,
                        "legalName": name,
                        "country": country,
                        "currency": {"id": cur_ids[cur], "refName": cur},
                        "externalId": code,
                        "isInactive": False,
                    },
                )
            accounts = {}
            for num, name, typ in GL_ACCOUNTS:
                accounts[num] = sim._insert(
                    "account", {"acctNumber": num, "acctName": name, "acctType": typ, "externalId": num}
                )
            items = {}
            for name, code, _fam in PRODUCTS:
                items[code] = sim._insert(
                    "serviceItem",
                    {
                        "itemId": code,
                        "displayName": name,
                        "externalId": code,
                        "incomeAccount": {"id": accounts["4000"], "refName": "Services Revenue"},
                    },
                )
            # NetSuite only: the item billed expenses are invoiced with
            items["EXP-REIMB"] = sim._insert(
                "serviceItem",
                {
                    "itemId": "EXP-REIMB",
                    "displayName": "Reimbursable Expenses",
                    "externalId": "EXP-REIMB",
                    "incomeAccount": {"id": accounts["4000"], "refName": "Services Revenue"},
                },
            )
            employees = {}
            for i, (first, last, role, home, cost) in enumerate(CONSULTANTS, 1):
                if home not in subs:
                    continue
                cid = sf_id("003", i)  # the Salesforce Contact id of this consultant
                cur = LEGAL_ENTITIES[home][0]
                employees[cid] = sim._insert(
                    "employee",
                    {
                        "firstName": first,
                        "lastName": last,
                        "title": role,
                        "email": f"{first.lower()}.{last.lower()}@northwind.example",
                        "subsidiary": {"id": subs[home], "refName": home},
                        "currency": {"id": cur_ids[cur], "refName": cur},
                        "laborCost": cost,
                        "externalId": cid,
                    },
                )
            periods = {}
            for year in PERIOD_YEARS:
                for month in range(1, 13):
                    last_day = calendar.monthrange(year, month)[1]
                    name = f"{calendar.month_abbr[month]} {year}"
                    periods[name] = sim._insert(
                        "accountingPeriod",
                        {
                            "periodName": name,
                            "startDate": f"{year}-{month:02d}-01",
                            "endDate": f"{year}-{month:02d}-{last_day:02d}",
                            "isQuarter": False,
                            "isYear": False,
                            "isAdjust": False,
                            "closed": False,
                            "isLocked": False,
                            "allLocked": False,
                            "arLocked": False,
                            "apLocked": False,
                            "isPosting": True,
                            "externalId": f"{year}-{month:02d}",
                        },
                    )
        finally:
            sim._seeding = False
    info["subsidiaries"] = subs
    info["currencies"] = cur_ids
    info["accounts"] = accounts
    info["items"] = items
    info["employees"] = employees
    info["accounting_periods"] = {
        "first": f"Jan {PERIOD_YEARS[0]}",
        "last": f"Dec {PERIOD_YEARS[-1]}",
        "ids": {k: v for k, v in periods.items() if k.endswith("2026")},
    }
    return info


def seed_bench(sim: NetSuiteSimulator, n_opps: int) -> dict[str, Any]:
    """The demo data plus n_opps/10 customers and n_opps/3 sales orders (executemany)."""
    t0 = time.time()
    info = seed_demo(sim)
    subs = info["subsidiaries"]
    codes = list(subs)
    now = "2026-11-01T09:00:00Z"
    rows: list[tuple[str, str, str | None, str]] = []
    with sim.store.tx() as c:
        n_cust = max(1, n_opps // 10)
        first = sim.store.next_counter("entity", n_cust)
        cust_ids = []
        for i in range(n_cust):
            rid = str(first + i)
            code = codes[i % len(codes)]
            ext = f"bench-customer-{i:06d}"
            cust_ids.append((rid, code))
            rows.append(
                (
                    "customer",
                    rid,
                    ext,
                    json.dumps(
                        {
                            "id": rid,
                            "externalId": ext,
                            "companyName": f"Bench Customer {i:05d}",
                            "entityId": f"Bench Customer {i:05d}",
                            "isPerson": False,
                            "subsidiary": {"id": subs[code], "refName": code},
                            "createdDate": now,
                            "lastModifiedDate": now,
                        }
                    ),
                )
            )
        n_so = max(1, n_opps // 3)
        first = sim.store.next_counter("transaction", n_so)
        for i in range(n_so):
            rid = str(first + i)
            cust, code = cust_ids[i % len(cust_ids)]
            ext = f"bench-so-{i:06d}"
            rows.append(
                (
                    "salesOrder",
                    rid,
                    ext,
                    json.dumps(
                        {
                            "id": rid,
                            "externalId": ext,
                            "tranId": f"SO{100000 + i}",
                            "tranDate": "2026-11-15",
                            "entity": {"id": cust},
                            "subsidiary": {"id": subs[code], "refName": code},
                            "status": {"id": "F", "refName": "Pending Billing"},
                            "item": [
                                {
                                    "description": "Implementation",
                                    "quantity": 1,
                                    "rate": 60000,
                                    "amount": 60000,
                                    "line": 1,
                                }
                            ],
                            "total": 60000,
                            "subtotal": 60000,
                            "custbody_d2r_opportunity_id": f"bench-opp-{i:06d}",
                            "custbody_d2r_legal_entity": code,
                            "createdDate": now,
                            "lastModifiedDate": now,
                        }
                    ),
                )
            )
        sim.store.insert_many(rows)
        c.execute("SELECT 1")
    info["seed"] = "bench"
    info["bench"] = {"customers": n_cust, "sales_orders": n_so, "seconds": round(time.time() - t0, 1)}
    return info
