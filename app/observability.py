"""Structured JSON logs with a request id per request (echoed as X-Request-Id)."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time

from flask import Flask, g, has_request_context, request

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# `extra=` fields a log line may carry; anything else (headers, bodies, secrets) never does.
_EXTRA_FIELDS = (
    "method",
    "route",
    "status",
    "duration_ms",
    "message_id",
    "attempt",
    "error",
    "retry_in",
)
access_log = logging.getLogger("app.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; never includes headers or bodies."""

    converter = time.gmtime  # the "Z" in every timestamp

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        for key in _EXTRA_FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (test capture swaps it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(level: str) -> None:
    """Route the app's loggers to stderr as JSON lines (idempotent)."""
    formatter = JsonFormatter()
    logger = logging.getLogger("app")
    if not any(getattr(h, "_coupon_json", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(formatter)
        handler._coupon_json = True
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def init_request_ids(app: Flask) -> None:
    """Assign each request an id (the caller's, if sane) and log one access line."""

    # Every request runs these: the request and `g` are looked up once each (a read
    # through their proxies costs a context lookup).

    @app.before_request
    def _assign_request_id():
        incoming = request._get_current_object().environ.get("HTTP_X_REQUEST_ID", "")
        here = g._get_current_object()
        # 128 random bits as 32 hex digits, as uuid4().hex (which costs 7x as much).
        here.request_id = incoming if _REQUEST_ID_OK.match(incoming) else os.urandom(16).hex()
        here.request_started = time.perf_counter()

    @app.after_request
    def _echo_request_id(response):
        here = g._get_current_object()
        request_id = here.get("request_id")
        if request_id:
            response.headers["X-Request-Id"] = request_id
            if not access_log.isEnabledFor(logging.INFO):
                return response
            started = here.get("request_started", time.perf_counter())
            elapsed = (time.perf_counter() - started) * 1000
            req = request._get_current_object()
            access_log.info(
                "request",
                extra={
                    "method": req.method,
                    # The route template, not the path: codes, activation tokens and ids
                    # in paths stay out of the logs.
                    "route": req.url_rule.rule if req.url_rule else "unmatched",
                    "status": response.status_code,
                    "duration_ms": round(elapsed, 2),
                },
            )
        return response
