"""The `Idempotency-Key` decorator for POSTs that create something."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Response, current_app, make_response, request

from app import errors
from app.errors import ValidationFailed
from app.services import idempotency

# Replayed headers: the ones that describe the created resource.
_KEPT_HEADERS = ("Location", "Content-Type")
# Failures a retry with the same key may cure (auth, visibility, rate): not stored.
_NOT_STORED = {401, 403, 404, 429}


def idempotent(tenant_id_of: Callable[..., int]):
    """Run the view once per (tenant, key); replay its stored response afterwards.

    `tenant_id_of(**view_kwargs)` names the tenant the key belongs to.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get("Idempotency-Key")
            if key is None:
                return view(*args, **kwargs)
            if not 1 <= len(key) <= 255:
                raise ValidationFailed("Idempotency-Key must be 1 to 255 characters")
            claimed = idempotency.claim(
                tenant_id=tenant_id_of(**kwargs),
                key=key,
                fingerprint=idempotency.request_fingerprint(
                    request.method, request.path, request.get_data(cache=True)
                ),
                wait_seconds=current_app.config["IDEMPOTENCY_WAIT_SECONDS"],
            )
            if claimed.stored is not None:
                stored = claimed.stored
                response = Response(stored.body, status=stored.status, headers=stored.headers)
                response.headers["Idempotent-Replayed"] = "true"
                return response
            try:
                response = make_response(view(*args, **kwargs))
            except Exception as exc:  # rendered here so the outcome can be stored
                response = errors.to_response(exc)
            if response.status_code >= 500 or response.status_code in _NOT_STORED:
                idempotency.release(record_id=claimed.record_id)
            else:
                idempotency.complete(
                    record_id=claimed.record_id,
                    status=response.status_code,
                    body=response.get_data(as_text=True),
                    headers={
                        h: response.headers[h] for h in _KEPT_HEADERS if h in response.headers
                    },
                )
            return response

        return wrapper

    return decorator
