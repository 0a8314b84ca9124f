"""A month-end for the demo firm against a running `make run` stack, with the checks a
controller would make afterwards: `d2r demo month-end [--period 2026-10]` (live progress),
or `python -m workers.demo_month_end [--period 2026-10]` (one line per step).

1. Books the seeded Closed Won deals (POST /v1/engagements; a pending deal approval is
   approved by dev-finance) and waits until they are in delivery.
2. Records two approved weeks of time for each project with a time-and-materials line, by a
   consultant of the project's legal entity with the line's role, in the PSA that entity
   delivers on (a Certinia timecard; on Kantata, DE01 in `make run`, a time entry a day), and
   completes the first milestone of each project with a milestone line.
3. Closes the period with one API call per legal entity (started by dev-integration-admin;
   the lock approved by dev-finance: four eyes), and waits for CLOSED.
4. Prints, per entity: what was billed and recognized, the reconciliation (PSA vs ERP vs
   hub), exceptions, and billed revenue as the hub reports it next to the invoices the
   NetSuite simulator holds for that period.

Re-running it is harmless: engagements, time (external keys) and closes are idempotent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt

from security import dev_issuer
from workers.settings import VendorEndpoint

API, SF, NS = "http://127.0.0.1:8000", "http://127.0.0.1:8301", "http://127.0.0.1:8302"
D365, KT = "http://127.0.0.1:8303", "http://127.0.0.1:8304"
DATA = "/services/data/v61.0"

# What the demo tells as it goes: (phase, subject, what happened). Phases in order: book,
# time, close, check; `d2r demo month-end` draws them live, this module's main prints them.
Progress = Callable[[str, str, str], None]


def printed(phase: str, subject: str, text: str) -> None:
    print(f"[{phase}] {subject}: {text}", flush=True)


@dataclass
class Target:
    """The stack the demo runs against (`make run`'s addresses by default)."""

    api: str = API
    crm: str = SF
    netsuite: str = NS
    d365: str = D365
    kantata: str = KT
    key_file: Path | None = None  # the dev issuer's key; default .d2r/dev-issuer/key.pem
    issuer: str | None = None  # default <api>/dev-issuer
    entities: frozenset[str] | None = None  # only these legal entities' deals and closes
    progress: Progress = printed

    def as_user(self, user: str) -> dict[str, str]:
        """A token of the dev issuer for a dev user `dev-<role>` (what `d2r token` mints)."""
        state = Path(os.environ.get("D2R_STATE_DIR", Path(__file__).resolve().parent.parent / ".d2r"))
        role = user.removeprefix("dev-").replace("-", "_")
        key = self.key_file or state / "dev-issuer" / "key.pem"
        issuer = self.issuer or f"{self.api}/dev-issuer"
        return bearer(dev_issuer.mint(key, issuer, subject=user, roles=[role], entities=["*"]))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class DemoFailed(RuntimeError):
    """The demo could not go on (a step did not happen in time, or the API refused it)."""


async def until(check: Any, what: str, within: float = 180.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(1)
    raise DemoFailed(f"gave up waiting for {what}")


async def vendor_token(http: httpx.AsyncClient, base: str, path: str) -> dict[str, str]:
    response = await http.post(
        base + path,
        data={"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"},
    )
    response.raise_for_status()
    return bearer(response.json()["access_token"])


async def book(http: httpx.AsyncClient, t: Target, opportunities: list[str]) -> dict[str, dict[str, Any]]:
    for opp in opportunities:
        response = await http.post(
            f"{t.api}/v1/engagements", json={"opportunity_id": opp}, headers=t.as_user("dev-sales-ops")
        )
        t.progress("book", opp, f"engagement started (HTTP {response.status_code})")
    seen: dict[str, str] = {}

    async def in_delivery() -> dict[str, dict[str, Any]] | None:
        views = {
            o: (await http.get(f"{t.api}/v1/engagements/{o}", headers=t.as_user("dev-auditor"))).json()
            for o in opportunities
        }
        for opp, view in views.items():
            stage = str(view.get("stage"))
            if seen.get(opp) != stage:
                seen[opp] = stage
                t.progress("book", opp, f"{stage} ({view.get('legal_entity') or '?'})")
            for approval in view.get("approvals", []):
                if approval["decision"] == "PENDING":
                    await http.post(
                        f"{t.api}/v1/engagements/{opp}/approvals/{approval['approval_id']}",
                        json={"decision": "approve", "comment": "demo"},
                        headers=t.as_user("dev-finance"),
                    )
        return views if all(v.get("stage") == "IN_DELIVERY" for v in views.values()) else None

    views: dict[str, dict[str, Any]] = await until(in_delivery, "the engagements to be in delivery")
    return views


async def record_time(
    http: httpx.AsyncClient, t: Target, views: dict[str, dict[str, Any]], period: str, consultants: list[dict[str, Any]]
) -> None:
    sf = await vendor_token(http, t.crm, "/services/oauth2/token")
    first = date.fromisoformat(f"{period}-01")
    monday = first + timedelta(days=(7 - first.weekday()) % 7)
    for opp, view in views.items():
        lines = (
            await http.get(
                f"{t.crm}{DATA}/query",
                headers=sf,
                params={
                    "q": "SELECT Id, D2R_Role__c, D2R_Billing_Model__c FROM OpportunityLineItem "
                    f"WHERE OpportunityId = '{opp}'"
                },
            )
        ).json()["records"]
        roles = [ln.get("D2R_Role__c") for ln in lines if ln.get("D2R_Billing_Model__c") == "time_and_materials"]
        entity = view["legal_entity"]
        if any(ln.get("D2R_Billing_Model__c") == "milestone" for ln in lines):
            await complete_first_milestone(http, t, sf, view, first + timedelta(days=19))
        if not roles:
            t.progress("time", entity, f"{opp}: no time-and-materials line, no time to record")
            continue
        people = [c for c in consultants if c["home_legal_entity"] == entity]
        who = next((c for c in people if c["role"] == roles[0]), people[0] if people else None)
        if who is None:
            continue
        for week in range(2):
            start = monday + timedelta(weeks=week)
            if delivers_on_kantata(entity):
                said = await kantata_week(http, t, view["project_id"], who, start)
            else:
                said = await certinia_week(http, t, sf, view["project_id"], who, start)
            t.progress("time", entity, f"{who['name']}: 20 h in the week of {start} on {view['project_id']} ({said})")


# The week the demo records: (day of the week, hours)
WEEK = ((0, 8), (1, 8), (2, 4))


async def certinia_week(
    http: httpx.AsyncClient, t: Target, sf: dict[str, str], project: str, who: dict[str, Any], start: date
) -> str:
    """An approved Certinia timecard, upserted by its external id (a re-run rewrites it)."""
    days = ("Monday", "Tuesday", "Wednesday")
    response = await http.patch(
        f"{t.crm}{DATA}/sobjects/pse__Timecard_Header__c/D2R_External_Id__c/demo:{project}:{start.isoformat()}",
        headers=sf,
        json={
            "pse__Project__c": project,
            "pse__Resource__c": who["id"],
            "pse__Start_Date__c": start.isoformat(),
            "pse__End_Date__c": (start + timedelta(days=6)).isoformat(),
            **{f"pse__{days[day]}_Hours__c": hours for day, hours in WEEK},
            "pse__Total_Hours__c": sum(hours for _, hours in WEEK),
            "pse__Status__c": "Approved",
            "pse__Approved__c": True,
            "pse__Billable__c": True,
            "D2R_Role__c": who["role"],
        },
    )
    return f"Certinia, HTTP {response.status_code}"


async def kantata_week(http: httpx.AsyncClient, t: Target, workspace: str, who: dict[str, Any], start: date) -> str:
    """Approved Kantata time entries, one a day, by the same person (Kantata's user of that
    name). Kantata has no idempotency keys: the week's entries carry a note naming it, and a
    week already there is not written again (read before create)."""
    kt = await vendor_token(http, t.kantata, "/oauth/token")
    key = f"demo:{workspace}:{start.isoformat()}"
    users = (await http.get(f"{t.kantata}/api/v1/users", headers=kt, params={"per_page": 200})).json()["users"]
    user = next((u["id"] for u in users.values() if u["full_name"] == who["name"]), None)
    if user is None:
        raise DemoFailed(f"Kantata has no user {who['name']!r}")
    found = await http.get(
        f"{t.kantata}/api/v1/time_entries", headers=kt, params={"workspace_id": workspace, "notes": key}
    )
    found.raise_for_status()
    if found.json()["count"]:
        return "Kantata, recorded before"
    entries = [
        {
            "workspace_id": workspace,
            "user_id": user,
            "date_performed": (start + timedelta(days=day)).isoformat(),
            "time_in_minutes": hours * 60,
            "billable": True,
            "approved": True,
            "notes": key,
        }
        for day, hours in WEEK
    ]
    response = await http.post(f"{t.kantata}/api/v1/time_entries", headers=kt, json={"time_entries": entries})
    return f"Kantata, HTTP {response.status_code}"


async def complete_first_milestone(
    http: httpx.AsyncClient, t: Target, sf: dict[str, str], view: dict[str, Any], on: date
) -> None:
    """A milestone deal bills when the PSA marks a milestone complete: the project's first one, in the period."""
    rows = (
        await http.get(
            f"{t.crm}{DATA}/query",
            headers=sf,
            params={
                "q": "SELECT Id, Name FROM pse__Milestone__c "
                f"WHERE pse__Project__c = '{view['project_id']}' ORDER BY pse__Target_Date__c"
            },
        )
    ).json()["records"]
    if not rows:
        t.progress("time", view["legal_entity"], f"{view['project_id']}: no milestone to complete")
        return
    response = await http.patch(
        f"{t.crm}{DATA}/sobjects/pse__Milestone__c/{rows[0]['Id']}",
        headers=sf,
        json={"pse__Status__c": "Complete", "pse__Actual_Date__c": on.isoformat()},
    )
    t.progress(
        "time", view["legal_entity"], f"milestone {rows[0]['Name']} complete on {on} (HTTP {response.status_code})"
    )


async def close(http: httpx.AsyncClient, t: Target, entity: str, period: str) -> dict[str, Any]:
    """Started by integration admin; the lock approved by finance (another person: four eyes)."""
    started = await http.post(
        f"{t.api}/v1/period-close",
        json={"legal_entity": entity, "period": period},
        headers=t.as_user("dev-integration-admin"),
    )
    t.progress("close", entity, f"started (HTTP {started.status_code})")
    if started.status_code >= 400:
        raise DemoFailed(f"{entity}'s close was refused: {started.text[:300]}")
    last: dict[str, Any] = {}

    async def step(*wanted: str) -> dict[str, Any] | None:
        report: dict[str, Any] = (
            await http.get(f"{t.api}/v1/period-close/{entity}/{period}", headers=t.as_user("dev-auditor"))
        ).json()
        posting = (report.get("posting") or {}).get("progress") or {}
        # the summary's counts: the lines per engagement are in the hub, not in the report
        closed, total = report.get("engagements_closed", 0), report.get("engagements_total", 0)
        now = (report.get("step"), posting.get("page"), closed, total)
        if now != last.get("now"):
            last["now"] = now
            t.progress(
                "close",
                entity,
                f"{report.get('step')}: posting page {posting.get('page', 0)}, "
                f"{closed} of {total} engagement(s) billed",
            )
        return report if report.get("step") in wanted else None

    await until(lambda: step("AWAITING_APPROVAL", "CLOSED"), f"{entity}'s close to await the lock approval")
    approved = await http.post(
        f"{t.api}/v1/period-close/{entity}/{period}/approve",
        json={"comment": "demo month-end"},
        headers=t.as_user("dev-finance"),
    )
    t.progress("close", entity, f"lock approved by dev-finance (HTTP {approved.status_code})")
    report: dict[str, Any] = await until(lambda: step("CLOSED"), f"{entity}'s close to finish")
    return report


def _dev_private_key() -> str:
    return Path(VendorEndpoint.model_fields["private_key_file"].default).read_text()


async def netsuite_token(http: httpx.AsyncClient, base: str) -> dict[str, str]:
    """NetSuite M2M login, as the worker makes it: client credentials with a JWT client
    assertion signed by the dev certificate's key that `make run` wrote (NetSuite refuses a
    client secret). Built here with PyJWT, as any NetSuite integration would."""
    url = f"{base}/services/rest/auth/oauth2/v1/token"
    now = int(time.time())
    claims = {
        "iss": "d2r-dev",
        "scope": "rest_webservices",
        "aud": url,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    key_id = VendorEndpoint.model_fields["key_id"].default
    assertion = jwt.encode(claims, _dev_private_key(), algorithm="PS256", headers={"kid": key_id, "typ": "JWT"})
    response = await http.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    response.raise_for_status()
    return bearer(response.json()["access_token"])


def delivers_on_kantata(entity: str) -> bool:
    """make run's PSA routing (workers/devstack.py: DE01 on the "kantata" instance), or the operator's."""
    routing = json.loads(os.environ.get("D2R_PSA_ROUTING") or '{"DE01": "kantata"}')
    return bool(routing.get(entity) == "kantata")


def books_in_d365(entity: str) -> bool:
    """make run's routing (workers/devstack.py: UK01 on the "d365" instance), or the operator's."""
    routing = json.loads(os.environ.get("D2R_ERP_ROUTING") or '{"UK01": "d365"}')
    return bool(routing.get(entity) == "d365")


async def d365_billed(http: httpx.AsyncClient, base: str, entity: str, first: date, last: date) -> Decimal:
    """Net of the free-text invoices dated in the period in the entity's D365 company."""
    tenant = (await http.get(f"{base}/__admin/seed-info")).json()["tenant"]
    response = await http.post(
        f"{base}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "d2r-dev",
            "client_secret": "d2r-dev-secret",
            "scope": f"{base}/.default",
        },
    )
    response.raise_for_status()
    rows = (
        await http.get(
            f"{base}/data/FreeTextInvoiceHeaders",
            headers=bearer(response.json()["access_token"]),
            params={
                "cross-company": "true",
                "$filter": f"dataAreaId eq '{entity.lower()}' and InvoiceDate ge {first} and InvoiceDate le {last}",
                "$select": "InvoiceId,TotalInvoiceAmount,TotalTaxAmount",
            },
        )
    ).json()["value"]
    return sum((Decimal(str(r["TotalInvoiceAmount"])) - Decimal(str(r["TotalTaxAmount"])) for r in rows), Decimal(0))


async def erp_billed(http: httpx.AsyncClient, t: Target, entity: str, period: str) -> Decimal | None:
    """Net invoiced with an invoice date in the period, as the entity's ERP holds it (NetSuite's
    subsidiary, or the D365 company for an entity routed there); None if the ERP has no such entity."""
    first = date.fromisoformat(f"{period}-01")
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    if books_in_d365(entity):
        return await d365_billed(http, t.d365, entity, first, last)
    ns = await netsuite_token(http, t.netsuite)
    sub = (
        await http.post(
            f"{t.netsuite}/services/rest/query/v1/suiteql",
            headers={**ns, "Prefer": "transient"},
            json={"q": f"SELECT id FROM subsidiary WHERE externalid = '{entity}'"},
        )
    ).json()["items"]
    if not sub:
        return None
    rows = (
        await http.post(
            f"{t.netsuite}/services/rest/query/v1/suiteql",
            headers={**ns, "Prefer": "transient"},
            json={
                # SuiteQL's schema: the subsidiary is on the lines, item lines are credits (negative)
                "q": "SELECT tl.netamount FROM transaction t INNER JOIN transactionline tl ON tl.transaction = t.id "
                f"WHERE t.type = 'CustInvc' AND tl.subsidiary = {sub[0]['id']} AND tl.mainline = 'F' "
                f"AND tl.taxline = 'F' AND t.trandate >= TO_DATE('{first}', 'YYYY-MM-DD') "
                f"AND t.trandate <= TO_DATE('{last}', 'YYYY-MM-DD')"
            },
        )
    ).json()["items"]
    return -sum((Decimal(str(r.get("netamount") or 0)) for r in rows), Decimal(0))


async def check(http: httpx.AsyncClient, t: Target, entity: str, period: str, report: dict[str, Any]) -> bool:
    """What a controller checks after the close: reconciliation, and the hub's billed revenue
    against the invoices in the entity's ERP. True when both agree."""
    recon = report.get("reconciliation") or {}
    totals = report["totals"]
    say = t.progress
    say(
        "check",
        entity,
        f"{report['step']}, locked={report['locked']}; billed {totals['billed']}, "
        f"recognized {totals['recognized']}, deferred {totals['deferred']}",
    )
    say("check", entity, f"reconciliation: {recon.get('status')} ({recon.get('differences')} differences)")
    reconciled = recon.get("status") in ("clean", "nothing_to_reconcile")  # the latter: no project to compare
    answer = await http.get(
        f"{t.api}/v1/reports/billed_revenue",
        headers=t.as_user("dev-auditor"),
        params={"period": period, "legal_entity": entity, "currency": "functional"},
    )
    if answer.is_error:  # e.g. 503: this API has no reporting hub
        say("check", entity, f"billed revenue: the hub does not answer (HTTP {answer.status_code})")
        return False
    hub_billed = sum((Decimal(r["value"]) for r in answer.json()["rows"]), Decimal(0))
    erp = await erp_billed(http, t, entity, period)
    if erp is None:
        say("check", entity, f"billed revenue: hub {hub_billed}; the ERP has no {entity} (reconciled above)")
    else:
        erp_name = "D365" if books_in_d365(entity) else "NetSuite"
        verdict = "match" if hub_billed == erp else "DIFFER"
        say("check", entity, f"billed revenue: hub {hub_billed} vs {erp_name} invoices {erp} -> {verdict}")
    for exc in report.get("exceptions", [])[:5]:
        say("check", entity, f"exception {exc['code']}: {exc['message'][:140]}")
    return reconciled and (erp is None or hub_billed == erp)


async def run(period: str, t: Target) -> bool:
    """The whole demo; True when every entity's month-end is clean."""
    async with httpx.AsyncClient(timeout=60) as http:
        seed = (await http.get(f"{t.crm}/__admin/seed-info")).json()
        wanted = list(seed["valid_closed_won"])
        if t.entities is not None:
            where = {o: e for e, o in _by_entity(seed).items()}
            wanted = [o for o in wanted if where.get(o) in t.entities]
        views = await book(http, t, wanted)
        await record_time(http, t, views, period, seed["consultants"])
        clean = True
        for entity in sorted({v["legal_entity"] for v in views.values()}):
            report = await close(http, t, entity, period)
            clean &= await check(http, t, entity, period, report)
        t.progress(
            "done",
            "month-end",
            "clean: reconciliation and billed revenue agree" if clean else "has differences: see above",
        )
        return clean


def _by_entity(seed: dict[str, Any]) -> dict[str, str]:
    """Seeded valid deals by legal entity (the seed names them `us01_…`, `uk01_…`)."""
    valid = (seed.get("opportunities") or {}).get("valid") or {}
    return {name.split("_", 1)[0].upper(): opp for name, opp in valid.items()}


def last_month() -> str:
    return (date.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", default=last_month())
    period = parser.parse_args().period
    try:
        clean = asyncio.run(run(period, Target()))
    except DemoFailed as failed:
        sys.exit(str(failed))
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
