"""NetSuite's currency exchange rates (`currencyRate` records, SuiteQL table `currencyrate`).

A record says: 1 unit of `transactionCurrency` is `exchangeRate` units of `baseCurrency`
from `effectiveDate` on (the base currency amount divided by the foreign currency amount).
With OneWorld each base currency of a subsidiary has its own rates. Both currencies are
references to `currency` records, read back as ISO codes (the currency's `symbol`); dates go
out through TO_DATE and come back in the account's date format.
Pages follow the internal id (`id > cursor ORDER BY id`), a stable keyset.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connectors.netsuite.client import NetSuiteClient
from connectors.netsuite.dates import to_date_literal
from domain.fx import FxRate, FxRatePage


class NetSuiteFxRates:
    def __init__(self, client: NetSuiteClient) -> None:
        self._ns = client
        self._codes: dict[str, str] = {}

    @property
    def source(self) -> str:
        return f"netsuite:{self._ns.config.instance}"

    async def rates(self, since: date, cursor: str | None, limit: int) -> FxRatePage:
        after = int(cursor) if cursor else 0
        query = (
            "SELECT id, basecurrency, transactioncurrency, exchangerate, effectivedate FROM currencyrate "
            f"WHERE id > {after} AND effectivedate >= {to_date_literal(since)} ORDER BY id"
        )
        rows = []
        async for row in self._ns.suiteql(query, page_size=limit):
            rows.append(row)
            if len(rows) >= limit:
                break
        codes = await self._currency_codes(
            {str(r.get(k)) for r in rows for k in ("basecurrency", "transactioncurrency")}
        )
        page = FxRatePage(read=len(rows), cursor=str(rows[-1]["id"]) if len(rows) >= limit else None)
        for row in rows:
            base = codes.get(str(row.get("basecurrency")))
            foreign = codes.get(str(row.get("transactioncurrency")))
            rate = row.get("exchangerate")
            if not base or not foreign or rate in (None, "") or base == foreign:
                continue
            page.rates.append(
                FxRate(
                    base=foreign,
                    quote=base,
                    rate=Decimal(str(rate)),
                    as_of=self._ns.date(row["effectivedate"]),  # in the account's date format
                    source=self.source,
                    record_id=str(row["id"]),
                )
            )
        return page

    async def _currency_codes(self, ids: set[str]) -> dict[str, str]:
        wanted = sorted(i for i in ids if i.isdigit() and i not in self._codes)
        if wanted:
            query = f"SELECT id, symbol FROM currency WHERE id IN ({', '.join(wanted)})"
            async for row in self._ns.suiteql(query):
                code = row.get("symbol")
                if isinstance(code, str) and len(code) == 3:
                    self._codes[str(row["id"])] = code.upper()
        return self._codes
