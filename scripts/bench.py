"""`make bench`: throughput and latency of the hot paths, against real gunicorn.

Starts the API with BENCH_WORKERS gunicorn workers (default 4) on a fresh,
migrated PostgreSQL database next to BENCH_DATABASE_URL (default: the local
server's `test` database), creates a tenant, then drives each scenario from
BENCH_CLIENTS threads (default 8) for BENCH_REQUESTS requests (default 2000).
Client and server share the machine, so the numbers are a floor, not a
ceiling. Each scenario has a goal; the run exits 1 if one is missed.
BENCH_OUTPUT=path also writes the results as JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import (  # noqa: E402
    client_token,
    new_postgres_database,
    start_gunicorn,
    stop,
)

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
SECRET = "bench-secret-key-0123456789abcdef0123"


@dataclass(frozen=True)
class Goal:
    min_rps: float
    max_p95_ms: float


# Goals for this machine kind (2 cores, client on the same machine, 4 workers).
GOALS = {
    "tenant validation": Goal(min_rps=200, max_p95_ms=60),
    "tenant redemption (one hot coupon)": Goal(min_rps=80, max_p95_ms=150),
    "promo check": Goal(min_rps=200, max_p95_ms=60),
    "promo redeem (distinct orders)": Goal(min_rps=100, max_p95_ms=120),
    "coupon read (manager)": Goal(min_rps=250, max_p95_ms=50),
}


def app_env(url: str) -> dict:
    return {
        "DATABASE_URL": url,
        "APP_ENV": "development",
        "SECRET_KEY": SECRET,
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }


def flask(url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env={**os.environ, **app_env(url)},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def run(name: str, send: Callable[[requests.Session, int], requests.Response]) -> dict:
    """Send REQUESTS requests from CLIENTS threads; latency per request, statuses."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    counter = iter(range(REQUESTS))

    def client():
        session = requests.Session()
        mine, codes = [], Counter()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            started = time.perf_counter()
            response = send(session, i)
            mine.append(time.perf_counter() - started)
            codes[response.status_code] += 1
        with lock:
            latencies.extend(mine)
            statuses.update(codes)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    goal = GOALS[name]
    result = {
        "scenario": name,
        "requests": REQUESTS,
        "rps": round(REQUESTS / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "statuses": dict(statuses),
    }
    result["met"] = result["rps"] >= goal.min_rps and result["p95_ms"] <= goal.max_p95_ms
    return result


def scenarios(api: str, tenant: dict) -> list[dict]:
    manage = client_token(api, tenant, "hybris.coupon_manage")
    on_behalf = client_token(api, tenant, "hybris.coupon_redeem_on_behalf")
    user = client_token(api, tenant, "hybris.coupon_redeem")
    coupon = {
        "code": "BENCH",
        "discountType": "PERCENT",
        "discountPercentage": 10,
        "restrictions": {"minOrderValue": {"amount": 20, "currency": "USD"}},
    }
    requests.post(
        f"{api}/coupon/v1/bench/coupons", json=coupon, headers=manage, timeout=10
    ).raise_for_status()
    requests.post(
        f"{api}/promocodes/add",
        json={
            "coupon": "BENCH_GIFT",
            "code": "FREE_PIZZA",
            "fullPrice": 500,
            "hasProduct": "pizza",
        },
        headers=manage,
        timeout=10,
    ).raise_for_status()
    base = f"{api}/coupon/v1/bench/coupons/BENCH"
    order = {
        "orderTotal": {"amount": 100, "currency": "USD"},
        "discount": {"amount": 10, "currency": "USD"},
    }
    promo = {
        "coupon": "BENCH_GIFT",
        "notGiftsAndNotDeliveryTotal": 600,
        "order": {"items": [{"code": "pizza"}, {"code": "cola"}]},
        "customer": {"phone": "79991234567"},
    }
    # Warm every worker (imports, connection pools) before measuring.
    with requests.Session() as session:
        for i in range(WORKERS * 50):
            session.post(
                f"{base}/validation", json={**order, "customerNumber": f"W{i}"}, headers=on_behalf
            )
    return [
        run(
            "tenant validation",
            lambda s, i: s.post(
                f"{base}/validation",
                json={**order, "customerNumber": f"C{i}"},
                headers=on_behalf,
                timeout=30,
            ),
        ),
        run(
            "tenant redemption (one hot coupon)",
            lambda s, i: s.post(
                f"{base}/redemptions",
                json={**order, "customerNumber": f"C{i}"},
                headers=on_behalf,
                timeout=30,
            ),
        ),
        run(
            "promo check",
            lambda s, i: s.post(f"{api}/promocodes/", json=promo, headers=user, timeout=30),
        ),
        run(
            "promo redeem (distinct orders)",
            lambda s, i: s.post(
                f"{api}/promocodes/redeem",
                json={**promo, "order": {**promo["order"], "id": f"order-{i}"}},
                headers=user,
                timeout=30,
            ),
        ),
        run("coupon read (manager)", lambda s, i: s.get(base, headers=manage, timeout=30)),
    ]


def main() -> int:
    print(f"bench: {WORKERS} gunicorn workers, {CLIENTS} clients, {REQUESTS} requests each")
    with new_postgres_database(PG_URL, "coupon_bench") as url:
        flask(url, "db", "upgrade")
        tenant = json.loads(flask(url, "tenant", "create", "bench", "--currency", "USD"))
        process, api = start_gunicorn(app_env(url), workers=WORKERS)
        try:
            results = scenarios(api, tenant)
        finally:
            stop(process)
    print(f"{'scenario':38} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  goal")
    for r in results:
        goal = GOALS[r["scenario"]]
        verdict = "ok" if r["met"] else "MISSED"
        print(
            f"{r['scenario']:38} {r['rps']:>8} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8}"
            f"  {verdict} (>= {goal.min_rps} req/s, p95 <= {goal.max_p95_ms} ms)"
            f"  statuses {r['statuses']}"
        )
    if os.environ.get("BENCH_OUTPUT"):
        Path(os.environ["BENCH_OUTPUT"]).write_text(json.dumps(results, indent=2))
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
