"""Health, docs, request ids and error rendering that every dialect shares."""


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
    assert access and access[0]["path"] == "/health" and access[0]["status"] == 200
