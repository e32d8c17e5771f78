"""`make bench` keeps working: a tiny run of the real harness (speed is not asserted here)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PG_URL
from tests.support import ROOT


def test_bench_harness_runs_every_scenario(tmp_path):
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set: the benchmark runs on PostgreSQL")
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    output = tmp_path / "bench.json"
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": PG_URL,
        "BENCH_WORKERS": "2",
        "BENCH_CONNECTIONS": "4",
        "BENCH_SECONDS": "1",
        "BENCH_ROUNDS": "1",
        "BENCH_COUPONS": "1000",
        "BENCH_REDEMPTIONS": "5000",
        "BENCH_LIMIT": "10",
        "BENCH_SCALING": "",
        "BENCH_CAMPAIGN_CODES": "20000",
        "BENCH_OUTPUT": str(output),
    }
    result = subprocess.run(
        [sys.executable, "bench/run.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(output.read_text())
    names = [r["scenario"] for r in report["results"]]
    assert names == [
        "validation",
        "redemption (hot coupon)",
        "redemption (hot coupon, Idempotency-Key)",
        "redemption (limit 10)",
        "promo check",
        "fan registration",
        "fan registration (downstream 500 ms)",
    ]
    for r in report["results"]:
        for side in ("service", "baseline"):
            # Each side alone (speed), and both at once (the cost ratios' figures).
            for figures in (r[side], r["together"][side]):
                statuses = figures["statuses"]
                assert figures["requests"] > 0 and figures["socket_errors"] == 0, r
                # The cost was measured: app and database CPU per request, on both
                # sides (the clock ticks in 10 ms: a handful of requests may read 0).
                assert figures["app_us"] >= 0 and figures["db_us"] >= 0, r
                if figures["requests"] >= 100:
                    assert figures["app_us"] > 0 and figures["db_us"] > 0, r
                if "limit" not in r["scenario"]:
                    # Every answer a success, so the numbers measure the real paths.
                    assert all(code.startswith("2") for code in statuses), r
            if "limit" in r["scenario"]:
                # The limit, exactly, over the runs alone and together; the rest refused.
                created = [f["statuses"].get("201", 0) for f in (r[side], r["together"][side])]
                assert sum(created) == 10, r
        assert len(r["app_cost_ratio_rounds"]) == len(r["app_cost_ratio_rounds_alone"]) == 1
    assert all(line.startswith("ok: ") for line in report["checks"]), report["checks"]
    campaigns = report["campaigns"]
    assert campaigns["generate"]["generated"] == 20000
    assert campaigns["generate_tenth"]["generated"] == 2000
    assert campaigns["big_tenant_codes"] == 22000
    assert all(rps > 0 for rps in campaigns["validation_rps"].values())
