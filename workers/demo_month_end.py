"""A month-end for the demo firm against a running `make run` stack, with the checks a
controller would make afterwards: `python -m workers.demo_month_end [--period 2026-10]`.

1. Books the seeded Closed Won deals (POST /v1/engagements; a pending deal approval is
   approved by dev-finance) and waits until they are in delivery.
2. Records two approved weeks of time in the PSA for each project with a time-and-materials
   line, by a consultant of the project's legal entity with the line's role.
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
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt

from security import dev_issuer
from workers.settings import VendorEndpoint

API, SF, NS = "http://127.0.0.1:8000", "http://127.0.0.1:8301", "http://127.0.0.1:8302"
D365 = "http://127.0.0.1:8303"
DATA = "/services/data/v61.0"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_user(user: str) -> dict[str, str]:
    """A token of `make run`'s dev issuer for a dev user `dev-<role>` (what `d2r token` mints)."""
    state = Path(os.environ.get("D2R_STATE_DIR", Path(__file__).resolve().parent.parent / ".d2r"))
    role = user.removeprefix("dev-").replace("-", "_")
    return bearer(
        dev_issuer.mint(
            state / "dev-issuer" / "key.pem", f"{API}/dev-issuer", subject=user, roles=[role], entities=["*"]
        )
    )


async def vendor_token(http: httpx.AsyncClient, base: str, path: str) -> dict[str, str]:
    response = await http.post(
        base + path,
        data={"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"},
    )
    response.raise_for_status()
    return bearer(response.json()["access_token"])


async def until(check: Any, what: str, within: float = 120.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(1)
    sys.exit(f"gave up waiting for {what}")


async def book(http: httpx.AsyncClient, opportunities: list[str]) -> dict[str, dict[str, Any]]:
    for opp in opportunities:
        response = await http.post(
            f"{API}/v1/engagements", json={"opportunity_id": opp}, headers=as_user("dev-sales-ops")
        )
        print(f"engagement for {opp}: HTTP {response.status_code}")

    async def in_delivery() -> dict[str, dict[str, Any]] | None:
        views = {
            o: (await http.get(f"{API}/v1/engagements/{o}", headers=as_user("dev-auditor"))).json()
            for o in opportunities
        }
        for opp, view in views.items():
            for approval in view.get("approvals", []):
                if approval["decision"] == "PENDING":
                    await http.post(
                        f"{API}/v1/engagements/{opp}/approvals/{approval['approval_id']}",
                        json={"approve": True, "comment": "demo"},
                        headers=as_user("dev-finance"),
                    )
        return views if all(v.get("stage") == "IN_DELIVERY" for v in views.values()) else None

    views: dict[str, dict[str, Any]] = await until(in_delivery, "the engagements to be in delivery")
    return views


async def record_time(
    http: httpx.AsyncClient, views: dict[str, dict[str, Any]], period: str, consultants: list[dict[str, Any]]
) -> None:
    sf = await vendor_token(http, SF, "/services/oauth2/token")
    first = date.fromisoformat(f"{period}-01")
    monday = first + timedelta(days=(7 - first.weekday()) % 7)
    for opp, view in views.items():
        lines = (
            await http.get(
                f"{SF}{DATA}/query",
                headers=sf,
                params={
                    "q": "SELECT Id, D2R_Role__c, D2R_Billing_Model__c FROM OpportunityLineItem "
                    f"WHERE OpportunityId = '{opp}'"
                },
            )
        ).json()["records"]
        roles = [ln.get("D2R_Role__c") for ln in lines if ln.get("D2R_Billing_Model__c") == "time_and_materials"]
        if not roles:
            continue
        entity = view["legal_entity"]
        people = [c for c in consultants if c["home_legal_entity"] == entity]
        who = next((c for c in people if c["role"] == roles[0]), people[0] if people else None)
        if who is None:
            continue
        for week in range(2):
            start = monday + timedelta(weeks=week)
            key = f"demo:{view['project_id']}:{start.isoformat()}"
            response = await http.patch(
                f"{SF}{DATA}/sobjects/pse__Timecard_Header__c/D2R_External_Id__c/{key}",
                headers=sf,
                json={
                    "pse__Project__c": view["project_id"],
                    "pse__Resource__c": who["id"],
                    "pse__Start_Date__c": start.isoformat(),
                    "pse__End_Date__c": (start + timedelta(days=6)).isoformat(),
                    "pse__Monday_Hours__c": 8,
                    "pse__Tuesday_Hours__c": 8,
                    "pse__Wednesday_Hours__c": 4,
                    "pse__Total_Hours__c": 20,
                    "pse__Status__c": "Approved",
                    "pse__Approved__c": True,
                    "pse__Billable__c": True,
                    "D2R_Role__c": who["role"],
                },
            )
            print(
                f"  {entity} {who['name']}: 20 h in week of {start} on {view['project_id']} "
                f"(HTTP {response.status_code})"
            )


async def close(http: httpx.AsyncClient, entity: str, period: str) -> dict[str, Any]:
    started = await http.post(
        f"{API}/v1/period-close",
        json={"legal_entity": entity, "period": period},
        headers=as_user("dev-integration-admin"),
    )
    print(f"period close {entity} {period}: HTTP {started.status_code}")

    async def step(*wanted: str) -> dict[str, Any] | None:
        report: dict[str, Any] = (
            await http.get(f"{API}/v1/period-close/{entity}/{period}", headers=as_user("dev-auditor"))
        ).json()
        return report if report.get("step") in wanted else None

    await until(lambda: step("AWAITING_APPROVAL", "CLOSED"), f"{entity}'s close to await the lock approval")
    await http.post(
        f"{API}/v1/period-close/{entity}/{period}/approve",
        json={"comment": "demo month-end"},
        headers=as_user("dev-finance"),
    )
    report: dict[str, Any] = await until(lambda: step("CLOSED"), f"{entity}'s close to finish")
    return report


def _dev_private_key() -> str:
    return Path(VendorEndpoint.model_fields["private_key_file"].default).read_text()


async def netsuite_token(http: httpx.AsyncClient) -> dict[str, str]:
    """NetSuite M2M login, as the worker makes it: client credentials with a JWT client
    assertion signed by the dev certificate's key that `make run` wrote (NetSuite refuses a
    client secret). Built here with PyJWT, as any NetSuite integration would."""
    url = f"{NS}/services/rest/auth/oauth2/v1/token"
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


def books_in_d365(entity: str) -> bool:
    """make run's routing (workers/devstack.py: UK01 on the "d365" instance), or the operator's."""
    routing = json.loads(os.environ.get("D2R_ERP_ROUTING") or '{"UK01": "d365"}')
    return bool(routing.get(entity) == "d365")


async def d365_billed(http: httpx.AsyncClient, entity: str, first: date, last: date) -> Decimal:
    """Net of the free-text invoices dated in the period in the entity's D365 company."""
    tenant = (await http.get(f"{D365}/__admin/seed-info")).json()["tenant"]
    response = await http.post(
        f"{D365}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "d2r-dev",
            "client_secret": "d2r-dev-secret",
            "scope": f"{D365}/.default",
        },
    )
    response.raise_for_status()
    rows = (
        await http.get(
            f"{D365}/data/FreeTextInvoiceHeaders",
            headers=bearer(response.json()["access_token"]),
            params={
                "cross-company": "true",
                "$filter": f"dataAreaId eq '{entity.lower()}' and InvoiceDate ge {first} and InvoiceDate le {last}",
                "$select": "InvoiceId,TotalInvoiceAmount,TotalTaxAmount",
            },
        )
    ).json()["value"]
    return sum((Decimal(str(r["TotalInvoiceAmount"])) - Decimal(str(r["TotalTaxAmount"])) for r in rows), Decimal(0))


async def erp_billed(http: httpx.AsyncClient, entity: str, period: str) -> Decimal | None:
    """Net invoiced with an invoice date in the period, as the entity's ERP holds it (NetSuite's
    subsidiary, or the D365 company for an entity routed there); None if the ERP has no such entity."""
    first = date.fromisoformat(f"{period}-01")
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    if books_in_d365(entity):
        return await d365_billed(http, entity, first, last)
    ns = await netsuite_token(http)
    sub = (
        await http.post(
            f"{NS}/services/rest/query/v1/suiteql",
            headers={**ns, "Prefer": "transient"},
            json={"q": f"SELECT id FROM subsidiary WHERE externalid = '{entity}'"},
        )
    ).json()["items"]
    if not sub:
        return None
    rows = (
        await http.post(
            f"{NS}/services/rest/query/v1/suiteql",
            headers={**ns, "Prefer": "transient"},
            json={
                "q": f"SELECT subtotal FROM transaction WHERE type = 'CustInvc' AND subsidiary = '{sub[0]['id']}' "
                f"AND trandate >= '{first}' AND trandate <= '{last}'"
            },
        )
    ).json()["items"]
    return sum((Decimal(str(r.get("subtotal") or 0)) for r in rows), Decimal(0))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    last_month = date.today().replace(day=1) - timedelta(days=1)
    parser.add_argument("--period", default=last_month.strftime("%Y-%m"))
    period = parser.parse_args().period
    async with httpx.AsyncClient(timeout=60) as http:
        seed = (await http.get(f"{SF}/__admin/seed-info")).json()
        views = await book(http, list(seed["valid_closed_won"]))
        await record_time(http, views, period, seed["consultants"])
        entities = sorted({v["legal_entity"] for v in views.values()})
        clean = True
        for entity in entities:
            report = await close(http, entity, period)
            recon = report.get("reconciliation") or {}
            hub = (
                await http.get(
                    f"{API}/v1/reports/billed_revenue",
                    headers=as_user("dev-auditor"),
                    params={"period": period, "legal_entity": entity, "currency": "functional"},
                )
            ).json()["rows"]
            hub_billed = sum((Decimal(r["value"]) for r in hub), Decimal(0))
            erp = await erp_billed(http, entity, period)
            checked = recon.get("status") in ("clean", "nothing_to_reconcile")  # the latter: no project to compare
            clean &= checked and (erp is None or hub_billed == erp)
            totals = report["totals"]
            print(
                f"{entity} {period}: {report['step']}, locked={report['locked']}; billed {totals['billed']}, "
                f"recognized {totals['recognized']}, deferred {totals['deferred']}"
            )
            print(
                f"  reconciliation: {recon.get('status')} ({recon.get('differences')} differences, "
                f"{recon.get('detail')})"
            )
            if erp is None:
                print(f"  billed revenue: hub {hub_billed}; the ERP has no {entity} (reconciled above)")
            else:
                print(
                    f"  billed revenue: hub {hub_billed} vs {'D365' if books_in_d365(entity) else 'NetSuite'} "
                    f"invoices {erp} -> "
                    f"{'match' if hub_billed == erp else 'DIFFER'}"
                )
            for exc in report.get("exceptions", [])[:5]:
                print(f"  exception {exc['code']}: {exc['message'][:140]}")
        print(
            "month-end clean: reconciliation and billed revenue agree"
            if clean
            else "month-end has differences: see above"
        )


if __name__ == "__main__":
    asyncio.run(main())
