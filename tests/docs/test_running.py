"""Running it: `make run` says clearly when a port is taken, and gunicorn's own log lines
are JSON like the app's."""

import json
import os
import socket

from tests.docs.conftest import run_shell


def test_make_run_names_a_taken_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_shell(
            "bash scripts/run-dev.sh",
            env={**os.environ, "PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} is taken" in result.stderr and "PORT=" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "x.db").exists()


def test_gunicorn_logs_are_json(served):
    lines = served.log.read_text().splitlines()
    assert lines, "gunicorn wrote nothing"
    entries = [json.loads(line) for line in lines]  # every line parses
    assert any(
        e["logger"] == "gunicorn.error" and e["msg"].startswith("Booting worker") for e in entries
    )


def test_gunicorn_writes_no_paths_only_the_apps_access_line(served):
    import requests

    requests.get(f"{served.url}/fans/an-activation-token-0123456789", timeout=10)
    requests.get(f"{served.url}/health", timeout=10)  # a line after it: the first is flushed
    log = served.log.read_text()
    assert "an-activation-token" not in log  # a secret in a path never reaches the logs
    assert '"logger": "gunicorn.access"' not in log
