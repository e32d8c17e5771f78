"""Draining: a host leaves its balancer before it stops accepting connections.

gunicorn stops accepting as soon as its master gets SIGTERM; a balancer that has not
yet seen the host go sends it requests that then fail. With GUNICORN_DRAIN_SECONDS,
gunicorn.conf.py calls `install` in the master before it forks its workers: SIGTERM
first marks the host draining (a file in a directory of the master's own, named to the
workers by COUPON_DRAIN_FLAG), while every worker goes on serving and `/ready`
answers 503; only after that many seconds does the graceful stop begin (requests in
flight finish, as always). Set it above the time the balancer's health check takes
to mark a host down (HAProxy's `inter` times `fall`). Under systemd, use
`KillMode=mixed`, so that SIGTERM reaches the master alone.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

FLAG_VARIABLE = "COUPON_DRAIN_FLAG"


def draining() -> bool:
    """This process's master is draining (outside gunicorn: never)."""
    flag = os.environ.get(FLAG_VARIABLE)
    return bool(flag) and os.path.exists(flag)


def install(server, seconds: float) -> None:
    """Make the gunicorn master drain for `seconds` on SIGTERM before its graceful stop.
    Called before the workers are forked: they inherit where the flag is. The flag's
    directory is new and the master's alone (0700), so no flag outlives a restart and
    no other user can take the host out."""
    if seconds <= 0:
        return
    flag = Path(tempfile.mkdtemp(prefix="coupon-drain-")) / "draining"
    os.environ[FLAG_VARIABLE] = str(flag)
    graceful_stop = server.handle_term

    def handle_term():
        try:
            flag.touch()
            server.log.info("draining for %.1f s: /ready answers 503", seconds)
            time.sleep(seconds)  # the master waits; its workers serve on
        finally:
            try:
                graceful_stop()  # ends the master's loop (it raises)
            finally:
                flag.unlink(missing_ok=True)

    server.handle_term = handle_term
