"""Tells the server a long request is alive, so it is not killed as a stuck worker.

gunicorn's sync workers report to the master between requests; a request longer
than the worker timeout (a large campaign export) would be killed mid-stream.
gunicorn.conf.py installs the worker's own `notify` here once the worker starts,
and streaming responses call `beat()` as they go: the timeout then bounds the
time between two pages, not the whole answer. Outside gunicorn it does nothing.
"""

from __future__ import annotations

from collections.abc import Callable

_notify: Callable[[], object] | None = None


def install(notify: Callable[[], object]) -> None:
    """Use the server worker's liveness signal (gunicorn's `worker.notify`)."""
    global _notify
    _notify = notify


def beat() -> None:
    """Say this worker is still busy with a request, not stuck."""
    if _notify is not None:
        _notify()
