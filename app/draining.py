"""Draining: a host leaves its balancer before it stops accepting connections.

gunicorn stops accepting as soon as its master gets SIGTERM; a balancer that has not
yet seen the host go sends it requests that then fail. With GUNICORN_DRAIN_SECONDS,
gunicorn.conf.py installs `install` in the master: SIGTERM first marks the host
draining (a file named after the master's pid), while every worker goes on serving
and `/ready` answers 503, and only after that many seconds does the graceful stop
begin (requests in flight finish, as always). Set it above the time the balancer's
health check takes to mark a host down (HAProxy's `inter` times `fall`).
"""

from __future__ import annotations

import os
import tempfile
import time

_FLAG = "coupon-draining-{}"


def _flag(master_pid: int) -> str:
    return os.path.join(tempfile.gettempdir(), _FLAG.format(master_pid))


def draining() -> bool:
    """This worker's master is draining (outside gunicorn: never)."""
    return os.path.exists(_flag(os.getppid()))


def install(server, seconds: float) -> None:
    """Make the gunicorn master drain for `seconds` on SIGTERM before its graceful stop."""
    if seconds <= 0:
        return
    graceful_stop = server.handle_term

    def handle_term():
        flag = _flag(server.pid)
        open(flag, "w").close()  # noqa: SIM115 - an empty marker, closed at once
        server.log.info("draining for %.1f s: /ready answers 503", seconds)
        time.sleep(seconds)  # the master waits; its workers serve on
        try:
            graceful_stop()
        finally:
            os.unlink(flag)

    server.handle_term = handle_term
