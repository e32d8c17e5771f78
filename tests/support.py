"""Helpers for tests that start real processes: free ports, waiting, stopping."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers anything, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process group started by `spawn` and reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()


def spawn(args: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start a process in its own group, output discarded unless redirected."""
    full_env = {**os.environ, **(env or {})}
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen(args, cwd=ROOT, env=full_env, start_new_session=True, **kwargs)


def start_mock(
    fail: int = 0,
    fail_every: int = 0,
    hang: int = 0,
    hang_seconds: float = 3600,
    delay: float = 0.0,
) -> tuple[subprocess.Popen, str]:
    """A real `python -m mock_services` process; returns it and its base URL."""
    port = free_port()
    args = [sys.executable, "-m", "mock_services", "--port", str(port)]
    if fail:
        args += ["--fail", str(fail)]
    if fail_every:
        args += ["--fail-every", str(fail_every)]
    if hang:
        args += ["--hang", str(hang), "--hang-seconds", str(hang_seconds)]
    if delay:
        args += ["--delay", str(delay)]
    process = spawn(args)
    url = f"http://127.0.0.1:{port}"
    _wait_or_stop(process, url + "/_received", 20)
    return process, url


def _wait_or_stop(process: subprocess.Popen, url: str, timeout: float) -> None:
    try:
        wait_http(url, timeout=timeout, process=process)
    except BaseException:
        stop(process)
        raise


def start_gunicorn(
    env: dict, workers: int = 4, target: str = "app:create_app()", **spawn_args
) -> tuple[subprocess.Popen, str]:
    """The API (or another WSGI `target`) under gunicorn; returns it and its base URL."""
    port = free_port()
    process = spawn(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            target,
        ],
        env=env,
        **spawn_args,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_or_stop(process, url + "/health", 60)
    return process, url


@contextlib.contextmanager
def new_postgres_database(pg_url: str, prefix: str):
    """Create an empty PostgreSQL database next to `pg_url`; yields its URL, drops it after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    base = pg_url.rsplit("/", 1)[0]
    name = f"{prefix}_{os.urandom(4).hex()}"
    # No pooled connection to go stale: tests restart the server in between.
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def postgres_cluster(pg_url: str) -> list[str] | None:
    """`pg_ctlcluster VERSION main` for the local server `pg_url` names, if it is local."""
    import shutil

    if "@127.0.0.1" not in pg_url and "@localhost" not in pg_url:
        return None
    if not shutil.which("pg_ctlcluster"):
        return None
    clusters = sorted(Path("/etc/postgresql").glob("*/main"))
    return ["pg_ctlcluster", clusters[-1].parent.name, "main"] if clusters else None


def postgres_ready(pg_url: str) -> bool:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(pg_url, poolclass=NullPool, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def restart_local_postgres(pg_url: str) -> None:
    """Restart the local server in fast mode: open sessions are cut, as in a failover."""
    cluster = postgres_cluster(pg_url)
    if cluster is None:
        raise RuntimeError("restarting PostgreSQL needs the local cluster and pg_ctlcluster")
    subprocess.run([*cluster, "restart", "-m", "fast"], check=True, timeout=120)


def ensure_postgres_up(pg_url: str, timeout: float = 60) -> None:
    """Start the local server again if a restart left it down."""
    if postgres_ready(pg_url):
        return
    cluster = postgres_cluster(pg_url)
    if cluster:
        subprocess.run([*cluster, "start"], check=False, timeout=120)
    deadline = time.monotonic() + timeout
    while not postgres_ready(pg_url):
        if time.monotonic() > deadline:
            raise TimeoutError("PostgreSQL did not come back")
        time.sleep(0.5)


@contextlib.contextmanager
def streaming_replica(pg_url: str):
    """A hot standby of the local PostgreSQL cluster on a free port, made with
    pg_basebackup (streaming, as in production); yields a function that gives a
    database's URL on it. Stopped and removed afterwards. Needs the local cluster, its
    binaries and root (to act as the postgres user); RuntimeError says what is missing."""
    import shutil
    import tempfile

    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    cluster = postgres_cluster(pg_url)
    if cluster is None or os.geteuid() != 0 or not shutil.which("runuser"):
        raise RuntimeError("a replica needs the local cluster, root and runuser")
    bindir = Path("/usr/lib/postgresql") / cluster[1] / "bin"
    base, port = pg_url.rsplit("/", 1)[0], free_port()
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        hba = Path(connection.execute(text("SHOW hba_file")).scalar_one())
        socket_dir = connection.execute(text("SHOW unix_socket_directories")).scalar_one()
        socket_dir = socket_dir.split(",")[0].strip()
        # A hot standby needs at least the primary's values of these.
        at_least = "".join(
            f"{name} = {connection.execute(text(f'SHOW {name}')).scalar_one()}\n"
            for name in (
                "max_connections",
                "max_worker_processes",
                "max_wal_senders",
                "max_prepared_transactions",
                "max_locks_per_transaction",
            )
        )
        # Streaming replication connects as "replication", which `all` does not match:
        # let the postgres OS user alone in, over the socket, for the test's length.
        original = hba.read_text()
        if "local replication postgres peer" not in original:
            hba.write_text("local replication postgres peer\n" + original)
            connection.execute(text("SELECT pg_reload_conf()"))
    data = Path(tempfile.mkdtemp(prefix="coupon-replica-"))
    shutil.chown(data, "postgres", "postgres")
    data.chmod(0o700)

    def as_postgres(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, timeout=300)

    try:
        as_postgres(
            str(bindir / "pg_basebackup"), "-h", socket_dir, "-p", base.rsplit(":", 1)[1],
            "-U", "postgres", "-D", str(data), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        settings = (
            f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{data}'\nhot_standby = on\n{at_least}"
        )
        for name, text_ in (
            ("postgresql.conf", settings),
            ("pg_hba.conf", "host all all 127.0.0.1/32 trust\n"),
            ("pg_ident.conf", ""),
        ):
            (data / name).write_text(text_)
            shutil.chown(data / name, "postgres", "postgres")
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "start")
        replica_base = base.rsplit(":", 1)[0] + f":{port}"
        yield lambda url: f"{replica_base}/{url.rsplit('/', 1)[1]}"
    finally:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(bindir / "pg_ctl"), "-D", str(data),
             "-m", "immediate", "stop"],
            check=False, timeout=60, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
        if hba.read_text() != original:
            hba.write_text(original)
            with admin.connect() as connection:
                connection.execute(text("SELECT pg_reload_conf()"))
        admin.dispose()


def client_token(api: str, creds: dict, scope: str) -> dict:
    """Authorization headers for a client-credentials token of `creds` (as printed by
    `flask tenant create`) with `scope` on its own tenant."""
    response = requests.post(
        f"{api}/oauth2/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "scope": f"hybris.tenant={creds['tenant']} {scope}".strip(),
        },
        timeout=10,
    )
    response.raise_for_status()
    return {"Authorization": "Bearer " + response.json()["access_token"]}
