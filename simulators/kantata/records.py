"""Listing (filters, paging, `include=` side-loading, the response envelope) and the
per-type write rules of the Kantata simulator."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .schema import TYPES, Invalid, ObjectType

if TYPE_CHECKING:
    from .app import KantataSimulator

# Kantata ids are numeric strings; distinct ranges make a mixed-up id obvious in tests.
ID_BASE = {
    "workspaces": 50_000,
    "stories": 200_000,
    "time_entries": 700_000,
    "expenses": 800_000,
    "invoices": 900_000,
    "workspace_resources": 300_000,
    "users": 10_000,
    "roles": 100,
    "rate_cards": 500,
    "rate_card_roles": 600,
    "project_templates": 40,
    "custom_fields": 10,
    "custom_field_values": 1_000_000,
}
PER_PAGE_DEFAULT = 20
PER_PAGE_MAX = 200
PAGING = {"page", "per_page", "include", "only", "include_archived", "only_archived", "updated_after"}


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _truthy(v: str) -> bool:
    return v.lower() in ("true", "1", "yes")


def visible(otype: ObjectType, rec: dict[str, Any], query: dict[str, str]) -> bool:
    """Kantata's default filters hide archived records; `include_archived=true` shows them."""
    if not otype.archivable:
        return True
    archived = bool(rec.get("archived"))
    if _truthy(query.get("only_archived", "false")):
        return archived
    return not archived or _truthy(query.get("include_archived", "false"))


def _int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise BadRequest(f"{name} must be an integer") from e


def filter_rows(otype: ObjectType, rows: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    for name, raw in query.items():
        if name in PAGING:
            continue
        if name.endswith("_between") and otype.fields.get(name[: -len("_between")], None) is not None:
            field = name[: -len("_between")]
            lo, sep, hi = raw.partition(":")
            if not sep:
                raise BadRequest(f"{name} must look like YYYY-MM-DD:YYYY-MM-DD")
            rows = [r for r in rows if r.get(field) and lo <= r[field] <= hi]
            continue
        spec = otype.fields.get(name)
        if spec is None or spec.kind in ("refs", "json"):
            raise BadRequest(f"unknown filter {name!r} for {otype.key}")
        if spec.kind == "bool":
            want_bool = _truthy(raw)
            rows = [r for r in rows if bool(r.get(name)) is want_bool]
        elif spec.kind in ("int", "cents"):
            wanted_ints = {int(v) for v in raw.split(",") if v.strip().lstrip("-").isdigit()}
            rows = [r for r in rows if r.get(name) in wanted_ints]
        else:
            by_id = spec.kind == "ref" or name.endswith("_id")  # ids filter as comma-separated lists
            wanted = set(raw.split(",")) if by_id else {raw}
            rows = [r for r in rows if r.get(name) is not None and str(r.get(name)) in wanted]
    if "only" in query:
        ids = {v.strip() for v in query["only"].split(",") if v.strip()}
        rows = [r for r in rows if r["id"] in ids]
    if "updated_after" in query:
        rows = [r for r in rows if r.get("updated_at", "") > query["updated_after"]]
    return [r for r in rows if visible(otype, r, query)]


def listing(sim: KantataSimulator, otype: ObjectType, query: dict[str, str]) -> dict[str, Any]:
    rows = filter_rows(otype, sim.all(otype.key), query)
    rows.sort(key=lambda r: int(r["id"]))
    page = max(1, _int(query, "page", 1))
    per_page = _int(query, "per_page", PER_PAGE_DEFAULT)
    if not 1 <= per_page <= PER_PAGE_MAX:
        raise BadRequest(f"per_page must be between 1 and {PER_PAGE_MAX}")
    chunk = rows[(page - 1) * per_page : page * per_page]
    return envelope(sim, otype, chunk, len(rows), query.get("include", ""), page=page, per_page=per_page)


def envelope(
    sim: KantataSimulator,
    otype: ObjectType,
    rows: list[dict[str, Any]],
    total: int,
    include: str,
    page: int = 1,
    per_page: int = PER_PAGE_DEFAULT,
) -> dict[str, Any]:
    """`{"count", "results": [{"key", "id"}], "<type>": {id: record}, ...included types}`."""
    out: dict[str, Any] = {
        "count": total,
        "results": [{"key": otype.key, "id": r["id"]} for r in rows],
        otype.key: {r["id"]: r for r in rows},
        "meta": {
            "count": total,
            "page_count": max(1, -(-total // per_page)),
            "page_number": page,
            "page_size": per_page,
        },
    }
    for name in [n.strip() for n in include.split(",") if n.strip()]:
        assoc = otype.includes.get(name)
        if assoc is None:
            raise BadRequest(f"unknown include {name!r} for {otype.key}")
        target, fk, many = assoc
        bucket = out.setdefault(target, {})
        ids = {r["id"] for r in rows}
        if many:
            for rec in sim.all(target):
                if target == "custom_field_values" and rec.get("subject_type") != otype.subject:
                    continue
                if rec.get(fk) in ids and visible(TYPES[target], rec, {}):
                    bucket.setdefault(rec["id"], rec)
        else:
            wanted = {r.get(fk) for r in rows if r.get(fk)}
            for rid in wanted:
                found = sim.store.get(target, str(rid))
                if found is not None:
                    bucket.setdefault(found["id"], found)
    return out


# ---- write rules ---------------------------------------------------------------------


def _get_live(sim: KantataSimulator, rtype: str, rid: str | None, name: str) -> dict[str, Any]:
    rec = sim.store.get(rtype, str(rid)) if rid else None
    if rec is None or (TYPES[rtype].archivable and rec.get("archived")):
        raise Invalid(f"{name} does not refer to an existing {TYPES[rtype].singular}", name)
    return rec


def check_refs(sim: KantataSimulator, otype: ObjectType, rec: dict[str, Any]) -> None:
    for name, spec in otype.fields.items():
        if spec.kind == "ref" and rec.get(name) and not spec.read_only:
            assert spec.ref is not None
            if sim.store.get(spec.ref, str(rec[name])) is None:
                raise Invalid(f"{name} does not refer to an existing {TYPES[spec.ref].singular}", name)


def default_rate(sim: KantataSimulator, workspace: dict[str, Any], role_id: str | None) -> int:
    """The workspace rate card's rate for the role, in cents (0 when there is none)."""
    card = workspace.get("rate_card_id")
    if not card or not role_id:
        return 0
    for rr in sim.store.find_by_field("rate_card_roles", "rate_card_id", card):
        if rr["role_id"] == role_id:
            return int(rr["rate_in_cents"])
    return 0


def before_write(sim: KantataSimulator, otype: ObjectType, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Kantata's business rules: raise Invalid (422) to refuse the write."""
    check_refs(sim, otype, new)
    key = otype.key
    if key == "workspaces":
        new["budgeted"] = new.get("price_in_cents") is not None  # a budget is a price
        card = new.get("rate_card_id")
        if card:
            rc = sim.store.get("rate_cards", card)
            if rc is not None and rc["currency"] != new["currency"]:
                raise Invalid("rate card currency must match the workspace currency", "rate_card_id")
        if old is not None and old["currency"] != new["currency"]:
            raise Invalid("currency can't be changed once the workspace exists", "currency")
        new["status"] = {"key": new["status_key"], "message": _status(new["status_key"])}
    elif key == "stories":
        _get_live(sim, "workspaces", new["workspace_id"], "workspace_id")
        if new.get("parent_id"):
            parent = _get_live(sim, "stories", new["parent_id"], "parent_id")
            if parent["workspace_id"] != new["workspace_id"]:
                raise Invalid("parent must be in the same workspace", "parent_id")
        if new["state"] == "completed" and not new.get("completed_at"):
            new["completed_at"] = today()
        if new["state"] != "completed":
            new["completed_at"] = None
    elif key in ("time_entries", "expenses"):
        if old is not None and old.get("is_invoiced"):
            raise Invalid("an invoiced entry can't be changed", "is_invoiced")
        if old is not None and old.get("approved") and new.get("approved"):
            changed = {k for k in otype.fields if new.get(k) != old.get(k)}
            if changed:
                raise Invalid("an approved entry is locked; unapprove it first", sorted(changed)[0])
        ws = _get_live(sim, "workspaces", new["workspace_id"], "workspace_id")
        if key == "time_entries":
            if new["time_in_minutes"] <= 0:
                raise Invalid("time_in_minutes must be greater than 0", "time_in_minutes")
            if new.get("story_id"):
                story = _get_live(sim, "stories", new["story_id"], "story_id")
                if story["workspace_id"] != new["workspace_id"]:
                    raise Invalid("story must be in the same workspace", "story_id")
            if not new.get("role_id"):
                user = sim.store.get("users", new["user_id"]) or {}
                new["role_id"] = user.get("role_id")
            if new.get("rate_in_cents") is None:
                new["rate_in_cents"] = default_rate(sim, ws, new.get("role_id"))
            new["currency"] = ws["currency"]
        else:
            new["currency"] = new.get("currency") or ws["currency"]
    elif key == "custom_field_values":
        cf = sim.store.get("custom_fields", new["custom_field_id"])
        assert cf is not None  # check_refs
        if cf["subject_type"] != new["subject_type"]:
            raise Invalid(f"custom field {cf['name']!r} belongs to {cf['subject_type']}", "custom_field_id")
        subject = subject_type_key(new["subject_type"])
        if subject is None or sim.store.get(subject, new["subject_id"]) is None:
            raise Invalid("subject does not exist", "subject_id")
        if old is None and any(
            v["subject_type"] == new["subject_type"] and v["custom_field_id"] == new["custom_field_id"]
            for v in sim.store.find_by_field("custom_field_values", "subject_id", new["subject_id"])
        ):
            raise Invalid("a value for this custom field already exists on the subject", "custom_field_id")
    elif key == "invoices":
        ws = _get_live(sim, "workspaces", new["workspace_id"], "workspace_id")
        new["currency"] = ws["currency"]
        new["price_in_cents"] = _invoice_lines(sim, new, old)
    elif key == "workspace_resources":
        _get_live(sim, "workspaces", new["workspace_id"], "workspace_id")


def _status(key: int) -> str:
    from .schema import WORKSPACE_STATUS

    if key not in WORKSPACE_STATUS:
        raise Invalid(f"status_key must be one of {sorted(WORKSPACE_STATUS)}", "status_key")
    return WORKSPACE_STATUS[key]


def subject_type_key(subject: str) -> str | None:
    return next((t.key for t in TYPES.values() if t.subject == subject), None)


def _invoice_lines(sim: KantataSimulator, new: dict[str, Any], old: dict[str, Any] | None) -> int:
    """Validate the invoice's entries; returns the invoice total in cents."""
    total = 0
    for rtype, ids_field in (("time_entries", "time_entry_ids"), ("expenses", "expense_ids")):
        for eid in new[ids_field]:
            entry = sim.store.get(rtype, eid)
            if entry is None or entry["workspace_id"] != new["workspace_id"]:
                raise Invalid(f"{rtype[:-1]} {eid} is not in workspace {new['workspace_id']}", ids_field)
            if not entry.get("approved") or not entry.get("billable"):
                raise Invalid(f"{rtype[:-1]} {eid} is not approved and billable", ids_field)
            if entry.get("is_invoiced") and entry.get("invoice_id") != (old or {}).get("id"):
                raise Invalid(f"{rtype[:-1]} {eid} is already invoiced", ids_field)
            if rtype == "time_entries":
                total += round(entry["time_in_minutes"] * entry["rate_in_cents"] / 60)
            else:
                total += entry["amount_in_cents"]
    return total


def after_write(sim: KantataSimulator, otype: ObjectType, rec: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Side effects: workspace from a template gets the template's phases; an invoice
    marks its entries invoiced (and releases entries it no longer holds)."""
    if otype.key == "workspaces" and old is None and rec.get("project_template_id"):
        template = sim.store.get("project_templates", rec["project_template_id"]) or {}
        for phase in template.get("phases", []):
            sim.insert(
                "stories",
                {**_defaults("stories"), "workspace_id": rec["id"], "title": str(phase), "story_type": "task"},
            )
    if otype.key == "invoices":
        link_invoice(sim, rec, old)


def link_invoice(sim: KantataSimulator, inv: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    for rtype, ids_field in (("time_entries", "time_entry_ids"), ("expenses", "expense_ids")):
        now_ids = set(inv[ids_field]) if inv else set()
        before = set(old[ids_field]) if old else set()
        for eid in before - now_ids:
            entry = sim.store.get(rtype, eid)
            if entry is not None:
                sim.update(rtype, {**entry, "is_invoiced": False, "invoice_id": None})
        for eid in now_ids - before:
            entry = sim.store.get(rtype, eid)
            if entry is not None and inv is not None:
                sim.update(rtype, {**entry, "is_invoiced": True, "invoice_id": inv["id"]})


def _defaults(rtype: str) -> dict[str, Any]:
    return {
        n: (list(s.default) if isinstance(s.default, list) else s.default)
        for n, s in TYPES[rtype].fields.items()
        if not s.required
    }


def before_delete(sim: KantataSimulator, otype: ObjectType, rec: dict[str, Any]) -> None:
    if otype.key in ("time_entries", "expenses") and rec.get("is_invoiced"):
        raise Invalid("an invoiced entry can't be deleted", "is_invoiced")
    if otype.key == "workspaces":
        for child in ("time_entries", "expenses"):
            if sim.store.find_by_field(child, "workspace_id", rec["id"]):
                raise Invalid(f"the workspace has {child.replace('_', ' ')}; archive it instead", "id")


def after_delete(sim: KantataSimulator, otype: ObjectType, rec: dict[str, Any]) -> None:
    if otype.key == "invoices":
        link_invoice(sim, None, rec)
    if otype.key == "workspaces":
        for child in ("stories", "workspace_resources"):
            for row in sim.store.find_by_field(child, "workspace_id", rec["id"]):
                sim.delete(child, row)
    for v in sim.store.find_by_field("custom_field_values", "subject_id", rec["id"]):
        if v["subject_type"] == otype.subject:
            sim.store.delete("custom_field_values", v["id"])
