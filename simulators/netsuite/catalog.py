"""SuiteQL's tables, as the Records Catalog (Setup > Records Catalog) names them, over the
simulator's stored records.

SuiteQL does not see the REST record shapes: a transaction's header is one row of
`transaction` (no `subsidiary`, no `total`: `foreigntotal`, `foreignamountunpaid`), its
lines are rows of `transactionline` (the header is line 0 with `mainline = 'T'`; sales
lines carry negative amounts and quantities, as credits), and its GL impact is rows of
`transactionaccountingline` (`account`, `debit`, `credit`, `amount`, `posting`). Each table
here is one or more SQL branches over `records` (UNION ALL), each naming the SQL for every
column it has; a column a branch lacks is NULL. Column kinds: id, ref (an internal id, with
BUILTIN.DF giving its display name), str, num, date, datetime, bool ('T'/'F').
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .schema import RECORDS

SALES = ("salesOrder", "invoice", "creditMemo")
TRANSACTION_TYPES = {
    "salesOrder": ("SalesOrd", "Sales Order"),
    "invoice": ("CustInvc", "Invoice"),
    "creditMemo": ("CustCred", "Credit Memo"),
    "customerPayment": ("CustPymt", "Payment"),
    "journalEntry": ("Journal", "Journal"),
}


def _j(src: str, path: str) -> str:
    return f"json_extract({src},'$.{path}')"


def _ref(src: str, path: str) -> str:
    return f"CAST(json_extract({src},'$.{path}.id') AS INTEGER)"


def _bool(expr: str) -> str:
    return f"(CASE WHEN {expr} THEN 'T' ELSE 'F' END)"


def _in(types: tuple[str, ...] | list[str]) -> str:
    return "r.type IN (" + ",".join(f"'{t}'" for t in types) + ")"


def _case_type(mapping: dict[str, str]) -> str:
    return "(CASE r.type " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items()) + " END)"


@dataclass
class Branch:
    source: str  # FROM clause (the record row is `r`)
    where: str
    columns: dict[str, str]  # column -> SQL expression
    display: dict[str, str] = field(default_factory=dict)  # ref column -> BUILTIN.DF expression
    custom: str | None = None  # the JSON holding this branch's custom fields


@dataclass
class Table:
    name: str
    kinds: dict[str, str]  # column -> kind
    branches: list[Branch]
    custom_prefixes: tuple[str, ...] = ()


def _record_table(name: str, types: tuple[str, ...], spec: dict[str, tuple[str, str]], prefixes: tuple[str, ...],
                  created: str = "datecreated") -> Table:  # fmt: skip
    """A table with one row per record: spec is column -> (record field or SQL, kind)."""
    kinds = {"id": "id", "externalid": "str", "lastmodifieddate": "datetime", created: "datetime"}
    cols = {
        "id": "CAST(r.id AS INTEGER)",
        "externalid": "r.ext",
        "lastmodifieddate": _j("r.data", "lastModifiedDate"),
        created: _j("r.data", "createdDate"),
    }
    display: dict[str, str] = {}
    for column, (source, kind) in spec.items():
        kinds[column] = kind
        if source.startswith("(") or source.startswith("'"):
            cols[column] = source
        elif kind == "ref":
            cols[column] = _ref("r.data", source)
            display[column] = _j("r.data", f"{source}.refName")
        elif kind == "bool":
            cols[column] = _bool(f"{_j('r.data', source)} = 1")
        else:
            cols[column] = _j("r.data", source)
    return Table(name, kinds, [Branch("records r", _in(types), cols, display, "r.data")], prefixes)


def _derived(rtype: str) -> Table:
    """A record type no table below names (e.g. one another module adds): its fields, lowercased."""
    spec: dict[str, tuple[str, str]] = {}
    for f, kind in RECORDS[rtype].items():
        kind = kind.removeprefix("ro:")
        if kind.startswith("sublist:"):
            continue
        k = "ref" if kind.startswith("ref:") else kind if kind in ("num", "date", "bool") else "str"
        spec[f.lower()] = (f, k)
    return _record_table(rtype.lower(), (rtype,), spec, ("custrecord",))


_ENTITY_SOURCES = {"customer": "entity", "customerPayment": "customer"}


def _transaction() -> Table:
    types = tuple(TRANSACTION_TYPES)
    kinds = {
        "id": "id", "tranid": "str", "trandate": "date", "type": "str", "recordtype": "str",
        "entity": "ref", "currency": "ref", "exchangerate": "num", "foreigntotal": "num",
        "foreignamountunpaid": "num", "foreignamountpaid": "num", "foreignpaymentamountunused": "num",
        "foreignpaymentamountused": "num", "status": "str", "externalid": "str", "memo": "str",
        "postingperiod": "ref", "duedate": "date", "startdate": "date", "enddate": "date",
        "otherrefnum": "str", "terms": "str", "posting": "bool", "voided": "bool",
        "createddate": "datetime", "lastmodifieddate": "datetime",
    }  # fmt: skip
    entity = "COALESCE(" + _ref("r.data", "entity") + ", " + _ref("r.data", "customer") + ")"
    cols = {
        "id": "CAST(r.id AS INTEGER)",
        "tranid": _j("r.data", "tranId"),
        "trandate": _j("r.data", "tranDate"),
        "type": _case_type({k: v[0] for k, v in TRANSACTION_TYPES.items()}),
        "recordtype": "lower(r.type)",
        "entity": entity,
        "currency": _ref("r.data", "currency"),
        "exchangerate": f"COALESCE({_j('r.data', 'exchangeRate')}, 1)",
        "foreigntotal": _j("r.data", "total"),
        "foreignamountunpaid": f"(CASE r.type WHEN 'invoice' THEN {_j('r.data', 'amountRemaining')} END)",
        "foreignamountpaid": f"(CASE r.type WHEN 'invoice' THEN {_j('r.data', 'amountPaid')} END)",
        "foreignpaymentamountunused": "(CASE r.type WHEN 'customerPayment' THEN "
        f"{_j('r.data', 'unapplied')} WHEN 'creditMemo' THEN {_j('r.data', 'amountRemaining')} END)",
        "foreignpaymentamountused": "(CASE r.type WHEN 'customerPayment' THEN "
        f"{_j('r.data', 'applied')} WHEN 'creditMemo' THEN {_j('r.data', 'applied')} END)",
        "status": _j("r.data", "status.id"),
        "externalid": "r.ext",
        "memo": _j("r.data", "memo"),
        "postingperiod": _ref("r.data", "postingPeriod"),
        "duedate": _j("r.data", "dueDate"),
        "startdate": _j("r.data", "startDate"),
        "enddate": _j("r.data", "endDate"),
        "otherrefnum": _j("r.data", "otherRefNum"),
        "terms": _j("r.data", "terms"),
        "posting": _bool("r.type <> 'salesOrder'"),
        "voided": "'F'",
        "createddate": _j("r.data", "createdDate"),
        "lastmodifieddate": _j("r.data", "lastModifiedDate"),
    }
    names = _case_type({k: v[1] for k, v in TRANSACTION_TYPES.items()})
    display = {
        "entity": f"COALESCE({_j('r.data', 'entity.refName')}, {_j('r.data', 'customer.refName')})",
        "currency": _j("r.data", "currency.refName"),
        "postingperiod": _j("r.data", "postingPeriod.refName"),
        "status": f"({names} || ' : ' || {_j('r.data', 'status.refName')})",
        "type": names,
    }
    return Table("transaction", kinds, [Branch("records r", _in(types), cols, display, "r.data")], ("custbody",))


_SIGN = "(CASE r.type WHEN 'creditMemo' THEN 1 ELSE -1 END)"  # sales lines are credits, a credit memo's debits
_LINE_KINDS = {
    "transaction": "id", "id": "id", "linesequencenumber": "num", "uniquekey": "id", "mainline": "bool",
    "taxline": "bool", "item": "ref", "subsidiary": "ref", "department": "str", "class": "str",
    "location": "str", "entity": "ref", "foreignamount": "num", "netamount": "num",
    "creditforeignamount": "num", "debitforeignamount": "num", "quantity": "num", "rate": "num",
    "memo": "str", "isclosed": "bool", "createdfrom": "ref", "linelastmodifieddate": "datetime",
}  # fmt: skip
_ENTITY = "COALESCE(" + _ref("r.data", "entity") + ", " + _ref("r.data", "customer") + ")"
_TAX_LINE = "(COALESCE((SELECT MAX(json_extract(x.value,'$.line')) FROM json_each(r.data,'$.item') x), 0) + 1)"


def _body_columns() -> dict[str, str]:
    return {
        "transaction": "CAST(r.id AS INTEGER)",
        "subsidiary": _ref("r.data", "subsidiary"),
        "department": _j("r.data", "department"),
        "class": _j("r.data", "class"),
        "location": _j("r.data", "location"),
        "linelastmodifieddate": _j("r.data", "lastModifiedDate"),
    }


def _transactionline() -> Table:
    body_display = {"subsidiary": _j("r.data", "subsidiary.refName")}
    mainline = Branch(
        "records r",
        _in(tuple(t for t in TRANSACTION_TYPES if t != "journalEntry")),
        {
            **_body_columns(),
            "id": "0",
            "linesequencenumber": "0",
            "uniquekey": "CAST(r.id AS INTEGER) * 1000",
            "mainline": "'T'",
            "taxline": "'F'",
            "entity": _ENTITY,
            "foreignamount": f"(-{_SIGN} * {_j('r.data', 'total')})",
            "netamount": f"(-{_SIGN} * {_j('r.data', 'total')})",
            "memo": _j("r.data", "memo"),
            "isclosed": "'F'",
            "createdfrom": _ref("r.data", "createdFrom"),
        },
        {**body_display, "entity": f"COALESCE({_j('r.data', 'entity.refName')}, {_j('r.data', 'customer.refName')})"},
    )
    amount = _j("j.value", "amount")
    items = Branch(
        "records r, json_each(r.data,'$.item') j",
        _in(SALES),
        {
            **_body_columns(),
            "id": _j("j.value", "line"),
            "linesequencenumber": _j("j.value", "line"),
            "uniquekey": f"CAST(r.id AS INTEGER) * 1000 + {_j('j.value', 'line')}",
            "mainline": "'F'",
            "taxline": "'F'",
            "item": _ref("j.value", "item"),
            "entity": _ENTITY,
            "foreignamount": f"({_SIGN} * {amount})",
            "netamount": f"({_SIGN} * {amount})",
            "creditforeignamount": f"(CASE WHEN r.type <> 'creditMemo' THEN {amount} END)",
            "debitforeignamount": f"(CASE WHEN r.type = 'creditMemo' THEN {amount} END)",
            "quantity": f"({_SIGN} * {_j('j.value', 'quantity')})",
            "rate": _j("j.value", "rate"),
            "memo": _j("j.value", "description"),
            "isclosed": _bool(f"{_j('j.value', 'isClosed')} = 1"),
            "createdfrom": _ref("r.data", "createdFrom"),
        },
        {**body_display, "item": _j("j.value", "item.refName")},
        "j.value",
    )
    tax = _j("r.data", "taxTotal")
    taxes = Branch(
        "records r",
        f"{_in(('invoice', 'creditMemo'))} AND {tax} > 0",
        {
            **_body_columns(),
            "id": _TAX_LINE,
            "linesequencenumber": _TAX_LINE,
            "uniquekey": f"CAST(r.id AS INTEGER) * 1000 + {_TAX_LINE}",
            "mainline": "'F'",
            "taxline": "'T'",
            "entity": _ENTITY,
            "foreignamount": f"({_SIGN} * {tax})",
            "netamount": f"({_SIGN} * {tax})",
            "isclosed": "'F'",
        },
        body_display,
    )
    debit, credit = _j("j.value", "debit"), _j("j.value", "credit")
    journal = Branch(
        "records r, json_each(r.data,'$.line') j",
        "r.type = 'journalEntry'",
        {
            **_body_columns(),
            "id": _j("j.value", "line"),
            "linesequencenumber": _j("j.value", "line"),
            "uniquekey": f"CAST(r.id AS INTEGER) * 1000 + {_j('j.value', 'line')}",
            "mainline": "'F'",
            "taxline": "'F'",
            "entity": _ref("j.value", "entity"),
            "foreignamount": f"(COALESCE({debit}, 0) - COALESCE({credit}, 0))",
            "netamount": f"(COALESCE({debit}, 0) - COALESCE({credit}, 0))",
            "creditforeignamount": f"NULLIF({credit}, 0)",
            "debitforeignamount": f"NULLIF({debit}, 0)",
            "memo": _j("j.value", "memo"),
            "isclosed": "'F'",
        },
        {**body_display, "entity": _j("j.value", "entity.refName")},
        "j.value",
    )
    return Table("transactionline", dict(_LINE_KINDS), [mainline, items, taxes, journal], ("custcol",))


def _account(where: str) -> tuple[str, str]:
    """(internal id, name) of the first account matching `where`."""
    pick = f"FROM records a WHERE a.type = 'account' AND {where} ORDER BY a.seq LIMIT 1)"
    return f"(SELECT CAST(a.id AS INTEGER) {pick}", f"(SELECT json_extract(a.data,'$.acctName') {pick}"


_AR = _account("json_extract(a.data,'$.acctType') = 'AcctRec'")
_TAX_ACCOUNT = _account("json_extract(a.data,'$.acctName') LIKE '%Tax%'")


def _transactionaccountingline() -> Table:
    kinds = {
        "transaction": "id", "transactionline": "id", "account": "ref", "accountingbook": "id",
        "amount": "num", "debit": "num", "credit": "num", "netamount": "num", "posting": "bool",
        "lastmodifieddate": "datetime",
    }  # fmt: skip

    def common() -> dict[str, str]:
        return {
            "transaction": "CAST(r.id AS INTEGER)",
            "accountingbook": "1",
            "posting": "'T'",
            "lastmodifieddate": _j("r.data", "lastModifiedDate"),
        }

    def side(amount: str, debit_when: str) -> dict[str, str]:
        return {
            "amount": f"(CASE WHEN {debit_when} THEN {amount} ELSE -{amount} END)",
            "netamount": f"(CASE WHEN {debit_when} THEN {amount} ELSE -{amount} END)",
            "debit": f"(CASE WHEN {debit_when} THEN {amount} END)",
            "credit": f"(CASE WHEN NOT ({debit_when}) THEN {amount} END)",
        }

    receivable = Branch(
        "records r",
        _in(("invoice", "creditMemo")),
        {**common(), "transactionline": "0", "account": _AR[0], **side(_j("r.data", "total"), "r.type = 'invoice'")},
        {"account": _AR[1]},
    )
    income = _account("a.id = json_extract(i.data,'$.incomeAccount.id')")
    lines = Branch(
        "records r CROSS JOIN json_each(r.data,'$.item') j LEFT JOIN records i "
        "ON i.type = 'serviceItem' AND i.id = json_extract(j.value,'$.item.id')",
        _in(("invoice", "creditMemo")),
        {
            **common(),
            "transactionline": _j("j.value", "line"),
            "account": income[0],
            **side(_j("j.value", "amount"), "r.type = 'creditMemo'"),
        },
        {"account": income[1]},
    )
    taxes = Branch(
        "records r",
        f"{_in(('invoice', 'creditMemo'))} AND {_j('r.data', 'taxTotal')} > 0",
        {
            **common(),
            "transactionline": _TAX_LINE,
            "account": _TAX_ACCOUNT[0],
            **side(_j("r.data", "taxTotal"), "r.type = 'creditMemo'"),
        },
        {"account": _TAX_ACCOUNT[1]},
    )
    debit, credit = _j("j.value", "debit"), _j("j.value", "credit")
    journal = Branch(
        "records r, json_each(r.data,'$.line') j",
        "r.type = 'journalEntry'",
        {
            **common(),
            "transactionline": _j("j.value", "line"),
            "account": _ref("j.value", "account"),
            "amount": f"(COALESCE({debit}, 0) - COALESCE({credit}, 0))",
            "netamount": f"(COALESCE({debit}, 0) - COALESCE({credit}, 0))",
            "debit": f"NULLIF({debit}, 0)",
            "credit": f"NULLIF({credit}, 0)",
            "posting": _bool(f"COALESCE({_j('r.data', 'approved')}, 1) = 1"),
        },
        {"account": _j("j.value", "account.refName")},
    )
    return Table("transactionaccountingline", kinds, [receivable, lines, taxes, journal])


_PERSON = "(COALESCE(json_extract(r.data,'$.companyName'), json_extract(r.data,'$.firstName') || ' ' || json_extract(r.data,'$.lastName')))"  # noqa: E501


def build() -> dict[str, Table]:
    entity_common = {"entityid": ("entityId", "str"), "email": ("email", "str"), "isinactive": ("isInactive", "bool")}
    tables = [
        _transaction(),
        _transactionline(),
        _transactionaccountingline(),
        _record_table("customer", ("customer",), {
            **entity_common, "companyname": ("companyName", "str"), "isperson": ("isPerson", "bool"),
            "firstname": ("firstName", "str"), "lastname": ("lastName", "str"), "phone": ("phone", "str"),
            "subsidiary": ("subsidiary", "ref"), "currency": ("currency", "ref"), "parent": ("parent", "ref"),
            "terms": ("terms", "str"), "category": ("category", "str"), "comments": ("comments", "str"),
            "vatregnumber": ("vatRegNumber", "str"), "altname": (_PERSON, "str"),
        }, ("custentity",)),
        _record_table("job", ("job",), {
            **entity_common, "companyname": ("companyName", "str"), "parent": ("parent", "ref"),
            "customer": ("parent", "ref"), "subsidiary": ("subsidiary", "ref"), "currency": ("currency", "ref"),
            "startdate": ("startDate", "date"), "projectedenddate": ("projectedEndDate", "date"),
            "jobtype": ("jobType", "str"), "entitystatus": ("entityStatus", "str"), "comments": ("comments", "str"),
            "altname": (_PERSON, "str"),
        }, ("custentity",)),
        _record_table("employee", ("employee",), {
            **entity_common, "firstname": ("firstName", "str"), "lastname": ("lastName", "str"),
            "subsidiary": ("subsidiary", "ref"), "currency": ("currency", "ref"), "laborcost": ("laborCost", "num"),
            "title": ("title", "str"), "altname": (_PERSON, "str"),
        }, ("custentity",)),
        _record_table("entity", ("customer", "job", "employee"), {
            **entity_common, "altname": (_PERSON, "str"), "phone": ("phone", "str"),
            "type": ("(CASE r.type WHEN 'employee' THEN 'Employee' ELSE 'CustJob' END)", "str"),
            "parent": ("parent", "ref"),
        }, ("custentity",)),
        _record_table("subsidiary", ("subsidiary",), {
            "name": ("name", "str"), "fullname": ("name", "str"), "legalname": ("legalName", "str"),
            "country": ("country", "str"), "currency": ("currency", "ref"), "parent": ("parent", "ref"),
            "isinactive": ("isInactive", "bool"), "iselimination": ("'F'", "bool"),
        }, ("custrecord",)),
        _record_table("currency", ("currency",), {
            "name": ("name", "str"), "symbol": ("symbol", "str"), "isbasecurrency": ("isBaseCurrency", "bool"),
            "exchangerate": ("exchangeRate", "num"), "isinactive": ("'F'", "bool"),
        }, ()),
        _record_table("accountingperiod", ("accountingPeriod",), {
            "periodname": ("periodName", "str"), "startdate": ("startDate", "date"), "enddate": ("endDate", "date"),
            "isquarter": ("isQuarter", "bool"), "isyear": ("isYear", "bool"), "isadjust": ("isAdjust", "bool"),
            "closed": ("closed", "bool"), "alllocked": ("allLocked", "bool"), "arlocked": ("arLocked", "bool"),
            "aplocked": ("apLocked", "bool"), "isposting": ("isPosting", "bool"), "isinactive": ("'F'", "bool"),
        }, ("custrecord",)),
        _record_table("account", ("account",), {
            "acctnumber": ("acctNumber", "str"), "acctname": ("acctName", "str"), "fullname": ("acctName", "str"),
            "accttype": ("acctType", "str"), "isinactive": ("isInactive", "bool"),
            "accountsearchdisplayname": (
                "(json_extract(r.data,'$.acctNumber') || ' ' || json_extract(r.data,'$.acctName'))", "str"),
        }, ()),
        _record_table("item", ("serviceItem",), {
            "itemid": ("itemId", "str"), "displayname": ("displayName", "str"),
            "description": ("description", "str"), "itemtype": ("'Service'", "str"),
            "isinactive": ("isInactive", "bool"), "incomeaccount": ("incomeAccount", "ref"),
        }, ("custitem",)),
        _record_table("timebill", ("timeBill",), {
            "employee": ("employee", "ref"), "customer": ("customer", "ref"), "trandate": ("tranDate", "date"),
            "hours": ("hours", "num"), "rate": ("rate", "num"), "item": ("item", "ref"),
            "isbillable": ("isBillable", "bool"), "memo": ("memo", "str"), "subsidiary": ("subsidiary", "ref"),
            "approvalstatus": ("approvalStatus", "str"), "postingperiod": ("postingPeriod", "ref"),
        }, ("custcol",)),
    ]  # fmt: skip
    out = {t.name: t for t in tables}
    covered = {"customer", "job", "employee", "subsidiary", "currency", "accountingPeriod", "account",
               "serviceItem", "timeBill", *TRANSACTION_TYPES}  # fmt: skip
    for rtype in RECORDS:
        if rtype not in covered and rtype.lower() not in out:
            out[rtype.lower()] = _derived(rtype)
    return out
