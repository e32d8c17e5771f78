"""`make soak` runs and audits (a short version, so the harness cannot rot).

The full run is minutes long; here 20 seconds still include the PostgreSQL restart,
the failing downstream and every check of the audit.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PG_URL
from tests.support import ROOT, postgres_cluster


def test_short_soak_passes_its_audit(tmp_path):
    if not PG_URL or postgres_cluster(PG_URL) is None:
        pytest.skip("the soak restarts PostgreSQL: needs the local cluster (TEST_DATABASE_URL)")
    output = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, "scripts/soak.py"],
        cwd=ROOT,
        env={
            **os.environ,
            "SOAK_DATABASE_URL": PG_URL,
            "SOAK_SECONDS": "20",
            "SOAK_CLIENTS": "4",
            "SOAK_OUTPUT": str(output),
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(output.read_text())
    assert all(summary["checks"].values())
    assert summary["requests"] > 500 and summary["outage_answers"] > 0
    assert summary["messages"] > 0 and summary["messages_delivered"] == summary["messages"]
    assert summary["downstream_503_attempts"] > 0
    assert summary["idempotent_replays_checked"] > 0
