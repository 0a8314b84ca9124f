"""Natural keys d2r controls, and the ids the connector hands back.

D365 has no external-id upsert, but its number sequences accept manual keys: each record
d2r writes gets a key derived from d2r's own id (deterministic, at most 20 characters),
so a retry after a lost response finds the record by key instead of creating a second
one, and two racing creates collide on the key instead of duplicating. The full d2r id
rides along in `D2RReference`.

Companies share number ranges (every company has its `CIV-000001`), so ids handed back
are qualified by company: `uk01:CIV-000001`.
"""

from __future__ import annotations

import base64
import hashlib
import re

MAX_KEY = 20
_PLAIN = re.compile(r"^[A-Za-z0-9._-]+$")


def natural_key(prefix: str, d2r_id: str, max_len: int = MAX_KEY) -> str:
    """`prefix` + d2r's id when it fits and is plain, else `prefix` + a hash of it."""
    if len(prefix) + len(d2r_id) <= max_len and _PLAIN.match(d2r_id):
        return (prefix + d2r_id).upper()
    digest = base64.b32encode(hashlib.sha256(d2r_id.encode()).digest()).decode().rstrip("=")
    return prefix + digest[: max_len - len(prefix)]


def company_of(legal_entity: str) -> str:
    """The dataAreaId of a legal entity (`UK01` -> `uk01`)."""
    return legal_entity.lower()


def qualified(company: str, number: str) -> str:
    return f"{company}:{number}"


def split(qualified_id: str) -> tuple[str, str]:
    """(`uk01`, `CIV-000001`) from `uk01:CIV-000001`."""
    company, sep, number = qualified_id.partition(":")
    if not sep or not company or not number:
        raise ValueError(f"not a company-qualified D365 id: {qualified_id!r}")
    return company, number
