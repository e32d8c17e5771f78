"""A streaming replica (a second local cluster made with pg_basebackup) behind
DATABASE_READ_URL: validation and lists read it, every redemption decision stays on the
primary, so a replica that lags (replay paused) may say yes but never lets a limit be
passed."""

import contextlib
import json

import pytest
import requests

from tests.api.conftest import coupon_body, order
from tests.conftest import PG_URL
from tests.support import client_token, start_gunicorn, streaming_replica
from tests.system.conftest import app_env, run_flask, sql, wait_for
from tests.system.test_faults import counters_match


@pytest.fixture
def replica(fresh_pg):
    """`fresh_pg`'s database on a streaming replica: a function giving its URL."""
    with contextlib.ExitStack() as stack:
        try:
            on_replica = stack.enter_context(streaming_replica(PG_URL))
        except RuntimeError as error:
            pytest.skip(str(error))
        yield on_replica(fresh_pg)


def test_a_paused_replica_says_yes_but_the_limit_holds(fresh_pg, replica, processes):
    creds = json.loads(run_flask(fresh_pg, "tenant", "create", "acme", "--currency", "USD"))
    gunicorn, api = start_gunicorn(app_env(fresh_pg, DATABASE_READ_URL=replica), 2)
    processes.append(gunicorn)
    manage = client_token(api, creds, "hybris.coupon_manage")
    on_behalf = client_token(api, creds, "hybris.coupon_redeem_on_behalf")
    base = f"{api}/coupon/v1/acme/coupons"
    body = coupon_body(code="FIVE", maxRedemptions=5)
    assert requests.post(base, json=body, headers=manage, timeout=10).status_code == 201

    def validate():
        checked = requests.post(
            f"{base}/FIVE/validation", json=order(), headers=on_behalf, timeout=10
        )
        return checked.status_code, checked.json().get("type") if checked.content else None

    wait_for(lambda: validate() == (200, None), timeout=30)  # replicated
    sql(replica, "SELECT pg_wal_replay_pause()")

    def redeem(i):
        answer = requests.post(
            f"{base}/FIVE/redemptions",
            json=order(customerNumber=f"C{i}"),
            headers=on_behalf,
            timeout=10,
        )
        return answer.status_code

    assert [redeem(i) for i in range(8)] == [201] * 5 + [400] * 3
    # The replica has not seen one of them: validation still says yes ...
    assert validate() == (200, None)
    [(seen,)] = sql(replica, "SELECT redemption_count FROM coupons WHERE code = 'FIVE'")
    assert seen == 0
    # A list reads the replica (as stale as it is); a read by code, the primary.
    listed = requests.get(base, headers=manage, timeout=10).json()
    assert [c["redemptionCount"] for c in listed] == [0]
    read = requests.get(f"{base}/FIVE", headers=manage, timeout=10).json()
    assert read["redemptionCount"] == 5
    # ... and the primary still decides: nothing past the limit.
    assert counters_match(fresh_pg, "FIVE") == (5, True)
    sql(replica, "SELECT pg_wal_replay_resume()")
    wait_for(lambda: validate() == (400, "coupon_redemptions_exceeded"), timeout=30)
