"""Deterministic seeds for the Salesforce simulator: `demo` (a small firm) and `bench`."""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

from ..demo_data import (
    BILL_RATES,
    CONSULTANTS,
    COST_FACTOR,
    LEGAL_ENTITIES,
    PRODUCTS,
    ROLES,
    SERVICE_PACKAGES,
)
from .schema import OBJECTS

# Certinia's hierarchies in the demo org: regions (the opportunities' delivery regions),
# practices, and groups (one per legal entity), each (name, parent name)
REGIONS = (("Global", None), ("Americas", "Global"), ("EMEA", "Global"), ("UK", "EMEA"), ("APAC", "Global"))
PRACTICES = (("Consulting", None), ("Implementation", "Consulting"), ("Advisory", "Consulting"),
             ("Managed Services", "Consulting"))  # fmt: skip
PACKAGE_PRACTICES = {"IMPL-STD": "Implementation", "ADVISORY-TM": "Advisory", "MANAGED-RET": "Managed Services"}
PARENT_FIELDS = {
    "pse__Region__c": "pse__Parent_Region__c",
    "pse__Practice__c": "pse__Parent_Practice__c",
    "pse__Grp__c": "pse__Parent_Group__c",
}


def _hierarchy(sim: SalesforceSimulator, obj: str, rows: tuple[tuple[str, str | None], ...]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for name, parent in rows:
        depth = 0 if parent is None else 1 + (parent != rows[0][0])
        ids[name] = _mk(
            sim, obj, {"Name": name, PARENT_FIELDS[obj]: ids.get(parent or ""), "pse__Hierarchy_Depth__c": depth}
        )
    return ids


if TYPE_CHECKING:
    from .app import SalesforceSimulator

# Account rows: (name, parent index (1-based) or 0, country, city, industry, currency, key)
ACCOUNTS = [
    ("Globex Holdings", 0, "US", "Springfield", "Manufacturing", "USD"),
    ("Globex US Inc", 1, "US", "Chicago", "Manufacturing", "USD"),
    ("Globex UK Ltd", 1, "GB", "London", "Manufacturing", "GBP"),
    ("Initech GmbH", 0, "DE", "Berlin", "Software", "EUR"),
    ("Umbrella Holdings KK", 0, "JP", "Tokyo", "Pharmaceuticals", "JPY"),
    ("Umbrella Pharma Japan KK", 5, "JP", "Osaka", "Pharmaceuticals", "JPY"),
    ("Acme Corp", 0, "US", "Phoenix", "Retail", "USD"),
    ("Northwind Consulting (internal)", 0, "US", "Seattle", "Consulting", "USD"),
]
INTERNAL_ACCOUNT = 8


def seed(sim: SalesforceSimulator, kind: str) -> dict[str, Any]:
    if kind in ("none", ""):
        return {"seed": "none"}
    if kind == "demo":
        return seed_demo(sim)
    if kind == "bench":
        return seed_bench(sim, sim.settings.seed_opportunities, sim.settings.seed_time_entries)
    raise ValueError(f"unknown seed {kind!r} (demo | none | bench)")


def _mk(sim: SalesforceSimulator, obj: str, vals: dict[str, Any]) -> str:
    return sim._insert(OBJECTS[obj], {k: v for k, v in vals.items() if v is not None})


def seed_demo(sim: SalesforceSimulator) -> dict[str, Any]:
    info: dict[str, Any] = {"seed": "demo"}
    with sim.store.tx():
        sim._seeding = True
        try:
            prods = {}
            for name, code, fam in PRODUCTS:
                prods[code] = _mk(sim, "Product2", {"Name": name, "ProductCode": code, "Family": fam, "IsActive": True})
            for sp in SERVICE_PACKAGES:
                _mk(
                    sim,
                    "D2R_Service_Package__c",
                    {
                        **{k: (json.dumps(v) if isinstance(v, list) else v) for k, v in sp.items()},
                        "D2R_Practice__c": PACKAGE_PRACTICES[sp["Name"]],
                        "D2R_Is_Active__c": True,
                    },
                )
            regions = _hierarchy(sim, "pse__Region__c", REGIONS)
            practices = _hierarchy(sim, "pse__Practice__c", PRACTICES)
            groups = _hierarchy(
                sim, "pse__Grp__c", (("Northwind", None), *((le, "Northwind") for le in LEGAL_ENTITIES))
            )
            for code, (cur, _country, _n, region) in LEGAL_ENTITIES.items():
                for role in ROLES:
                    rate = BILL_RATES[cur][role]
                    _mk(
                        sim,
                        "pse__Rate_Card__c",
                        {
                            "Name": f"{role} - {region} ({cur})",
                            "pse__Role__c": role,
                            "pse__Region__c": regions[region],
                            "pse__Suggested_Bill_Rate__c": rate,
                            "pse__Average_Cost_Rate__c": round(rate * COST_FACTOR, 2),
                            "pse__Start_Date__c": "2026-01-01",
                            "pse__End_Date__c": "2027-12-31",
                            "CurrencyIsoCode": cur,
                            "D2R_External_Id__c": f"RC-{code}-{role.upper().replace(' ', '_')}",
                        },
                    )
            acc: list[str] = []
            for i, (name, parent, country, city, ind, cur) in enumerate(ACCOUNTS, 1):
                acc.append(
                    _mk(
                        sim,
                        "Account",
                        {
                            "Name": name,
                            "ParentId": acc[parent - 1] if parent else None,
                            "BillingCountry": country,
                            "BillingCity": city,
                            "Industry": ind,
                            "CurrencyIsoCode": cur,
                            "D2R_Tax_Id__c": f"TAX-{country}-{1000 + i}",
                            "D2R_Customer_Key__c": f"CUST-{i:04d}",
                            "Type": "Other" if i == INTERNAL_ACCOUNT else "Customer",
                        },
                    )
                )
            consultants = []
            for first, last, role, home, cost in CONSULTANTS:
                cur = LEGAL_ENTITIES[home][0]
                cid = _mk(
                    sim,
                    "Contact",
                    {
                        "FirstName": first,
                        "LastName": last,
                        "Email": f"{first.lower()}.{last.lower()}@northwind.example",
                        "AccountId": acc[INTERNAL_ACCOUNT - 1],
                        "pse__Is_Resource__c": True,
                        "pse__Is_Resource_Active__c": True,
                        "pse__Resource_Role__c": role,
                        "pse__Region__c": regions[LEGAL_ENTITIES[home][3]],
                        "D2R_Home_Legal_Entity__c": home,
                        "pse__Default_Cost_Rate__c": cost,
                        "CurrencyIsoCode": cur,
                        "Title": role,
                    },
                )
                consultants.append(
                    {
                        "id": cid,
                        "name": f"{first} {last}",
                        "role": role,
                        "home_legal_entity": home,
                        "cost_rate": cost,
                        "currency": cur,
                    }
                )
            for first, last, a in (("Hank", "Scorpio", 2), ("Peter", "Gibbons", 4), ("Albert", "Wesker", 6)):
                _mk(
                    sim,
                    "Contact",
                    {
                        "FirstName": first,
                        "LastName": last,
                        "AccountId": acc[a - 1],
                        "Email": f"{first.lower()}@customer.example",
                    },
                )

            def opp(
                name: str,
                a: int,
                stage: str,
                le: str | None,
                cur: str,
                close: str,
                pkg: str | None,
                terms: str = "Net 30",
                typ: str = "New Business",
            ) -> str:
                region = LEGAL_ENTITIES[le][3] if le else None
                return _mk(
                    sim,
                    "Opportunity",
                    {
                        "Name": name,
                        "AccountId": acc[a - 1],
                        "StageName": stage,
                        "CloseDate": close,
                        "CurrencyIsoCode": cur,
                        "Type": typ,
                        "D2R_Legal_Entity__c": le,
                        "D2R_Billing_Terms__c": terms,
                        "D2R_Delivery_Region__c": region,
                        "D2R_Service_Package__c": pkg,
                        "D2R_Contract_Start__c": "2026-12-01",
                        "D2R_Contract_End__c": "2027-05-31",
                        "Amount": 0,
                    },
                )

            def line(
                o: str,
                code: str,
                qty: float,
                price: float,
                model: str,
                method: str,
                role: str | None = None,
                hours: float | None = None,
                desc: str = "",
            ) -> str:
                fields: dict[str, Any] = {
                    "OpportunityId": o,
                    "Product2Id": prods[code],
                    "Quantity": qty,
                    "UnitPrice": price,
                    "D2R_Billing_Model__c": model,
                    "D2R_Revenue_Method__c": method,
                    "D2R_Role__c": role,
                    "D2R_Hours__c": hours,
                    "Description": desc or None,
                }
                if method == "cost_to_cost":
                    # the total expected cost, as the CRM line carries it: what cost-to-cost
                    # progress is measured against (the demo firm's average cost factor)
                    fields["D2R_Estimate_At_Completion__c"] = round(qty * price * COST_FACTOR)
                return _mk(sim, "OpportunityLineItem", fields)

            o1 = opp("Globex US - ERP implementation", 2, "Closed Won", "US01", "USD", "2026-11-16", "IMPL-STD")
            line(o1, "IMPL-FF", 1, 120000, "fixed_fee", "cost_to_cost", desc="Implementation, fixed fee")
            line(
                o1,
                "CONS-TM",
                200,
                250,
                "time_and_materials",
                "as_delivered",
                role="Senior Consultant",
                hours=200,
                desc="Data migration support, T&M",
            )
            o2 = opp("Globex UK - advisory T&M", 3, "Closed Won", "UK01", "GBP", "2026-11-18", "ADVISORY-TM")
            line(
                o2,
                "CONS-TM",
                300,
                150,
                "time_and_materials",
                "as_delivered",
                role="Consultant",
                hours=300,
                desc="Advisory, T&M",
            )
            o3 = opp(
                "Umbrella Pharma - milestone rollout",
                6,
                "Closed Won",
                "JP01",
                "JPY",
                "2026-11-20",
                "IMPL-STD",
                terms="Net 45",
            )
            line(o3, "MS-DEL", 1, 30000000, "milestone", "milestone", desc="Rollout, by milestone")
            o4 = opp("Acme - missing legal entity", 7, "Closed Won", None, "USD", "2026-11-21", "IMPL-STD")
            line(o4, "IMPL-FF", 1, 50000, "fixed_fee", "cost_to_cost")
            o5 = opp("Initech - no line items", 4, "Closed Won", "DE01", "EUR", "2026-11-22", "ADVISORY-TM")
            o6 = opp("Initech - still negotiating", 4, "Negotiation/Review", "DE01", "EUR", "2026-12-15", "ADVISORY-TM")
            line(o6, "CONS-TM", 100, 165, "time_and_materials", "as_delivered", role="Consultant", hours=100)
            o7 = opp("Initech - managed service retainer", 4, "Closed Won", "DE01", "EUR", "2026-11-23", "MANAGED-RET")
            line(o7, "RET-MS", 6, 8000, "retainer", "ratable", desc="Monthly retainer x 6")
            others = []
            for i, stage in enumerate(("Prospecting", "Qualification", "Proposal/Price Quote", "Closed Lost"), 1):
                oid = opp(
                    f"Pipeline deal {i} ({stage})",
                    [1, 2, 7, 3][i - 1],
                    stage,
                    "US01",
                    "USD",
                    f"2027-0{i}-15",
                    "ADVISORY-TM",
                )
                line(oid, "CONS-TM", 50 * i, 180, "time_and_materials", "as_delivered", role="Consultant", hours=50 * i)
                others.append(oid)
        finally:
            sim._seeding = False
        info["opportunities"] = {
            "valid": {
                "us01_fixed_fee_and_tm": o1,
                "uk01_tm": o2,
                "jp01_milestone": o3,
                "de01_retainer": o7,
            },
            "invalid": {
                "missing_legal_entity": o4,
                "no_line_items": o5,
                "not_closed_won": o6,
            },
            "pipeline": others,
        }
        # flat aliases (used by the integration tests and the dev launcher)
        info["valid_closed_won"] = [o1, o2, o3, o7]
        info["invalid"] = {
            "missing_legal_entity": o4,
            "no_lines": o5,
            "wrong_stage": o6,
            "no_line_items": o5,
            "not_closed_won": o6,
        }
        info["accounts"] = {name: acc[i] for i, (name, *_r) in enumerate(ACCOUNTS)}
        info["consultants"] = consultants
        info["products"] = prods
        info["legal_entities"] = {k: v[0] for k, v in LEGAL_ENTITIES.items()}
        info["regions"], info["practices"], info["groups"] = regions, practices, groups
    return info


def seed_bench(sim: SalesforceSimulator, n_opps: int, n_time: int) -> dict[str, Any]:
    """Bulk seed with executemany: n_opps opportunities (2 lines each), a project for every
    closed-won one, and n_time approved timecards spread over those projects."""
    from .app import sf_id

    t0 = time.time()
    rng = random.Random(42)
    now = "2026-11-01T09:00:00.000+0000"
    audit = {"CreatedDate": now, "LastModifiedDate": now, "SystemModstamp": now}
    rows: list[tuple[str, str, str | None, str]] = []
    counters: dict[str, int] = {}

    defaults = {
        name: {f: False for f, t in o.fields.items() if t == "bool"} | {"CurrencyIsoCode": "USD"}
        for name, o in OBJECTS.items()
    }
    prefixes = {name: o.prefix for name, o in OBJECTS.items()}
    dumps = json.JSONEncoder(separators=(",", ":")).encode

    def add(obj: str, data: dict[str, Any]) -> str:
        prefix = prefixes[obj]
        n = counters.get(prefix, 0) + 1
        counters[prefix] = n
        rid = sf_id(prefix, n)
        rows.append((obj, rid, None, dumps({"Id": rid, **defaults[obj], **data, **audit})))
        return rid

    def flush() -> None:
        if rows:
            sim.store.insert_many(rows)
            rows.clear()

    info = seed_demo(sim)  # the demo firm first, so the documented ids exist in bench DBs too
    for so in list(OBJECTS.values()):
        row = sim.store.conn.execute("SELECT n FROM counters WHERE name=?", (so.prefix,)).fetchone()
        if row:
            counters[so.prefix] = int(row[0])
    les = list(LEGAL_ENTITIES)
    prods = info["products"]
    consultants = [c["id"] for c in info["consultants"]]
    # bulk load without the secondary indexes, then build them once (much faster)
    conn = sim.store.conn
    index_sql = [
        r[0]
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='records' AND sql IS NOT NULL"
        )
    ]
    for name in [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='records' AND sql IS NOT NULL"
        )
    ]:
        conn.execute(f"DROP INDEX {name}")
    with sim.store.tx() as c:
        accounts = [
            add(
                "Account",
                {
                    "Name": f"Bench Customer {i:05d}",
                    "D2R_Customer_Key__c": f"BENCH-{i:05d}",
                    "BillingCountry": "US",
                    "Type": "Customer",
                },
            )
            for i in range(1, max(2, n_opps // 10) + 1)
        ]
        projects: list[str] = []
        for i in range(1, n_opps + 1):
            le = les[i % 4]
            cur = LEGAL_ENTITIES[le][0]
            stage = ("Closed Won", "Prospecting", "Qualification", "Closed Won", "Negotiation/Review", "Closed Lost")[
                i % 6
            ]
            oid = add(
                "Opportunity",
                {
                    "Name": f"Bench deal {i:06d}",
                    "AccountId": accounts[i % len(accounts)],
                    "StageName": stage,
                    "IsClosed": stage.startswith("Closed"),
                    "IsWon": stage == "Closed Won",
                    "Amount": 60000 + 250 * 100,
                    "CloseDate": f"2026-11-{1 + i % 28:02d}",
                    "CurrencyIsoCode": cur,
                    "D2R_Legal_Entity__c": le,
                    "D2R_Billing_Terms__c": "Net 30",
                    "D2R_Delivery_Region__c": LEGAL_ENTITIES[le][3],
                    "D2R_Service_Package__c": "IMPL-STD",
                    "D2R_Contract_Start__c": "2026-12-01",
                    "D2R_Contract_End__c": "2027-05-31",
                },
            )
            add(
                "OpportunityLineItem",
                {
                    "OpportunityId": oid,
                    "Product2Id": prods["IMPL-FF"],
                    "Name": f"Bench deal {i:06d} Implementation",
                    "Quantity": 1,
                    "UnitPrice": 60000,
                    "TotalPrice": 60000,
                    "CurrencyIsoCode": cur,
                    "D2R_Billing_Model__c": "fixed_fee",
                    "D2R_Revenue_Method__c": "cost_to_cost",
                },
            )
            add(
                "OpportunityLineItem",
                {
                    "OpportunityId": oid,
                    "Product2Id": prods["CONS-TM"],
                    "Name": f"Bench deal {i:06d} T&M",
                    "Quantity": 100,
                    "UnitPrice": 250,
                    "TotalPrice": 25000,
                    "CurrencyIsoCode": cur,
                    "D2R_Billing_Model__c": "time_and_materials",
                    "D2R_Revenue_Method__c": "as_delivered",
                    "D2R_Role__c": "Senior Consultant",
                    "D2R_Hours__c": 100,
                },
            )
            if stage == "Closed Won":
                projects.append(
                    add(
                        "pse__Proj__c",
                        {
                            "Name": f"Bench project {i:06d}",
                            "pse__Opportunity__c": oid,
                            "pse__Account__c": accounts[i % len(accounts)],
                            "pse__Is_Active__c": True,
                            "pse__Is_Billable__c": True,
                            "pse__Stage__c": "In Progress",
                            "D2R_External_Id__c": f"bench-project-{oid}",
                            "D2R_Legal_Entity__c": le,
                            "CurrencyIsoCode": cur,
                        },
                    )
                )
            if len(rows) >= 20000:
                flush()
        flush()
        if not projects:
            projects = [add("pse__Proj__c", {"Name": "Bench project", "pse__Is_Active__c": True})]
        weeks = [
            (
                time.strftime("%Y-%m-%d", time.gmtime(1780272000 + w * 7 * 86400)),
                time.strftime("%Y-%m-%d", time.gmtime(1780272000 + (w * 7 + 6) * 86400)),
            )
            for w in range(26)
        ]
        for j in range(1, n_time + 1):
            p = projects[j % len(projects)]
            start, end = weeks[j // len(projects) % 26]
            hours = float(rng.choice((8, 16, 24, 32, 40)))
            n = counters.get("a0T", 0) + 1
            add(
                "pse__Timecard_Header__c",
                {
                    "Name": f"TC-{n:06d}",
                    "pse__Project__c": p,
                    "pse__Resource__c": consultants[j % len(consultants)],
                    "pse__Start_Date__c": start,
                    "pse__End_Date__c": end,
                    "pse__Total_Hours__c": hours,
                    "pse__Status__c": "Approved",
                    "pse__Approved__c": True,
                    "pse__Submitted__c": True,
                    "pse__Billable__c": True,
                    "D2R_Role__c": "Senior Consultant",
                },
            )
            if len(rows) >= 50000:
                flush()
        flush()
        for prefix, n in counters.items():
            c.execute(
                "INSERT INTO counters(name,n) VALUES(?,?) ON CONFLICT(name) DO UPDATE SET n=excluded.n", (prefix, n)
            )
    with sim.store.tx() as c:
        for sql in index_sql:
            c.execute(sql)
    info["seed"] = "bench"
    info["bench"] = {
        "opportunities": n_opps,
        "time_entries": n_time,
        "projects": len(projects),
        "seconds": round(time.time() - t0, 1),
    }
    return info
