"""The console at /admin through the test client: sign-in and sessions, CSRF, headers,
escaping, and every section's forms on the engine (the browser tests drive the same pages
in Chromium: tests/system/test_console_browser.py)."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.database import utcnow
from app.extensions import db as database
from app.models import Client
from tests.api.conftest import coupon_body, order
from tests.api.test_campaigns import run_jobs

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BRAND_TOKEN = "acme-api-token-1"
PAGES = ("/admin/", "/admin/discounts", "/admin/fans", "/admin/coupons", "/admin/coupons/new")
PAGES += ("/admin/campaigns", "/admin/webhooks")
XSS = "<img src=x onerror=alert(1)>"


class Console:
    """A browser-like client of the console: a session, its CSRF token on every form."""

    def __init__(self, client):
        self.client = client
        self.token = self._token("/admin/sign-in")

    def _token(self, path: str) -> str:
        return CSRF.search(self.client.get(path).get_data(as_text=True)).group(1)

    def sign_in(self, **credentials):
        response = self.post("/admin/sign-in", **credentials)
        if response.status_code == 302:
            self.token = self._token("/admin/")  # a new session has a new token
        return response

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, files: dict | None = None, **fields):
        data = {"csrf_token": self.token, **fields, **(files or {})}
        return self.client.post(path, data=data)

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


@pytest.fixture
def console(app, tenant):
    return Console(app.test_client())


@pytest.fixture
def brand(console):
    assert console.sign_in(api_token=BRAND_TOKEN).status_code == 302
    return console


def test_every_page_is_closed_until_sign_in(console):
    for path in PAGES:
        response = console.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/admin/sign-in"


def test_a_brand_signs_in_with_its_token_and_every_page_opens(brand):
    for path in PAGES:
        response = brand.get(path)
        assert response.status_code == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"
    assert "acme (brand)" in brand.text("/admin/")


def test_the_session_cookie_is_httponly_samesite_and_secure_in_production(console, tenant):
    response = console.post("/admin/sign-in", api_token=BRAND_TOKEN)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # testing: plain http
    from app import create_app
    from tests.api.test_operations import PRODUCTION

    assert create_app(PRODUCTION).config["SESSION_COOKIE_SECURE"] is True


def test_wrong_credentials_and_a_client_without_manage_are_refused(console, tenant):
    assert console.sign_in(api_token="not-a-token").status_code == 401
    wrong = console.sign_in(client_id=tenant["client_id"], client_secret="wrong")
    assert wrong.status_code == 401
    assert console.sign_in().status_code == 401  # nothing entered
    with database.session.begin():
        client = database.session.query(Client).filter_by(client_id=tenant["client_id"]).one()
        client.scopes = "coupon_redeem"
    refused = console.sign_in(client_id=tenant["client_id"], client_secret=tenant["client_secret"])
    assert refused.status_code == 403
    assert "lacks coupon_manage" in refused.get_data(as_text=True)
    assert console.get("/admin/").status_code == 302


def test_a_client_with_manage_signs_in_and_its_revocation_ends_the_session(console, tenant, runner):
    signed = console.sign_in(client_id=tenant["client_id"], client_secret=tenant["client_secret"])
    assert signed.status_code == 302
    assert "acme (client)" in console.text("/admin/")
    with database.session.begin():
        client = database.session.query(Client).filter_by(client_id=tenant["client_id"]).one()
        client.revoked_at = utcnow()
    from app.engine.cache import named_cache

    named_cache("client_version").clear()  # the next request sees the revocation at once
    assert console.get("/admin/").status_code == 302


def test_a_rotated_brand_token_ends_the_session(brand):
    from app.engine.tenants import rotate_api_token

    rotate_api_token(slug="acme")
    assert brand.get("/admin/coupons").status_code == 302


def test_a_session_ends_after_8_hours(brand):
    from app.models import ConsoleSession

    [kept] = database.session.query(ConsoleSession).all()
    assert kept.expires_at - kept.created_at == timedelta(hours=8)
    database.session.query(ConsoleSession).update({"expires_at": utcnow() - timedelta(seconds=1)})
    database.session.commit()
    assert brand.get("/admin/").status_code == 302


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(brand, app):
    from app.models import ConsoleSession

    copy = app.test_client()
    with brand.client.session_transaction("/admin/") as kept:
        cookie = dict(kept)
    with copy.session_transaction("/admin/") as session:
        session.update(cookie)
    assert copy.get("/admin/").status_code == 200  # the same session, from elsewhere
    [row] = database.session.query(ConsoleSession).all()
    assert row.token_hash != cookie["session"]  # only its SHA-256 is stored
    database.session.remove()
    assert brand.post("/admin/sign-out").status_code == 302
    created = copy.post(
        "/admin/coupons/new",
        data={"csrf_token": cookie["csrf"], "code": "AFTER", "discount_type": "PERCENT"},
    )
    assert created.status_code == 302 and created.headers["Location"] == "/admin/sign-in"
    assert copy.get("/admin/").status_code == 302


def test_a_form_without_this_sessions_csrf_token_is_refused(brand, console, app, tenant):
    refused = brand.client.post("/admin/discounts", data={"name": "no token"})
    assert refused.status_code == 400
    assert "csrf_token_invalid" not in refused.get_data(as_text=True)  # a page, not JSON
    assert "not sent from a console page" in refused.get_data(as_text=True)
    other = Console(app.test_client())  # another session's token is not this one's
    forged = brand.client.post("/admin/discounts", data={"name": "x", "csrf_token": other.token})
    assert forged.status_code == 400
    assert "no token" not in brand.text("/admin/discounts")
    # The sign-in form has a token too (no signing someone into an attacker's account).
    assert console.client.post("/admin/sign-in", data={"api_token": BRAND_TOKEN}).status_code == 400


def test_head_requests_change_nothing(brand, client, token_for):
    form = {"name": "Head", "count": "5", "discount_type": "PERCENT", "discount_percentage": "5"}
    assert brand.client.head("/admin/campaigns", data=form).status_code == 200
    assert (
        brand.client.head("/admin/webhooks", data={"url": "https://x.example"}).status_code == 200
    )
    assert "Head" not in brand.text("/admin/campaigns")
    assert "x.example" not in brand.text("/admin/webhooks")
    signed_out = Console(brand.client.application.test_client())
    head = signed_out.client.head("/admin/sign-in", data={"api_token": BRAND_TOKEN})
    assert head.status_code == 200 and "Set-Cookie" not in head.headers


def test_text_the_database_cannot_store_is_refused_as_the_api_refuses_it(brand, client, token_for):
    for more in ('{"metadata": {"k": "\\udfff"}}', '{"name": "\\u0000"}', "[" * 100_000):
        refused = brand.post("/admin/coupons/new", code="EVIL", discount_type="PERCENT", more=more)
        assert refused.status_code == 400, more[:40]
    assert (
        brand.post("/admin/coupons/new", code="EVIL\x00", discount_type="PERCENT").status_code
        == 400
    )
    assert brand.get("/admin/coupons?q=%00").status_code == 400
    listed = client.get("/coupon/v1/acme/coupons", headers=token_for())
    assert listed.status_code == 200 and listed.get_json() == []


def test_every_console_answer_has_the_page_headers(brand, console):
    for response in (
        brand.get("/admin/nope"),
        brand.client.put("/admin/coupons"),
        console.get("/admin/static/console.css"),
        brand.client.post("/admin/discounts", data={}),
    ):
        assert response.headers["X-Frame-Options"] == "DENY", response.status_code
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_sign_in_is_rate_limited_like_the_token_endpoint(limited, tenant):
    console = Console(limited(RATELIMIT_AUTH="3/minute"))
    statuses = [console.sign_in(api_token=f"wrong-{n}").status_code for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert console.sign_in(api_token=BRAND_TOKEN).status_code == 429  # even the right one


def test_the_console_can_be_switched_off(another_app):
    off = another_app(ADMIN_ENABLED=False).test_client()
    assert off.get("/admin/").status_code == 404
    assert off.get("/admin/sign-in").status_code == 404


def test_what_users_typed_is_shown_as_text(brand, client, token_for):
    manage = token_for()
    body = coupon_body(code="XSS", name=XSS)
    assert client.post("/coupon/v1/acme/coupons", json=body, headers=manage).status_code == 201
    brand.post("/admin/discounts", name=XSS, discount_type="PERCENT", discount_amount="5")
    for path in ("/admin/coupons", "/admin/coupons/XSS", "/admin/discounts"):
        page = brand.text(path)
        assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page, path


def test_coupons_are_created_searched_edited_deactivated_and_deleted(brand):
    created = brand.post(
        "/admin/coupons/new",
        code="SPRING10",
        name="Spring",
        discount_type="PERCENT",
        discount_percentage="10",
        currency="USD",
        max_redemptions="5",
        budget="50",
        more='{"metadata": {"region": "eu"}}',
    )
    assert created.status_code == 302 and created.headers["Location"] == "/admin/coupons/SPRING10"
    brand.post("/admin/coupons/new", code="OTHER", discount_type="PERCENT", discount_percentage="5")
    assert "SPRING10" in brand.text("/admin/coupons?q=spr")
    assert "OTHER" not in brand.text("/admin/coupons?q=spr")
    assert "SPRING10" in brand.text("/admin/coupons?metadata=region%3Deu")
    assert "SPRING10" not in brand.text("/admin/coupons?metadata=region%3Dus")
    assert "SPRING10" in brand.text("/admin/coupons?status=VALID")
    page = brand.text("/admin/coupons/SPRING10")
    assert "0.00 of 50.00 USD used" in page or "0 of 50" in page
    edited = brand.post("/admin/coupons/SPRING10", definition='{"name": "Spring sale"}')
    assert edited.status_code == 302
    assert "Spring sale" in brand.text("/admin/coupons/SPRING10")
    bad = brand.post("/admin/coupons/SPRING10", definition='{"maxRedemptions": "many"}')
    assert bad.status_code == 400 and "maxRedemptions" in bad.get_data(as_text=True)
    assert brand.post("/admin/coupons/SPRING10", definition="{oops").status_code == 400
    assert brand.post("/admin/coupons/SPRING10/deactivate").status_code == 302
    assert "SPRING10" in brand.text("/admin/coupons?status=INACTIVE")
    assert "SPRING10" not in brand.text("/admin/coupons?status=VALID")
    assert brand.post("/admin/coupons/SPRING10/delete").status_code == 302
    assert "SPRING10" not in brand.text("/admin/coupons")
    refused = brand.post("/admin/coupons/new", code="BAD", discount_type="PERCENT")
    assert refused.status_code == 400


def test_discounts_and_the_fans_they_issue_to(brand, client):
    created = brand.post(
        "/admin/discounts", name="Fan 10%", discount_type="PERCENT", discount_amount="10"
    )
    assert created.status_code == 302
    page = brand.text("/admin/discounts")
    discount_id = re.search(r'href="/admin/discounts/(\d+)">Fan 10%', page).group(1)
    fan = {"name": "Ada", "email": "ada@example.com"}
    registered = client.post("/brands/acme/fans", json=fan, headers={"X-API-Token": BRAND_TOKEN})
    assert registered.status_code == 200, registered.get_json()
    fans = brand.text("/admin/fans")
    assert "ada@example.com" in fans and "issued" in fans
    edited = brand.post(f"/admin/discounts/{discount_id}", name="Fan 15%", discount_amount="15")
    assert edited.status_code == 302 and "Fan 15%" in brand.text("/admin/discounts")
    assert brand.post(f"/admin/discounts/{discount_id}/delete").status_code == 302
    assert "Fan 15%" not in brand.text("/admin/discounts")


def _today_count(page: str) -> int:
    day = utcnow().date().isoformat()
    row = re.search(rf'data-day="{day}"><td>{day}</td><td class="count">(\d+)</td>', page)
    return int(row.group(1))


def test_a_redemption_is_counted_by_the_overview_and_rolled_back_from_the_console(
    brand, client, token_for
):
    manage, on_behalf = token_for(), token_for("hybris.coupon_redeem_on_behalf")
    client.post("/coupon/v1/acme/coupons", json=coupon_body(), headers=manage)
    assert _today_count(brand.text("/admin/")) == 0
    redeemed = client.post(
        "/coupon/v1/acme/coupons/WINTER_SALE/redemptions",
        json=order(customerNumber="C1"),
        headers=on_behalf,
    )
    assert redeemed.status_code == 201
    overview = brand.text("/admin/")
    assert _today_count(overview) == 1 and "WINTER_SALE</a>: 1" in overview
    redemption_id = redeemed.get_json()["id"]
    rolled = brand.post(
        f"/admin/coupons/WINTER_SALE/redemptions/{redemption_id}/rollback", reason="returned"
    )
    assert rolled.status_code == 302
    assert "ROLLED_BACK" in brand.text("/admin/coupons/WINTER_SALE/redemptions")
    assert _today_count(brand.text("/admin/")) == 0
    again = brand.post(
        f"/admin/coupons/WINTER_SALE/redemptions/{redemption_id}/rollback", reason="again"
    )
    assert again.status_code == 409


def test_a_partial_rollback_is_checked_as_the_api_checks_it(brand, client, token_for):
    manage, on_behalf = token_for(), token_for("hybris.coupon_redeem_on_behalf")
    client.post("/coupon/v1/acme/coupons", json=coupon_body(), headers=manage)
    redeemed = client.post(
        "/coupon/v1/acme/coupons/WINTER_SALE/redemptions",
        json=order(customerNumber="C1"),
        headers=on_behalf,
    ).get_json()["id"]
    path = f"/admin/coupons/WINTER_SALE/redemptions/{redeemed}/rollback"
    for amount in ("0.0000000001", "1e-999999", "lots"):
        refused = brand.post(path, reason="r", amount=amount, currency="USD")
        assert refused.status_code == 400, amount
    assert brand.post(path, reason="r" * 5000).status_code == 400
    assert brand.post(path, reason="partly", amount="5", currency="USD").status_code == 302
    assert "PARTIALLY_ROLLED_BACK" in brand.text("/admin/coupons/WINTER_SALE/redemptions")


def test_a_campaign_generates_exports_imports_and_changes(app, brand):
    created = brand.post(
        "/admin/campaigns",
        name="Spring",
        count="20",
        prefix="SPR-",
        discount_type="PERCENT",
        discount_percentage="5",
        max_redemptions="1",
        budget_amount="100",
        currency="USD",
    )
    assert created.status_code == 302
    path = created.headers["Location"]
    waiting = brand.text(path)
    assert 'http-equiv="refresh"' in waiting and 'value="0"' in waiting
    run_jobs(app)
    done = brand.text(path)
    assert 'http-equiv="refresh"' not in done and 'max="20" value="20"' in done
    assert ">100%<" in done and "maxDiscountTotal" in done
    exported = brand.get(path + "/codes.csv")
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert len(rows) == 20 and all(row["code"].startswith("SPR-") for row in rows)
    uploaded = brand.post(
        path + "/imports",
        files={"file": (io.BytesIO(b"code\nIMPORTED-1\n" + rows[0]["code"].encode()), "c.csv")},
    )
    assert uploaded.status_code == 302
    from app.engine.catalog import campaigns, transfer

    while transfer.import_step(owner="test", settings=campaigns.Settings.from_config(app.config)):
        pass
    report = brand.text(uploaded.headers["Location"])
    assert 'id="imported">1<' in report and "already" in report.lower()
    assert brand.post(path + "/imports").status_code == 400  # no file chosen
    changed = brand.post(path + "/template", template='{"discountPercentage": 7}')
    assert changed.status_code == 302, changed.get_data(as_text=True)
    assert '"discountPercentage": 7' in html.unescape(brand.text(path))
    assert brand.post(path + "/template", template='{"discountType": "NOPE"}').status_code == 400
    assert brand.post(path + "/deactivate").status_code == 302
    assert "Reactivate every code" in brand.text(path)


def test_webhook_endpoints_show_their_secret_once(brand, app):
    added = brand.post(
        "/admin/webhooks", url="https://hooks.example.com/in", events="redemption.created"
    )
    assert added.status_code == 200
    secret = re.search(r'<code id="secret">(whsec_[^<]+)</code>', added.get_data(as_text=True))
    assert secret is not None
    listing = brand.text("/admin/webhooks")
    endpoint_id = re.search(r'href="/admin/webhooks/(we_\w+)"', listing).group(1)
    page = brand.text(f"/admin/webhooks/{endpoint_id}")
    assert secret.group(1) not in page and secret.group(1) not in listing
    tested = brand.post(f"/admin/webhooks/{endpoint_id}/test")
    assert tested.status_code == 302 and "sent=" in tested.headers["Location"]
    rotated = brand.post(f"/admin/webhooks/{endpoint_id}/rotate").get_data(as_text=True)
    new = re.search(r'<code id="secret">(whsec_[^<]+)</code>', rotated).group(1)
    assert new != secret.group(1) and "24 hours" in rotated
    refused = brand.post(
        f"/admin/webhooks/{endpoint_id}/deliveries/{'0' * 32}/retry"
    )  # nothing dead to retry
    assert refused.status_code == 404
    bad = brand.post("/admin/webhooks", url="ftp://nowhere")
    assert bad.status_code == 400
    assert brand.post(f"/admin/webhooks/{endpoint_id}/deactivate").status_code == 302
    assert brand.post(f"/admin/webhooks/{endpoint_id}/delete").status_code == 302
    assert endpoint_id not in brand.text("/admin/webhooks")


FORMS = {
    "/admin/discounts": ("name", "discount_type", "discount_amount", "usage_limit", "date_expires"),
    "/admin/coupons/new": (
        "code",
        "discount_type",
        "discount_percentage",
        "discount_amount",
        "currency",
        "max_redemptions",
        "valid_until",
        "min_order",
        "budget",
        "more",
    ),
    "/admin/campaigns": (
        "name",
        "count",
        "prefix",
        "length",
        "discount_percentage",
        "budget_amount",
    ),
    "/admin/webhooks": ("url", "description", "events"),
    "/admin/coupons/HOSTILE": ("definition",),
}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(sorted(FORMS)),
    values=st.lists(st.text(max_size=40) | st.sampled_from(["-1", "1e9", "null", "{}", "[]"])),
)
def test_hostile_forms_get_a_page_never_a_500(brand, path, values):
    if path.endswith("HOSTILE") and brand.get("/admin/coupons/HOSTILE").status_code == 404:
        brand.post(
            "/admin/coupons/new", code="HOSTILE", discount_type="PERCENT", discount_percentage="1"
        )
    fields = dict(zip(FORMS[path], values, strict=False))
    response = brand.post(path, **{k: v.replace("\x00", "") for k, v in fields.items()})
    assert response.status_code < 500, (path, fields, response.get_data(as_text=True)[:300])


def test_expired_codes_are_found_by_status(brand, client, token_for):
    manage = token_for()
    past = (utcnow() - timedelta(days=1)).isoformat()
    body = coupon_body(code="OLD", restrictions={"validUntil": past})
    assert client.post("/coupon/v1/acme/coupons", json=body, headers=manage).status_code == 201
    assert "OLD" in brand.text("/admin/coupons?status=EXPIRED")
    assert "OLD" not in brand.text("/admin/coupons?status=VALID")
