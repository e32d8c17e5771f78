"""The bare baseline of `make bench`: the hot paths as naive SQL and nothing else.

A Flask app with no authentication, no schemas, no ORM, no rate limiting and no
error shapes: one psycopg connection per gunicorn worker and the statements a
straightforward implementation sends (tenant by slug, the whole coupon row,
`SELECT ... FOR UPDATE`, separate UPDATE and INSERTs). It answers the same URLs
with the same bodies as the service, so one wrk script drives both; the ratio
of the service's throughput to this app's, in the same run, is what the
benchmark reports. It is not a product: bad input simply answers 400.

Run: `BASELINE_DATABASE_URL=postgresql://... gunicorn -w 4 bench.baseline:app`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import requests
from flask import Flask, Response, request
from psycopg.rows import dict_row

app = Flask(__name__)
DATABASE_URL = os.environ.get(
    "BASELINE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
).replace("postgresql+psycopg://", "postgresql://")
# The promo dialect's tenant comes from the token in the service; here it is fixed.
PROMO_TENANT = os.environ.get("BASELINE_PROMO_TENANT", "bench")
REALIZER_URL = os.environ.get("COUPON_REALIZER_URL", "http://127.0.0.1:5002")

_connection: psycopg.Connection | None = None
_http = requests.Session()


def connection() -> psycopg.Connection:
    """This worker's connection, opened on first use and after a failure."""
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(DATABASE_URL, row_factory=dict_row)
    return _connection


@app.teardown_request
def _end(_exc):
    conn = _connection
    if conn is not None and not conn.closed:
        try:
            conn.rollback()
        except psycopg.Error:
            conn.close()


def _tenant(cur, slug: str) -> dict | None:
    cur.execute("SELECT * FROM tenants WHERE slug = %s", (slug,))
    return cur.fetchone()


def _coupon(cur, tenant_id: int, code: str, lock: bool = False) -> dict | None:
    cur.execute(
        "SELECT * FROM coupons WHERE tenant_id = %s AND code_key = %s"
        + (" FOR UPDATE" if lock else ""),
        (tenant_id, code.casefold()),
    )
    return cur.fetchone()


def _refusal(coupon: dict | None, customer: str | None, total: Decimal, cur) -> str | None:
    """The first rule the order breaks (the checks every dialect needs), or None."""
    now = datetime.now(UTC)
    if coupon is None or coupon["deleted"]:
        return "coupon_not_found"
    if not coupon["active"] or (coupon["valid_from"] and now < coupon["valid_from"]):
        return "coupon_not_active"
    if coupon["valid_until"] and now > coupon["valid_until"]:
        return "coupon_expired"
    limit = coupon["max_redemptions"]
    if limit != -1 and coupon["redemption_count"] >= limit:
        return "coupon_redemptions_exceeded"
    if coupon["max_redemptions_per_customer"] != -1:
        cur.execute(
            "SELECT count(*) AS n FROM redemptions WHERE coupon_id = %s AND customer_number = %s",
            (coupon["id"], customer),
        )
        if cur.fetchone()["n"] >= coupon["max_redemptions_per_customer"]:
            return "coupon_redemptions_exceeded"
    if coupon["min_order_amount"] is not None and total < coupon["min_order_amount"]:
        return "coupon_order_total_too_low"
    return None


def _refused(kind: str) -> Response:
    status = 404 if kind == "coupon_not_found" else 409
    return Response(json.dumps({"type": kind}), status=status, mimetype="application/json")


@app.post("/coupon/v1/<tenant>/coupons/<code>/validation")
def validation(tenant: str, code: str):
    body = request.get_json()
    cur = connection().cursor()
    row = _tenant(cur, tenant)
    coupon = _coupon(cur, row["id"], code) if row else None
    total = Decimal(str(body["orderTotal"]["amount"]))
    kind = _refusal(coupon, body.get("customerNumber"), total, cur)
    connection().rollback()
    return _refused(kind) if kind else Response(status=200)


@app.post("/coupon/v1/<tenant>/coupons/<code>/redemptions")
def redemption(tenant: str, code: str):
    body = request.get_json()
    key = request.headers.get("Idempotency-Key")
    conn = connection()
    cur = conn.cursor()
    row = _tenant(cur, tenant)
    if key is not None:
        cur.execute(
            "INSERT INTO idempotency_records (tenant_id, key, request_hash, created_at)"
            " VALUES (%s, %s, %s, now()) ON CONFLICT DO NOTHING RETURNING id",
            (row["id"], key, hashlib.sha256(request.get_data()).hexdigest()),
        )
        claimed = cur.fetchone()
        if claimed is None:
            cur.execute(
                "SELECT * FROM idempotency_records WHERE tenant_id = %s AND key = %s",
                (row["id"], key),
            )
            stored = cur.fetchone()
            conn.rollback()
            return Response(stored["response_body"], status=stored["status_code"])
    coupon = _coupon(cur, row["id"], code, lock=True)
    customer = body.get("customerNumber")
    total = Decimal(str(body["orderTotal"]["amount"]))
    kind = _refusal(coupon, customer, total, cur)
    if kind:
        conn.rollback()
        return _refused(kind)
    discount = Decimal(str(body["discount"]["amount"]))
    currency = body["orderTotal"]["currency"]
    redemption_id = uuid.uuid4().hex
    cur.execute(
        "UPDATE coupons SET redemption_count = redemption_count + 1 WHERE id = %s", (coupon["id"],)
    )
    cur.execute(
        "INSERT INTO redemptions (id, tenant_id, coupon_id, customer_number,"
        " order_total_amount, order_total_currency, discount_amount, discount_currency,"
        " order_id, redeemed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
        (
            redemption_id,
            row["id"],
            coupon["id"],
            customer,
            total,
            currency,
            discount,
            currency,
            body.get("orderId"),
        ),
    )
    event = {
        "tenant": tenant,
        "couponCode": coupon["code"],
        "redemptionId": redemption_id,
        "customerNumber": customer,
        "discount": str(discount),
    }
    cur.execute(
        "INSERT INTO outbox_messages (id, tenant_id, destination, path, topic, payload, status,"
        " attempts, next_attempt_at, created_at) VALUES"
        " (%s, %s, 'events', '', 'hybris.coupon.redemption', %s, 'pending', 0, now(), now())",
        (uuid.uuid4().hex, row["id"], json.dumps(event)),
    )
    link = (
        f"{request.host_url.rstrip('/')}/coupon/v1/{tenant}/coupons/{coupon['code']}"
        f"/redemptions/{redemption_id}"
    )
    answer = json.dumps({"id": redemption_id, "link": link})
    if key is not None:
        cur.execute(
            "UPDATE idempotency_records SET status_code = 201, response_body = %s,"
            " response_headers = %s WHERE id = %s",
            (answer, json.dumps({"Location": link}), claimed["id"]),
        )
    conn.commit()
    return Response(answer, status=201, mimetype="application/json", headers={"Location": link})


@app.post("/promocodes/")
def promo_check():
    body = request.get_json()
    cur = connection().cursor()
    row = _tenant(cur, PROMO_TENANT)
    coupon = _coupon(cur, row["id"], body["coupon"])
    total = Decimal(str(body.get("notGiftsAndNotDeliveryTotal") or 0))
    kind = _refusal(coupon, None, total, cur)
    products = {item["code"] for item in body["order"]["items"]}
    if kind is None and coupon["required_product"] and coupon["required_product"] not in products:
        kind = "coupon_required_product_missing"
    connection().rollback()
    gifts = [] if kind else coupon["free_products"]
    answer = {
        "coupon": body["coupon"],
        "freeProducts": gifts,
        "discounts": 0,
        "discountTotal": 0,
        "errors": [kind] if kind else [],
    }
    return Response(json.dumps(answer), status=200, mimetype="application/json")


@app.post("/brands/<brand>/fans")
def register_fan(brand: str):
    """Fan registration as a synchronous design does it: post to the realizer, then commit."""
    body = request.get_json()
    token_hash = hashlib.sha256(request.headers.get("X-API-Token", "").encode()).hexdigest()
    conn = connection()
    cur = conn.cursor()
    cur.execute("SELECT * FROM tenants WHERE api_token_hash = %s", (token_hash,))
    tenant = cur.fetchone()
    cur.execute(
        "SELECT * FROM discounts WHERE tenant_id = %s AND NOT deleted ORDER BY id DESC LIMIT 1",
        (tenant["id"],),
    )
    discount = cur.fetchone()
    email = body["email"].strip().lower()
    cur.execute(
        "INSERT INTO fans (tenant_id, discount_id, name, email, email_key, created_at)"
        " VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT DO NOTHING",
        (tenant["id"], discount["id"], body["name"], email, email),
    )
    cur.execute(
        "SELECT * FROM fans WHERE discount_id = %s AND email_key = %s FOR UPDATE",
        (discount["id"], email),
    )
    fan = cur.fetchone()
    if fan["coupon_id"] is None:
        code = secrets.token_hex(5).upper()
        cur.execute(
            "INSERT INTO coupons (tenant_id, code, code_key, name, discount_type,"
            " discount_percentage, free_products, free_shipping, valid_for, allow_anonymous,"
            " max_redemptions, max_redemptions_per_customer, active, deleted, redemption_count,"
            " origin, created_at, updated_at, discount_id) VALUES (%s, %s, %s, %s, 'PERCENT',"
            " %s, '[]', false, '[]', false, %s, -1, true, false, 0, 'brands', now(), now(), %s)"
            " RETURNING id",
            (
                tenant["id"],
                code,
                code.casefold(),
                discount["name"],
                discount["discount_amount"],
                discount["usage_limit"],
                discount["id"],
            ),
        )
        coupon_id = cur.fetchone()["id"]
        cur.execute(
            "UPDATE fans SET coupon_id = %s, issued_at = now() WHERE id = %s",
            (coupon_id, fan["id"]),
        )
        payload = {
            "fan_name": body["name"],
            "email": email,
            "coupon_code": code,
            "discount_name": discount["name"],
            "discount_type": "PERCENT",
            "discount_amount": float(discount["discount_amount"]),
            "usage_limit": discount["usage_limit"],
        }
        answer = _http.post(f"{REALIZER_URL}/coupon", json=payload, timeout=5)
        if answer.status_code >= 300:
            conn.rollback()
            return Response("realizer failed", status=502)
    conn.commit()
    return Response("OK", status=200, mimetype="text/plain")
