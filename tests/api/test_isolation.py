"""Tenant isolation sweep: every route of the URL map that names a tenant, brand, coupon,
redemption, discount, promo or customer, called with a second tenant's valid
credentials, answers exactly what a missing resource answers, and changes nothing.
The console's pages (/admin) are swept the same way, from a session signed in as the
second tenant, with form bodies and the session's CSRF token.

Two probes per route and method: the victim's own path (tenant or brand `acme`), and
the attacker's path holding the victim's ids. Each is compared, status and body, with
the same call naming something that does not exist.
"""

import re

import pytest

from app.engine.tenants import create_tenant
from tests.api.conftest import coupon_body, order

VICTIM_BRAND = {"X-API-Token": "acme-api-token-1"}
ATTACKER_BRAND = {"X-API-Token": "globex-api-token-1"}
MISSING = {
    "tenant": "no-such-tenant",
    "brand": "no-such-tenant",
    "code": "NO-SUCH-CODE",
    "redemption_id": "0" * 32,
    "discount_id": 2147483647,
    "promo_id": 2147483647,
    "campaign_id": 2147483647,
    "hold_id": "0" * 32,
    "import_id": 2147483647,
    "order_id": "NO-SUCH-ORDER",
    "endpoint_id": "we_" + "0" * 24,
    "message_id": "0" * 32,
}
# Routes that name no one else's resource, each with the reason.
EXEMPT = {
    "/static/<path:filename>": "static files",
    "/openapi.json": "public document",
    "/docs": "public document",
    "/docs/assets/<path:filename>": "Swagger UI's own files",
    "/health": "no tenant data",
    "/ready": "no tenant data",
    "/oauth2/v1/token": "credentials are the client's own",
    "/fans/<string:token>": "the activation token is itself the secret; no tenant credentials",
    "/brands": "lists the calling brand's own discounts (checked below)",
    "/brands/": "lists the calling brand's own discounts (checked below)",
    "/admin/static/<path:filename>": "the console's stylesheet",
    "/admin/sign-in": "credentials are the caller's own",
    "/admin/sign-out": "ends the caller's own session",
}
# (route, method) pairs that create in the caller's own tenant when the path is the caller's.
CREATES_OWN = {
    ("/coupon/v1/<string:tenant>/coupons", "POST"),
    ("/customer/v1/<string:tenant>/signup", "POST"),
    ("/brands/<string:brand>/discounts", "POST"),
    ("/promocodes/add", "POST"),
    ("/coupon/v1/<string:tenant>/campaigns", "POST"),
    ("/coupon/v1/<string:tenant>/webhooks", "POST"),
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
DISCOUNT = {"name": "d", "discount_type": "PERCENT", "discount_amount": 10}
CART = {
    "customerNumber": "C1",
    "orderTotal": {"amount": 100, "currency": "USD"},
    "items": [{"product": "P1", "quantity": 1, "price": 100}],
}
WEBHOOK = {"url": "https://hooks.example.com/acme", "events": ["*"]}
CAMPAIGN = {"name": "spring", "template": {"discountType": "PERCENT", "discountPercentage": 10}}


@pytest.fixture
def world(app, client, tenant, token_for, customer_token):
    """Tenant acme with one of everything; tenant globex with its own credentials."""
    victim = token_for("hybris.coupon_manage hybris.coupon_redeem hybris.coupon_redeem_on_behalf")
    _, customer_number = customer_token("victim@example.com")
    client.post("/coupon/v1/acme/coupons", json=coupon_body(), headers=victim)
    redemption = client.post(
        "/coupon/v1/acme/coupons/WINTER_SALE/redemptions",
        json=order(customerNumber=customer_number, orderId="PAID-1"),
        headers=victim,
    ).get_json()["id"]
    promo = client.post(
        "/promocodes/add", json={"coupon": "ACME_PROMO", "code": "GIFT"}, headers=victim
    ).get_json()["id"]
    discount = client.post("/brands/acme/discounts", json=DISCOUNT, headers=VICTIM_BRAND)
    campaign = client.post("/coupon/v1/acme/campaigns", json=CAMPAIGN, headers=victim)
    imported = client.post(
        f"/coupon/v1/acme/campaigns/{campaign.get_json()['id']}/codes",
        data="code\nIMPORTED-1\n",
        content_type="text/csv",
        headers=victim,
    )
    hold = client.post(
        "/coupon/v1/acme/coupons/WINTER_SALE/reservations",
        json=order(customerNumber=customer_number, orderId="HELD-1"),
        headers=victim,
    ).get_json()["id"]

    endpoint = client.post("/coupon/v1/acme/webhooks", json=WEBHOOK, headers=victim).get_json()[
        "id"
    ]
    message = client.post(f"/coupon/v1/acme/webhooks/{endpoint}/test", headers=victim).get_json()[
        "messageId"
    ]
    other = create_tenant(slug="globex", api_token="globex-api-token-1", currency="USD")
    attacker = token_for(
        "hybris.coupon_manage hybris.coupon_redeem hybris.coupon_redeem_on_behalf", creds=other
    )
    body = {"email": "attacker@example.com", "password": "secret"}
    client.post("/customer/v1/globex/signup", json=body, headers=attacker)
    login = client.post("/customer/v1/globex/login", json=body, headers=attacker).get_json()
    console = app.test_client()
    token = CSRF.search(console.get("/admin/sign-in").get_data(as_text=True)).group(1)
    signed = console.post(
        "/admin/sign-in", data={"api_token": ATTACKER_BRAND["X-API-Token"], "csrf_token": token}
    )
    assert signed.status_code == 302, signed.get_data(as_text=True)
    token = CSRF.search(console.get("/admin/").get_data(as_text=True)).group(1)
    return {
        "console": (console, token),
        "victim": {
            "tenant": "acme",
            "brand": "acme",
            "code": "WINTER_SALE",
            "redemption_id": redemption,
            "discount_id": discount.get_json()["id"],
            "promo_id": promo,
            "campaign_id": campaign.get_json()["id"],
            "hold_id": hold,
            "import_id": imported.get_json()["id"],
            "order_id": "PAID-1",
            "endpoint_id": endpoint,
            "message_id": message,
        },
        "promo_code": "ACME_PROMO",
        "attacker": {
            "bearer": attacker,
            "customer": {"Authorization": "Bearer " + login["accessToken"]},
        },
        "victim_bearer": victim,
    }


def _url(rule: str, values: dict) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(values[m.group(1)]), rule)


def _credentials(rule: str, world: dict) -> dict:
    if rule.startswith("/brands"):
        return ATTACKER_BRAND
    if rule.endswith("/me"):
        return world["attacker"]["customer"]
    return world["attacker"]["bearer"]


def _form(rule: str, method: str) -> dict | None:
    """A console form's fields (the CSRF token is added by the caller)."""
    if method == "GET":
        return None
    if rule.endswith("<string:code>"):
        return {"definition": '{"name": "x"}'}
    if rule.endswith("/rollback"):
        return {"reason": "x"}
    if rule.endswith("/template"):
        return {"template": '{"name": "x"}'}
    if rule.endswith("discount_id>"):
        return {"name": "y"}
    return {}  # an action, or a form whose fields do not matter to the probe


def _body(rule: str, method: str, names: dict, promo_code: str):
    """A valid body for the call, naming the resources in `names`."""
    if rule.startswith("/admin"):
        return _form(rule, method)
    if method in ("GET", "DELETE"):
        return None
    if "<int(min=1, max=2147483647):campaign_id>" in rule:
        return {"name": "x"} if method == "PATCH" else None  # retry, CSV import: no JSON
    if rule.endswith("/campaigns"):
        return CAMPAIGN
    if rule.endswith("/coupons") or rule.endswith("<string:code>"):
        return {"name": "x"} if method == "PATCH" else coupon_body(code=names["code"])
    if rule.endswith("/webhooks"):
        return WEBHOOK
    if "endpoint_id" in rule:
        return {"description": "x"} if method == "PATCH" else None
    if rule.endswith("/rollback"):
        return {"reason": "returned"}
    if rule.endswith("/confirm"):
        return None
    if rule.endswith("/carts/validation") or rule.endswith("/carts/redemption"):
        return {**CART, "codes": [names["code"]]}
    if rule.endswith("/qualifications"):
        return CART
    if rule.endswith(("/validation", "/redemptions", "/reservations")):
        return order(customerNumber="C1", orderId="O-1")
    if rule.endswith(("/signup", "/login")):
        return {"email": "victim@example.com", "password": "secret"}
    if rule.endswith("/fans"):
        return {"name": "F", "email": "f@example.com", "discount_id": names["discount_id"]}
    if "discounts" in rule:
        return {"name": "y"} if method == "PATCH" else DISCOUNT
    if rule == "/promocodes/":
        return {"coupon": promo_code}
    if rule in ("/promocodes/redeem", "/promocodes/release"):
        return {"coupon": promo_code, "order": {"id": "O-1"}}
    if "promo_id" in rule:
        return {"active": False}
    raise AssertionError(f"no body for {method} {rule}: add one")


def _answer(response, echoed: str | None = None):
    """Status and body; a cart's answer echoes its codes, so the victim's code in it is
    read as the missing one."""
    text = response.get_data(as_text=True)
    if echoed is not None:
        text = text.replace(echoed, MISSING["code"])
    return response.status_code, text


def _console(world: dict, path: str, method: str, form: dict | None):
    """The call from the attacker's console session (its CSRF token on every form)."""
    console, token = world["console"]
    data = None if form is None else {**form, "csrf_token": token}
    return console.open(path, method=method, data=data)


def probes(app):
    """Every (rule, method) to sweep; fails on a route nobody classified."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule in EXEMPT:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found += [(path, method) for path in _choices(rule.rule)]
    return found


def _choices(rule: str) -> list[str]:
    """A rule with an `any(...)` part is one rule per choice (console actions)."""
    match = re.search(r"<any\(([^)]*)\):[^>]+>", rule)
    if match is None:
        return [rule]
    options = [option.strip() for option in match.group(1).split(",")]
    return [rule[: match.start()] + option + rule[match.end() :] for option in options]


def test_every_route_is_swept_or_exempt_with_a_reason(app):
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    assert set(EXEMPT) <= routes, set(EXEMPT) - routes  # no stale exemption
    assert len(probes(app)) >= 25


def test_another_tenant_sees_nothing_and_changes_nothing(app, client, world, db):
    victim, promo_code = world["victim"], world["promo_code"]
    own_path = {**victim, "tenant": "globex", "brand": "globex"}
    own_path_missing = {**MISSING, "tenant": "globex", "brand": "globex"}
    swept = 0
    for rule, method in probes(app):
        headers = _credentials(rule, world)
        variants = []
        if "<string:tenant>" in rule or "<string:brand>" in rule:
            # The victim's path, against a tenant that does not exist.
            variants.append(
                (victim, {**victim, "tenant": MISSING["tenant"], "brand": MISSING["brand"]})
            )
        if (rule, method) not in CREATES_OWN:
            # The caller's own path holding the victim's ids, against ids that do not exist.
            variants.append((own_path, own_path_missing))
        for names, missing_names in variants:
            call = (_url(rule, names), _body(rule, method, names, promo_code))
            missing = (
                _url(rule, missing_names),
                _body(rule, method, missing_names, "NO-SUCH-CODE"),
            )
            if call == missing:
                continue  # nothing of the victim's in this call
            if rule.startswith("/admin"):
                probe, baseline = (
                    _console(world, path, method, form) for path, form in (call, missing)
                )
            else:
                probe = client.open(call[0], method=method, json=call[1], headers=headers)
                baseline = client.open(missing[0], method=method, json=missing[1], headers=headers)
            echoed = names["code"] if "/carts/" in rule else None
            assert _answer(probe, echoed) == _answer(baseline), (method, call[0])
            assert probe.status_code in (200, 401, 403, 404, 409, 422), (method, rule)
            swept += 1
    assert swept >= 30

    # Lists of the caller's own things hold nothing of the victim's.
    assert client.get("/brands", headers=ATTACKER_BRAND).get_json() == []
    promos = client.get("/promocodes/", headers=world["attacker"]["bearer"]).get_json()
    assert promo_code not in {p["coupon"] for p in promos}
    fitting = client.post(
        "/coupon/v1/globex/qualifications", json=CART, headers=world["attacker"]["bearer"]
    )
    assert fitting.status_code == 200 and fitting.get_json() == []

    # And the victim's world is as it was.
    manage = world["victim_bearer"]
    coupon = client.get("/coupon/v1/acme/coupons/WINTER_SALE", headers=manage).get_json()
    assert coupon["deleted"] is False and coupon["redemptionCount"] == 1
    assert coupon["name"] == "Winter Sale"
    assert [p["active"] for p in client.get("/promocodes/", headers=manage).get_json()] == [True]
    [discount] = client.get("/brands/acme/discounts", headers=VICTIM_BRAND).get_json()
    assert discount["name"] == "d"
    [campaign] = client.get("/coupon/v1/acme/campaigns", headers=manage).get_json()
    assert campaign["name"] == "spring" and campaign["status"] == "completed"
    hold = client.get(
        f"/coupon/v1/acme/coupons/WINTER_SALE/reservations/{world['victim']['hold_id']}",
        headers=manage,
    ).get_json()
    assert hold["status"] == "HELD"
