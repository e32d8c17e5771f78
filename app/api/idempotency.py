"""The `Idempotency-Key` decorator for POSTs that create something."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Response, current_app, g, make_response, request

from app import errors
from app.api.common import unstorable
from app.auth import bearer_caller
from app.errors import ValidationFailed
from app.services import idempotency


def _caller_identity() -> str:
    """Whose keys these are: the bearer token's client or customer, or the brand of an
    X-API-Token (the whole tenant). Another caller's identical key is its own request."""
    if g.get("brand") is not None:
        return "brand"
    return bearer_caller().identity


def idempotent(tenant_id_of: Callable[..., int]):
    """Run the view once per (tenant, caller, key); replay its stored response afterwards.

    `tenant_id_of(**view_kwargs)` names the tenant the key belongs to.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get("Idempotency-Key")
            if key is None:
                return view(*args, **kwargs)
            if not 1 <= len(key) <= 255 or unstorable(key):
                raise ValidationFailed("Idempotency-Key must be 1 to 255 printable characters")

            def work() -> Response:
                try:
                    return make_response(view(*args, **kwargs))
                except Exception as exc:  # rendered here so the outcome can be stored
                    return errors.to_response(exc)

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
            if isinstance(answer, idempotency.StoredResponse):
                response = Response(answer.body, status=answer.status, headers=answer.headers)
                response.headers["Idempotent-Replayed"] = "true"
                return response
            return answer

        return wrapper

    return decorator
