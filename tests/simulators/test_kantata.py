"""The Kantata OX simulator: shapes, hard edges (no idempotency keys, 429 without
Retry-After, request timeout, archived records hidden) and the subscribed-event feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.kantata import KantataSettings, create_app
from tests.simulators.procs import free_port, kill9, start, stop

API = "/api/v1"
CREDS = {"grant_type": "client_credentials", "client_id": "d2r-dev", "client_secret": "d2r-dev-secret"}


async def _client(app: Any) -> httpx.AsyncClient:
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kantata.test")
    r = await c.post("/oauth/token", data=CREDS)
    assert r.status_code == 200, r.text
    c.headers["authorization"] = "Bearer " + r.json()["access_token"]
    return c


@pytest.fixture
async def kt(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(KantataSettings(db=str(tmp_path / "kt.sqlite"), seed="demo", event_lag_max_s=0.3))
    c = await _client(app)
    c.app = app  # type: ignore[attr-defined]
    yield c
    await c.aclose()
    app.store.close()


def info(c: httpx.AsyncClient) -> dict[str, Any]:
    return c.app.seed_info_cached  # type: ignore[attr-defined]


def one(body: dict[str, Any]) -> dict[str, Any]:
    ref = body["results"][0]
    return body[ref["key"]][ref["id"]]


async def workspace(c: httpx.AsyncClient, title: str = "Acme rollout", ref: str | None = None) -> dict[str, Any]:
    seed = info(c)
    body: dict[str, Any] = {"title": title, "currency": "EUR", "rate_card_id": seed["rate_cards"]["EUR"]}
    if ref:
        body["custom_field_values"] = [
            {"custom_field_id": seed["custom_fields"]["Workspace.d2r reference"], "value": ref}
        ]
    r = await c.post(f"{API}/workspaces", json={"workspace": body})
    assert r.status_code == 200, r.text
    return one(r.json())


async def test_oauth_bearer_is_required(kt: httpx.AsyncClient) -> None:
    bare = httpx.AsyncClient(transport=kt._transport, base_url="http://kantata.test")
    r = await bare.get(f"{API}/workspaces")
    assert r.status_code == 401
    assert r.json()["errors"][0]["type"] == "authentication"
    r = await bare.post("/oauth/token", data={**CREDS, "client_secret": "wrong"})
    assert r.status_code == 401
    await bare.aclose()


async def test_envelope_paging_and_side_loading(kt: httpx.AsyncClient) -> None:
    r = await kt.get(f"{API}/users.json", params={"per_page": 3, "page": 2, "include": "role"})
    body = r.json()
    assert r.status_code == 200
    assert body["count"] == 10  # the demo firm's consultants; count is the total, not the page
    assert [x["key"] for x in body["results"]] == ["users"] * 3
    ids = [x["id"] for x in body["results"]]
    assert set(body["users"]) == set(ids)
    # side-loaded roles sit in their own top-level key, indexed by id
    assert {u["role_id"] for u in body["users"].values()} <= set(body["roles"])
    assert body["meta"] == {"count": 10, "page_count": 4, "page_number": 2, "page_size": 3}
    assert (await kt.get(f"{API}/users", params={"per_page": 201})).status_code == 400
    assert (await kt.get(f"{API}/users", params={"include": "nonsense"})).status_code == 400


async def test_money_is_integer_cents_and_rates_come_from_the_rate_card(kt: httpx.AsyncClient) -> None:
    ws = await workspace(kt)
    bad = await kt.put(f"{API}/workspaces/{ws['id']}", json={"workspace": {"price_in_cents": 1200.5}})
    assert bad.status_code == 422
    assert bad.json()["errors"][0] == {
        "type": "validation",
        "message": "price_in_cents must be an integer number of cents",
        "field": "price_in_cents",
    }
    ok = await kt.put(f"{API}/workspaces/{ws['id']}", json={"workspace": {"price_in_cents": 12_000_000}})
    assert one(ok.json())["budgeted"] is True
    konrad = next(u for u in info(kt)["users"] if u["name"] == "Konrad Zuse")  # Senior Consultant, EUR 225/h
    r = await kt.post(
        f"{API}/time_entries",
        json={"time_entry": {"workspace_id": ws["id"], "user_id": konrad["id"], "date_performed": "2026-11-02",
                             "time_in_minutes": 90}},
    )  # fmt: skip
    entry = one(r.json())
    assert (entry["rate_in_cents"], entry["currency"], entry["approved"], entry["is_invoiced"]) == (
        22500,
        "EUR",
        False,
        False,
    )


async def test_a_retried_post_duplicates(kt: httpx.AsyncClient) -> None:
    """No idempotency keys: the first POST commits but its response is lost, the blind
    retry creates a second workspace with the same d2r reference."""
    await kt.post("/__admin/faults", json={"response_lost_rate": 1.0})
    seed = info(kt)
    body = {
        "workspace": {
            "title": "Lost",
            "currency": "EUR",
            "custom_field_values": [
                {"custom_field_id": seed["custom_fields"]["Workspace.d2r reference"], "value": "r1"}
            ],
        }
    }
    lost = await kt.post(f"{API}/workspaces", json=body)
    assert lost.status_code == 504
    await kt.delete("/__admin/faults")
    again = await kt.post(f"{API}/workspaces", json=body)
    assert again.status_code == 200
    titles = [w["title"] for w in (await kt.get(f"{API}/workspaces")).json()["workspaces"].values()]
    assert titles.count("Lost") == 2
    dupes = (await kt.get("/__admin/duplicates")).json()
    assert dupes["count"] == 1
    assert dupes["duplicates"]["Workspace.d2r_reference"][0]["key"] == "r1"
    # the reference is searchable: what a connector looks up before it creates
    found = await kt.get(
        f"{API}/custom_field_values",
        params={"subject_type": "Workspace", "custom_field_id": seed["custom_fields"]["Workspace.d2r reference"],
                "value": "r1"},
    )  # fmt: skip
    assert found.json()["count"] == 2


async def test_429_has_no_retry_after_and_outage_is_503(kt: httpx.AsyncClient) -> None:
    await kt.post("/__admin/faults", json={"throttle_burst": 2})
    r = await kt.get(f"{API}/workspaces")
    assert r.status_code == 429
    assert "retry-after" not in r.headers
    assert r.json()["errors"][0]["message"] == "Rate limit exceeded"
    assert (await kt.get(f"{API}/workspaces")).status_code == 429
    assert (await kt.get(f"{API}/workspaces")).status_code == 200
    await kt.post("/__admin/faults", json={"outage_seconds": 30})
    assert (await kt.get(f"{API}/workspaces")).status_code == 503
    await kt.delete("/__admin/faults")
    assert (await kt.get(f"{API}/workspaces")).status_code == 200


async def test_request_timeout_answers_504_and_does_no_work(tmp_path: Path) -> None:
    app = create_app(KantataSettings(db=str(tmp_path / "t.sqlite"), seed="demo", request_timeout_s=0.2))
    c = await _client(app)
    await c.post("/__admin/faults", json={"slow_rate": 1.0, "slow_delay_s": 1.0})
    r = await c.post(f"{API}/workspaces", json={"workspace": {"title": "Slow", "currency": "EUR"}})
    assert r.status_code == 504
    assert r.json()["errors"][0]["message"] == "The request timed out"
    await c.delete("/__admin/faults")
    assert (await c.get(f"{API}/workspaces")).json()["count"] == 0  # the seeded one is archived
    await c.aclose()
    app.store.close()


async def test_archived_records_are_hidden_by_default_filters(kt: httpx.AsyncClient) -> None:
    archived = info(kt)["archived_workspace"]
    assert (await kt.get(f"{API}/workspaces/{archived}")).status_code == 404
    assert archived not in (await kt.get(f"{API}/workspaces")).json()["workspaces"]
    shown = await kt.get(f"{API}/workspaces/{archived}.json", params={"include_archived": "true"})
    assert shown.status_code == 200 and one(shown.json())["archived"] is True
    listed = await kt.get(f"{API}/workspaces", params={"only_archived": "true"})
    assert list(listed.json()["workspaces"]) == [archived]


async def test_template_phases_and_invoices_mark_entries_once(kt: httpx.AsyncClient) -> None:
    seed = info(kt)
    r = await kt.post(
        f"{API}/workspaces",
        json={"workspace": {"title": "From template", "currency": "EUR",
                            "project_template_id": seed["project_templates"]["IMPL-STD"]}},
    )  # fmt: skip
    ws = one(r.json())
    stories = (await kt.get(f"{API}/stories", params={"workspace_id": ws["id"]})).json()["stories"]
    assert [s["title"] for s in stories.values()] == ["Discovery", "Design", "Build", "Test", "Go-Live"]
    user = seed["users"][4]["id"]
    entry = one(
        (
            await kt.post(
                f"{API}/time_entries",
                json={
                    "time_entry": {
                        "workspace_id": ws["id"],
                        "user_id": user,
                        "date_performed": "2026-11-02",
                        "time_in_minutes": 60,
                        "rate_in_cents": 20000,
                    }
                },
            )
        ).json()
    )
    inv = {"invoice": {"workspace_id": ws["id"], "invoice_date": "2026-11-30", "time_entry_ids": [entry["id"]]}}
    assert (await kt.post(f"{API}/invoices", json=inv)).status_code == 422  # not approved yet
    await kt.put(f"{API}/time_entries/{entry['id']}", json={"time_entry": {"approved": True}})
    locked = await kt.put(f"{API}/time_entries/{entry['id']}", json={"time_entry": {"time_in_minutes": 30}})
    assert locked.status_code == 422
    created = one((await kt.post(f"{API}/invoices", json=inv)).json())
    assert created["price_in_cents"] == 20000
    marked = one((await kt.get(f"{API}/time_entries/{entry['id']}")).json())
    assert (marked["is_invoiced"], marked["invoice_id"]) == (True, created["id"])
    assert (await kt.post(f"{API}/invoices", json=inv)).status_code == 422  # already invoiced
    assert (
        await kt.put(f"{API}/time_entries/{entry['id']}", json={"time_entry": {"is_invoiced": False}})
    ).status_code == 422
    assert (await kt.delete(f"{API}/invoices/{created['id']}")).status_code == 204
    assert one((await kt.get(f"{API}/time_entries/{entry['id']}")).json())["is_invoiced"] is False


async def test_events_repeat_and_arrive_out_of_order(kt: httpx.AsyncClient) -> None:
    ws = await workspace(kt)
    await kt.post("/__admin/faults", json={"webhook_duplicate_rate": 1.0, "webhook_reorder": True, "seed": 7})
    for n in range(6):
        await kt.put(f"{API}/workspaces/{ws['id']}", json={"workspace": {"description": f"v{n}"}})
    await asyncio.sleep(0.35)  # every event generated (the lag is at most 0.3 s here)
    body = (
        await kt.get(f"{API}/subscribed_events", params={"event_types": "workspace:updated", "per_page": 50})
    ).json()
    events = [body["subscribed_events"][x["id"]] for x in body["results"]]
    assert len(events) == 12  # each change twice
    assert len({e["id"] for e in events}) == 12  # ... under distinct event ids
    assert all(e["subject_type"] == "Workspace" and e["subject_id"] == ws["id"] for e in events)
    versions = [e["payload"]["description"] for e in events]
    assert sorted(set(versions)) == [f"v{n}" for n in range(6)]
    changed = [e["subject_changed_at"] for e in events]
    assert changed != sorted(changed)  # listed by created_at, the changes are not in order
    # the short alias and the created_after window
    since = events[5]["created_at"]
    later = (await kt.get(f"{API}/events", params={"created_after": since, "per_page": 50})).json()
    assert later["count"] == 6
    # kept 9 days
    await kt.post("/__admin/events/age", json={"days": 10})
    assert (await kt.get(f"{API}/subscribed_events")).json()["count"] == 0


async def test_runs_as_a_process_and_keeps_its_data(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "kantata.sqlite"
    base = f"http://127.0.0.1:{port}"
    proc = start("simulators.kantata", port, db, "--seed", "demo")
    try:
        async with httpx.AsyncClient(base_url=base) as c:
            token = (await c.post("/oauth/token", data=CREDS)).json()["access_token"]
            c.headers["authorization"] = f"Bearer {token}"
            r = await c.post(f"{API}/workspaces.json", json={"workspace": {"title": "Durable", "currency": "GBP"}})
            assert r.status_code == 200
            wid = r.json()["results"][0]["id"]
        kill9(proc)
        proc = start("simulators.kantata", port, db, "--seed", "demo")
        async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {token}"}) as c:
            r = await c.get(f"{API}/workspaces/{wid}")
            assert r.status_code == 200 and one(r.json())["title"] == "Durable"
            assert (await c.get("/__admin/counts")).json()["users"] == 10  # seeded once, not twice
            # a lost response over a real connection: the write commits, the connection drops
            await c.post("/__admin/faults", json={"response_lost_rate": 1.0})
            with pytest.raises(httpx.TransportError):
                await c.post(f"{API}/workspaces", json={"workspace": {"title": "Lost", "currency": "GBP"}})
            await c.delete("/__admin/faults")
            titles = [w["title"] for w in (await c.get(f"{API}/workspaces")).json()["workspaces"].values()]
            assert titles == ["Durable", "Lost"]
    finally:
        stop(proc)
