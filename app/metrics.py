"""Prometheus metrics: request durations, redemption outcomes, outbox backlog.

Under gunicorn every worker is a process of its own, so prometheus_client runs in
multiprocess mode: gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at an empty
directory before any worker starts, each worker writes its samples there, and a
scrape of any worker sums them all. Without that variable (`make run`, tests)
the process's own registry is used. The outbox gauges are read from the
database at scrape time, so every worker reports the same values.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from app.engine import observe

REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDEMPTIONS = Counter(
    "coupon_redemptions",
    "Redemption attempts by outcome (redeemed, replayed, or the refusal type) and dialect.",
    ["outcome", "dialect"],
)

RESERVATIONS = Counter(
    "coupon_reservations",
    "Holds by outcome (held, replayed, confirmed, released, or the refusal type) and dialect.",
    ["outcome", "dialect"],
)


class OutboxCollector:
    """outbox_pending_messages, outbox_oldest_pending_age_seconds, outbox_dead_messages."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        from app.database import read, utcnow
        from app.extensions import db
        from app.models import OutboxMessage, OutboxStatus

        table = OutboxMessage.__table__.c
        with self.app.app_context():
            rows = read(
                db.session,
                select(table.status, func.count(), func.min(table.created_at))
                .where(table.status.in_([OutboxStatus.PENDING, OutboxStatus.DEAD]))
                .group_by(table.status),
            )
        by_status = {status: (count, oldest) for status, count, oldest in rows}
        pending, oldest = by_status.get(OutboxStatus.PENDING, (0, None))
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "outbox_pending_messages", "Messages waiting for delivery.", value=pending
        )
        yield GaugeMetricFamily(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting for delivery (0 when none).",
            value=max(age, 0.0),
        )
        yield GaugeMetricFamily(
            "outbox_dead_messages",
            "Messages that exhausted their attempts (see `flask outbox list --dead`).",
            value=by_status.get(OutboxStatus.DEAD, (0, None))[0],
        )

    def describe(self):
        return []  # no database query when the collector is registered


def _dialect() -> str:
    """The dialect of this request; "none" outside a request (a command, the worker)."""
    from app.errors import dialect_for

    return dialect_for() if has_request_context() else "none"


def count_redemption(outcome: str) -> None:
    """One redemption attempt of this request's dialect ended with `outcome`."""
    REDEMPTIONS.labels(outcome=outcome, dialect=_dialect()).inc()


def count_reservation(outcome: str) -> None:
    """One hold of this request's dialect was made, refused, confirmed or released."""
    RESERVATIONS.labels(outcome=outcome, dialect=_dialect()).inc()


def init_app(app: Flask) -> None:
    """Time every request, and build the registry GET /metrics serves (app/api/ops.py)."""

    # A labelled child per method, route and status, looked up once: labels() takes a
    # lock and converts its values on every call.
    children: dict[tuple[str, str, int], Histogram] = {}

    @app.after_request
    def _observe(response):
        started = g._get_current_object().get("request_started")  # see init_request_ids
        if started is not None:
            req = request._get_current_object()
            # The route template, never the raw path: codes and ids stay out of labels.
            route = req.url_rule.rule if req.url_rule is not None else "unmatched"
            # Any token is a method to gunicorn: the others are one label, not one each.
            method = req.method if req.method in _METHODS else "OTHER"
            key = (method, route, response.status_code)
            child = children.get(key)
            if child is None:
                child = children[key] = REQUEST_SECONDS.labels(method, route, str(key[2]))
            child.observe(time.perf_counter() - started)
        return response

    app.extensions["coupon.metrics"] = _registry(app)
    observe.listen("redemption", count_redemption)
    observe.listen("hold", count_reservation)


def _registry(app: Flask) -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    registry.register(OutboxCollector(app))
    return registry


class _Default:
    """This process's own metrics (single-process mode)."""

    def collect(self):
        yield from REGISTRY.collect()


def scrape(app: Flask) -> Response:
    """Every worker's samples and the outbox gauges, in Prometheus' text format."""
    return Response(generate_latest(app.extensions["coupon.metrics"]), mimetype=CONTENT_TYPE_LATEST)
