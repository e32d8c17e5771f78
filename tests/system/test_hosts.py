"""Two API hosts behind HAProxy (Debian's package, docs/haproxy.cfg as it is), sharing
PostgreSQL and Redis: limits stay exact across hosts, a host restarted gracefully under
load costs no request and no redemption, and rate limits count across both."""

import os
import shutil
import signal
import threading
from collections import Counter

import pytest
import requests

from tests.api.conftest import coupon_body, order
from tests.support import BIN, ROOT, free_port, spawn, wait_http
from tests.system.conftest import app_env, redis_store, sql, wait_for
from tests.system.test_concurrency import fire, outcome
from tests.system.test_faults import acme, counters_match, token

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
DRAIN = {"GUNICORN_DRAIN_SECONDS": "3"}  # above inter x fall: 1 s


@pytest.fixture
def balancer(processes):
    """start(env) -> (balancer URL, restart(i)): two gunicorn hosts with 2 workers each on
    their own ports, and HAProxy in front of them."""
    if not os.path.exists(HAPROXY):
        pytest.skip("haproxy is not installed (apt-get install haproxy)")

    def start(env):
        ports = [free_port(), free_port()]
        hosts = [_host(processes, env, port) for port in ports]
        front = free_port()
        addresses = {
            "HAPROXY_BIND": f"127.0.0.1:{front}",
            "API_HOST_1": f"127.0.0.1:{ports[0]}",
            "API_HOST_2": f"127.0.0.1:{ports[1]}",
        }
        config = str(ROOT / "docs" / "haproxy.cfg")
        processes.append(spawn([HAPROXY, "-db", "-f", config], env=addresses))
        url = f"http://127.0.0.1:{front}"
        wait_for(lambda: _both_serve(url), timeout=20)

        def restart(i):
            """SIGTERM host i's master (it drains, then stops gracefully), then start it
            again on its port."""
            os.kill(hosts[i].pid, signal.SIGTERM)
            hosts[i].wait(timeout=60)
            hosts[i] = _host(processes, env, ports[i])

        return url, restart

    return start


def _host(processes, env, port):
    process = spawn(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "app:create_app()",
        ],
        env=env,
    )
    processes.append(process)
    wait_http(f"http://127.0.0.1:{port}/health", timeout=60, process=process)
    return process


def _both_serve(url) -> bool:
    served = set()
    for _ in range(6):
        try:
            answer = requests.get(url + "/ready", timeout=5)
        except requests.RequestException:
            return False
        if answer.status_code == 200:
            served.add(answer.headers.get("X-Served-By"))
    return served == {"api1", "api2"}


def test_a_limit_is_exact_across_hosts_and_survives_a_host_restarted_under_load(fresh_pg, balancer):
    tenant = acme(fresh_pg)
    url, restart = balancer(app_env(fresh_pg, **DRAIN))
    manage = token(url, tenant, "hybris.coupon_manage")
    on_behalf = token(url, tenant, "hybris.coupon_redeem_on_behalf")
    for code, limit in (("FIFTY", 50), ("LOAD", -1)):
        body = coupon_body(code=code, maxRedemptions=limit)
        made = requests.post(f"{url}/coupon/v1/acme/coupons", json=body, headers=manage, timeout=10)
        assert made.status_code == 201, made.text

    def redeem(code, customer):
        return requests.post(
            f"{url}/coupon/v1/acme/coupons/{code}/redemptions",
            json=order(customerNumber=customer),
            headers=on_behalf,
            timeout=60,
        )

    answers = fire(200, lambda i: redeem("FIFTY", f"C{i}"))
    counts = Counter(outcome(r) for r in answers)
    assert counts == {(201, None): 50, (400, "coupon_redemptions_exceeded"): 150}, counts
    assert {r.headers["X-Served-By"] for r in answers} == {"api1", "api2"}
    assert counters_match(fresh_pg, "FIFTY") == (50, True)

    # Load on both hosts while host 1 drains, stops and comes back.
    stopping, results, lock = threading.Event(), [], threading.Lock()

    def load(worker):
        n = 0
        while not stopping.is_set():
            n += 1
            try:
                answer = redeem("LOAD", f"L{worker}-{n}")
                done = answer.status_code == 201
                said = answer.json()["id"] if done else answer.text[:100]
                got = (answer.status_code, said, answer.headers.get("X-Served-By"))
            except requests.RequestException as error:
                got = (None, repr(error), None)
            with lock:
                results.append(got)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(results) >= 50, timeout=30)
        restart(0)
        wait_for(lambda: _both_serve(url), timeout=20)
        seen = len(results)
        wait_for(lambda: len(results) >= seen + 50, timeout=30)
    finally:
        stopping.set()
        for thread in threads:
            thread.join(timeout=60)
    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) == {201}, (statuses, [r for r in results if r[0] != 201][:5])
    answered = {rid for _, rid, _ in results}
    stored = {
        row[0]
        for row in sql(
            fresh_pg,
            "SELECT r.id FROM redemptions r JOIN coupons c ON c.id = r.coupon_id"
            " WHERE c.code = 'LOAD'",
        )
    }
    assert stored == answered and len(stored) == len(results)
    assert counters_match(fresh_pg, "LOAD") == (len(results), True)


def test_rate_limits_count_across_hosts(fresh_pg, balancer):
    store = redis_store(14)
    acme(fresh_pg)
    env = app_env(
        fresh_pg,
        RATELIMIT_ENABLED="true",
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/14",
        RATELIMIT_GUESSING="6/minute",
        TRUSTED_PROXY_COUNT="1",
    )
    url, _ = balancer(env)
    store.flushdb()  # the balancer's own wait asked nothing limited, but start clean
    answers = [requests.get(f"{url}/fans/unknown-{i}", timeout=10) for i in range(15)]
    assert Counter(a.status_code for a in answers) == {404: 6, 429: 9}
    assert {a.headers["X-Served-By"] for a in answers} == {"api1", "api2"}
    # A client cannot buy a new budget with a forged X-Forwarded-For: the hosts trust
    # one proxy, so the address is the one HAProxy saw and appended.
    forged = requests.get(
        f"{url}/fans/unknown-x", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10
    )
    assert forged.status_code == 429
