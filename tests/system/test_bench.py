"""`make bench` keeps working: a tiny run of the real harness (speed is not asserted here)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PG_URL
from tests.support import ROOT


def test_bench_harness_runs_every_scenario(tmp_path):
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set: the benchmark runs on PostgreSQL")
    output = tmp_path / "bench.json"
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": PG_URL,
        "BENCH_WORKERS": "2",
        "BENCH_CLIENTS": "2",
        "BENCH_REQUESTS": "20",
        "BENCH_OUTPUT": str(output),
    }
    result = subprocess.run(
        [sys.executable, "scripts/bench.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert output.exists(), result.stderr
    results = json.loads(output.read_text())
    assert len(results) == 5
    for scenario in results:
        # Every request succeeded (2xx), so the numbers measure the real paths.
        assert sum(scenario["statuses"].values()) == 20, scenario
        assert all(str(code).startswith("2") for code in scenario["statuses"]), scenario
