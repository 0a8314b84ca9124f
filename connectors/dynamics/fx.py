"""D365 Finance exchange rates: the `ExchangeRates` data entity (ExchangeRateEntity).

A row says: `ConversionFactor` units of `FromCurrency` buy `Rate` units of `ToCurrency`
from `StartDate` on (to `EndDate`), for one exchange rate type (`RateTypeName`; the
ledger's default type unless configured). Exchange rates are shared by every company of
the environment. Pages are `$top`/`$skip` over a total order of the entity's key.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connectors.dynamics.client import DynamicsClient, literal
from domain.fx import FxRate, FxRatePage

# ExchangeRateDisplayFactor: how many units of the from-currency the rate is quoted for
FACTORS = {"One": 1, "Ten": 10, "Hundred": 100, "Thousand": 1000, "TenThousand": 10000}


class DynamicsFxRates:
    def __init__(self, client: DynamicsClient, rate_type: str = "Default") -> None:
        self._c = client
        self._type = rate_type

    @property
    def source(self) -> str:
        return f"dynamics:{self._c.config.instance}"

    async def rates(self, since: date, cursor: str | None, limit: int) -> FxRatePage:
        skip = int(cursor) if cursor else 0
        rows = [
            row
            async for row in self._c.query(
                "ExchangeRates",
                f"RateTypeName eq {literal(self._type)} and StartDate ge {since.isoformat()}T00:00:00Z",
                select=("RateTypeName", "FromCurrency", "ToCurrency", "StartDate", "Rate", "ConversionFactor"),
                orderby="StartDate,FromCurrency,ToCurrency",
                top=limit,
                skip=skip,
                cross_company=False,
            )
        ]
        page = FxRatePage(read=len(rows), cursor=str(skip + len(rows)) if len(rows) >= limit else None)
        for row in rows:
            base, quote = str(row.get("FromCurrency") or ""), str(row.get("ToCurrency") or "")
            factor = FACTORS.get(str(row.get("ConversionFactor") or "One"))
            rate = row.get("Rate")
            if len(base) != 3 or len(quote) != 3 or base == quote or factor is None or rate in (None, ""):
                continue
            start = str(row["StartDate"])[:10]
            page.rates.append(
                FxRate(
                    base=base.upper(),
                    quote=quote.upper(),
                    rate=Decimal(str(rate)) / factor,
                    as_of=date.fromisoformat(start),
                    source=self.source,
                    record_id=f"{self._type}/{base}/{quote}/{start}",
                )
            )
        return page
