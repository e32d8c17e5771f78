"""Gunicorn settings read from the working directory (the repository root, /srv in the image).

Command-line flags (`--workers`, `--bind`) still win; this file adds the checks
that need to know the whole server, not one worker.
"""

import glob
import os
import tempfile

from gunicorn.glogging import Logger


class AppWritesAccessLines(Logger):
    """No access lines of gunicorn's own: the app writes one per request (route templates,
    never paths, which carry codes and activation tokens); gunicorn's would repeat it
    with the path, and cost each request the formatting."""

    def access(self, resp, req, environ, request_time):
        return None


logger_class = AppWritesAccessLines

# A worker stuck longer than this is killed and replaced; its transaction rolls back.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, requests in flight get this long to finish before workers are killed.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))

# gunicorn's own lines (workers booting, timeouts, signals) as JSON, like the app's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.observability.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


# prometheus_client's multiprocess mode: each worker writes its samples to files in
# this directory and GET /metrics on any worker sums them. Set before workers import it.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="coupon-metrics-")


def on_starting(server):
    """Start metrics afresh; refuse production settings whose rate limits would not hold;
    with GUNICORN_DRAIN_SECONDS, SIGTERM drains first (app/draining.py: set up here,
    before the workers are forked)."""
    from app import draining

    draining.install(server, float(os.environ.get("GUNICORN_DRAIN_SECONDS", "0")))
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)
    from app import config

    problem = config.rate_limit_problem(config.build(None), server.cfg.workers)
    if problem:
        raise SystemExit(f"refusing to start: {problem}")


def when_ready(server):
    """With METRICS_PORT, the master serves every worker's metrics on that port (bind it
    to an internal interface with METRICS_ADDR): the public listener need not serve them."""
    port = os.environ.get("METRICS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    from app import create_app

    app = create_app()
    start_http_server(
        int(port),
        addr=os.environ.get("METRICS_ADDR", "127.0.0.1"),
        registry=app.extensions["coupon.metrics"],
    )
    server.log.info("metrics on %s:%s", os.environ.get("METRICS_ADDR", "127.0.0.1"), port)


def post_worker_init(worker):
    """Long streaming answers (campaign exports) keep the worker alive page by page."""
    from app import heartbeat

    heartbeat.install(worker.notify)


def child_exit(server, worker):
    """A dead worker's live gauges stop counting; its counters and histograms stay summed."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
