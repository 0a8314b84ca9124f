"""The account's date format (Set Up Company > General Preferences > Date Format), as
SuiteQL returns dates in it and reads a bare date string in it.

NetSuite spells formats with M, MM, D, DD, YYYY and Mon (e.g. `M/D/YYYY`, `DD/MM/YYYY`,
`DD.MM.YYYY`, `YYYY-MM-DD`, `DD-Mon-YYYY`); TO_DATE takes Oracle's spelling
(`YYYY-MM-DD`, `MM/DD/YYYY`, `DD-MON-YYYY`), which reads the same way here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

_PART = re.compile(r"YYYY|MONTH|MON|MM|M|DD|D", re.IGNORECASE)
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}


def format_date(iso: str, fmt: str) -> str:
    """`2026-11-01` in `M/D/YYYY` -> `11/1/2026`."""
    d = dt.date.fromisoformat(iso[:10])

    def part(m: re.Match[str]) -> str:
        p = m.group().upper()
        return {
            "YYYY": f"{d.year:04d}",
            "MM": f"{d.month:02d}",
            "M": str(d.month),
            "DD": f"{d.day:02d}",
            "D": str(d.day),
            "MON": calendar.month_abbr[d.month],
            "MONTH": calendar.month_name[d.month],
        }[p]

    return _PART.sub(part, fmt)


def parse_date(text: str, fmt: str) -> dt.date:
    """The date `text` spells in `fmt`; ValueError when it does not match."""
    pattern = ""
    pos = 0
    for m in _PART.finditer(fmt):
        pattern += re.escape(fmt[pos : m.start()])
        p = m.group().upper()
        pattern += {
            "YYYY": r"(?P<y>\d{4})",
            "MM": r"(?P<m>\d{2})",
            "M": r"(?P<m>\d{1,2})",
            "DD": r"(?P<d>\d{2})",
            "D": r"(?P<d>\d{1,2})",
            "MON": r"(?P<mon>[A-Za-z]{3})",
            "MONTH": r"(?P<mon>[A-Za-z]+)",
        }[p]
        pos = m.end()
    pattern += re.escape(fmt[pos:])
    found = re.fullmatch(pattern, text.strip())
    if found is None:
        raise ValueError(f"{text!r} does not match the date format {fmt}")
    parts = found.groupdict()
    month = int(parts["m"]) if parts.get("m") else _MONTHS.get(str(parts.get("mon"))[:3].lower(), 0)
    return dt.date(int(parts["y"]), month, int(parts["d"]))
