"""docker-compose.yml, run without Docker: each service's own `command` with that
service's environment, service host names mapped to 127.0.0.1 (the local PostgreSQL
and Redis stand in for the images), healthchecks awaited, then the brands
document's session replayed against it. Every command and variable in the compose
file is thereby proven to work together, not only to exist."""

import json
import os
import re
import subprocess
import time

import pytest
import yaml

from tests.conftest import PG_URL
from tests.support import BIN, ROOT, free_port, new_postgres_database, spawn, stop
from tests.system.conftest import replay_brands_session, wait_for

REDIS_DB = 13  # a database of its own: rate-limit counters of other tests stay out


def _interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` with nothing set: the default (`:?` must not occur)."""

    def one(match):
        name, op, rest = match.group(1), match.group(2), match.group(3)
        assert op == ":-", f"the sandbox needs ${{{name}}} set: it must not"
        return rest

    return re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", one, value)


@pytest.fixture
def compose_world(processes, tmp_path):
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set: the compose services need PostgreSQL")
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    ports = {"api": free_port(), "email_verifier": free_port(), "coupon_realizer": free_port()}
    heartbeat = tmp_path / "worker-heartbeat"
    with new_postgres_database(PG_URL, "coupon_compose") as database:
        replacements = [
            ("postgresql+psycopg://coupon:coupon@postgres:5432/coupon", database),
            ("redis://redis:6379/0", f"redis://127.0.0.1:6379/{REDIS_DB}"),
            ("http://email_verifier:5001", f"http://127.0.0.1:{ports['email_verifier']}"),
            ("http://coupon_realizer:5002", f"http://127.0.0.1:{ports['coupon_realizer']}"),
            ("/tmp/worker-heartbeat", str(heartbeat)),
            ("0.0.0.0:5000", f"127.0.0.1:{ports['api']}"),
            ("127.0.0.1:5000", f"127.0.0.1:{ports['api']}"),
        ]
        mock_ports = {"5001": ports["email_verifier"], "5002": ports["coupon_realizer"]}

        def local(text: str) -> str:
            text = _interpolate(text)
            for old, new in replacements:
                text = text.replace(old, new)
            return text

        def argv(words: list[str]) -> list[str]:
            out = [local(word) for word in words]
            for i, word in enumerate(out[:-1]):
                if word == "--host":
                    out[i + 1] = "127.0.0.1"
                elif word == "--port":
                    out[i + 1] = str(mock_ports.get(out[i + 1], out[i + 1]))
            return out

        def env(name: str) -> dict:
            given = services[name].get("environment", {})
            variables = {k: local(str(v)) for k, v in given.items()}
            return {**variables, "PATH": f"{BIN}:{os.environ['PATH']}", "LOG_LEVEL": "WARNING"}

        yield {
            "services": services,
            "argv": argv,
            "env": env,
            "ports": ports,
            "heartbeat": heartbeat,
            "processes": processes,
        }


def _run(world, name: str) -> subprocess.CompletedProcess:
    spec = world["services"][name]
    return subprocess.run(
        world["argv"](spec["command"]),
        cwd=ROOT,
        env={**os.environ, **world["env"](name)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _healthy(world, name: str) -> bool:
    test = world["services"][name]["healthcheck"]["test"]
    assert test[0] == "CMD"
    result = subprocess.run(
        world["argv"](test[1:]),
        cwd=ROOT,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
        capture_output=True,
        timeout=30,
    )
    return result.returncode == 0


def test_the_compose_services_replay_the_brands_session(compose_world):
    world = compose_world
    # The one-shot step: schema and development tenant; again, it changes nothing.
    first = _run(world, "migrate")
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout.strip().splitlines()[-1])
    assert created["tenant"] == "test_brand" and created["client_secret"]
    again = _run(world, "migrate")
    assert again.returncode == 0, again.stderr
    assert "exists" in again.stderr and "client_secret" not in again.stdout

    for name in ("email_verifier", "coupon_realizer", "api", "worker"):
        spec = world["services"][name]
        world["processes"].append(spawn(world["argv"](spec["command"]), env=world["env"](name)))
    wait_for(lambda: _healthy(world, "api"), timeout=60)
    wait_for(lambda: _healthy(world, "worker"), timeout=30)
    assert time.time() - world["heartbeat"].stat().st_mtime < 30

    api = f"http://127.0.0.1:{world['ports']['api']}"
    replay_brands_session(
        api,
        {"X-API-Token": "secret123"},
        f"http://127.0.0.1:{world['ports']['email_verifier']}",
        f"http://127.0.0.1:{world['ports']['coupon_realizer']}",
    )
    for process in reversed(world["processes"]):
        stop(process)
    world["processes"].clear()
