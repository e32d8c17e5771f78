"""The README's quickstart and promotions, run verbatim against a started server: every
block fenced ```sh quickstart, then ```sh promotions, in order, as a newcomer pasting
them would."""

import os

from tests.docs.conftest import fenced, run_shell


def test_the_readme_quickstart_runs(served):
    # The promotions section goes on from where the quickstart ends (its $AUTH).
    script = fenced("README.md", "quickstart") + "\n" + fenced("README.md", "promotions")
    result = run_shell(
        script,
        env={
            **os.environ,
            "BASE": served.url,
            "CLIENT_ID": served.credentials["client_id"],
            "CLIENT_SECRET": served.credentials["client_secret"],
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output  # curl --fail-with-body: every answer a 2xx
    for expected in QUICKSTART_ANSWERS:
        assert expected in result.stdout, (expected, output)


# What the quickstart's answers say, in the order it shows them.
QUICKSTART_ANSWERS = [
    '"id":"WELCOME10"',  # the coupon created
    '{"discount":{"amount":8,"currency":"EUR"}}',  # 10 % of 80, computed
    "/coupons/WELCOME10/redemptions/",  # the redemption's link
    '{"amount": 14.5, "currency": "EUR"}',  # the cart: 5 off 100, then 10 % of 95
    "/coupons/FIVEOFF/redemptions/",  # the hold confirmed into a redemption
    "\n1\n",  # FIVEOFF's redemption count afterwards
    '"loyaltyProgramErrors":["Promo code applied"],"freeProducts":["FREE_PIZZA"]',
    "OK",  # the fan registered
    # The promotions cart: each code line by line, shipping apart.
    '"code":"SHOES20","applies":true,"discount":{"amount":20,"currency":"EUR"},'
    '"lines":[{"item":0,"product":"runner","discount":{"amount":20,"currency":"EUR"}}]',
    '"code":"TEE5","applies":true,"discount":{"amount":15,"currency":"EUR"},'
    '"lines":[{"item":1,"product":"tshirt","discount":{"amount":15,"currency":"EUR"}}]',
    '"code":"B2G1","applies":true,"discount":{"amount":15,"currency":"EUR"},'
    '"lines":[{"item":1,"product":"tshirt","discount":{"amount":15,"currency":"EUR"}}]',
    '"shippingDiscount":{"amount":7.5,"currency":"EUR"}',
    '"code":"FIFTEEN","applies":true,"discount":{"amount":16.5,"currency":"EUR"}',
    '"totalDiscount":{"amount":66.5,"currency":"EUR"}',
    # An anonymous cart with no code gets the automatic weekend promotion.
    '"code":"WEEKEND","applies":true,"discount":{"amount":16,"currency":"EUR"}',
    '"name":"Weekend"}],"totalDiscount":{"amount":16,"currency":"EUR"}',
]
