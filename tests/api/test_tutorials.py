"""The documented two tutorials, call for call: with dates moved into the present,
and with the tutorial's own 2015-2020 dates, which are expired now."""

from datetime import UTC, datetime

import pytest

from tests.api.conftest import order

# Years added to the tutorials' dates: the basics tutorial's coupons (Dec 2016 to
# Jan 2017) start next year, so they are not active yet; the redemptions tutorial's
# (Dec 2015 to Jan 2020) started last December and run for years.
NOT_YET_ACTIVE = datetime.now(UTC).year + 1 - 2016
ACTIVE = datetime.now(UTC).year - 2016


def when(stamp: str, present: bool, shift: int = NOT_YET_ACTIVE) -> str:
    if not present:
        return stamp
    return f"{int(stamp[:4]) + shift}{stamp[4:]}"


def winter_sale(amount, minimum, valid_from, valid_until, valid_for=True):
    body = {
        "code": "WINTER_SALE",
        "name": "Winter Sale",
        "description": f"Great Winter Discount of {amount} USD for all Orders over {minimum} USD",
        "discountType": "ABSOLUTE",
        "discountAbsolute": {"amount": amount, "currency": "USD"},
        "allowAnonymous": False,
        "maxRedemptions": -1,
        "maxRedemptionsPerCustomer": -1,
        "restrictions": {
            "validFrom": valid_from,
            "validUntil": valid_until,
            "minOrderValue": {"amount": minimum, "currency": "USD"},
        },
    }
    if valid_for:
        body["restrictions"]["validFor"] = ["C0123456789", "C0123456788"]
    return body


@pytest.mark.parametrize("present", [True, False], ids=["present-dates", "documented-dates"])
def test_basics_tutorial(client, token_for, present):
    access = token_for("hybris.coupon_manage")
    d = lambda stamp: when(stamp, present)  # noqa: E731

    created = client.post(
        "/coupon/v1/acme/coupons",
        json=winter_sale(25, 50, d("2016-12-01T00:00:00.000Z"), d("2017-01-31T23:59:59.999Z")),
        headers=access,
    )
    assert created.status_code == 201
    code_1 = created.get_json()["id"]
    assert code_1 == "WINTER_SALE"
    assert created.get_json()["link"].endswith("/coupon/v1/acme/coupons/WINTER_SALE")

    got = client.get(f"/coupon/v1/acme/coupons/{code_1}", headers=access)
    assert got.status_code == 200
    assert got.get_json()["code"] == code_1
    assert str(got.get_json()["discountAbsolute"]["amount"]) == "25"
    assert str(got.get_json()["restrictions"]["minOrderValue"]["amount"]) == "50"
    assert got.get_json()["status"] == ("INACTIVE" if present else "EXPIRED")

    summer = {
        **winter_sale(44.99, 75, d("2016-07-01T00:00:00.000Z"), d("2016-08-31T23:59:59.999Z")),
        "code": "SUMMER_SALE",
        "name": "Summer Sale",
    }
    created = client.post("/coupon/v1/acme/coupons", json=summer, headers=access)
    assert created.status_code == 201
    code_2 = created.get_json()["id"]
    assert code_2 == "SUMMER_SALE"

    listed = client.get("/coupon/v1/acme/coupons", headers=access)
    assert listed.status_code == 200
    assert [c["code"] for c in listed.get_json()] == [code_1, code_2]
    assert listed.get_json()[1]["discountAbsolute"]["amount"] == 44.99

    updated = client.put(
        f"/coupon/v1/acme/coupons/{code_1}",
        json=winter_sale(35, 70, d("2016-12-01T00:00:00.000Z"), d("2017-01-31T23:59:59.999Z")),
        headers=access,
    )
    assert updated.status_code == 200
    got = client.get(f"/coupon/v1/acme/coupons/{code_1}", headers=access)
    assert str(got.get_json()["discountAbsolute"]["amount"]) == "35"
    assert str(got.get_json()["restrictions"]["minOrderValue"]["amount"]) == "70"

    deleted = client.delete(f"/coupon/v1/acme/coupons/{code_1}", headers=access)
    assert deleted.status_code == 204
    got = client.get(f"/coupon/v1/acme/coupons/{code_1}", headers=access)
    assert got.status_code == 200
    assert got.get_json()["code"] == code_1 and got.get_json()["deleted"] is True
    assert [
        c["code"] for c in client.get("/coupon/v1/acme/coupons", headers=access).get_json()
    ] == [code_2]


@pytest.mark.parametrize("present", [True, False], ids=["present-dates", "documented-dates"])
def test_redemptions_tutorial(client, token_for, present):
    manage = token_for("hybris.coupon_manage")
    on_behalf = token_for("hybris.coupon_redeem_on_behalf")
    tenant_only = token_for("")
    d = lambda stamp: when(stamp, present, ACTIVE)  # noqa: E731

    created = client.post(
        "/coupon/v1/acme/coupons",
        json=winter_sale(25, 50, d("2015-12-01T00:00:00.000Z"), d("2020-01-31T23:59:59.999Z")),
        headers=manage,
    )
    assert created.status_code == 201
    code_1 = created.get_json()["id"]

    first = order(50, 25, customerNumber="C0123456789")
    validated = client.post(
        f"/coupon/v1/acme/coupons/{code_1}/validation", json=first, headers=on_behalf
    )
    redeemed = client.post(
        f"/coupon/v1/acme/coupons/{code_1}/redemptions", json=first, headers=on_behalf
    )
    if not present:
        for response in (validated, redeemed):
            assert response.status_code == 400
            assert response.get_json() == {
                "status": 400,
                "type": "coupon_expired",
                "message": "Coupon has expired",
            }
    else:
        assert validated.status_code == 200
        assert redeemed.status_code == 201
        redemption_1 = redeemed.get_json()["id"]

        second = order(50, 25, customerNumber="C0123456788")
        redeemed = client.post(
            f"/coupon/v1/acme/coupons/{code_1}/redemptions", json=second, headers=on_behalf
        )
        assert redeemed.status_code == 201
        redemption_2 = redeemed.get_json()["id"]

        listed = client.get(f"/coupon/v1/acme/coupons/{code_1}/redemptions", headers=manage)
        assert listed.status_code == 200
        body = listed.get_json()
        assert len(body) == 2
        assert body[0]["customerNumber"] == "C0123456789" and body[0]["id"] == redemption_1
        assert body[1]["customerNumber"] == "C0123456788" and body[1]["id"] == redemption_2
        assert body[0]["redeemedAt"].endswith("Z")

        one = client.get(
            f"/coupon/v1/acme/coupons/{code_1}/redemptions/{redemption_2}", headers=manage
        )
        assert one.status_code == 200
        assert one.get_json()["customerNumber"] == "C0123456788"
        assert one.get_json()["id"] == redemption_2

        removed = client.delete(
            f"/coupon/v1/acme/coupons/{code_1}/redemptions/{redemption_2}", headers=manage
        )
        assert removed.status_code == 204
        listed = client.get(f"/coupon/v1/acme/coupons/{code_1}/redemptions", headers=manage)
        assert len(listed.get_json()) == 1
        assert listed.get_json()[0]["customerNumber"] == "C0123456789"
        assert listed.get_json()[0]["id"] == redemption_1
        coupon = client.get(f"/coupon/v1/acme/coupons/{code_1}", headers=manage).get_json()
        assert coupon["redemptionCount"] == 1

    # Redemption by a customer.
    credentials = {"email": "yaasCustomer@yaastest.com", "password": "secret"}
    signup = client.post("/customer/v1/acme/signup", json=credentials, headers=tenant_only)
    assert signup.status_code == 201
    login = client.post("/customer/v1/acme/login", json=credentials, headers=tenant_only)
    assert login.status_code == 200
    customer = {"Authorization": "Bearer " + login.get_json()["accessToken"]}
    me = client.get("/customer/v1/acme/me", headers=customer)
    assert me.get_json()["customerNumber"] == signup.get_json()["customerNumber"]

    summer = winter_sale(
        25, 75, d("2015-12-01T00:00:00.000Z"), d("2020-01-31T23:59:59.999Z"), valid_for=False
    )
    summer.update(code="SUMMER_SALE", name="Summer Sale")
    created = client.post("/coupon/v1/acme/coupons", json=summer, headers=manage)
    assert created.status_code == 201
    coupon_code = created.get_json()["id"]
    redeemed = client.post(
        f"/coupon/v1/acme/coupons/{coupon_code}/redemptions",
        json={
            "orderTotal": {"currency": "USD", "amount": 75},
            "discount": {"currency": "USD", "amount": 25},
        },
        headers=customer,
    )
    if present:
        assert redeemed.status_code == 201
        listed = client.get(f"/coupon/v1/acme/coupons/{coupon_code}/redemptions", headers=manage)
        assert listed.get_json()[0]["customerNumber"] == me.get_json()["customerNumber"]
    else:
        assert redeemed.status_code == 400
        assert redeemed.get_json()["type"] == "coupon_expired"
