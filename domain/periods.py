"""Accounting periods are calendar months named `YYYY-MM`.

A plain string keeps them readable in ids, search attributes and JSON; these helpers are
the only place that turns one into dates.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Annotated

from pydantic import Field

Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _parts(period: str) -> tuple[int, int]:
    year, month = period.split("-")
    return int(year), int(month)


def period_start(period: str) -> date:
    year, month = _parts(period)
    return date(year, month, 1)


def period_end(period: str) -> date:
    year, month = _parts(period)
    return date(year, month, calendar.monthrange(year, month)[1])


def next_period(period: str) -> str:
    year, month = _parts(period)
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def periods_between(first: date, last: date) -> list[str]:
    """Every period touched by the inclusive date range, in order."""
    if last < first:
        return []
    out = [period_of(first)]
    while out[-1] != period_of(last):
        out.append(next_period(out[-1]))
    return out
