"""Coupon service: one coupon engine behind three HTTP dialects."""

from __future__ import annotations

import logging
from inspect import iscoroutinefunction

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy import create_engine

from app import config as app_config
from app.database import add_replica, install_liveness_check, set_clock_offset
from app.engine import cache, outbox


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask app; `config` overrides values read from the environment."""
    app = CouponApp(__name__, instance_relative_config=True)
    settings = app_config.build(config)
    app_config.refuse_unworkable(settings)
    app.config.update(settings)
    set_clock_offset(settings["CLOCK_OFFSET_SECONDS"])
    cache.configure(settings["CACHE_TTL_SECONDS"])
    outbox.configure(events_url=settings["EVENTS_URL"])
    if settings["TRUSTED_PROXY_COUNT"] > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Behind N trusted proxies the client is the Nth address from the right of
        # X-Forwarded-For: rate limits and links then see the client, not the balancer.
        count = settings["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    app.session_interface = _BrowserSessions()
    app.json.sort_keys = False  # keep fields in schema order on the wire
    app.json.ensure_ascii = False  # UTF-8 text as is ("Промокод применен", not \u escapes)

    from app.observability import configure_logging, init_request_ids

    configure_logging(app.config["LOG_LEVEL"])
    if app_config.rate_limit_problem(settings, workers=2):
        # gunicorn.conf.py refuses several workers; one process still deserves the warning.
        logging.getLogger("app").warning(
            "rate limits are kept in this process's memory; set RATELIMIT_STORAGE_URI=redis://"
        )
    init_request_ids(app)
    _allow_browsers(app)
    from app import metrics

    metrics.init_app(app)
    _register_extensions(app)
    _register_blueprints(app)
    from app import console

    console.init_app(app)
    _register_error_handlers(app)
    _register_commands(app)
    return app


class CouponApp(Flask):
    """Flask, asking once per function whether it is a coroutine.

    Flask asks `inspect.iscoroutinefunction` of every view and hook on every request
    (about 20 times for a validation): 8% of its CPU in a profile. Bound methods (a
    MethodView's handler is bound to a new view each request) are asked by function.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._coroutines: dict[object, bool] = {}

    def ensure_sync(self, func):
        function = getattr(func, "__func__", func)
        coroutine = self._coroutines.get(function)
        if coroutine is None:
            coroutine = self._coroutines[function] = iscoroutinefunction(func)
        return self.async_to_sync(func) if coroutine else func


class _BrowserSessions(SecureCookieSessionInterface):
    """Cookie sessions only where pages are (none yet): API callers carry their credentials
    on every request, and opening a signed session for each cost 3% of a validation's CPU."""

    paths = ("/admin",)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(self.paths):
            return None  # Flask's null session: reads as empty, refuses writes
        return super().open_session(app, request)


def _allow_browsers(app: Flask) -> None:
    """CORS for the origins in CORS_ORIGINS: storefront pages call the API themselves
    (anonymous coupons, customer tokens), so preflights are answered and the headers a
    page needs are allowed and exposed."""
    origins = app.config["CORS_ORIGINS"]
    if not origins:
        return
    from flask_cors import CORS

    wildcard = "*" in origins
    CORS(
        app,
        origins="*" if wildcard else origins,
        send_wildcard=wildcard,  # "*" itself, not the caller's origin echoed back
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "X-API-Token",
            "X-Request-Id",
            "Accept-Language",
        ],
        expose_headers=[
            "Location",
            "Idempotent-Replayed",
            "Retry-After",
            "X-Total-Count",
            "X-Request-Id",
        ],
        max_age=600,
        always_send=False,  # CORS is for browsers' cross-origin requests, which say Origin
    )
    # flask-cors matches every answer's path against its resources; skip it at once for
    # the requests without an Origin (servers, not pages): 4% of a validation's CPU.
    cors = app.after_request_funcs[None].pop()
    if cors.__name__ != "cors_after_request":
        raise RuntimeError("flask-cors no longer registers its hook last")

    @app.after_request
    def _cors(response):
        if "HTTP_ORIGIN" in request._get_current_object().environ:
            return cors(response)
        # No cache may hand this answer to a page's request. (`response.vary.add` parses
        # and rewrites the header: twice the cost where no view set one.)
        if "Vary" in response.headers:
            response.vary.add("Origin")
        else:
            response.headers["Vary"] = "Origin"
        return response


def _add_replica(app: Flask, primary) -> None:
    """DATABASE_READ_URL: a streaming replica that reads which may be stale go to."""
    url = app.config["DATABASE_READ_URL"]
    replica = create_engine(url, **app_config.engine_options(url))
    install_liveness_check(replica)
    add_replica(primary, replica)


def _register_extensions(app: Flask) -> None:
    import os

    from app.extensions import api, db, limiter, migrate

    os.makedirs(app.instance_path, exist_ok=True)
    db.init_app(app)
    with app.app_context():
        install_liveness_check(db.engine)
        if app.config.get("DATABASE_READ_URL"):
            _add_replica(app, db.engine)

    from app.engine.uow import discard_session

    # Every request, command and worker ends its session with its app context, even when
    # the connection died under it. Registered after Flask-SQLAlchemy's teardown, so
    # this runs first and theirs finds nothing.
    app.teardown_appcontext(lambda _exc: discard_session())

    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    limiter.init_app(app)
    from app.dialects.openapi import Finish

    api.init_app(app, spec_kwargs={"extra_plugins": [Finish()]})


def _register_blueprints(app: Flask) -> None:
    from app.dialects import openapi, register
    from app.errors import OAUTH_ERROR_MEANINGS, error_types
    from app.extensions import api

    register(app)
    types = error_types()
    openapi.finish(
        api.spec,
        {
            "CouponError.type": types,
            "Problem.type": {f"urn:coupon-service:problem:{t}": m for t, m in types.items()},
            "OAuthError.error": OAUTH_ERROR_MEANINGS,
            "PromoError.code": {"PROMO_IS_EXISTS": "A promo code with this code exists."},
        },
    )


def _register_error_handlers(app: Flask) -> None:
    from app.dialects.common import install_request_guards, install_response_headers
    from app.errors import register_error_handlers

    install_request_guards(app)
    install_response_headers(app)
    register_error_handlers(app)


def _register_commands(app: Flask) -> None:
    from app.cli import register

    register(app)
