"""Deterministic demo-firm data shared by the Salesforce and NetSuite seeds."""

from __future__ import annotations

from typing import Any

# code -> (currency, country, name, delivery region)
LEGAL_ENTITIES: dict[str, tuple[str, str, str, str]] = {
    "US01": ("USD", "US", "Northwind Consulting Inc.", "Americas"),
    "UK01": ("GBP", "GB", "Northwind Consulting Ltd", "UK"),
    "DE01": ("EUR", "DE", "Northwind Consulting GmbH", "EMEA"),
    "JP01": ("JPY", "JP", "Northwind Consulting KK", "APAC"),
}

# The books' exchange rates (the ERPs' currency-rate records): (from, to, rate, effective
# date), 1 unit of `from` buys `rate` units of `to`; the same figures as the reference data.
FX_RATES: list[tuple[str, str, str, str]] = [
    ("EUR", "USD", "1.08", "2026-01-01"),
    ("GBP", "USD", "1.27", "2026-01-01"),
    ("USD", "JPY", "150", "2026-01-01"),
]

ROLES = ("Consultant", "Senior Consultant", "Architect", "Project Manager")

# bill rate per role by currency (rate cards), and the average cost rate
BILL_RATES: dict[str, dict[str, int]] = {
    "USD": {"Consultant": 180, "Senior Consultant": 250, "Architect": 320, "Project Manager": 230},
    "GBP": {"Consultant": 150, "Senior Consultant": 200, "Architect": 260, "Project Manager": 190},
    "EUR": {"Consultant": 165, "Senior Consultant": 225, "Architect": 290, "Project Manager": 210},
    "JPY": {"Consultant": 25000, "Senior Consultant": 34000, "Architect": 43000,
            "Project Manager": 31000},
}  # fmt: skip
COST_FACTOR = 0.55

# consultants: (first, last, role, home legal entity, cost rate in home currency)
CONSULTANTS: list[tuple[str, str, str, str, float]] = [
    ("Ada", "Lovelace", "Architect", "US01", 175.0),
    ("Grace", "Hopper", "Project Manager", "US01", 125.0),
    ("Alan", "Turing", "Senior Consultant", "UK01", 110.0),
    ("Tim", "Berners-Lee", "Consultant", "UK01", 80.0),
    ("Konrad", "Zuse", "Senior Consultant", "DE01", 125.0),
    ("Emmy", "Noether", "Consultant", "DE01", 90.0),
    ("Hedy", "Lamarr", "Consultant", "US01", 100.0),
    ("Yukihiro", "Matsumoto", "Senior Consultant", "JP01", 18500.0),
    ("Hideo", "Kojima", "Project Manager", "JP01", 17000.0),
    ("Margaret", "Hamilton", "Senior Consultant", "US01", 140.0),
]

SERVICE_PACKAGES: list[dict[str, Any]] = [
    {
        "Name": "IMPL-STD",
        "D2R_Description__c": "Standard implementation: discovery to go-live",
        "D2R_Phases__c": ["Discovery", "Design", "Build", "Test", "Go-Live"],
        "D2R_Milestones__c": [
            {"name": "Design sign-off", "percent": 30},
            {"name": "UAT complete", "percent": 40},
            {"name": "Go-live", "percent": 30},
        ],
        "D2R_Roles__c": ["Project Manager", "Architect", "Senior Consultant", "Consultant"],
        "D2R_Default_Billing_Model__c": "fixed_fee",
        "D2R_Default_Revenue_Method__c": "cost_to_cost",
    },
    {
        "Name": "ADVISORY-TM",
        "D2R_Description__c": "Advisory on time and materials",
        "D2R_Phases__c": ["Assessment", "Advisory"],
        "D2R_Milestones__c": [],
        "D2R_Roles__c": ["Senior Consultant", "Consultant"],
        "D2R_Default_Billing_Model__c": "time_and_materials",
        "D2R_Default_Revenue_Method__c": "as_delivered",
    },
    {
        "Name": "MANAGED-RET",
        "D2R_Description__c": "Managed service on a monthly retainer",
        "D2R_Phases__c": ["Onboarding", "Run"],
        "D2R_Milestones__c": [{"name": "Onboarding complete", "percent": 100}],
        "D2R_Roles__c": ["Consultant"],
        "D2R_Default_Billing_Model__c": "retainer",
        "D2R_Default_Revenue_Method__c": "ratable",
    },
]

# Product2 rows: (name, code, family)
PRODUCTS = [
    ("Implementation Services (Fixed Fee)", "IMPL-FF", "Professional Services"),
    ("Consulting Time & Materials", "CONS-TM", "Professional Services"),
    ("Milestone Delivery", "MS-DEL", "Professional Services"),
    ("Managed Services Retainer", "RET-MS", "Managed Services"),
]

# NetSuite GL accounts: (number, name, type)
GL_ACCOUNTS = [
    ("1100", "Cash", "Bank"),
    ("1200", "Accounts Receivable", "AcctRec"),
    ("1210", "Unbilled Receivables", "OthCurrAsset"),
    ("1250", "Contract Balance (Unbilled / Deferred)", "OthCurrAsset"),
    ("1300", "Intercompany Receivable", "OthCurrAsset"),
    ("2200", "Output Tax Payable", "OthCurrLiab"),
    ("2300", "Intercompany Payable", "OthCurrLiab"),
    ("2400", "Deferred Revenue", "DeferRevenue"),
    ("4000", "Services Revenue", "Income"),
    ("4100", "Managed Services Revenue", "Income"),
    ("4900", "Intercompany Revenue", "Income"),
    ("5000", "Cost of Services", "COGS"),
    ("5100", "Reimbursable Expenses", "Expense"),
]
