"""Entity reads and writes with D365's rules, independent of HTTP.

Callers own the transaction: a single request runs in one, a `$batch` change set runs
all its requests in one and rolls it back when any of them fails.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from .._store import Store
from . import odata
from .entities import DATE, DECIMAL, ENTITY_SETS, ENUM, INT, NO_DATE, EntitySet, Prop

WRITE_FAILED = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
VERSION = "_v"  # record version behind the ETag; never shown


class ODataFailure(Exception):
    """An answer in OData's error shape: `{"error": {"code", "message", "innererror"}}`."""

    def __init__(
        self, status: int, message: str, inner: str | None = None, inner_type: str | None = None, code: str = ""
    ) -> None:
        super().__init__(inner or message)
        self.status = status
        self.message = message
        self.inner = inner
        self.inner_type = inner_type
        self.code = code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner is not None:
            error["innererror"] = {"message": self.inner, "type": self.inner_type or WRITE_FAILED, "stacktrace": ""}
        return {"error": error}


def bad_request(message: str) -> ODataFailure:
    return ODataFailure(400, message)


def write_failed(es: EntitySet, infolog: str, status: int = 400) -> ODataFailure:
    """D365's usual answer to a refused write: the X++ infolog inside the inner error."""
    return ODataFailure(
        status,
        "An error has occurred.",
        f"Write failed for table row of type '{es.entity_type}Entity'. Infolog: Error: {infolog}",
    )


def not_found(segment: str) -> ODataFailure:
    return ODataFailure(404, f"Resource not found for the segment '{segment}'.")


def currency_decimals(currency: str) -> int:
    return 0 if currency.upper() in ("JPY", "KRW", "HUF", "ISK") else 2


def round_money(value: Decimal, currency: str) -> Decimal:
    from decimal import ROUND_HALF_UP

    return value.quantize(Decimal(1).scaleb(-currency_decimals(currency)), ROUND_HALF_UP)


def dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def dtext(value: Decimal) -> str:
    """A stored decimal: plain text, no exponent."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def as_date_text(value: str) -> str:
    """D365 keeps dates as date-times at noon UTC (`2026-11-30T12:00:00Z`)."""
    return value[:10] + "T12:00:00Z"


class Service:
    def __init__(self, store: Store, companies: list[str], default_company: str) -> None:
        self.store = store
        self.companies = [c.lower() for c in companies]
        self.default_company = default_company.lower()

    # -- reading -------------------------------------------------------------------
    def entity_set(self, name: str) -> EntitySet:
        es = ENTITY_SETS.get(name)
        if es is None:
            raise ODataFailure(404, f"No HTTP resource was found that matches the request URI 'data/{name}'.")
        return es

    def get(self, es: EntitySet, key: dict[str, Any]) -> dict[str, Any] | None:
        return self.store.get(es.name, odata.record_id(es, key))

    def must_get(self, es: EntitySet, key: dict[str, Any]) -> dict[str, Any]:
        rec = self.get(es, key)
        if rec is None:
            raise not_found(es.name)
        return rec

    def query(
        self,
        es: EntitySet,
        *,
        filter_text: str | None,
        orderby: str | None,
        cross_company: bool,
        offset: int,
        limit: int,
        want_count: bool,
    ) -> tuple[list[dict[str, Any]], int | None, bool]:
        """(records, total count or None, more after this page)."""
        where = ["type=?"]
        params: list[Any] = [es.name]
        if es.per_company and not cross_company:
            where.append("json_extract(data,'$.dataAreaId')=?")
            params.append(self.default_company)
        if filter_text:
            try:
                sql, fparams = odata.compile_filter(es, filter_text)
            except odata.ODataError as e:
                raise bad_request(f"The query specified in the URI is not valid. {e}") from e
            where.append(sql)
            params.extend(fparams)
        try:
            order = odata.compile_orderby(es, orderby)
        except odata.ODataError as e:
            raise bad_request(f"The query specified in the URI is not valid. {e}") from e
        clause = " AND ".join(where)
        rows = self.store.conn.execute(
            f"SELECT data FROM records WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
            (*params, limit + 1, offset),
        ).fetchall()
        total = None
        if want_count:
            total = int(self.store.conn.execute(f"SELECT COUNT(*) FROM records WHERE {clause}", params).fetchone()[0])
        more = len(rows) > limit
        return [json.loads(r[0]) for r in rows[:limit]], total, more

    def find(self, es: EntitySet, **fields: Any) -> list[dict[str, Any]]:
        where = " AND ".join(f"json_extract(data,'$.{k}')=?" for k in fields)
        rows = self.store.conn.execute(
            f"SELECT data FROM records WHERE type=? AND {where} ORDER BY seq", (es.name, *fields.values())
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    # -- writing ---------------------------------------------------------------------
    def company(self, value: Any) -> str:
        company = str(value or self.default_company).lower()
        if company not in self.companies:
            raise bad_request(f"Company '{company}' does not exist.")
        return company

    def coerce(self, es: EntitySet, body: Any, *, creating: bool) -> dict[str, Any]:
        """Check the body's properties and convert them to their stored form."""
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        out: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            prop = es.props.get(name)
            if prop is None:
                raise bad_request(
                    f"The property '{name}' does not exist on type '{es.qualified_type}'. "
                    "Make sure to only use property names that are defined by the type."
                )
            if prop.readonly:
                raise write_failed(es, f"The field '{name}' is read-only and cannot be set.")
            if not creating and name in es.keys:
                if name == "dataAreaId":
                    continue  # the key already says which company
                raise write_failed(es, f"The key field '{name}' cannot be changed.")
            out[name] = self._convert(es, prop, value)
        return out

    def _convert(self, es: EntitySet, prop: Prop, value: Any) -> Any:
        if value is None:
            return None
        if prop.type in (DECIMAL, INT):
            if isinstance(value, bool):
                raise bad_request(f"Cannot convert the literal '{value}' to the expected type '{prop.type}'.")
            try:
                number = Decimal(str(value))
            except InvalidOperation as e:
                raise bad_request(f"Cannot convert the literal '{value}' to the expected type '{prop.type}'.") from e
            if not number.is_finite():
                raise bad_request(f"Cannot convert the literal '{value}' to the expected type '{prop.type}'.")
            return dtext(number)
        if prop.type == DATE:
            text = str(value)
            try:
                odata.utc_text(text if "T" in text else text + "T12:00:00Z")
            except ValueError as e:
                raise bad_request(f"Cannot convert the literal '{value}' to the expected type '{prop.type}'.") from e
            return as_date_text(text)
        if prop.type == ENUM:
            text = str(value)
            if text not in prop.choices:
                raise bad_request(
                    f"Cannot convert the literal '{value}' to the expected type '{es.qualified_type.rsplit('.', 1)[0]}."
                    f"{prop.enum}'."
                )
            return text
        if not isinstance(value, str):
            raise bad_request(f"Cannot convert the literal '{value}' to the expected type 'Edm.String'.")
        if prop.max_len is not None and len(value) > prop.max_len:
            raise write_failed(es, f"The value of field '{prop.name}' is longer than {prop.max_len} characters.")
        return value

    def _required(self, es: EntitySet, rec: dict[str, Any]) -> None:
        for prop in es.props.values():
            if prop.required and rec.get(prop.name) in (None, ""):
                raise write_failed(es, f"Field '{prop.name}' must be filled in.")

    def _reference(self, es: EntitySet, field: str, target: str, company: str, value: Any) -> dict[str, Any]:
        tes = ENTITY_SETS[target]
        key_field = next(k for k in tes.keys if k != "dataAreaId")
        rec = self.get(tes, {"dataAreaId": company, key_field: value})
        if rec is None:
            raise write_failed(
                es, f"The value '{value}' in field '{field}' is not found in the related table '{tes.entity_type}'."
            )
        return rec

    def create(self, es: EntitySet, body: Any) -> dict[str, Any]:
        if not es.writable:
            raise bad_request(f"The entity set '{es.name}' is read-only.")
        data = self.coerce(es, body, creating=True)
        rec: dict[str, Any] = dict(es.defaults)
        rec.update({k: v for k, v in data.items() if v is not None})
        if es.per_company:
            rec["dataAreaId"] = self.company(rec.get("dataAreaId"))
        company = rec.get("dataAreaId", "")
        if es.parent is not None:
            pfield, ptarget = es.parent
            if rec.get(pfield) in (None, ""):
                raise write_failed(es, f"Field '{pfield}' must be filled in.")
            parent = self._reference(es, pfield, ptarget, company, rec[pfield])
            if parent.get("IsPosted") == "Yes":
                raise write_failed(es, f"{ptarget} {rec[pfield]} is posted and can no longer be changed.")
            rec[pfield] = parent[pfield]  # the parent's spelling of its key
            if es.line_number and rec.get(es.line_number) in (None, ""):
                siblings = self.find(es, **{"dataAreaId": company, pfield: parent[pfield]})
                rec[es.line_number] = dtext(max((dec(s.get(es.line_number)) for s in siblings), default=Decimal(0)) + 1)
        if es.number_key and rec.get(es.number_key) in (None, ""):
            n = self.store.next_counter(f"{company}:{es.name}")
            rec[es.number_key] = es.number_format.format(n=n)
        self._required(es, rec)
        self.validate(es, rec, creating=True)
        rid = odata.record_id(es, rec)
        if self.store.get(es.name, rid) is not None:
            key = ", ".join(f"{k}: {rec[k]}" for k in es.keys)
            raise write_failed(es, f"Cannot create a record in {es.entity_type} ({key}). The record already exists.")
        rec[VERSION] = 1
        self.store.insert(es.name, rid, rec, rec.get("D2RReference"))
        self.after_write(es, rec)
        return rec

    def update(self, es: EntitySet, key: dict[str, Any], body: Any, if_match: str | None) -> dict[str, Any]:
        if not es.writable:
            raise bad_request(f"The entity set '{es.name}' is read-only.")
        rec = self.must_get(es, key)
        self.check_etag(rec, if_match)
        if rec.get("IsPosted") == "Yes":
            raise write_failed(
                es, f"{es.entity_type} {odata.key_text(es, rec)} is posted and can no longer be changed."
            )
        parent = self.parent_of(es, rec)
        if parent is not None and parent.get("IsPosted") == "Yes":
            raise write_failed(es, f"{es.parent[1] if es.parent else ''} is posted and can no longer be changed.")
        data = self.coerce(es, body, creating=False)
        before = dict(rec)
        rec.update(data)
        self._required(es, rec)
        self.validate(es, rec, creating=False, before=before)
        rec[VERSION] = int(rec.get(VERSION, 1)) + 1
        self.store.update(es.name, odata.record_id(es, rec), rec, rec.get("D2RReference"))
        self.after_write(es, rec)
        return rec

    def delete(self, es: EntitySet, key: dict[str, Any], if_match: str | None) -> None:
        if not es.writable or not es.deletable:
            raise bad_request(f"Records of '{es.name}' cannot be deleted.")
        rec = self.must_get(es, key)
        self.check_etag(rec, if_match)
        if rec.get("IsPosted") == "Yes":
            raise write_failed(es, f"{es.entity_type} {odata.key_text(es, rec)} is posted and cannot be deleted.")
        parent = self.parent_of(es, rec)
        if parent is not None and parent.get("IsPosted") == "Yes":
            raise write_failed(es, "The document is posted; its lines cannot be deleted.")
        if es.name == "SalesOrderHeadersV2" and rec.get("SalesOrderStatus") == "Invoiced":
            raise write_failed(es, f"Sales order {rec['SalesOrderNumber']} has been invoiced and cannot be deleted.")
        # headers take their lines with them, as D365's delete actions cascade
        for child in ENTITY_SETS.values():
            if child.parent is not None and child.parent[1] == es.name:
                pfield = child.parent[0]
                for line in self.find(child, dataAreaId=rec.get("dataAreaId"), **{pfield: rec[pfield]}):
                    self.store.delete(child.name, odata.record_id(child, line))
        self.store.delete(es.name, odata.record_id(es, rec))
        if es.parent is not None:
            self.after_write(es, rec)

    def parent_of(self, es: EntitySet, rec: dict[str, Any]) -> dict[str, Any] | None:
        if es.parent is None:
            return None
        pfield, ptarget = es.parent
        pes = ENTITY_SETS[ptarget]
        return self.get(pes, {"dataAreaId": rec.get("dataAreaId"), pfield: rec.get(pfield)})

    # -- ETags -------------------------------------------------------------------------
    @staticmethod
    def etag(rec: dict[str, Any]) -> str:
        import base64

        token = base64.b64encode(f"1,{rec.get(VERSION, 1)}".encode()).decode()
        return f'W/"{token}"'

    def check_etag(self, rec: dict[str, Any], if_match: str | None) -> None:
        if if_match is None or if_match.strip() == "*":
            return
        tags = [t.strip() for t in if_match.split(",")]
        if self.etag(rec) not in tags:
            raise ODataFailure(
                412,
                "The ETag value in the request header does not match with the current ETag value of the object.",
            )

    # -- business rules ------------------------------------------------------------------
    def validate(
        self, es: EntitySet, rec: dict[str, Any], *, creating: bool, before: dict[str, Any] | None = None
    ) -> None:
        company = rec.get("dataAreaId", "")
        name = es.name
        if name == "CustomersV3":
            self._currency(es, "SalesCurrencyCode", rec["SalesCurrencyCode"])
            if rec.get("SalesTaxGroup"):
                self._reference(es, "SalesTaxGroup", "SalesTaxGroups", company, rec["SalesTaxGroup"])
        elif name == "SalesOrderHeadersV2":
            cust = self._reference(
                es, "OrderingCustomerAccountNumber", "CustomersV3", company, rec["OrderingCustomerAccountNumber"]
            )
            rec.setdefault("InvoiceCustomerAccountNumber", cust["CustomerAccount"])
            rec.setdefault("CurrencyCode", cust["SalesCurrencyCode"])
            self._currency(es, "CurrencyCode", rec["CurrencyCode"])
            rec.setdefault("OrderTotalAmount", "0")
            if before is not None and rec.get("SalesOrderStatus") != before.get("SalesOrderStatus"):
                if rec["SalesOrderStatus"] != "Canceled" or before.get("SalesOrderStatus") not in ("Backorder", None):
                    raise write_failed(
                        es,
                        f"The status of sales order {rec['SalesOrderNumber']} cannot change from "
                        f"{before.get('SalesOrderStatus')} to {rec['SalesOrderStatus']}.",
                    )
        elif name == "SalesOrderLines":
            header = self._reference(es, "SalesOrderNumber", "SalesOrderHeadersV2", company, rec["SalesOrderNumber"])
            if header.get("SalesOrderStatus") in ("Invoiced", "Canceled"):
                raise write_failed(
                    es, f"Sales order {header['SalesOrderNumber']} is {header['SalesOrderStatus']}; lines are locked."
                )
            self._reference(es, "ItemNumber", "ReleasedProductsV2", company, rec["ItemNumber"])
            currency = header["CurrencyCode"]
            rec["CurrencyCode"] = currency
            rec["LineAmount"] = dtext(
                round_money(dec(rec.get("OrderedSalesQuantity")) * dec(rec.get("SalesPrice")), currency)
            )
        elif name == "FreeTextInvoiceHeaders":
            cust = self._reference(es, "CustomerAccount", "CustomersV3", company, rec["CustomerAccount"])
            rec.setdefault("CurrencyCode", cust["SalesCurrencyCode"])
            self._currency(es, "CurrencyCode", rec["CurrencyCode"])
            rec.setdefault("DueDate", rec["InvoiceDate"])
            rec.setdefault("DocumentDate", rec["InvoiceDate"])
            rec.setdefault("TotalInvoiceAmount", "0")
            rec.setdefault("TotalTaxAmount", "0")
        elif name == "FreeTextInvoiceLines":
            self._main_account(es, rec["MainAccountDisplayValue"])
            if rec.get("SalesTaxGroup"):
                self._reference(es, "SalesTaxGroup", "SalesTaxGroups", company, rec["SalesTaxGroup"])
            if rec.get("TransactionCurrencyAmount") in (None, ""):
                rec["TransactionCurrencyAmount"] = dtext(dec(rec.get("Quantity", "1")) * dec(rec.get("UnitPrice")))
        elif name == "LedgerJournalLines":
            self._currency(es, "CurrencyCode", rec["CurrencyCode"])
            debit, credit = dec(rec.get("DebitAmount")), dec(rec.get("CreditAmount"))
            if debit < 0 or credit < 0 or (debit and credit):
                raise write_failed(es, "A journal line has either a debit or a credit amount, not negative, not both.")
            self._account(es, rec.get("AccountType") or "Ledger", rec["AccountDisplayValue"], company)
            if rec.get("OffsetAccountDisplayValue"):
                self._account(es, rec.get("OffsetAccountType") or "Ledger", rec["OffsetAccountDisplayValue"], company)
        elif name == "CustomerPaymentJournalLines":
            self._currency(es, "CurrencyCode", rec["CurrencyCode"])
            self._reference(es, "AccountDisplayValue", "CustomersV3", company, rec["AccountDisplayValue"])
            if dec(rec["CreditAmount"]) <= 0:
                raise write_failed(es, "The payment amount must be positive.")
        elif name == "ProjectHourJournalLines":
            workers = self.find(ENTITY_SETS["Employees"], PersonnelNumber=rec["Worker"])
            if not workers:
                raise write_failed(
                    es, f"The value '{rec['Worker']}' in field 'Worker' is not found in the related table 'Worker'."
                )
            if dec(rec["Hours"]) <= 0 or dec(rec["Hours"]) > 24:
                raise write_failed(es, "Hours must be more than 0 and at most 24.")
            # hour transactions post as they are written here (real D365 posts a journal)
            from .posting import Posting

            Posting(self).open_period(es.name, company, rec["TransDate"])
        elif name == "LedgerFiscalPeriods" and before is not None:
            if before.get("PeriodStatus") == "PermanentlyClosed" and rec.get("PeriodStatus") != "PermanentlyClosed":
                raise write_failed(es, f"Period {rec['PeriodName']} is permanently closed and cannot be reopened.")
        elif name == "Projects" and rec.get("CustomerAccount"):
            self._reference(es, "CustomerAccount", "CustomersV3", company, rec["CustomerAccount"])
        for prop in es.props.values():
            if prop.type == DATE and rec.get(prop.name) == "":
                rec[prop.name] = NO_DATE

    def after_write(self, es: EntitySet, rec: dict[str, Any]) -> None:
        """Derived header fields: a sales order's total follows its lines."""
        if es.name == "SalesOrderLines":
            header_es = ENTITY_SETS["SalesOrderHeadersV2"]
            header = self.get(header_es, {"dataAreaId": rec["dataAreaId"], "SalesOrderNumber": rec["SalesOrderNumber"]})
            if header is None:
                return
            lines = self.find(es, dataAreaId=rec["dataAreaId"], SalesOrderNumber=rec["SalesOrderNumber"])
            header["OrderTotalAmount"] = dtext(sum((dec(line.get("LineAmount")) for line in lines), Decimal(0)))
            header[VERSION] = int(header.get(VERSION, 1)) + 1
            self.store.update(header_es.name, odata.record_id(header_es, header), header, header.get("D2RReference"))

    def _currency(self, es: EntitySet, field: str, code: str) -> None:
        if code.upper() not in ("USD", "GBP", "EUR", "JPY", "CHF"):
            raise write_failed(
                es, f"The value '{code}' in field '{field}' is not found in the related table 'Currency'."
            )

    def _main_account(self, es: EntitySet, display: str) -> str:
        main = display.split("-", 1)[0]
        if self.get(ENTITY_SETS["MainAccounts"], {"ChartOfAccounts": "Shared", "MainAccountId": main}) is None:
            raise write_failed(es, f"The main account '{main}' in '{display}' does not exist in the chart of accounts.")
        return main

    def _account(self, es: EntitySet, account_type: str, display: str, company: str) -> None:
        if account_type == "Ledger" or account_type == "Bank":
            self._main_account(es, display)
        elif account_type == "Customer":
            self._reference(es, "AccountDisplayValue", "CustomersV3", company, display)
        elif account_type == "Project":
            self._reference(es, "AccountDisplayValue", "Projects", company, display)

    # -- output ------------------------------------------------------------------------
    @staticmethod
    def render(es: EntitySet, rec: dict[str, Any], select: list[str] | None, ieee754: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": Service.etag(rec)}
        names = select if select is not None else list(es.props)
        for name in names:
            prop = es.props[name]
            value = rec.get(name)
            if value is None:
                value = _empty(prop)
            elif prop.type in (DECIMAL, INT) and not ieee754:
                number = Decimal(str(value))
                value = int(number) if number == number.to_integral_value() else float(number)
            out[name] = value
        return out


def _empty(prop: Prop) -> Any:
    """D365 answers every field; empty ones are "", 0 or its empty date, never null."""
    if prop.type in (DECIMAL, INT):
        return 0
    if prop.type == DATE:
        return NO_DATE
    if prop.type == ENUM:
        return prop.choices[0]
    return ""
