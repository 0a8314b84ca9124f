"""bench/bench_hold.py at a small N, as a process: its last line is the JSON the README's
"open engagements one worker holds" figures come from, with figures that hang together."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


def test_bench_hold_prints_consistent_figures() -> None:
    args = ["--engagements", "8", "--warmup", "2", "--queries", "8"]
    run = subprocess.run(
        [sys.executable, "-m", "bench.bench_hold", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-4000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert (figures["engagements"], figures["warmup"], figures["queries"]) == (8, 2, 8)
    assert figures["sandbox"] == "passthrough"  # the worker's shipped default
    assert 50 < figures["worker_rss_warm_mib"] <= figures["worker_rss_held_mib"] + 5
    per = (figures["worker_rss_held_mib"] - figures["worker_rss_warm_mib"]) * 1024 / 8
    assert figures["worker_rss_kib_per_engagement"] == pytest.approx(per, abs=0.1 * 1024 / 8 + 0.1)  # MiB rounded
    assert figures["provision_per_s"] > 0
    # every GET answered 200 from an engagement in delivery (the bench refuses anything else)
    assert 0 < figures["query_p50_ms"] <= figures["query_p99_ms"] <= figures["query_max_ms"]
    assert len(figures["load_average"]) == 3
