"""bench/bench_scale.py at a small N, as a process: its last line is the JSON the README's
figures come from, with every key, and figures that hang together (so the bench cannot
rot unnoticed between the runs that produce the published numbers). Every legal entity of
the demo firm runs on the vendors its routing gives it (UK01 books in Dynamics 365, DE01
delivers on Kantata), and every engagement is started through the API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

KEYS = {
    "engagements",
    "workers",
    "provision_per_s",
    "bare_provision_per_s",
    "close_wall_s",
    "close_actions_per_engagement",
    "max_payload_bytes",
    "max_history_events",
    "worker_rss_mib",
    "query_p99_ms",
}


# the deals' rate (a Senior Consultant) and what the bench books: two weeks of 40 h per entity
EXPECTED_BILLED = {
    "US01": {"USD": "20000.00"},
    "UK01": {"GBP": "16000.00"},
    "DE01": {"EUR": "18000.00"},
    "JP01": {"JPY": "2720000"},
}


def test_bench_scale_prints_consistent_figures() -> None:
    entities = ["US01", "UK01", "DE01", "JP01"]
    args = ["--engagements", "8", "--workers", "2", "--bare", "4", "--timecards", "8", "--queries", "8"]
    run = subprocess.run(
        [sys.executable, "-m", "bench.bench_scale", *args, "--entities", ",".join(entities)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert KEYS <= figures.keys()
    assert (figures["engagements"], figures["workers"]) == (8, 2)
    assert figures["entities"] == dict.fromkeys(entities, 2)
    assert figures["engagements_needing_attention"] == 0
    # each entity on the vendors the firm's routing gives it
    assert figures["vendors"] == {
        "US01": {"erp": "netsuite", "psa": "certinia"},
        "UK01": {"erp": "dynamics", "psa": "certinia"},
        "DE01": {"erp": "netsuite", "psa": "kantata"},
        "JP01": {"erp": "netsuite", "psa": "certinia"},
    }
    # every engagement started as a caller starts it: POST /v1/engagements, 202 with a Location
    assert figures["api_start_statuses"] == {"202": 8}
    assert (figures["api_start_errors"], figures["api_start_without_location"]) == (0, 0)
    assert 0 < figures["api_start_p50_ms"] <= figures["api_start_p99_ms"]
    # Every entity's month-end bills its time and finds the ERP, the PSA and the hub agree: the
    # engagements write their documents to the hub (they once started without its queue, so
    # every invoiced project differed, ERP total vs hub 0), every entity has time, and DE01's
    # is in Kantata, where its projects are.
    assert figures["reconciliation"] == dict.fromkeys(entities, "clean")
    assert figures["billed_by_entity"] == EXPECTED_BILLED
    # the records are where the routing says: one project per deal (real and bare) in its PSA,
    # each ERP's sales orders and the invoice of the entity's billed project
    records = figures["simulator_records"]
    assert records["kantata"]["workspaces"] == 1 + 2 + 1  # the seed's archived one, DE01's real and bare
    assert records["kantata"]["time_entries"] == 2 * 5  # two weeks of five days
    assert records["salesforce"]["pse__Proj__c"] == 3 * (2 + 1)  # US01, UK01, JP01
    assert records["salesforce"]["pse__Timecard_Header__c"] == 3 * 2
    assert records["dynamics"]["SalesOrderHeadersV2"] == 2 + 1  # UK01's
    assert records["dynamics"]["FreeTextInvoiceHeaders"] == 1
    assert records["netsuite"]["salesOrder"] == 3 * (2 + 1)
    assert records["netsuite"]["invoice"] == 3
    assert figures["provision_per_s"] > 0 and figures["bare_provision_per_s"] > 0
    # in alternating rounds (a load reading before and after each side of each round), and
    # also to 95 % of each round, without the stragglers that wait out a retry
    assert figures["provision_rounds"] == 3 and len(figures["provision_load_average"]) == 1 + 2 * 3
    assert figures["provision_per_s_95"] > 0 and figures["bare_provision_per_s_95"] > 0
    walls = figures["close_wall_s"]
    assert set(walls) == {*entities, "total"}
    assert all(walls[e] > 0 for e in entities)
    assert walls["total"] == pytest.approx(sum(walls[e] for e in entities), abs=0.2)
    # every close costs something (at least its own start and the engagements' updates) ...
    by_entity = figures["close_actions_by_entity"]
    assert all(by_entity[e] >= 1 + 2 for e in entities)
    assert figures["close_actions_per_engagement"] == pytest.approx(sum(by_entity.values()) / 8, abs=0.01)
    # bench/close_actions.py counted the closes' own histories: every engagement's update is in it
    counted = figures["close_actions_counted"]
    assert counted["engagements_by_entity"] == dict.fromkeys(entities, 2)
    assert counted["by_kind"]["update sent to an engagement"] == 8
    window = figures["close_window_actions_by_entity"]
    assert all(window[e] >= 1 + 2 for e in entities)
    # ... and the mid-month posting run nothing on the engagements (4 timecards x 5 days posted)
    assert figures["time_entries_posted_mid_month"] == 4 * 5
    assert figures["posting_actions_on_engagements"] == 0
    assert 0 < figures["max_payload_bytes"] < 2 * 1024 * 1024
    assert figures["max_history_events"] > 10
    assert figures["histories_read"] >= 8 + 4 + len(entities)  # engagements, bare runs, closes
    assert len(figures["worker_rss_mib"]) == 2 and all(m > 50 for m in figures["worker_rss_mib"])
    assert 0 < figures["query_p50_ms"] <= figures["query_p99_ms"]
