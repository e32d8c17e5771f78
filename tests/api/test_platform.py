"""Health, docs, request ids and error rendering that every dialect shares."""

import pytest


def test_health_and_ready(client):
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.get_json()["database"] == "ok"


def test_ready_reports_unreachable_database():
    from app import create_app
    from app.extensions import db
    from tests.conftest import BASE_CONFIG
    from tests.support import free_port

    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none?connect_timeout=2"
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": closed})
    response = app.test_client().get("/ready")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
    with app.app_context():
        db.engine.dispose()


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/health" in spec["paths"] and "/ready" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()


def test_unknown_route_is_json_not_html(client):
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404


def test_method_not_allowed(client):
    response = client.delete("/health")
    assert response.status_code == 405
    assert response.get_json()["title"] == "Method Not Allowed"


def test_request_id_is_generated_and_echoed(client):
    generated = client.get("/health").headers["X-Request-Id"]
    assert len(generated) == 32
    echoed = client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["X-Request-Id"] == "abc-123"
    unsafe = client.get("/health", headers={"X-Request-Id": "bad id <script>"})
    assert unsafe.headers["X-Request-Id"] != "bad id <script>"


def test_logs_are_json_with_request_id(app, client, capsys):
    import json
    import logging

    logging.getLogger("app").setLevel(logging.INFO)
    client.get("/health", headers={"X-Request-Id": "log-check-1"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    access = [entry for entry in lines if entry.get("request_id") == "log-check-1"]
    assert access and access[0]["route"] == "/health" and access[0]["status"] == 200


def test_database_outage_is_a_503_with_retry_after_in_each_dialect():
    """No database at all (refused connection): 503 + Retry-After, never a 500."""
    from app import create_app
    from app.extensions import db
    from tests.conftest import BASE_CONFIG
    from tests.support import free_port

    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": closed})
    client = app.test_client()
    tenant = client.get("/coupon/v1/acme/coupons/X")
    assert tenant.status_code == 503 and tenant.headers["Retry-After"] == "2"
    assert tenant.get_json() == {
        "status": 503,
        "type": "service_unavailable",
        "message": "The service is temporarily unavailable; retry shortly",
    }
    brand = client.get("/brands", headers={"X-API-Token": "whatever"})
    assert brand.status_code == 503 and brand.mimetype == "application/problem+json"
    assert brand.headers["Retry-After"] == "2"
    token = client.post(
        "/oauth2/v1/token",
        data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"},
    )
    assert token.status_code == 503 and token.get_json()["error"] == "temporarily_unavailable"
    keyed = client.post(
        "/brands/acme/discounts",
        json={"name": "x", "discount_type": "PERCENT", "discount_amount": 5},
        headers={"X-API-Token": "whatever", "Idempotency-Key": "k1"},
    )
    assert keyed.status_code == 503
    with app.app_context():
        db.engine.dispose()


def test_promo_outage_answer_keeps_the_promo_shape(app, client, token_for, db):
    """A 503 in the promo dialect (the documented bare body is for 500 only)."""
    from sqlalchemy.exc import OperationalError

    from app.errors import to_response

    headers = token_for("hybris.coupon_redeem")
    with app.test_request_context("/promocodes/", method="POST", headers=headers):
        response = to_response(OperationalError("SELECT 1", {}, Exception("gone")))
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert response.get_json()["statusCode"] == 503
    assert response.get_json()["error"] == "Service Unavailable"


def test_trusted_proxy_count_makes_limits_key_on_the_client(database_url):
    """Behind one trusted balancer, each client behind it has its own budget."""
    from app import create_app
    from app.extensions import db, limiter
    from tests.conftest import BASE_CONFIG

    def statuses(proxies, *clients):
        """Three lookups from each address, through one app (one limiter storage)."""
        app = create_app(
            {
                **BASE_CONFIG,
                "SQLALCHEMY_DATABASE_URI": database_url,
                "RATELIMIT_ENABLED": True,
                "RATELIMIT_GUESSING": "2/minute",
                "TRUSTED_PROXY_COUNT": proxies,
            }
        )
        client = app.test_client()
        try:
            return [
                [
                    client.get("/fans/unknown", headers={"X-Forwarded-For": address}).status_code
                    for _ in range(3)
                ]
                for address in clients
            ]
        finally:
            limiter.reset()
            with app.app_context():
                db.engine.dispose()

    assert statuses(1, "203.0.113.1", "203.0.113.2") == [[404, 404, 429], [404, 404, 429]]
    # No trusted proxy: the header is the client's own word, ignored.
    assert statuses(0, "203.0.113.3", "203.0.113.4") == [[404, 404, 429], [429, 429, 429]]


def test_teardown_survives_a_connection_killed_under_it(app, db, backend):
    """A database restart between a request's last query and its teardown: the dead
    connection is discarded, not raised out of the app (gunicorn would answer 500)."""
    if backend != "postgresql":
        pytest.skip("needs a server to kill the connection")
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    with app.test_request_context("/coupon/v1/acme/coupons/X"):
        with app.app_context():
            pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()  # read open
            killer = create_engine(db.engine.url, poolclass=NullPool)
            with killer.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killer.dispose()
        # Leaving the context ran the teardown: reaching here is the assertion.
    assert db.session.execute(text("SELECT 1")).scalar() == 1  # a fresh connection works


def test_every_bearer_route_documents_its_401(client):
    """A bad bearer token is a 401 on every route that reads one, so each says so."""
    spec = client.get("/openapi.json").get_json()
    for path, item in spec["paths"].items():
        if not path.startswith(("/coupon/", "/customer/", "/promocodes", "/brands")):
            continue
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert "401" in operation["responses"], (method, path)
