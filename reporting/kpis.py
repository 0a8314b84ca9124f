"""KPI queries: SQL over the conformed facts, by any conformed dimension and period.

Flow KPIs sum movements within the period range; balance KPIs (backlog, WIP, deferred
revenue, AR aging, DSO) are measured at an as-of date, or at each month end when grouped
by period. Every money KPI is available in functional currency (one row per functional
currency) or in reporting currency.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

CurrencyBasis = Literal["reporting", "functional"]

GROUPS = ("none", "customer", "project", "consultant", "service_line", "geography", "legal_entity", "period")

KPI_NAMES = (
    "bookings",
    "backlog",
    "utilization",
    "wip",
    "billed_revenue",
    "revenue",
    "deferred_revenue",
    "collections",
    "ar_aging",
    "dso",
    "project_margin",
)


class KpiError(ValueError):
    """The request cannot be answered as asked (unknown KPI, unsupported grouping...)."""


def month_start(period: str) -> dt.date:
    try:
        year, month = (int(p) for p in period.split("-"))
        return dt.date(year, month, 1)
    except (ValueError, TypeError) as exc:
        raise KpiError(f"period must look like YYYY-MM, got {period!r}") from exc


def month_end(period: str) -> dt.date:
    start = month_start(period)
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


@dataclass
class KpiQuery:
    group_by: str = "none"
    period_from: str | None = None  # YYYY-MM, inclusive
    period_to: str | None = None  # YYYY-MM, inclusive
    as_of: dt.date | None = None
    currency: CurrencyBasis = "reporting"
    legal_entity: str | None = None
    customer_id: str | None = None  # includes the customer's descendants in the hierarchy
    project_id: str | None = None
    consultant_id: str | None = None
    service_line: str | None = None
    geography: str | None = None
    dso_days: int = 90

    def check(self) -> None:
        if self.group_by not in GROUPS:
            raise KpiError(f"group_by must be one of {', '.join(GROUPS)}")
        if self.currency not in ("reporting", "functional"):
            raise KpiError("currency must be 'reporting' or 'functional'")
        if self.period_from and self.period_to and (month_start(self.period_from) > month_start(self.period_to)):
            raise KpiError("period_from is after period_to")

    def date_range(self) -> tuple[dt.date | None, dt.date | None]:
        start = month_start(self.period_from) if self.period_from else None
        end = month_end(self.period_to) if self.period_to else None
        return start, end

    def balance_date(self) -> dt.date:
        if self.as_of:
            return self.as_of
        if self.period_to:
            return month_end(self.period_to)
        return dt.date.today()


@dataclass
class KpiResult:
    kpi: str
    group_by: str
    currency_basis: str
    unit: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    as_of: dt.date | None = None


class _Sql:
    """Collects positional parameters while a query is assembled."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


# --------------------------------------------------------------------- project-keyed facts
def _key_expr(group_by: str, date_col: str | None) -> str:
    if group_by == "customer":
        return "f.customer_id"
    if group_by == "project":
        return "f.project_id"
    if group_by == "legal_entity":
        return "f.legal_entity"
    if group_by == "service_line":
        return "p.service_line"
    if group_by == "geography":
        return "p.geography"
    if group_by == "period" and date_col:
        return f"to_char(f.{date_col}, 'YYYY-MM')"
    if group_by == "consultant":
        return "f.consultant_id"
    return "'all'"


def _project_join(q: KpiQuery) -> str:
    """Join the project dimension only when a grouping or filter needs its attributes."""
    if q.group_by in ("service_line", "geography") or q.service_line or q.geography:
        return " LEFT JOIN dim_project p ON p.project_id = f.project_id"
    return ""


def _filters(q: KpiQuery, s: _Sql, *, consultant_ok: bool = False) -> list[str]:
    where: list[str] = []
    if q.legal_entity:
        where.append(f"f.legal_entity = {s.p(q.legal_entity)}")
    if q.customer_id:
        where.append(
            f"f.customer_id IN (SELECT customer_id FROM v_customer_ancestry WHERE ancestor_id = {s.p(q.customer_id)})"
        )
    if q.project_id:
        where.append(f"f.project_id = {s.p(q.project_id)}")
    if q.service_line:
        where.append(f"p.service_line = {s.p(q.service_line)}")
    if q.geography:
        where.append(f"p.geography = {s.p(q.geography)}")
    if q.consultant_id:
        if not consultant_ok:
            raise KpiError("this KPI cannot be filtered by consultant")
        where.append(f"f.consultant_id = {s.p(q.consultant_id)}")
    return where


@dataclass(frozen=True)
class _Flow:
    table: str
    date_col: str
    money_col: str
    sign: int = 1
    measure: str = "value"
    where: str | None = None


def _flow_part(
    q: KpiQuery, s: _Sql, src: _Flow, start: dt.date | None, end: dt.date | None, measures: list[str]
) -> str:
    """One source, already summed per (key, currency): few rows reach the outer query.

    Grouping by period groups by the first day of the month here (cheap) and formats it
    as YYYY-MM on the summed rows; grouping by a project attribute groups by project
    here and joins the project dimension once per project in `flow_query`.
    """
    consultant = src.table in ("agg_time_month", "fact_expense")
    if q.group_by == "consultant" and not consultant:
        raise KpiError("this KPI cannot be grouped by consultant")
    where = _filters(q, s, consultant_ok=consultant)
    if start:
        where.append(f"f.{src.date_col} >= {s.p(start)}")
    if end:
        where.append(f"f.{src.date_col} <= {s.p(end)}")
    if src.where:
        where.append(src.where)
    if q.group_by == "period":
        key = (
            f"f.{src.date_col}"
            if src.table.startswith("agg_")
            else f"date_trunc('month', f.{src.date_col}::timestamp)::date"
        )
    elif q.group_by in ("service_line", "geography"):
        key = "f.project_id"
    else:
        key = _key_expr(q.group_by, src.date_col)
    sign = "" if src.sign > 0 else "-"
    cols = ", ".join(
        (f"sum({sign}f.{q.currency}_{src.money_col})" if mm == src.measure else "NULL::numeric") + f" AS {mm}"
        for mm in measures
    )
    return (
        f"SELECT {key} AS key, f.{q.currency}_currency AS currency, {cols} "
        f"FROM {src.table} f{_project_join(q)}" + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY 1, 2"
    )


def flow_query(q: KpiQuery, sources: list[_Flow]) -> tuple[str, list[Any]]:
    s = _Sql()
    start, end = q.date_range()
    measures = sorted({src.measure for src in sources})
    parts = " UNION ALL ".join(_flow_part(q, s, src, start, end, measures) for src in sources)
    cols = ", ".join(f"sum(x.{mm}) AS {mm}" for mm in measures)
    if q.group_by == "period":
        key, join = "to_char(x.key, 'YYYY-MM')", ""
    elif q.group_by in ("service_line", "geography"):
        key = f"p.{q.group_by}"
        join = " LEFT JOIN dim_project p ON p.project_id = x.key"
    else:
        key, join = "x.key", ""
    return (
        f"SELECT {key} AS key, x.currency, {cols} FROM ({parts}) x{join} GROUP BY 1, 2 ORDER BY 1, 2",
        s.params,
    )


FLOW_KPIS: dict[str, list[_Flow]] = {
    "bookings": [_Flow("fact_booking", "booking_date", "amount")],
    "revenue": [_Flow("fact_revenue", "revenue_date", "amount")],
    "billed_revenue": [
        _Flow("fact_invoice", "invoice_date", "net_amount"),
        _Flow("fact_credit_memo", "memo_date", "net_amount", sign=-1),
    ],
    "collections": [_Flow("fact_payment", "payment_date", "amount")],
    "project_margin": [
        _Flow("fact_revenue", "revenue_date", "amount", measure="revenue"),
        _Flow("agg_time_month", "month", "cost_amount", measure="labor_cost"),
        _Flow("fact_expense", "expense_date", "amount", measure="expense_cost"),
        _Flow("fact_cost", "cost_date", "amount", measure="other_cost"),
    ],
}


# Margin sums kept by service line, legal entity, month and currency pair (migration
# 20261126000008): groupings and filters it can answer read it instead of the sources.
_MARGIN_ROLLUP_KEYS = {
    "none": "'all'",
    "service_line": "a.service_line",
    "legal_entity": "a.legal_entity",
    "period": "a.month",
}


def margin_rollup_query(q: KpiQuery) -> tuple[str, list[Any]] | None:
    """Project margin from `agg_margin_service_line_month`, or None when it cannot answer.

    Same rows as `flow_query(q, FLOW_KPIS["project_margin"])`: one per (key, currency)
    with source rows in the range; a measure with no source rows is NULL.
    """
    key = _MARGIN_ROLLUP_KEYS.get(q.group_by)
    if key is None or q.customer_id or q.project_id or q.consultant_id or q.geography:
        return None
    s = _Sql()
    start, end = q.date_range()
    where: list[str] = []
    if start:
        where.append(f"a.month >= {s.p(start)}")
    if end:
        where.append(f"a.month <= {s.p(end)}")
    if q.legal_entity:
        where.append(f"a.legal_entity = {s.p(q.legal_entity)}")
    if q.service_line:
        where.append(f"a.service_line = {s.p(q.service_line)}")
    measures = sorted({src.measure for src in FLOW_KPIS["project_margin"]})
    cols = ", ".join(f"CASE WHEN sum(a.{mm}_rows) > 0 THEN sum(a.{q.currency}_{mm}) END AS {mm}" for mm in measures)
    out_key = "to_char(x.key, 'YYYY-MM')" if q.group_by == "period" else "x.key"
    inner = (
        f"SELECT {key} AS key, a.{q.currency}_currency AS currency, {cols} "
        "FROM agg_margin_service_line_month a" + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY 1, 2"
    )
    outer_cols = ", ".join(f"x.{mm}" for mm in measures)
    return (
        f"SELECT {out_key} AS key, x.currency, {outer_cols} FROM ({inner}) x ORDER BY 1, 2",
        s.params,
    )


_ZERO = Decimal(0)
_CENT = Decimal("0.01")
_HUNDRED = Decimal(100)


def finish_margin(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Missing measures as 0, then cost, margin (`value`) and margin % per row.

    A plain loop with the constants bound locally: this runs once per project on a
    by-project margin (2,000 rows in the benchmark), where the former generator-based
    version cost more than the query itself.
    """
    zero, cent, hundred = _ZERO, _CENT, _HUNDRED
    out: list[dict[str, Any]] = []
    append = out.append
    for r in rows:
        row = {k: zero if v is None else v for k, v in r.items()}
        get = r.get
        revenue = get("revenue") or zero
        cost = zero + (get("labor_cost") or zero) + (get("expense_cost") or zero) + (get("other_cost") or zero)
        margin = revenue - cost
        row["cost"] = cost
        row["value"] = margin
        row["margin_pct"] = (margin / revenue * hundred).quantize(cent) if revenue else None
        append(row)
    return out


# --------------------------------------------------------------------- balances
_BALANCE_SOURCES = {
    # kpi: (movement parts, final expression over sums b=booked r=recognized i=invoiced)
    "backlog": (("booked", "recognized"), "greatest(b - r, 0)"),
    "wip": (("recognized", "billed"), "greatest(r - i, 0)"),
    "deferred_revenue": (("recognized", "billed"), "greatest(i - r, 0)"),
}

_MOVES = {
    "booked": [("fact_booking", "booking_date", "amount", 1)],
    "recognized": [("fact_revenue", "revenue_date", "amount", 1)],
    "billed": [("fact_invoice", "invoice_date", "net_amount", 1), ("fact_credit_memo", "memo_date", "net_amount", -1)],
}


def _month_range(q: KpiQuery) -> tuple[dt.date, dt.date]:
    """First and last month (first days) of a balance series grouped by period."""
    end = month_start(q.period_to) if q.period_to else q.balance_date().replace(day=1)
    if q.period_from:
        start = month_start(q.period_from)
    else:
        start = (end - dt.timedelta(days=334)).replace(day=1)
    return start, end


def _is_month_end(day: dt.date) -> bool:
    return (day + dt.timedelta(days=1)).day == 1


def balance_query(kpi: str, q: KpiQuery) -> tuple[str, list[Any]]:
    """Per engagement balances (clamped at zero per engagement), then summed per group.

    An engagement is the project, else the contract, else the customer. Month-end
    balances come from `agg_engagement_balance` (one row per engagement valid at a
    month end); a mid-month as-of adds the movements of its month so far from the facts.
    """
    if q.group_by == "consultant":
        raise KpiError(f"{kpi} cannot be grouped by consultant")
    s = _Sql()
    parts_used, final = _BALANCE_SOURCES[kpi]
    by_period = q.group_by == "period"
    key = _key_expr("none" if by_period else q.group_by, None)
    cols = ", ".join(
        (f"f.{q.currency}_{part}" if part in parts_used else "0") + f" AS {alias}"
        for part, alias in (("booked", "b"), ("recognized", "r"), ("billed", "i"))
    )
    valid = "f.month <= {m} AND (f.next_month IS NULL OR f.next_month > {m})"
    if by_period:
        first, last = _month_range(q)
        p_first, p_last = s.p(first), s.p(last)
        where = [
            f"f.month <= {p_last}::date",
            f"(f.next_month IS NULL OR f.next_month > {p_first}::date)",
            *_filters(q, s),
        ]
        # each balance row counts at exactly the month ends it is valid for; months are
        # grouped as dates and formatted once per group
        sql = f"""
WITH bal AS (
    SELECT g::date AS m, f.{q.currency}_currency AS cur, {cols}
      FROM agg_engagement_balance f{_project_join(q)}
     CROSS JOIN LATERAL generate_series(
           greatest(f.month, {p_first}::date),
           least(coalesce((f.next_month - interval '1 month')::date, {p_last}::date),
                 {p_last}::date),
           interval '1 month') g
     WHERE {" AND ".join(where)}
)
SELECT to_char(m, 'YYYY-MM') AS key, cur AS currency, sum({final}) AS value
  FROM bal GROUP BY m, cur ORDER BY 1, 2"""
        return sql, s.params
    as_of = q.balance_date()
    month = as_of.replace(day=1)
    if _is_month_end(as_of):
        full_month, partial = month, None
    else:
        full_month, partial = (month - dt.timedelta(days=1)).replace(day=1), month
    where = [valid.format(m=s.p(full_month) + "::date"), *_filters(q, s)]
    parts = [
        f"SELECT f.eng, {key} AS gkey, f.{q.currency}_currency AS cur, {cols} "
        f"FROM agg_engagement_balance f{_project_join(q)} WHERE {' AND '.join(where)}"
    ]
    if partial is not None:
        p_from, p_to = s.p(partial), s.p(as_of)
        for part in parts_used:
            for table, date_col, money_col, sign in _MOVES[part]:
                amounts = ", ".join(
                    (f"{'-' if sign < 0 else ''}f.{q.currency}_{money_col}" if alias_part == part else "0")
                    + f" AS {alias}"
                    for alias_part, alias in (("booked", "b"), ("recognized", "r"), ("billed", "i"))
                )
                fwhere = [f"f.{date_col} BETWEEN {p_from} AND {p_to}", *_filters(q, s)]
                parts.append(
                    "SELECT coalesce(f.project_id, f.contract_id, '~' || f.customer_id), "
                    f"{key}, f.{q.currency}_currency, {amounts} FROM {table} f"
                    f"{_project_join(q)} WHERE {' AND '.join(fwhere)}"
                )
    sql = f"""
WITH bal AS (
    SELECT eng, gkey, cur, sum(b) AS b, sum(r) AS r, sum(i) AS i
      FROM ({" UNION ALL ".join(parts)}) x GROUP BY eng, gkey, cur
)
SELECT gkey AS key, cur AS currency, sum({final}) AS value
  FROM bal GROUP BY 1, 2 ORDER BY 1, 2"""
    return sql, s.params


# --------------------------------------------------------------------- receivables
def _open_invoices_sql(q: KpiQuery, s: _Sql, as_of: str) -> str:
    """Invoices open at `as_of` (from invoice_settlement) with their balance then.

    The balance is kept in the invoice currency and converted at the invoice's rate,
    rounded per invoice to the target currency's minor unit (as the loader rounds facts).
    """
    key = _key_expr(q.group_by, None)
    where = [f"st.invoice_date <= {as_of}", f"st.open_until > {as_of}", *_filters(q, s)]
    return f"""
inv AS (
    SELECT f.source_record_id AS id, {key} AS gkey, f.{q.currency}_currency AS cur,
           f.due_date, f.total_amount, f.fx_rate_{q.currency} AS rate
      FROM invoice_settlement st
      JOIN fact_invoice f ON f.source_system = st.source_system
                         AND f.source_record_id = st.source_record_id{_project_join(q)}
     WHERE {" AND ".join(where)}
), open_inv AS (
    SELECT inv.gkey, inv.cur, inv.due_date,
           round((inv.total_amount - coalesce(pay.amount, 0) - coalesce(cm.amount, 0))
                 * inv.rate, hub_minor_unit(inv.cur)) AS bal
      FROM inv
      LEFT JOIN LATERAL (SELECT sum(p.amount) AS amount FROM fact_payment p
                          WHERE p.invoice_id = inv.id AND p.payment_date <= {as_of}) pay
             ON true
      LEFT JOIN LATERAL (SELECT sum(c.total_amount) AS amount FROM fact_credit_memo c
                          WHERE c.invoice_id = inv.id AND c.memo_date <= {as_of}) cm
             ON true
)"""


def ar_aging_query(q: KpiQuery) -> tuple[str, list[Any]]:
    if q.group_by in ("period", "consultant"):
        raise KpiError(f"ar_aging cannot be grouped by {q.group_by}; use as_of")
    s = _Sql()
    as_of = s.p(q.balance_date())
    days = f"({as_of}::date - due_date)"
    sql = f"""
WITH {_open_invoices_sql(q, s, as_of)}
SELECT gkey AS key, cur AS currency,
       coalesce(sum(bal) FILTER (WHERE {days} <= 0), 0) AS current,
       coalesce(sum(bal) FILTER (WHERE {days} BETWEEN 1 AND 30), 0) AS days_1_30,
       coalesce(sum(bal) FILTER (WHERE {days} BETWEEN 31 AND 60), 0) AS days_31_60,
       coalesce(sum(bal) FILTER (WHERE {days} BETWEEN 61 AND 90), 0) AS days_61_90,
       coalesce(sum(bal) FILTER (WHERE {days} > 90), 0) AS days_over_90,
       sum(bal) AS value
  FROM open_inv WHERE bal <> 0 GROUP BY 1, 2 ORDER BY 1, 2"""
    return sql, s.params


def dso_query(q: KpiQuery) -> tuple[str, list[Any]]:
    """DSO = open receivables at as-of / gross invoiced over the last N days x N."""
    if q.group_by in ("period", "consultant"):
        raise KpiError(f"dso cannot be grouped by {q.group_by}; use as_of")
    s = _Sql()
    as_of = s.p(q.balance_date())
    n = s.p(q.dso_days)
    key = _key_expr(q.group_by, None)
    where = [f"f.invoice_date > {as_of}::date - {n}::int", f"f.invoice_date <= {as_of}", *_filters(q, s)]
    sql = f"""
WITH {_open_invoices_sql(q, s, as_of)},
ar AS (SELECT gkey, cur, sum(bal) AS ar FROM open_inv GROUP BY 1, 2),
billed AS (
    SELECT {key} AS gkey, f.{q.currency}_currency AS cur,
           sum(f.{q.currency}_total_amount) AS billed
      FROM fact_invoice f{_project_join(q)}
     WHERE {" AND ".join(where)} GROUP BY 1, 2
)
SELECT gkey AS key, cur AS currency, coalesce(ar.ar, 0) AS receivables,
       coalesce(billed.billed, 0) AS billed,
       CASE WHEN coalesce(billed.billed, 0) = 0 THEN NULL
            ELSE round(coalesce(ar.ar, 0) / billed.billed * {n}::int, 1) END AS value
  FROM ar FULL JOIN billed USING (gkey, cur) ORDER BY 1, 2"""
    return sql, s.params


# --------------------------------------------------------------------- utilization
def utilization_query(q: KpiQuery) -> tuple[str, list[Any]]:
    """Billable hours / capacity (working days x hours per day) of the consultants in scope."""
    if q.group_by in ("customer", "project"):
        raise KpiError(
            "utilization is a consultant measure: group by consultant, "
            "service_line, geography, legal_entity (home) or period"
        )
    if q.customer_id or q.project_id:
        raise KpiError("utilization cannot be filtered by customer or project")
    s = _Sql()
    start, end = q.date_range()
    if start is None or end is None:
        today = q.as_of or dt.date.today()
        period = today.strftime("%Y-%m")
        start = start or month_start(q.period_from or period)
        end = end or month_end(q.period_to or period)
    ps, pe = s.p(start), s.p(end)
    cwhere = ["true"]
    if q.legal_entity:
        cwhere.append(f"c.home_legal_entity = {s.p(q.legal_entity)}")
    if q.service_line:
        cwhere.append(f"c.service_line = {s.p(q.service_line)}")
    if q.geography:
        cwhere.append(f"c.geography = {s.p(q.geography)}")
    if q.consultant_id:
        cwhere.append(f"c.consultant_id = {s.p(q.consultant_id)}")
    ckey = {
        "consultant": "c.consultant_id",
        "service_line": "c.service_line",
        "geography": "c.geography",
        "legal_entity": "c.home_legal_entity",
    }.get(q.group_by, "'all'")
    # by period: group by the month's first day, format it on the grouped rows only
    cap_key = "m.m" if q.group_by == "period" else ckey
    hrs_key = "t.month" if q.group_by == "period" else ckey
    out_key = "to_char(key, 'YYYY-MM')" if q.group_by == "period" else "key"
    sql = f"""
WITH cons AS (SELECT * FROM dim_consultant c WHERE {" AND ".join(cwhere)}),
months AS (
    SELECT date_trunc('month', date_key)::date AS m, max(date_key) AS last_day,
           count(*) FILTER (WHERE is_workday) AS workdays
      FROM dim_date WHERE date_key BETWEEN {ps} AND {pe} GROUP BY 1
),
cap AS (
    SELECT {cap_key} AS key,
           sum(c.capacity_hours_per_day * CASE
               WHEN c.active_from <= m.m AND coalesce(c.active_to, m.last_day) >= m.last_day
               THEN m.workdays
               ELSE (SELECT count(*) FROM dim_date d WHERE d.is_workday AND d.date_key
                     BETWEEN greatest(m.m, c.active_from)
                         AND least(m.last_day, coalesce(c.active_to, m.last_day)))
           END) AS capacity_hours
      FROM cons c JOIN months m
        ON c.active_from <= m.last_day AND coalesce(c.active_to, m.last_day) >= m.m
     GROUP BY 1
), hrs AS (
    SELECT {hrs_key} AS key, sum(t.hours) AS hours, sum(t.billable_hours) AS billable_hours
      FROM agg_time_month t JOIN cons c ON c.consultant_id = t.consultant_id
     WHERE t.month BETWEEN {ps} AND {pe}
     GROUP BY 1
)
SELECT {out_key} AS key, NULL::text AS currency,
       coalesce(capacity_hours, 0) AS capacity_hours,
       coalesce(hours, 0) AS hours, coalesce(billable_hours, 0) AS billable_hours,
       CASE WHEN coalesce(capacity_hours, 0) = 0 THEN NULL
            ELSE round(coalesce(billable_hours, 0) / capacity_hours, 4) END AS value
  FROM cap FULL JOIN hrs USING (key) ORDER BY 1"""
    return sql, s.params


UNITS = {"utilization": "ratio", "dso": "days"}


def build(kpi: str, q: KpiQuery) -> tuple[str, list[Any]]:
    q.check()
    if kpi == "project_margin":
        rolled = margin_rollup_query(q)
        if rolled is not None:
            return rolled
    if kpi in FLOW_KPIS:
        return flow_query(q, FLOW_KPIS[kpi])
    if kpi in _BALANCE_SOURCES:
        return balance_query(kpi, q)
    if kpi == "ar_aging":
        return ar_aging_query(q)
    if kpi == "dso":
        return dso_query(q)
    if kpi == "utilization":
        return utilization_query(q)
    raise KpiError(f"unknown KPI {kpi!r}; known: {', '.join(KPI_NAMES)}")
