"""bench/bench_scale.py at a small N, as a process: its last line is the JSON the README's
figures come from, with every key, and figures that hang together (so the bench cannot
rot unnoticed between the runs that produce the published numbers)."""

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


def test_bench_scale_prints_consistent_figures() -> None:
    entities = ["US01", "UK01"]
    args = ["--engagements", "6", "--workers", "2", "--bare", "4", "--timecards", "6", "--queries", "6"]
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
    assert (figures["engagements"], figures["workers"]) == (6, 2)
    assert figures["entities"] == {"US01": 3, "UK01": 3}
    assert figures["engagements_needing_attention"] == 0
    # Every entity's month-end compares something and finds the ERP, the PSA and the hub agree:
    # the engagements write their documents to the hub (they once started without its queue,
    # so every invoiced project differed, ERP total vs hub 0) and every entity has time.
    assert figures["reconciliation"] == {"US01": "clean", "UK01": "clean"}
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
    assert all(by_entity[e] >= 1 + 3 for e in entities)
    assert figures["close_actions_per_engagement"] == pytest.approx(sum(by_entity.values()) / 6, abs=0.01)
    # bench/close_actions.py counted the closes' own histories: every engagement's update is in it
    counted = figures["close_actions_counted"]
    assert counted["engagements_by_entity"] == {"US01": 3, "UK01": 3}
    assert counted["by_kind"]["update sent to an engagement"] == 6
    window = figures["close_window_actions_by_entity"]
    assert all(window[e] >= 1 + 3 for e in entities)
    # ... and the mid-month posting run nothing on the engagements (3 timecards x 5 days posted)
    assert figures["time_entries_posted_mid_month"] == 3 * 5
    assert figures["posting_actions_on_engagements"] == 0
    assert 0 < figures["max_payload_bytes"] < 2 * 1024 * 1024
    assert figures["max_history_events"] > 10
    assert figures["histories_read"] >= 6 + 4 + len(entities)  # engagements, bare runs, closes
    assert len(figures["worker_rss_mib"]) == 2 and all(m > 50 for m in figures["worker_rss_mib"])
    assert 0 < figures["query_p50_ms"] <= figures["query_p99_ms"]
