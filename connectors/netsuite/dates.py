"""Dates as SuiteQL returns them: in the account's date format (Set Up Company > General
Preferences > Date Format: `M/D/YYYY`, `DD/MM/YYYY`, `DD.MM.YYYY`, `YYYY-MM-DD`,
`DD-Mon-YYYY`...). SuiteQL reads dates d2r sends through TO_DATE with an explicit format,
so only the reading side depends on the preference."""

from __future__ import annotations

import calendar
import re
from datetime import date

_PART = re.compile(r"YYYY|MONTH|MON|MM|M|DD|D", re.IGNORECASE)
_PATTERNS = {
    "YYYY": r"(?P<y>\d{4})",
    "MM": r"(?P<m>\d{2})",
    "M": r"(?P<m>\d{1,2})",
    "DD": r"(?P<d>\d{2})",
    "D": r"(?P<d>\d{1,2})",
    "MON": r"(?P<mon>[A-Za-z]{3})",
    "MONTH": r"(?P<mon>[A-Za-z]+)",
}
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
DEFAULT_DATE_FORMAT = "M/D/YYYY"


def to_date_literal(day: date) -> str:
    """A SuiteQL date literal that does not depend on the account's date format."""
    return f"TO_DATE('{day.isoformat()}', 'YYYY-MM-DD')"


def parse_date(text: str, fmt: str = DEFAULT_DATE_FORMAT) -> date:
    """The date `text` spells in the account's format `fmt`; ValueError if it does not."""
    pattern, pos = "", 0
    for m in _PART.finditer(fmt):
        pattern += re.escape(fmt[pos : m.start()]) + _PATTERNS[m.group().upper()]
        pos = m.end()
    found = re.fullmatch(pattern + re.escape(fmt[pos:]), str(text).strip())
    if found is None:
        raise ValueError(f"{text!r} is not a date in the account's format {fmt}")
    parts = found.groupdict()
    month = int(parts["m"]) if parts.get("m") else _MONTHS.get(str(parts.get("mon"))[:3].lower(), 0)
    return date(int(parts["y"]), month, int(parts["d"]))
