"""What every dialect's views share: the blueprint class, request guards, the
`Idempotency-Key` decorator and links."""

from __future__ import annotations

import re
from collections.abc import Callable
from copy import deepcopy
from functools import wraps

from flask import Flask, Response, current_app, g, make_response, request
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import deepupdate
from webargs import core
from webargs.flaskparser import FlaskParser

from app import errors, json_text
from app.auth import bearer_caller
from app.dialects.openapi import IDEMPOTENT_MARK
from app.engine import idempotency
from app.errors import NotFound, UnsupportedMediaType, ValidationFailed

# What PostgreSQL text cannot hold: NUL, and lone surrogates (no UTF-8 encoding).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Contains a character that cannot be stored (NUL or a lone surrogate)"


def unstorable(text: str) -> bool:
    """True when `text` holds a character the database cannot store."""
    return _UNSTORABLE.search(text) is not None


def check_storable(data, root: str = "") -> None:
    """Raise ValidationFailed naming every string (key or value) in `data` that cannot be stored."""
    problems: list[str] = []
    stack = [(root, data)]
    while stack:  # iterative: nesting depth is the client's choice
        path, value = stack.pop()
        if isinstance(value, str):
            if unstorable(value):
                problems.append(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{path}.{key}" if path else str(key)
                if unstorable(str(key)):
                    problems.append(name)
                stack.append((name, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    if problems:
        raise ValidationFailed(
            details=[
                # The reported name must itself be encodable.
                {
                    "field": _UNSTORABLE.sub("\ufffd", p) or None,
                    "type": "invalid",
                    "message": UNSTORABLE_MESSAGE,
                }
                for p in sorted(problems)
            ]
        )


def parse_json(raw: bytes):
    """A JSON body, or ValidationFailed when it is malformed or nested past Python's limit."""
    try:
        return json_text.loads(raw, fallback=core.parse_json)
    except RecursionError:
        raise ValidationFailed("Malformed JSON body: nested too deeply") from None
    except ValueError:
        raise ValidationFailed("Malformed JSON body") from None


class _Parser(FlaskParser):
    """Bad input is a 400 in every dialect (422 is kept for semantic conflicts), and
    strings the database cannot store are refused here, once, for every dialect."""

    DEFAULT_VALIDATION_STATUS = 400

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        # A schema with `fast_load` reads its common bodies itself (the same result as
        # its `load`, tested); anything else, and every error, takes the schema's path.
        # Its own class's only: a subclass adds fields that `fast_load` knows nothing of.
        fast_load = type(argmap).__dict__.get("fast_load")
        if fast_load is not None and location == "json":
            data = self._raw_load_json(req or request)
            loaded = None if data is core.missing else fast_load(argmap, data)
            if loaded is not None:
                return loaded
        return super().parse(argmap, req, location=location, **kwargs)

    def _raw_load_json(self, req):
        raw = req.get_data(cache=True)
        if not core.is_json(req.mimetype) or not raw:
            return core.missing  # an empty body is a missing one (required fields say so)
        data = parse_json(raw)
        check_storable(data)
        return data

    def load_querystring(self, req, schema):
        # Each name once, whatever the number of values it came with.
        check_storable({name: "".join(values) for name, values in req.args.lists()})
        return super().load_querystring(req, schema)


# Headers that come with some error statuses in every dialect.
_ERROR_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "How to authenticate (RFC 6750 error codes for bearer tokens)",
            "schema": {"type": "string"},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds after which a retry is expected to succeed",
            "schema": {"type": "integer"},
        }
    },
}
_BODY_METHODS = ("post", "put", "patch")


class Blueprint(SmorestBlueprint):
    """flask-smorest blueprint that declares its error dialect (see app.errors.render)
    and documents its errors in that dialect's shape."""

    ARGUMENTS_PARSER = _Parser()

    def __init__(
        self,
        *args,
        dialect: str = "problem",
        error_schema=None,
        error_media_type: str = "application/json",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.dialect = dialect
        self.error_schema = error_schema
        self.error_media_type = error_media_type

    def errors(self, *statuses: int):
        """Document the error answers of a view: these statuses, 503 (database outage),
        and 413/415 where the view takes a body."""

        def decorator(func):
            codes = {*statuses, 503}
            if func.__name__ in _BODY_METHODS:
                codes |= {413, 415}
            documented = func
            for status in sorted(codes, reverse=True):
                documented = self.alt_response(
                    status,
                    schema=self.error_schema,
                    content_type=self.error_media_type,
                    headers=_ERROR_HEADERS.get(status),
                )(documented)
            # Their documentation is all these add: kept on the view itself, without a call
            # layer per status on every request.
            func._apidoc = documented._apidoc
            return func

        return decorator


# Paths whose bodies may be form-encoded (RFC 6749 token requests, the console's forms).
_FORM_PATHS = ("/oauth2/", "/admin/")


def install_request_guards(app: Flask) -> None:
    """Reject paths naming what cannot exist and bodies that are not JSON, before any view."""

    # The hooks that run on every request read the request object itself: each read
    # through the `request` proxy costs a context lookup (about as much as the read).

    @app.before_request
    def _refuse_unstorable_path():
        # A lookup by a value the database cannot hold finds nothing: 404, not a DataError.
        view_args = request._get_current_object().view_args
        if view_args and any(isinstance(v, str) and unstorable(v) for v in view_args.values()):
            raise NotFound()

    accepted: dict[tuple[str | None, str], tuple[tuple[str, ...], int | None]] = {}

    @app.before_request
    def _require_json_body():
        req = request._get_current_object()
        if req.method not in ("POST", "PUT", "PATCH") or req.routing_exception:
            return None
        if req.path.startswith(_FORM_PATHS):
            return None
        # A view's accepted bodies are fixed once it is registered.
        key = (req.endpoint, req.method)
        found = accepted.get(key)
        if found is None:
            found = accepted[key] = _accepted(req.endpoint, req.method)
        media_types, max_bytes = found
        if media_types:
            req.max_content_length = max_bytes  # before anything reads the body
        if not req.content_length and not req.data:
            return None
        if media_types:
            if req.mimetype not in media_types:
                raise UnsupportedMediaType(f"Send {' or '.join(media_types)}")
            return None
        if not req.is_json:
            raise UnsupportedMediaType()
        return None


def accepts(*media_types: str, max_bytes: int):
    """Let a view take a body of these media types (instead of JSON) up to `max_bytes`."""

    def decorator(view):
        view.accepted_body = (media_types, max_bytes)
        return view

    return decorator


def _accepted(endpoint: str | None, method: str) -> tuple[tuple[str, ...], int | None]:
    view = current_app.view_functions.get(endpoint or "")
    handler = getattr(getattr(view, "view_class", None), method.lower(), view)
    return getattr(handler, "accepted_body", ((), None))


# Request headers that carry credentials: answers to them are private to the caller.
# (Authorization and X-API-Token, as their WSGI environ keys.)
_CREDENTIAL_KEYS = ("HTTP_AUTHORIZATION", "HTTP_X_API_TOKEN")


def install_response_headers(app: Flask) -> None:
    """Headers every answer carries: no MIME sniffing; no caching of authenticated answers."""

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        environ = request._get_current_object().environ
        if any(key in environ for key in _CREDENTIAL_KEYS):
            response.headers["Cache-Control"] = "no-store"
        if response.status_code == 204:
            response.set_data(b"")  # flask-smorest renders the view's None as `null`
        if not response.is_streamed and response.calculate_content_length() == 0:
            response.headers.pop("Content-Type", None)  # nothing to type: an empty answer
        return response


def links(status: int, **named: dict) -> dict:
    """`blp.doc(**links(201, Name=link(...)))`: OpenAPI links from a view's answer."""
    return {"responses": {status: {"links": named}}}


def link(path: str, method: str, description: str, **parameters: str) -> dict:
    """An OpenAPI link to the operation at `path` (as documented) and `method`."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method}",
        "description": description,
        "parameters": parameters,
    }


def link_to(path: str) -> str:
    """An absolute URL for a resource path, on PUBLIC_BASE_URL (never the Host header)."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def before_body(check: Callable[..., None]):
    """Run `check(**view_args)` before the view parses its body.

    Put it outermost, so a request without credentials is a 401 even when its
    body is bad too.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            check(**kwargs)
            return view(*args, **kwargs)

        return wrapper

    return decorator


# --- Idempotency-Key ---------------------------------------------------------------


def _caller_identity() -> str:
    """Whose keys these are: the bearer token's client or customer, or the brand of an
    X-API-Token (the whole tenant), or for anonymous callers their address. Another
    caller's identical key is its own request."""
    if g.get("brand") is not None:
        return "brand"
    caller = bearer_caller()
    if caller.is_anonymous:  # no identity: keys are the calling address's
        return f"anonymous:{request.remote_addr or 'unknown'}"[:100]
    return caller.identity


def idempotent(tenant_id_of: Callable[..., int]):
    """Run the view once per (tenant, caller, key); replay its stored response afterwards.

    `tenant_id_of(**view_kwargs)` names the tenant the key belongs to.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            key = request._get_current_object().environ.get("HTTP_IDEMPOTENCY_KEY")
            if key is None:
                return view(*args, **kwargs)
            if not 1 <= len(key) <= 255 or unstorable(key):
                raise ValidationFailed("Idempotency-Key must be 1 to 255 printable characters")

            live: list[Response] = []

            def work() -> idempotency.Answer:
                try:
                    response = make_response(view(*args, **kwargs))
                except Exception as exc:  # rendered here so the outcome can be stored
                    response = errors.to_response(exc)
                live.append(response)
                return idempotency.Answer(
                    response.status_code, response.get_data(as_text=True), dict(response.headers)
                )

            answer = idempotency.run_once(
                tenant_id=tenant_id_of(**kwargs),
                caller=_caller_identity(),
                key=key,
                fingerprint=idempotency.request_fingerprint(
                    request.method, request.path, request.get_data(cache=True)
                ),
                wait_seconds=current_app.config["IDEMPOTENCY_WAIT_SECONDS"],
                work=work,
            )
            if answer.replayed:
                response = Response(answer.body, status=answer.status, headers=answer.headers)
                response.headers["Idempotent-Replayed"] = "true"
                return response
            return live[-1]

        # Documented by app.dialects.openapi: the header and the replay marker.
        wrapper._apidoc = deepupdate(
            deepcopy(getattr(wrapper, "_apidoc", {})), {"manual_doc": {IDEMPOTENT_MARK: True}}
        )
        return wrapper

    return decorator
