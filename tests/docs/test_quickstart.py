"""The README's quickstart, promotions and returns, run verbatim against a started
server: every block fenced ```sh quickstart, then ```sh promotions, then ```sh returns, in
order, as a newcomer pasting them would."""

import os

from tests.docs.conftest import fenced, run_shell


def test_the_readme_quickstart_runs(served):
    # Promotions and returns go on from where the quickstart ends (its $AUTH).
    sections = ("quickstart", "promotions", "returns")
    script = "\n".join(fenced("README.md", name) for name in sections)
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
    # Returns: one T-shirt back (5 of TEE5's 15), then the whole order.
    '"status":"PARTIALLY_ROLLED_BACK","rolledBackAt":',
    '"rolledBackAmount":{"amount":5,"currency":"EUR"},"reason":"one T-shirt returned"',
    '"couponCode":"TEE5"',
    # The order: SHOES20, TEE5 and the weekend promotion, all rolled back.
    '"couponCode":"WEEKEND"',
    '"status":"ROLLED_BACK","rolledBackAt":',
    '"reason":"order cancelled"',
]
