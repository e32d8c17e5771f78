"""Gunicorn settings read from the working directory (the repository root, /srv in the image).

Command-line flags (`--workers`, `--bind`) still win; this file adds the checks
that need to know the whole server, not one worker.
"""

import os

# A worker stuck longer than this is killed and replaced; its transaction rolls back.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, requests in flight get this long to finish before workers are killed.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))


def on_starting(server):
    """Refuse production settings whose rate limits would not hold across workers."""
    from app import config

    problem = config.rate_limit_problem(config.build(None), server.cfg.workers)
    if problem:
        raise SystemExit(f"refusing to start: {problem}")
