from __future__ import annotations

import asyncio
import time

import httpx

from tests.simulators.conftest import SF_V

OPP1 = "006Dd0000000001IAA"
NS_REC = "/services/rest/record/v1"


async def statuses(c: httpx.AsyncClient, n: int) -> list[int]:
    return [(await c.get(f"{SF_V}/sobjects/Opportunity/{OPP1}")).status_code for _ in range(n)]


async def test_error_rate_is_deterministic_with_a_seed(sf: httpx.AsyncClient) -> None:
    await sf.post("/__admin/faults", json={"error_rate": 0.5, "seed": 123})
    first = await statuses(sf, 30)
    await sf.post("/__admin/faults", json={"error_rate": 0.5, "seed": 123})
    second = await statuses(sf, 30)
    assert first == second
    assert set(first) == {200, 500}
    r = await sf.get(f"{SF_V}/sobjects/Opportunity/{OPP1}")
    while r.status_code == 200:
        r = await sf.get(f"{SF_V}/sobjects/Opportunity/{OPP1}")
    assert r.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    # the admin surface is never faulted, and clearing restores service
    assert (await sf.delete("/__admin/faults")).status_code == 200
    assert set(await statuses(sf, 10)) == {200}


async def test_throttle_burst_and_outage(sf: httpx.AsyncClient, ns: httpx.AsyncClient) -> None:
    await sf.post("/__admin/faults", json={"throttle_burst": 2, "retry_after_s": 3})
    r = await sf.get(f"{SF_V}/sobjects/Opportunity/{OPP1}")
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    assert r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert await statuses(sf, 2) == [503, 200]
    await ns.post("/__admin/faults", json={"throttle_burst": 1})
    r = await ns.get(f"{NS_REC}/subsidiary/1")
    assert r.status_code == 429 and "retry-after" in r.headers
    assert r.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert (await ns.get(f"{NS_REC}/subsidiary/1")).status_code == 200
    await sf.post("/__admin/faults", json={"outage_seconds": 30})
    assert set(await statuses(sf, 3)) == {503}
    view = (await sf.get("/__admin/faults")).json()
    assert view["outage_active"] is True
    await sf.post("/__admin/faults", json={"outage_seconds": 0})
    assert set(await statuses(sf, 3)) == {200}


async def test_response_lost_after_commit(sf: httpx.AsyncClient) -> None:
    await sf.post("/__admin/faults", json={"response_lost_rate": 1.0})
    url = f"{SF_V}/sobjects/pse__Proj__c/D2R_External_Id__c/lost-1"
    r = await sf.patch(url, json={"Name": "lost"})
    assert r.status_code == 504
    await sf.delete("/__admin/faults")
    # the write happened: a retry of the same upsert updates instead of duplicating
    r = await sf.patch(url, json={"Name": "lost"})
    assert r.status_code == 204
    assert (await sf.get("/__admin/counts")).json()["pse__Proj__c"] == 1
    assert (await sf.get("/__admin/duplicates")).json()["count"] == 0


async def test_latency_and_slow_responses(sf: httpx.AsyncClient) -> None:
    await sf.post("/__admin/faults", json={"latency_ms": 120})
    t0 = time.monotonic()
    assert (await sf.get(f"{SF_V}/limits")).status_code == 200
    assert time.monotonic() - t0 >= 0.12
    await sf.put("/__admin/faults", json={"slow_rate": 1.0, "slow_delay_s": 0.5})
    t0 = time.monotonic()
    r = await sf.get(f"{SF_V}/limits")
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.5


async def test_netsuite_concurrency_limit(ns: httpx.AsyncClient) -> None:
    await ns.post("/__admin/faults", json={"max_concurrency": 2, "latency_ms": 100})
    rs = await asyncio.gather(*(ns.get(f"{NS_REC}/subsidiary/1") for _ in range(6)))
    codes = sorted(r.status_code for r in rs)
    assert codes.count(200) == 2 and codes.count(429) == 4
    await ns.delete("/__admin/faults")
    rs = await asyncio.gather(*(ns.get(f"{NS_REC}/subsidiary/1") for _ in range(6)))
    assert {r.status_code for r in rs} == {200}


async def test_daily_limit(tmp_path: object) -> None:
    from pathlib import Path

    from simulators.salesforce import create_app
    from tests.simulators.conftest import sf_settings

    app = create_app(sf_settings(Path(str(tmp_path)), daily_limit=3, seed="none"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        tok = (
            await c.post(
                "/services/oauth2/token",
                data={"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"},
            )
        ).json()["access_token"]
        c.headers["authorization"] = f"Bearer {tok}"
        codes = [(await c.get(f"{SF_V}/limits")).status_code for _ in range(5)]
        assert codes[:2] == [200, 200] and codes[-1] == 403
        r = await c.get(f"{SF_V}/limits")
        assert r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert r.headers["sforce-limit-info"].endswith("/3")
    app.store.close()


async def test_reset_and_reseed(sf: httpx.AsyncClient) -> None:
    await sf.post(f"{SF_V}/sobjects/Account", json={"Name": "temp"})
    r = await sf.post("/__admin/reset", json={"seed": "demo"})
    assert r.status_code == 200
    assert r.json()["seed_info"]["valid_closed_won"][0] == OPP1
    counts = (await sf.get("/__admin/counts")).json()
    assert counts["Account"] == 8
    dump = (await sf.get("/__admin/records/Opportunity")).json()
    assert len(dump["records"]) == 11


async def test_webhooks_reordered_deterministically(sf: httpx.AsyncClient) -> None:
    import json

    from tests.simulators.test_processes import Receiver

    async def run(seed: int) -> list[str]:
        rec = Receiver()
        try:
            await sf.post("/__admin/reset", json={"seed": "demo"})
            tok = (
                await sf.post(
                    "/services/oauth2/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": "d2r-dev",
                        "client_secret": "d2r-dev-secret",
                    },
                )
            ).json()["access_token"]
            sf.headers["authorization"] = f"Bearer {tok}"
            await sf.post("/__admin/webhooks", json={"url": rec.url})
            await sf.put("/__admin/faults", json={"webhook_reorder": True, "seed": seed})
            proj = (await sf.post(f"{SF_V}/sobjects/pse__Proj__c", json={"Name": "P"})).json()["id"]
            for i in range(8):
                r = await sf.post(
                    f"{SF_V}/sobjects/pse__Milestone__c",
                    json={"Name": f"M{i}", "pse__Project__c": proj, "pse__Status__c": "Complete"},
                )
                assert r.status_code == 201
            stats = (await sf.post("/__admin/webhooks/flush")).json()
            assert stats["delivered"] == 8
            return [json.loads(b)["data"]["name"] for _, b in rec.wait(8)]
        finally:
            rec.close()

    first = await run(5)
    again = await run(5)
    assert first == again
    assert sorted(first) == [f"M{i}" for i in range(8)]
    assert first != sorted(first)


async def test_reject_refuses_matching_calls_for_good_with_the_vendor_error(sf: httpx.AsyncClient) -> None:
    url = f"{SF_V}/sobjects/Opportunity/{OPP1}"
    rule = {
        "method": "patch",
        "path": r"/sobjects/Opportunity/",
        "body": r'"StageName":\s*"Closed Lost"',
        "message": "Closed deals cannot be lost",
    }
    view = (await sf.post("/__admin/faults", json={"reject": [rule]})).json()
    assert view["reject"][0]["method"] == "PATCH" and view["rejected"] == [0]
    for _ in range(3):  # for good: a retry is refused again, and nothing is written
        r = await sf.patch(url, json={"StageName": "Closed Lost"})
        assert r.status_code == 400
        assert r.json() == [
            {"message": "Closed deals cannot be lost", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION"}
        ]
    assert (await sf.get(url)).json()["StageName"] == "Closed Won"
    # other calls pass: a read, and a write whose body does not match
    assert (await sf.patch(url, json={"Description": "still won"})).status_code == 204
    assert (await sf.get("/__admin/faults")).json()["rejected"] == [3]
    # the connector maps the refusal to a non-retryable validation error
    from connectors.errors import VendorValidationError
    from connectors.salesforce.client import SalesforceClient, SalesforceConfig

    app = sf.app  # type: ignore[attr-defined]
    client = SalesforceClient(
        SalesforceConfig(base_url="http://sf.test", client_id="d2r-dev", client_secret="d2r-dev-secret"),
        transport=httpx.ASGITransport(app=app),
    )
    try:
        try:
            await client.update("Opportunity", OPP1, {"StageName": "Closed Lost"})
        except VendorValidationError as e:
            assert not e.retryable and e.status == 400 and e.vendor_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        else:
            raise AssertionError("the refused update went through")
    finally:
        await client.aclose()
    # clearing the faults lifts the refusal
    await sf.delete("/__admin/faults")
    assert (await sf.patch(url, json={"StageName": "Closed Lost"})).status_code == 204


async def test_reject_on_netsuite_answers_o_error_details_and_creates_nothing(ns: httpx.AsyncClient) -> None:
    rules = [
        {"method": "PUT", "path": r"/salesOrder/eid:d2r:engagement-X:", "message": "Order refused"},
        {"method": "*", "path": r"/subsidiary/2$", "status": 403, "code": "INSUFFICIENT_PERMISSION"},
    ]
    await ns.put("/__admin/faults", json={"reject": rules})
    before = (await ns.get("/__admin/counts")).json().get("salesOrder", 0)
    r = await ns.put(
        f"{NS_REC}/salesOrder/eid:d2r:engagement-X:sales-order", json={"entity": {"id": "1"}, "subsidiary": {"id": "1"}}
    )
    assert r.status_code == 400
    detail = r.json()["o:errorDetails"][0]
    assert detail["o:errorCode"] == "USER_ERROR" and detail["detail"] == "Order refused"
    # the rule sees the decoded path, as connectors percent-encode the external id
    r = await ns.put(f"{NS_REC}/salesOrder/eid:d2r%3Aengagement-X%3Asales-order", json={"entity": {"id": "1"}})
    assert r.status_code == 400
    assert (await ns.get("/__admin/counts")).json().get("salesOrder", 0) == before
    r = await ns.get(f"{NS_REC}/subsidiary/2")
    assert r.status_code == 403 and r.json()["o:errorDetails"][0]["o:errorCode"] == "INSUFFICIENT_PERMISSION"
    assert (await ns.get(f"{NS_REC}/subsidiary/1")).status_code == 200
    assert (await ns.get("/__admin/faults")).json()["rejected"] == [2, 1]
    # a rule that is not a valid regular expression, or a retryable status, is refused
    for bad in ({"path": "("}, {"path": "x", "status": 503}):
        assert (await ns.post("/__admin/faults", json={"reject": [bad]})).status_code == 400
    assert (await ns.post("/__admin/faults", json={"reject": []})).json()["rejected"] == []
