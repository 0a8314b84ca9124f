"""The bound `post` actions: free-text invoices (and credit notes), general journals and
customer payment journals become customer transactions, settlements and ledger entries.

Real D365 posts these through its own forms or batch jobs (free-text invoices and
journals have no standard OData post action); an integration deploys an action like
this one. What posting checks is D365's: the ledger period of each date must be Open,
a journal must balance, a posted document can't be changed or posted again.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import odata
from .entities import ENTITY_SETS
from .service import VERSION, Service, dec, dtext, round_money, write_failed

ES = ENTITY_SETS
AR_ACCOUNT, TAX_ACCOUNT, BANK_ACCOUNT = "1200", "2200", "1100"


class Posting:
    def __init__(self, service: Service) -> None:
        self.svc = service
        self.store = service.store

    def run(self, entity_set: str, key: dict[str, Any]) -> dict[str, Any]:
        es = ES[entity_set]
        header = self.svc.must_get(es, key)
        if header.get("IsPosted") == "Yes":
            raise write_failed(es, f"{es.entity_type} {odata.key_text(es, header)} has already been posted.")
        if entity_set == "FreeTextInvoiceHeaders":
            return self._free_text_invoice(header)
        if entity_set == "LedgerJournalHeaders":
            return self._ledger_journal(header)
        return self._payment_journal(header)

    # -- periods -----------------------------------------------------------------------
    def open_period(self, es_name: str, company: str, date_text: str) -> None:
        day = date_text[:10]
        rows = self.store.conn.execute(
            "SELECT data FROM records WHERE type='LedgerFiscalPeriods' AND json_extract(data,'$.LedgerName')=? "
            "COLLATE NOCASE AND substr(json_extract(data,'$.StartDate'),1,10)<=? "
            "AND substr(json_extract(data,'$.EndDate'),1,10)>=?",
            (company.upper(), day, day),
        ).fetchall()
        import json

        if not rows:
            raise write_failed(ES[es_name], f"The date {day} is not in a period of the fiscal calendar of {company}.")
        period = json.loads(rows[0][0])
        if period.get("PeriodStatus") != "Open":
            raise write_failed(
                ES[es_name],
                f"The ledger period {period['PeriodName']} of {company.upper()} is not open "
                f"(status {period['PeriodStatus']}); posting on {day} is not allowed.",
            )

    # -- shared writes ---------------------------------------------------------------------
    def _number(self, company: str, sequence: str, fmt: str) -> str:
        return fmt.format(n=self.store.next_counter(f"{company}:{sequence}"))

    def _put(self, es_name: str, rec: dict[str, Any]) -> None:
        es = ES[es_name]
        rec[VERSION] = 1
        self.store.insert(es_name, odata.record_id(es, rec), rec, rec.get("D2RReference"))

    def _save(self, es_name: str, rec: dict[str, Any]) -> None:
        es = ES[es_name]
        rec[VERSION] = int(rec.get(VERSION, 1)) + 1
        self.store.update(es_name, odata.record_id(es, rec), rec, rec.get("D2RReference"))

    def _ledger(
        self,
        company: str,
        voucher: str,
        journal: str,
        date: str,
        account: str,
        amount: Decimal,
        currency: str,
        posting_type: str,
        text: str,
        header: dict[str, Any],
    ) -> None:
        if amount == 0:
            return
        self._put(
            "GeneralJournalAccountEntries",
            {
                "dataAreaId": company,
                "EntryId": self._number(company, "GeneralJournalAccountEntries", "GJAE{n:08d}"),
                "Voucher": voucher,
                "JournalNumber": journal,
                "AccountingDate": date,
                "MainAccount": account.split("-", 1)[0],
                "LedgerAccount": account,
                "TransactionCurrencyCode": currency,
                "TransactionCurrencyAmount": dtext(amount),
                "IsCredit": "Yes" if amount < 0 else "No",
                "PostingType": posting_type,
                "Text": text[:60],
                "D2RReference": header.get("D2RReference"),
                "D2ROpportunityId": header.get("D2ROpportunityId"),
            },
        )

    def _settle(
        self,
        company: str,
        invoice_trans: dict[str, Any],
        offset_trans: dict[str, Any],
        amount: Decimal,
        date: str,
        kind: str,
        reference: str | None,
    ) -> None:
        """Settle `amount` (positive) of an open invoice against a payment or credit note."""
        for trans, delta in ((invoice_trans, amount), (offset_trans, -amount)):
            trans["SettleAmountCur"] = dtext(dec(trans.get("SettleAmountCur")) + delta)
            trans["RemainingAmountCur"] = dtext(dec(trans["AmountCur"]) - dec(trans["SettleAmountCur"]))
            self._save("CustomerTransactions", trans)
        self._put(
            "CustomerSettlements",
            {
                "dataAreaId": company,
                "SettlementId": self._number(company, "CustomerSettlements", "SET{n:08d}"),
                "CustomerAccount": invoice_trans["CustomerAccount"],
                "InvoiceId": invoice_trans["Invoice"],
                "InvoiceVoucher": invoice_trans["Voucher"],
                "OffsetVoucher": offset_trans["Voucher"],
                "OffsetTransactionType": kind,
                "SettledAmountCur": dtext(amount),
                "CurrencyCode": invoice_trans["CurrencyCode"],
                "SettlementDate": date,
                "PaymentReference": reference,
            },
        )

    def _open_invoice(self, company: str, customer: str, invoice_id: str) -> dict[str, Any] | None:
        found = self.svc.find(
            ES["CustomerTransactions"], dataAreaId=company, CustomerAccount=customer, Invoice=invoice_id
        )
        invoices = [t for t in found if t.get("TransactionType") == "Invoice"]
        return invoices[0] if invoices else None

    # -- free-text invoices and credit notes -------------------------------------------------
    def _free_text_invoice(self, header: dict[str, Any]) -> dict[str, Any]:
        company, currency = header["dataAreaId"], header["CurrencyCode"]
        lines = self.svc.find(ES["FreeTextInvoiceLines"], dataAreaId=company, FreeTextNumber=header["FreeTextNumber"])
        if not lines:
            raise write_failed(
                ES["FreeTextInvoiceHeaders"], f"Free text invoice {header['FreeTextNumber']} has no lines."
            )
        self.open_period("FreeTextInvoiceHeaders", company, header["InvoiceDate"])
        net_total, tax_total = Decimal(0), Decimal(0)
        for line in lines:
            net = round_money(dec(line.get("TransactionCurrencyAmount")), currency)
            rate = Decimal(0)
            if line.get("SalesTaxGroup"):
                group = self.svc.must_get(
                    ES["SalesTaxGroups"], {"dataAreaId": company, "TaxGroupCode": line["SalesTaxGroup"]}
                )
                rate = dec(group.get("TaxRatePercent"))
            tax = (net * rate / 100).quantize(Decimal(1).scaleb(-(0 if currency == "JPY" else 2)), ROUND_HALF_UP)
            line["TransactionCurrencyAmount"] = dtext(net)
            line["TaxAmount"] = dtext(tax)
            self._save("FreeTextInvoiceLines", line)
            net_total += net
            tax_total += tax
        total = net_total + tax_total
        credit_note = total < 0
        invoice_id = self._number(
            company, "credit-notes" if credit_note else "invoices", "CCN-{n:06d}" if credit_note else "CIV-{n:06d}"
        )
        voucher = self._number(company, "ar-vouchers", "ARV{n:08d}")
        date = header["InvoiceDate"]
        trans = {
            "dataAreaId": company,
            "Voucher": voucher,
            "CustomerAccount": header["CustomerAccount"],
            "TransactionType": "CreditNote" if credit_note else "Invoice",
            "Invoice": invoice_id,
            "TransDate": date,
            "DueDate": header.get("DueDate") or date,
            "CurrencyCode": currency,
            "AmountCur": dtext(total),
            "SettleAmountCur": "0",
            "RemainingAmountCur": dtext(total),
            "D2RReference": header.get("D2RReference"),
            "D2ROpportunityId": header.get("D2ROpportunityId"),
        }
        self._put("CustomerTransactions", trans)
        text = f"Invoice {invoice_id}"
        self._ledger(company, voucher, invoice_id, date, AR_ACCOUNT, total, currency, "Cust", text, header)
        for line in lines:
            self._ledger(
                company,
                voucher,
                invoice_id,
                date,
                line["MainAccountDisplayValue"],
                -dec(line["TransactionCurrencyAmount"]),
                currency,
                "Sales",
                text,
                header,
            )
        self._ledger(company, voucher, invoice_id, date, TAX_ACCOUNT, -tax_total, currency, "Sales", text, header)
        if credit_note and header.get("D2RSettleInvoiceId"):
            invoice = self._open_invoice(company, header["CustomerAccount"], header["D2RSettleInvoiceId"])
            if invoice is None:
                raise write_failed(
                    ES["FreeTextInvoiceHeaders"],
                    f"Invoice {header['D2RSettleInvoiceId']} of {header['CustomerAccount']} "
                    "is not found for settlement.",
                )
            amount = min(-total, dec(invoice["RemainingAmountCur"]))
            if amount > 0:
                self._settle(company, invoice, trans, amount, date, "CreditNote", invoice_id)
        header.update(
            IsPosted="Yes", InvoiceId=invoice_id, TotalInvoiceAmount=dtext(total), TotalTaxAmount=dtext(tax_total)
        )
        self._save("FreeTextInvoiceHeaders", header)
        self._sales_order_invoiced(header)
        return {"InvoiceId": invoice_id, "Voucher": voucher}

    def _sales_order_invoiced(self, header: dict[str, Any]) -> None:
        """A sales order billed in full (by its free-text invoices) shows as Invoiced."""
        number = header.get("D2RSalesOrderNumber")
        if not number:
            return
        order = self.svc.get(
            ES["SalesOrderHeadersV2"], {"dataAreaId": header["dataAreaId"], "SalesOrderNumber": number}
        )
        if order is None or order.get("SalesOrderStatus") != "Backorder":
            return
        billed = sum(
            (
                dec(h.get("TotalInvoiceAmount")) - dec(h.get("TotalTaxAmount"))
                for h in self.svc.find(
                    ES["FreeTextInvoiceHeaders"], dataAreaId=header["dataAreaId"], D2RSalesOrderNumber=number
                )
                if h.get("IsPosted") == "Yes"
            ),
            Decimal(0),
        )
        if dec(order.get("OrderTotalAmount")) > 0 and billed >= dec(order.get("OrderTotalAmount")):
            order["SalesOrderStatus"] = "Invoiced"
            self._save("SalesOrderHeadersV2", order)

    # -- general journals ----------------------------------------------------------------------
    def _ledger_journal(self, header: dict[str, Any]) -> dict[str, Any]:
        company = header["dataAreaId"]
        lines = self.svc.find(
            ES["LedgerJournalLines"], dataAreaId=company, JournalBatchNumber=header["JournalBatchNumber"]
        )
        if not lines:
            raise write_failed(ES["LedgerJournalHeaders"], f"Journal {header['JournalBatchNumber']} has no lines.")
        balance = Decimal(0)
        for line in lines:
            self.open_period("LedgerJournalHeaders", company, line["TransDate"])
            if not line.get("OffsetAccountDisplayValue"):
                balance += dec(line.get("DebitAmount")) - dec(line.get("CreditAmount"))
        if balance != 0:
            raise write_failed(
                ES["LedgerJournalHeaders"],
                f"The transactions on journal {header['JournalBatchNumber']} do not balance "
                f"(difference {dtext(balance)}).",
            )
        voucher = self._number(company, "gl-vouchers", "GLV{n:08d}")
        text = header.get("Description") or f"Journal {header['JournalBatchNumber']}"
        for line in lines:
            amount = dec(line.get("DebitAmount")) - dec(line.get("CreditAmount"))
            args = (company, voucher, header["JournalBatchNumber"], line["TransDate"])
            self._ledger(
                *args,
                line["AccountDisplayValue"],
                amount,
                line["CurrencyCode"],
                "GeneralJournal",
                line.get("Text") or text,
                header,
            )
            if line.get("OffsetAccountDisplayValue"):
                self._ledger(
                    *args,
                    line["OffsetAccountDisplayValue"],
                    -amount,
                    line["CurrencyCode"],
                    "GeneralJournal",
                    line.get("Text") or text,
                    header,
                )
            line["Voucher"] = voucher
            self._save("LedgerJournalLines", line)
        header["IsPosted"] = "Yes"
        self._save("LedgerJournalHeaders", header)
        return {"Voucher": voucher}

    # -- customer payments -----------------------------------------------------------------------
    def _payment_journal(self, header: dict[str, Any]) -> dict[str, Any]:
        company = header["dataAreaId"]
        lines = self.svc.find(
            ES["CustomerPaymentJournalLines"], dataAreaId=company, JournalBatchNumber=header["JournalBatchNumber"]
        )
        if not lines:
            raise write_failed(
                ES["CustomerPaymentJournalHeaders"], f"Journal {header['JournalBatchNumber']} has no lines."
            )
        vouchers = []
        for line in lines:
            self.open_period("CustomerPaymentJournalHeaders", company, line["TransactionDate"])
            amount = dec(line["CreditAmount"])
            voucher = self._number(company, "payment-vouchers", "PMV{n:08d}")
            vouchers.append(voucher)
            trans = {
                "dataAreaId": company,
                "Voucher": voucher,
                "CustomerAccount": line["AccountDisplayValue"],
                "TransactionType": "Payment",
                "Invoice": "",
                "TransDate": line["TransactionDate"],
                "DueDate": line["TransactionDate"],
                "CurrencyCode": line["CurrencyCode"],
                "AmountCur": dtext(-amount),
                "SettleAmountCur": "0",
                "RemainingAmountCur": dtext(-amount),
                "PaymentReference": line.get("PaymentReference"),
            }
            self._put("CustomerTransactions", trans)
            bank = line.get("OffsetAccountDisplayValue") or BANK_ACCOUNT
            args = (company, voucher, header["JournalBatchNumber"], line["TransactionDate"])
            self._ledger(*args, bank, amount, line["CurrencyCode"], "Payment", "Customer payment", header)
            self._ledger(*args, AR_ACCOUNT, -amount, line["CurrencyCode"], "Payment", "Customer payment", header)
            if line.get("MarkedInvoice"):
                invoice = self._open_invoice(company, line["AccountDisplayValue"], line["MarkedInvoice"])
                if invoice is None:
                    raise write_failed(
                        ES["CustomerPaymentJournalLines"], f"The marked invoice {line['MarkedInvoice']} is not found."
                    )
                settled = min(amount, dec(invoice["RemainingAmountCur"]))
                if settled > 0:
                    self._settle(
                        company,
                        invoice,
                        trans,
                        settled,
                        line["TransactionDate"],
                        "Payment",
                        line.get("PaymentReference"),
                    )
            line["Voucher"] = voucher
            self._save("CustomerPaymentJournalLines", line)
        header["IsPosted"] = "Yes"
        self._save("CustomerPaymentJournalHeaders", header)
        return {"Vouchers": vouchers}
