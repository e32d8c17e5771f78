"""`make soak`: a bounded mixed load over every dialect, with faults, then an audit.

Starts, on a fresh migrated PostgreSQL database next to SOAK_DATABASE_URL (default:
the local server's `test` database): gunicorn (SOAK_WORKERS, default 4), two outbox
workers, and one mock downstream that answers 503 to every third request. SOAK_CLIENTS
threads (default 6) then send a seeded mix of the three dialects' requests for
SOAK_SECONDS (default 180), and PostgreSQL is restarted (fast mode) half way through.

Afterwards it checks, and exits 1 if one fails:
- no 5xx answer but 503, and no 503 outside the restart (plus a short grace);
- every outbox message delivered (none pending, none dead), each seen by the mock;
- every coupon's redemption counter equals its redemption rows;
- every replayed Idempotency-Key answered exactly as the first time.
It prints the figures; SOAK_OUTPUT=path also writes them as JSON.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import (  # noqa: E402
    BIN,
    client_token,
    ensure_postgres_up,
    new_postgres_database,
    restart_local_postgres,
    spawn,
    start_gunicorn,
    start_mock,
    stop,
)

PG_URL = os.environ.get("SOAK_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "4"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "6"))
SECRET = "soak-secret-key-0123456789abcdef0123"
# After PostgreSQL is back, requests already in flight may still see the outage.
GRACE_SECONDS = 2.0
KEYS = 300
USD = "USD"


def env_for(url: str, downstream: str, events_secret: str) -> dict:
    return {
        "DATABASE_URL": url,
        "APP_ENV": "development",
        "SECRET_KEY": SECRET,
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "ERROR",
        "EMAIL_VERIFIER_URL": downstream,
        "COUPON_REALIZER_URL": downstream,
        "EVENTS_URL": downstream,
        "EVENTS_SECRET": events_secret,
        "OUTBOX_POLL_SECONDS": "0.2",
        "OUTBOX_RETRY_BASE_SECONDS": "0.2",
        # The backoff's cap scaled to the run, as the base is: with the default hour, a
        # message refused ten times in a row (a few per 100,000 at one refusal in three)
        # would wait longer than the audit's 180 s drain, though it is never lost.
        "OUTBOX_RETRY_MAX_DELAY_SECONDS": "5",
        "OUTBOX_LEASE_SECONDS": "10",
    }


def flask(env: dict, *args: str) -> str:
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def sql(url: str, query: str):
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            return connection.execute(text(query)).all()
    finally:
        engine.dispose()


class Load:
    """The mixed requests, what they answered, and when 5xx answers came."""

    def __init__(self, api: str, tenant: dict, tokens: dict):
        self.api, self.tenant, self.tokens = api, tenant, tokens
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.by_kind: Counter = Counter()
        self.outage_answers: list[float] = []
        self.errors: list[str] = []
        self.keyed: dict[str, tuple[int, str]] = {}
        self.replays_checked = 0

    # -- setup ----------------------------------------------------------------------

    def prepare(self) -> None:
        manage = self.tokens["manage"]
        coupons = [
            {"code": "SOAK_OPEN", "discountType": "PERCENT", "discountPercentage": 10},
            {
                "code": "SOAK_LIMITED",
                "discountType": "ABSOLUTE",
                "discountAbsolute": {"amount": 5, "currency": USD},
                "maxRedemptions": 300,
            },
            {
                "code": "SOAK_ONCE",
                "discountType": "PERCENT",
                "discountPercentage": 5,
                "maxRedemptionsPerCustomer": 1,
            },
        ]
        for coupon in coupons:
            self._ok(
                requests.post(f"{self.api}/coupon/v1/soak/coupons", json=coupon, headers=manage)
            )
        promo = {"coupon": "SOAK_GIFT", "code": "FREE_PIZZA", "times": 200, "hasProduct": "pizza"}
        self._ok(requests.post(f"{self.api}/promocodes/add", json=promo, headers=manage))
        brand = {"X-API-Token": self.tenant["api_token"]}
        for verify in (False, True):
            discount = {
                "name": f"soak {'verified' if verify else 'direct'}",
                "discount_type": "PERCENT",
                "discount_amount": 15,
                "verify_email": verify,
            }
            self._ok(
                requests.post(f"{self.api}/brands/soak/discounts", json=discount, headers=brand)
            )

    @staticmethod
    def _ok(response: requests.Response) -> None:
        if response.status_code >= 300:
            raise SystemExit(f"soak setup failed: {response.status_code} {response.text}")

    # -- the mix --------------------------------------------------------------------

    def one(
        self, session: requests.Session, rng: random.Random, n: int
    ) -> tuple[str, requests.Response]:
        api, t = self.api, self.tokens
        order = {
            "orderTotal": {"amount": 100, "currency": USD},
            "discount": {"amount": 5, "currency": USD},
        }
        kind = rng.choices(
            [
                "validate",
                "redeem",
                "redeem limited",
                "redeem once",
                "redeem keyed",
                "redeem order id",
                "cancel",
                "promo check",
                "promo redeem",
                "fan",
                "fan verified",
                "read",
            ],
            weights=[14, 12, 6, 6, 8, 6, 2, 12, 8, 6, 4, 8],
        )[0]
        coupons = f"{api}/coupon/v1/soak/coupons"
        if kind == "validate":
            body = {**order, "customerNumber": f"V{n}"}
            r = session.post(f"{coupons}/SOAK_OPEN/validation", json=body, headers=t["on_behalf"])
        elif kind in ("redeem", "redeem limited", "redeem once"):
            code = {"redeem": "SOAK_OPEN", "redeem limited": "SOAK_LIMITED"}.get(kind, "SOAK_ONCE")
            customer = f"C{rng.randrange(40)}" if kind == "redeem once" else f"R{n}"
            body = {**order, "customerNumber": customer}
            r = session.post(f"{coupons}/{code}/redemptions", json=body, headers=t["on_behalf"])
        elif kind == "redeem keyed":
            # A small key space shared by every client: replays, some of them racing.
            key = f"key-{rng.randrange(KEYS)}"
            body = {**order, "customerNumber": f"K-{key}"}
            headers = {**t["on_behalf"], "Idempotency-Key": key}
            r = session.post(f"{coupons}/SOAK_OPEN/redemptions", json=body, headers=headers)
            self._check_replay(key, r)
        elif kind == "redeem order id":
            body = {**order, "customerNumber": "ORDERS", "orderId": f"O-{rng.randrange(200)}"}
            r = session.post(f"{coupons}/SOAK_OPEN/redemptions", json=body, headers=t["on_behalf"])
        elif kind == "cancel":
            listed = session.get(f"{coupons}/SOAK_OPEN/redemptions?pageSize=5", headers=t["manage"])
            r = listed
            if listed.status_code == 200 and listed.json():
                rid = rng.choice(listed.json())["id"]
                r = session.delete(f"{coupons}/SOAK_OPEN/redemptions/{rid}", headers=t["manage"])
        elif kind in ("promo check", "promo redeem"):
            body = {
                "coupon": "SOAK_GIFT",
                "notGiftsAndNotDeliveryTotal": 600,
                "order": {"items": [{"code": "pizza"}], "id": f"P-{rng.randrange(400)}"},
            }
            path = "/promocodes/" if kind == "promo check" else "/promocodes/redeem"
            r = session.post(f"{api}{path}", json=body, headers=t["user"])
        elif kind in ("fan", "fan verified"):
            brand = {"X-API-Token": self.tenant["api_token"]}
            discounts = session.get(f"{api}/brands/soak/discounts", headers=brand)
            r = discounts
            if discounts.status_code == 200:
                wanted = kind == "fan verified"
                [discount] = [d for d in discounts.json() if d["verify_email"] is wanted]
                fan = {
                    "name": "Soak Fan",
                    "email": f"fan{rng.randrange(n + 1)}@example.com",
                    "discount_id": discount["id"],
                }
                r = session.post(f"{api}/brands/soak/fans", json=fan, headers=brand)
        else:
            r = session.get(f"{coupons}/SOAK_OPEN", headers=t["manage"])
        return kind, r

    def _check_replay(self, key: str, response: requests.Response) -> None:
        if response.status_code >= 500:
            return  # an outage answer is not stored: the retry runs the work
        answer = (response.status_code, response.text)
        with self.lock:
            first = self.keyed.setdefault(key, answer)
            if response.headers.get("Idempotent-Replayed") == "true":
                self.replays_checked += 1
                if first != answer:
                    self.errors.append(f"Idempotency-Key {key} replayed {answer}, first {first}")

    def client(self, seed: int, stop_at: float) -> None:
        rng, session, n = random.Random(seed), requests.Session(), seed * 1_000_000
        while time.monotonic() < stop_at:
            n += 1
            try:
                kind, response = self.one(session, rng, n)
                status = response.status_code
            except requests.RequestException as error:
                kind, status = "connection error", 0
                with self.lock:
                    self.errors.append(f"{type(error).__name__}")
            if status >= 500 and status != 503:
                with self.lock:
                    self.errors.append(f"{kind}: {status} {response.text[:300]}")
            with self.lock:
                self.statuses[status] += 1
                self.by_kind[kind] += 1
                if status >= 500:
                    self.outage_answers.append(time.monotonic())


def activate_pending(api: str, downstream: str) -> int:
    """Open the activation links the mock received (a fan clicking the email)."""
    tokens = {
        r["body"]["token"]
        for r in requests.get(f"{downstream}/_received", timeout=10).json()
        if r["path"] == "/email" and isinstance(r["body"], dict)
    }
    return Counter(requests.get(f"{api}/fans/{t}", timeout=10).status_code for t in tokens)[200]


def wait_drained(url: str, timeout: float) -> tuple[int, int]:
    """Wait until no message is pending; returns (pending, dead)."""
    deadline = time.monotonic() + timeout
    while True:
        [(pending, dead)] = sql(
            url,
            "SELECT count(*) FILTER (WHERE status = 'pending'),"
            " count(*) FILTER (WHERE status = 'dead') FROM outbox_messages",
        )
        if pending == 0 or time.monotonic() > deadline:
            return pending, dead
        time.sleep(0.5)


def main() -> int:
    print(f"soak: {SECONDS:.0f}s, {CLIENTS} clients, {WORKERS} gunicorn workers, 2 outbox workers")
    processes = []
    with new_postgres_database(PG_URL, "coupon_soak") as url:
        try:
            downstream_process, downstream = start_mock(fail_every=3)
            processes.append(downstream_process)
            secret = flask({"DATABASE_URL": url}, "events", "new-secret").strip()
            env = env_for(url, downstream, secret)
            flask(env, "db", "upgrade")
            tenant = json.loads(flask(env, "tenant", "create", "soak", "--currency", USD))
            api_log = tempfile.NamedTemporaryFile("w+", prefix="soak-api-", suffix=".log")
            api_process, api = start_gunicorn(env, workers=WORKERS, stderr=api_log)
            processes.append(api_process)
            for _ in range(2):
                processes.append(
                    spawn([str(BIN / "flask"), "--app", "app", "outbox", "dispatch"], env=env)
                )
            load = Load(api, tenant, tokens(api, tenant))
            load.prepare()
            summary = run(load, url, api, downstream)
        finally:
            for process in reversed(processes):
                stop(process)
            ensure_postgres_up(PG_URL)
    report(summary)
    if not summary["ok"]:
        api_log.seek(0)
        failures = [line for line in api_log if '"level": "ERROR"' in line]
        print("API errors logged:", *failures[:5], sep="\n")
    return 0 if summary["ok"] else 1


def tokens(api: str, tenant: dict) -> dict:
    return {
        "manage": client_token(api, tenant, "hybris.coupon_manage"),
        "on_behalf": client_token(api, tenant, "hybris.coupon_redeem_on_behalf"),
        "user": client_token(api, tenant, "hybris.coupon_redeem"),
    }


def run(load: Load, url: str, api: str, downstream: str) -> dict:
    started = time.monotonic()
    stop_at = started + SECONDS
    clients = [
        threading.Thread(target=load.client, args=(seed, stop_at)) for seed in range(1, CLIENTS + 1)
    ]
    for client in clients:
        client.start()
    time.sleep(SECONDS / 2)
    restart_began = time.monotonic()
    restart_local_postgres(PG_URL)
    restart_ended = time.monotonic()
    for client in clients:
        client.join()
    activated = activate_pending(api, downstream)
    pending, dead = wait_drained(url, timeout=180)

    [(messages, delivered)] = sql(
        url,
        "SELECT count(*), count(*) FILTER (WHERE status = 'delivered') FROM outbox_messages",
    )
    received = requests.get(f"{downstream}/_received", timeout=10).json()
    seen_ok = {r["headers"].get("webhook-id") for r in received if r["answered"] == 200}
    failed_attempts = sum(r["answered"] == 503 for r in received)
    counters = sql(
        url,
        "SELECT c.code, c.redemption_count,"
        " (SELECT count(*) FROM redemptions r WHERE r.coupon_id = c.id) FROM coupons c",
    )
    mismatched = [(code, count, rows) for code, count, rows in counters if count != rows]
    server_errors = {s: n for s, n in load.statuses.items() if s >= 500 and s != 503}
    late_outage = [
        t
        for t in load.outage_answers
        if not restart_began - 1 <= t <= restart_ended + GRACE_SECONDS
    ]
    checks = {
        "no 5xx but 503": not server_errors,
        "503 only during the restart": not late_outage,
        "every message delivered": pending == 0 and dead == 0 and delivered == messages,
        "the downstream saw every message": len(seen_ok) == messages,
        "counters equal redemption rows": not mismatched,
        "replays answer as the first time": not any("Idempotency-Key" in e for e in load.errors),
        "no dropped connection": "connection error" not in load.by_kind,
    }
    return {
        "seconds": SECONDS,
        "requests": sum(load.statuses.values()),
        "statuses": dict(sorted(load.statuses.items())),
        "requests_by_kind": dict(load.by_kind.most_common()),
        "restart_seconds": round(restart_ended - restart_began, 1),
        "outage_answers": len(load.outage_answers),
        "outage_answers_after_grace": len(late_outage),
        "idempotent_replays_checked": load.replays_checked,
        "fans_activated": activated,
        "messages": messages,
        "messages_delivered": delivered,
        "messages_dead": dead,
        "downstream_503_attempts": failed_attempts,
        "coupons_checked": len(counters),
        "redemptions": sum(rows for _, _, rows in counters),
        "counter_mismatches": mismatched,
        "errors": load.errors[:10],
        "checks": checks,
        "ok": all(checks.values()),
    }


def report(summary: dict) -> None:
    print(
        f"requests: {summary['requests']} in {summary['seconds']:.0f}s;"
        f" statuses {summary['statuses']}"
    )
    print(f"by kind: {summary['requests_by_kind']}")
    print(
        f"PostgreSQL restart: {summary['restart_seconds']}s;"
        f" 503 answers {summary['outage_answers']}"
        f" ({summary['outage_answers_after_grace']} after it was back)"
    )
    print(
        f"outbox: {summary['messages_delivered']}/{summary['messages']} messages delivered,"
        f" {summary['messages_dead']} dead, {summary['downstream_503_attempts']} attempts"
        " refused by the downstream and retried"
    )
    print(
        f"counters: {summary['coupons_checked']} coupons, {summary['redemptions']} redemptions,"
        f" {len(summary['counter_mismatches'])} mismatches;"
        f" {summary['idempotent_replays_checked']} Idempotency-Key replays checked;"
        f" {summary['fans_activated']} fans activated"
    )
    for name, passed in summary["checks"].items():
        print(f"  {'ok' if passed else 'FAILED'}  {name}")
    if summary["errors"]:
        print(f"errors: {summary['errors']}")
    if os.environ.get("SOAK_OUTPUT"):
        Path(os.environ["SOAK_OUTPUT"]).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
