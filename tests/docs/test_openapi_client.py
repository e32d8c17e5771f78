"""The OpenAPI document as tools read it: valid, and a client generated from it with
openapi-python-client (no warnings) that drives a checkout with its typed models."""

import importlib
import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
import requests
from openapi_spec_validator import validate

from app.dialects.operations import OPERATIONS
from tests.support import BIN, ROOT

HERE = ROOT / "tests" / "docs"


@pytest.fixture(scope="module")
def document(served):
    return requests.get(served.url + "/openapi.json", timeout=10).json()


def test_the_document_is_valid_openapi(document):
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_operation_is_described_and_named(document):
    seen = set()
    for path, item in document["paths"].items():
        for parameter in item.get("parameters", []):
            assert parameter.get("description"), (path, parameter["name"])
        for method, operation in item.items():
            if method == "parameters":
                continue
            operation_id = operation["operationId"]
            assert operation_id[0].islower() and operation_id.isalnum(), operation_id
            assert operation_id not in seen, operation_id
            seen.add(operation_id)
            assert operation["summary"] and operation["description"], operation_id
            assert "security" in operation, operation_id
            for parameter in operation.get("parameters", []):
                assert parameter.get("description"), (operation_id, parameter["name"])
            for status, response in operation["responses"].items():
                for name, header in response.get("headers", {}).items():
                    assert header.get("description"), (operation_id, status, name)
    assert len(seen) == len(OPERATIONS)  # and OPERATIONS has no stale entry
    text = json.dumps(document).lower()
    assert "seed" not in text and "../shared" not in text


def test_headers_and_optional_security_are_declared(document):
    redeem = document["paths"]["/coupon/v1/{tenant}/coupons/{code}/redemptions"]["post"]
    assert {"bearerAuth": []} in redeem["security"] and {} in redeem["security"]
    names = {p["name"] for p in redeem["parameters"]}
    assert {"Idempotency-Key", "X-Request-Id"} <= names
    created = redeem["responses"]["201"]["headers"]
    assert {"Location", "Idempotent-Replayed", "X-Request-Id"} <= set(created)
    assert "Retry-After" in redeem["responses"]["429"]["headers"]
    listed = document["paths"]["/coupon/v1/{tenant}/coupons"]["get"]["responses"]["200"]
    assert "X-Total-Count" in listed["headers"]
    types = document["components"]["schemas"]["CouponError"]["properties"]["type"]
    assert {"coupon_expired", "validation_failed", "rate_limited"} <= set(types["enum"])
    assert "- `coupon_expired`: Coupon has expired" in types["description"]


@pytest.fixture(scope="module")
def generated(document, tmp_path_factory):
    """The client generated from the live document, imported as `coupon_client`."""
    where = tmp_path_factory.mktemp("generated")
    (where / "openapi.json").write_text(json.dumps(document))
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(where / "openapi.json"),
            "--meta",
            "none",
            "--output-path",
            str(where / "coupon_client"),
            "--config",
            str(HERE / "openapi-client.yml"),
        ],
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output  # nothing skipped, nothing untyped
    models = os.listdir(where / "coupon_client" / "models")
    assert not [m for m in models if "type_0" in m], models  # nullable objects stay typed
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("coupon_client")
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n.split(".")[0] == "coupon_client"]:
            del sys.modules[name]


def test_a_generated_client_drives_a_checkout(generated, served):
    api = importlib.import_module("coupon_client.api")
    models = importlib.import_module("coupon_client.models")
    oauth = importlib.import_module("coupon_client.api.oauth2.get_token")
    coupons = {
        name: importlib.import_module(f"coupon_client.api.coupons.{name}")
        for name in ("create_coupon", "get_coupon", "validate_coupon", "redeem_coupon")
    }
    checkout = {
        name: importlib.import_module(f"coupon_client.api.checkout.{name}")
        for name in ("validate_cart", "create_hold", "confirm_hold")
    }
    assert api is not None
    anonymous = generated.Client(base_url=served.url)
    token = oauth.sync(
        client=anonymous,
        body=models.TokenRequest(
            grant_type="client_credentials",
            client_id=served.credentials["client_id"],
            client_secret=served.credentials["client_secret"],
        ),
    )
    assert isinstance(token, models.Token)
    client = generated.AuthenticatedClient(base_url=served.url, token=token.access_token)
    tenant = "test_brand"

    def money(amount):
        return models.Money(amount=amount, currency="EUR")

    made = coupons["create_coupon"].sync_detailed(
        tenant,
        client=client,
        body=models.CouponWrite(
            code="GEN10",
            discount_type=models.CouponWriteDiscountType.PERCENT,
            discount_percentage=10,
            max_redemptions=5,
        ),
        idempotency_key="generated-client-1",
    )
    assert made.status_code == 201 and made.headers["Location"].endswith("/coupons/GEN10")
    coupons["create_coupon"].sync(
        tenant,
        client=client,
        body=models.CouponWrite(
            code="GEN5",
            discount_type=models.CouponWriteDiscountType.ABSOLUTE,
            discount_absolute=money(5),
        ),
    )
    coupon = coupons["get_coupon"].sync(tenant, "GEN10", client=client)
    assert isinstance(coupon, models.Coupon) and coupon.discount_absolute is None
    five = coupons["get_coupon"].sync(tenant, "GEN5", client=client)
    assert isinstance(five.discount_absolute, models.Money) and five.discount_absolute.amount == 5

    checked = coupons["validate_coupon"].sync(
        tenant, "GEN10", client=client, body=models.ValidationRequest(order_total=money(80))
    )
    assert isinstance(checked, models.Validation)
    assert Decimal(str(checked.discount.amount)) == Decimal("8")

    redeemed = coupons["redeem_coupon"].sync_detailed(
        tenant,
        "GEN10",
        client=client,
        body=models.RedemptionRequest(
            order_total=money(80), discount=checked.discount, order_id="gen-order-1"
        ),
    )
    assert redeemed.status_code == 201 and isinstance(redeemed.parsed, models.Created)

    cart = checkout["validate_cart"].sync(
        tenant,
        client=client,
        body=models.CartRequest(
            order_total=money(100),
            items=[models.CartItem(product="shoe", price=100, quantity=1)],
            codes=["GEN10", "GEN5"],
        ),
    )
    assert isinstance(cart, models.CartResult)
    assert [c.applies for c in cart.codes] == [True, True]
    assert Decimal(str(cart.total_discount.amount)) > 0

    hold = checkout["create_hold"].sync(
        tenant,
        "GEN5",
        client=client,
        body=models.ReservationRequest(
            order_total=money(50), discount=money(5), order_id="gen-order-2", ttl_seconds=60
        ),
    )
    assert isinstance(hold, models.ReservationCreated)
    confirmed = checkout["confirm_hold"].sync_detailed(tenant, "GEN5", hold.id, client=client)
    assert confirmed.status_code == 201 and isinstance(confirmed.parsed, models.Created)
    after = coupons["get_coupon"].sync(tenant, "GEN5", client=client)
    assert after.redemption_count == 1
