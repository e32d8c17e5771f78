"""The documents tried as a newcomer would: a server started as `make run` starts it
(migrated SQLite, the development tenant), driven over real HTTP."""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT, start_gunicorn, stop

SECRET = "docs-test-secret-key-0123456789abcdef"


@dataclass(frozen=True)
class Served:
    url: str
    env: dict
    credentials: dict  # the development tenant's, as `tenant create` printed them
    log: Path  # gunicorn's stderr


def flask_command(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """gunicorn on a fresh SQLite file with `test_brand` (API token secret123)."""
    database = tmp_path_factory.mktemp("served") / "coupons.db"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "APP_ENV": "development",
        "SECRET_KEY": SECRET,
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    assert flask_command(env, "db", "upgrade").returncode == 0
    created = flask_command(env, "tenant", "create", "test_brand", "--api-token", "secret123")
    assert created.returncode == 0, created.stderr
    log = database.parent / "gunicorn.log"
    with open(log, "wb") as stderr:
        process, url = start_gunicorn(env, workers=1, stderr=stderr)
    try:
        yield Served(url=url, env=env, credentials=json.loads(created.stdout), log=log)
    finally:
        stop(process)


def fenced(document: str, tag: str) -> str:
    """The shell blocks of `document` (a repository path) fenced as ```sh <tag>, in order."""
    text = (ROOT / document).read_text()
    blocks = re.findall(rf"^```sh {re.escape(tag)}\n(.*?)^```$", text, re.M | re.S)
    assert blocks, f"{document} has no ```sh {tag} block"
    return "\n".join(blocks)


def run_shell(script: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """`script` under bash with -euo pipefail, as a reader pasting it would run it."""
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
