"""Dockerfile and docker-compose.yml cannot run here: check that what they name exists."""

import importlib
import re
import shlex

import yaml

from app import create_app
from tests.support import ROOT


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _check_command(argv: list[str]) -> None:
    """Each command form we use must point at something real."""
    program = argv[0]
    if program == "gunicorn":
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
    assert "SECRET_KEY" in env and env["APP_ENV"] == "production"
    # Shared limits: gunicorn.conf.py refuses per-process ones with several workers.
    assert env["RATELIMIT_STORAGE_URI"].startswith("redis://")
    for name in ("api", "worker"):
        assert services[name]["restart"] == "unless-stopped", name


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
