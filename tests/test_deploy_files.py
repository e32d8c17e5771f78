"""Dockerfile and docker-compose.yml cannot run here: check that what they name exists."""

import importlib
import re
import shlex

import yaml

from app import create_app
from tests.support import ROOT


def _compose(name: str = "docker-compose.yml"):
    return yaml.safe_load((ROOT / name).read_text())


def _check_command(argv: list[str]) -> None:
    """Each command form we use must point at something real."""
    program = argv[0]
    if program == "sh":
        assert argv[1] == "-c"
        for part in argv[2].split("&&"):
            _check_command(shlex.split(part))
    elif program == "gunicorn":
        target = argv[-1]
        module, _, call = target.partition(":")
        factory = getattr(importlib.import_module(module), call.removesuffix("()"))
        assert callable(factory)
    elif program == "flask":
        assert argv[1:3] == ["--app", "app"]
        app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"})
        group = app.cli.commands[argv[3]]  # KeyError: no such command group
        assert argv[4] in group.commands, argv
    elif program == "python":
        assert argv[1] == "-m"
        assert (ROOT / argv[2]).is_dir() and (ROOT / argv[2] / "__main__.py").exists()
    elif program in {"redis-server"}:
        pass
    else:
        raise AssertionError(f"unexpected command {argv}")


def test_compose_services_and_commands_exist():
    compose = _compose()
    services = compose["services"]
    assert {
        "api",
        "migrate",
        "worker",
        "postgres",
        "redis",
        "email_verifier",
        "coupon_realizer",
    } <= set(services)
    for name, service in services.items():
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").exists()
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        if "command" in service and "build" in service:
            _check_command(service["command"])
    env = services["api"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
    # The sandbox: development mode with a development secret nobody has to set.
    assert env["APP_ENV"] == "development"
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:-dev-only")
    # Shared limits: gunicorn.conf.py refuses per-process ones with several workers.
    assert env["RATELIMIT_STORAGE_URI"].startswith("redis://")
    for name in ("api", "worker"):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    # The development tenant, made by the migrate step.
    step = services["migrate"]["command"][2]
    assert "tenant create test_brand --api-token secret123" in step and "--exists-ok" in step
    assert services["worker"]["environment"]["WORKER_HEARTBEAT_FILE"] in str(
        services["worker"]["healthcheck"]["test"]
    )
    assert "pgdata" in compose["volumes"]


def test_every_variable_the_compose_files_set_is_read_by_the_app():
    known = (ROOT / "app" / "config.py").read_text() + (ROOT / "gunicorn.conf.py").read_text()
    for name in ("docker-compose.yml", "docker-compose.prod.yml"):
        for service, spec in _compose(name)["services"].items():
            if "build" in spec or service in ("api", "worker", "migrate"):
                for variable in spec.get("environment", {}):
                    assert f'"{variable}"' in known, (name, service, variable)


def test_the_production_override_is_one_explicit_step_away():
    prod = _compose("docker-compose.prod.yml")["services"]
    base = _compose()["services"]
    assert set(prod) <= set(base)
    for name in ("migrate", "api", "worker"):
        env = prod[name]["environment"]
        assert env["APP_ENV"] == "production"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "production needs a real secret"
        for url in ("EMAIL_VERIFIER_URL", "COUPON_REALIZER_URL", "PUBLIC_BASE_URL"):
            assert env[url].startswith(f"${{{url}:?"), url
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"], "no shipped database password"
    assert prod["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    # No development tenant, no mocks unless asked for.
    assert prod["migrate"]["command"] == ["flask", "--app", "app", "db", "upgrade"]
    _check_command(prod["migrate"]["command"])
    for mock in ("email_verifier", "coupon_realizer"):
        assert prod[mock]["profiles"] == ["mocks"]


def test_dockerignore_keeps_the_image_to_what_runs():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", "bench", ".env"} <= ignored
    copied = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert source not in ignored, source


def test_compose_config_validates_where_docker_compose_is_installed():
    import os
    import shutil
    import subprocess

    import pytest

    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed here (Debian package docker-compose)")
    for files in (["docker-compose.yml"], ["docker-compose.yml", "docker-compose.prod.yml"]):
        args = [arg for f in files for arg in ("-f", f)]
        env = {
            "SECRET_KEY": "x" * 32,
            "EMAIL_VERIFIER_URL": "http://e",
            "COUPON_REALIZER_URL": "http://c",
            "PUBLIC_BASE_URL": "https://coupons.example.com",
            "POSTGRES_PASSWORD": "not-the-default",
        }
        result = subprocess.run(
            ["docker-compose", *args, "config", "-q"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        )
        assert result.returncode == 0, result.stderr
    # Production without its secret or its database password gets no configuration.
    for missing in ("SECRET_KEY", "POSTGRES_PASSWORD"):
        refused = subprocess.run(
            [
                "docker-compose",
                "-f",
                "docker-compose.yml",
                "-f",
                "docker-compose.prod.yml",
                "config",
                "-q",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={
                **{k: v for k, v in os.environ.items() if k != missing},
                **{k: v for k, v in env.items() if k != missing},
            },
        )
        assert refused.returncode != 0 and f"set {missing}" in refused.stderr


def test_the_worker_touches_its_heartbeat_file(app, tmp_path):
    import threading

    from app.engine.worker import run_worker

    heartbeat = tmp_path / "beat"
    stop = threading.Event()
    config = {**app.config, "WORKER_HEARTBEAT_FILE": str(heartbeat), "OUTBOX_POLL_SECONDS": 0.05}

    def work():
        with app.app_context():
            run_worker(config, stop, housekeeping=lambda: None)

    thread = threading.Thread(target=work)
    thread.start()
    try:
        for _ in range(100):
            if heartbeat.exists():
                break
            stop.wait(0.05)
        assert heartbeat.exists()
    finally:
        stop.set()
        thread.join(10)


def test_the_image_carries_the_gunicorn_settings():
    """gunicorn reads gunicorn.conf.py from its working directory: the image's WORKDIR."""
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY (\S+ )*gunicorn\.conf\.py ", text, re.M)


def test_dockerfile_copies_existing_paths_and_runs_unprivileged():
    text = (ROOT / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    cmd = re.search(r"^CMD (.+)$", text, re.M).group(1)
    _check_command(shlex.split(cmd.strip("[]").replace('", "', " ").replace('"', "")))


def test_makefile_targets_and_ci_script():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run:", "test:", "lint:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target
    assert "make test" in (ROOT / ".ci" / "run").read_text()
