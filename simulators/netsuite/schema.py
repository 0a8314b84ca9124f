"""Record types of the simulated NetSuite account.

Field kinds: str, num, bool, date, ref:<type>[|<type>...], sublist:<line schema name>,
ro:<kind> (read-only, computed by the server). Custom fields with the prefixes in
CUSTOM_PREFIXES are accepted on any record (body / entity / column / record fields).
"""

from __future__ import annotations

CUSTOM_PREFIXES = ("custbody", "custentity", "custcol", "custrecord", "custitem", "custevent")

ENTITY = "customer|job"
TRANSACTIONS = ("salesOrder", "invoice", "creditMemo", "customerPayment", "journalEntry")
# id spaces: record types sharing an internal-id sequence
ID_SPACE = {
    **{t: "transaction" for t in TRANSACTIONS},
    "customer": "entity",
    "job": "entity",
    "employee": "entity",
}
# postings refused in a locked period: type -> which lock flags apply
POSTING_LOCKS = {
    "invoice": ("arLocked",),
    "creditMemo": ("arLocked",),
    "customerPayment": ("arLocked",),
    "journalEntry": (),
    "timeBill": (),
}

_TRAN = {
    "subsidiary": "ref:subsidiary",
    "currency": "ref:currency",
    "tranId": "str",
    "tranDate": "date",
    "postingPeriod": "ro:ref:accountingPeriod",
    "status": "status",
    "memo": "str",
    "otherRefNum": "str",
    "exchangeRate": "num",
    "createdFrom": "ro:ref:salesOrder|invoice",
    "department": "str",
    "class": "str",
    "location": "str",
}
_SALES = {
    **_TRAN,
    "entity": f"ref:{ENTITY}",
    "job": "ref:job",
    "terms": "str",
    "dueDate": "date",
    "startDate": "date",
    "endDate": "date",
    "item": "sublist:item",
    "total": "ro:num",
    "subtotal": "ro:num",
    "taxTotal": "ro:num",
    "email": "str",
}

RECORDS: dict[str, dict[str, str]] = {
    "subsidiary": {
        "name": "str", "legalName": "str", "country": "str", "currency": "ref:currency",
        "isInactive": "bool", "parent": "ref:subsidiary", "fiscalCalendar": "str",
    },
    "currency": {"name": "str", "symbol": "str", "isBaseCurrency": "bool", "exchangeRate": "num"},
    # 1 transactionCurrency = exchangeRate baseCurrency from effectiveDate on (Multiple Currencies)
    "currencyRate": {"baseCurrency": "ref:currency", "transactionCurrency": "ref:currency",
                     "exchangeRate": "num", "effectiveDate": "date"},
    "account": {"acctNumber": "str", "acctName": "str", "acctType": "str", "isInactive": "bool",
                "subsidiary": "ref:subsidiary"},
    "serviceItem": {"itemId": "str", "displayName": "str", "description": "str", "rate": "num",
                    "isInactive": "bool", "incomeAccount": "ref:account"},
    "customer": {
        "entityId": "str", "companyName": "str", "isPerson": "bool", "firstName": "str",
        "lastName": "str", "subsidiary": "ref:subsidiary", "currency": "ref:currency",
        "email": "str", "phone": "str", "parent": "ref:customer", "isInactive": "bool",
        "terms": "str", "category": "str", "comments": "str", "vatRegNumber": "str",
        "defaultAddress": "str", "balance": "ro:num",
    },
    "job": {
        "entityId": "str", "companyName": "str", "parent": "ref:customer",
        "subsidiary": "ref:subsidiary", "currency": "ref:currency", "startDate": "date",
        "projectedEndDate": "date", "jobType": "str", "entityStatus": "str", "isInactive": "bool",
        "comments": "str",
    },
    "employee": {
        "entityId": "str", "firstName": "str", "lastName": "str", "email": "str",
        "subsidiary": "ref:subsidiary", "currency": "ref:currency", "isInactive": "bool",
        "laborCost": "num", "title": "str",
    },
    "accountingPeriod": {
        "periodName": "str", "startDate": "date", "endDate": "date", "isQuarter": "bool",
        "isYear": "bool", "isAdjust": "bool", "closed": "bool", "isLocked": "bool",
        "allLocked": "bool", "arLocked": "bool", "apLocked": "bool", "isPosting": "bool",
    },
    "salesOrder": {**_SALES, "orderStatus": "str", "amountBilled": "ro:num"},
    "invoice": {**_SALES, "amountRemaining": "ro:num", "amountPaid": "ro:num"},
    "creditMemo": {**_SALES, "amountRemaining": "ro:num", "applied": "ro:num"},
    "customerPayment": {
        **_TRAN, "customer": f"ref:{ENTITY}", "payment": "num", "apply": "sublist:apply",
        "undepFunds": "bool", "account": "ref:account", "total": "ro:num", "applied": "ro:num",
        "unapplied": "ro:num",
    },
    "journalEntry": {**_TRAN, "line": "sublist:line", "approved": "bool", "reversalDate": "date",
                     "total": "ro:num"},
    "timeBill": {
        "employee": "ref:employee", "customer": f"ref:{ENTITY}", "tranDate": "date",
        "hours": "num", "rate": "num", "item": "ref:serviceItem", "isBillable": "bool",
        "memo": "str", "subsidiary": "ref:subsidiary", "approvalStatus": "str",
        "postingPeriod": "ro:ref:accountingPeriod", "currency": "ref:currency",
        "status": "str", "isBilled": "bool",
    },
}  # fmt: skip

SUBLISTS: dict[str, dict[str, str]] = {
    "item": {"item": "ref:serviceItem", "quantity": "num", "rate": "num", "amount": "num",
             "description": "str", "line": "num", "taxCode": "str", "tax1Amt": "num", "revRecStartDate": "date",
             "revRecEndDate": "date", "isClosed": "bool"},
    "apply": {"doc": "ref:invoice|creditMemo", "amount": "num", "apply": "bool", "line": "num"},
    "line": {"account": "ref:account", "debit": "num", "credit": "num", "memo": "str",
             "entity": f"ref:{ENTITY}", "line": "num"},
}  # fmt: skip

# Fields every record has
COMMON = {"id": "ro:str", "externalId": "str", "createdDate": "ro:str", "lastModifiedDate": "ro:str"}

LOWER_TYPES = {t.lower(): t for t in RECORDS}


def _references() -> dict[str, list[tuple[str, str]]]:
    """record type -> (referring type, field): who would be left pointing at a deleted record."""
    out: dict[str, list[tuple[str, str]]] = {}
    for rtype, fields in RECORDS.items():
        for field, kind in fields.items():
            kind = kind[3:] if kind.startswith("ro:") else kind
            if kind.startswith("ref:"):
                for target in kind[4:].split("|"):
                    out.setdefault(target, []).append((rtype, field))
    return out


REFERENCES = _references()

BUSINESS_KEYS: list[tuple[str, str, str]] = [
    *[(t, "ext", "externalId") for t in RECORDS],
    ("salesOrder", "json_extract(data,'$.custbody_d2r_opportunity_id')",
     "custbody_d2r_opportunity_id"),
    ("invoice", "json_extract(data,'$.custbody_d2r_billing_event_id')",
     "custbody_d2r_billing_event_id"),
    ("customer", "json_extract(data,'$.custentity_d2r_crm_account_id') || '/' || "
     "json_extract(data,'$.subsidiary.id')", "custentity_d2r_crm_account_id/subsidiary"),
]  # fmt: skip

EXTRA_INDEXES = (
    "CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, idem_key TEXT UNIQUE, "
    "status INTEGER NOT NULL, location TEXT, body BLOB, created REAL NOT NULL)",
    "DROP INDEX IF EXISTS ix_ns_opp",
    "CREATE INDEX IF NOT EXISTS px_ns_opp ON records(type, json_extract(data,'$.custbody_d2r_opportunity_id')) "
    "WHERE json_extract(data,'$.custbody_d2r_opportunity_id') IS NOT NULL",
)
