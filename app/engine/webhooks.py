"""Webhook endpoints per tenant: the tenant's own subscribers, each with its own secret.

An event is written to the outbox in the transaction of the change it reports: one
message per active endpoint subscribed to its type (`emit`, or the redemption's own
statement), delivered by the outbox worker (`worker.deliver_webhook`) in the Standard
Webhooks form, signed with the endpoint's secret (and, for a day after a rotation, the previous one
too: several space-separated signatures). Secrets are stored sealed (app.security) and
shown once. Server-side request forgery: an address that resolves to a loopback,
private, link-local, unspecified, multicast or reserved range is refused at delivery
time (unless WEBHOOK_ALLOW_PRIVATE), redirects are not followed, and production needs
https. An endpoint failing for 3 days is switched off.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import JSON, String, bindparam, cast, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session

from app.database import utcnow
from app.engine import signatures
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.models import OutboxMessage, OutboxStatus, Tenant, WebhookAttempt, WebhookEndpoint
from app.security import seal, unseal_with

WEBHOOK = "webhook"  # the outbox destination of endpoint deliveries
TYPES = (
    "redemption.created",
    "redemption.rolled_back",
    "hold.created",
    "hold.confirmed",
    "hold.released",
    "coupon.created",
    "coupon.updated",
    "coupon.deleted",
    "campaign.completed",
    "campaign.failed",
    "budget.exhausted",
    "ping",
)
MAX_ENDPOINTS = 20
ROTATION_OVERLAP = timedelta(hours=24)
DISABLE_AFTER = timedelta(days=3)
ATTEMPTS_SHOWN = 100

E = WebhookEndpoint.__table__.c
OUTBOX = OutboxMessage.__table__


class EndpointNotFound(NotFound):
    type, message = "webhook_endpoint_not_found", "Webhook endpoint not found"


class DeliveryNotFound(NotFound):
    type, message = "webhook_delivery_not_found", "No dead delivery by this id to this endpoint"


# --- writing events ------------------------------------------------------------------


def _message_id(dialect: str):
    if dialect == "sqlite":
        return func.lower(func.hex(func.randomblob(16)))
    return func.md5(cast(func.random(), String) + cast(func.clock_timestamp(), String) + E.id)


def fan_out_select(dialect: str, prefix: str = "w_"):
    """SELECT of one outbox row per active endpoint of the tenant subscribed to the type
    (parameters: <prefix>tenant_id, topic, pattern, payload, now)."""
    now = bindparam(prefix + "now", type_=OUTBOX.c.created_at.type)
    return select(
        _message_id(dialect),
        E.tenant_id,
        literal(WEBHOOK),
        literal(""),
        bindparam(prefix + "topic", type_=String),
        bindparam(prefix + "payload", type_=JSON),
        literal(OutboxStatus.PENDING),
        literal(0),
        now,
        now,
        E.id,
    ).where(
        E.tenant_id == bindparam(prefix + "tenant_id"),
        E.active.is_(True),
        or_(E.event_filter.like(bindparam(prefix + "pattern")), E.event_filter == ",*,"),
    )


FAN_OUT_COLUMNS = (
    "id",
    "tenant_id",
    "destination",
    "path",
    "topic",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "endpoint_id",
)


def hook_params(tenant_id: int, event_type: str, payload: dict, now: datetime) -> dict:
    return {
        "w_tenant_id": tenant_id,
        "w_topic": event_type,
        "w_pattern": f"%,{event_type},%",
        "w_payload": payload,
        "w_now": now,
    }


def emit(session: Session, tenant_id: int, event_type: str, payload: dict) -> None:
    """Queue `event_type` for every endpoint of the tenant that wants it, in the caller's
    transaction."""
    dialect = session.get_bind().dialect.name
    statement = OUTBOX.insert().from_select(list(FAN_OUT_COLUMNS), fan_out_select(dialect))
    session.execute(statement, hook_params(tenant_id, event_type, payload, utcnow()))


# --- endpoints -------------------------------------------------------------------------


def _filter(events: list[str]) -> str:
    return "," + ",".join(sorted(set(events))) + ","


def check_url(url: str, *, require_https: bool, allow_private: bool) -> str | None:
    """Why the URL cannot be an endpoint (None: it can)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "Not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "Must be an http(s) URL with a host"
    if require_https and parts.scheme != "https":
        return "Must be https"
    if parts.username or parts.password:
        return "Must not carry credentials"
    try:
        literal_ip = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None  # a name: checked against what it resolves to at each delivery
    if not allow_private and blocked(literal_ip):
        return "Must not be a loopback, private, link-local or reserved address"
    return None


def blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )


@dataclass(frozen=True)
class UrlPolicy:
    """What an endpoint's URL must be: https (production), a public address unless the
    sandbox allows private ones (WEBHOOK_ALLOW_PRIVATE)."""

    require_https: bool
    allow_private: bool

    def check(self, url: str) -> None:
        problem = check_url(url, require_https=self.require_https, allow_private=self.allow_private)
        if problem:
            raise ValidationFailed(details=[_invalid("url", problem)])


def create_endpoint(
    *,
    tenant: TenantRef,
    url: str,
    events: list[str],
    description: str | None,
    secret_key: str,
    policy: UrlPolicy,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (the only time it is shown)."""
    policy.check(url)
    secret = signatures.new_secret()
    with unit_of_work() as session:
        # The tenant's row lock makes racing creates count one after the other.
        session.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update())
        count = session.scalar(select(func.count()).where(E.tenant_id == tenant.id))
        if count >= MAX_ENDPOINTS:
            raise ValidationFailed(
                details=[_invalid("url", f"A tenant has at most {MAX_ENDPOINTS} endpoints")]
            )
        endpoint = WebhookEndpoint(
            tenant_id=tenant.id,
            url=url,
            events=sorted(set(events)),
            event_filter=_filter(events),
            description=description,
            active=True,
            secret=seal(secret, secret_key),
        )
        session.add(endpoint)
    return endpoint, secret


def _invalid(field: str, message: str) -> dict:
    return {"field": field, "type": "invalid", "message": message}


def list_endpoints(*, tenant: TenantRef) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant.id)
    return list(db.session.scalars(query.order_by(WebhookEndpoint.created_at)))


def get_endpoint(*, tenant: TenantRef, endpoint_id: str, lock: bool = False) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant.id, WebhookEndpoint.id == endpoint_id
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    found = db.session.scalar(query)
    if found is None:
        raise EndpointNotFound()
    return found


def update_endpoint(
    *, tenant: TenantRef, endpoint_id: str, changes: dict, policy: UrlPolicy
) -> WebhookEndpoint:
    """Change url, events, description or active (switching it on again clears why it
    was switched off, and its failing streak)."""
    if "url" in changes:
        policy.check(changes["url"])
    with unit_of_work():
        endpoint = get_endpoint(tenant=tenant, endpoint_id=endpoint_id, lock=True)
        for field in ("url", "description"):
            if field in changes:
                setattr(endpoint, field, changes[field])
        if "events" in changes:
            endpoint.events = sorted(set(changes["events"]))
            endpoint.event_filter = _filter(changes["events"])
        if "active" in changes:
            endpoint.active = changes["active"]
            if endpoint.active:
                endpoint.disabled_reason = endpoint.failing_since = None
    return endpoint


def delete_endpoint(*, tenant: TenantRef, endpoint_id: str) -> None:
    """Remove it, with its queued deliveries and its log."""
    with unit_of_work() as session:
        endpoint = get_endpoint(tenant=tenant, endpoint_id=endpoint_id, lock=True)
        session.execute(delete(OutboxMessage).where(OutboxMessage.endpoint_id == endpoint.id))
        session.execute(delete(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id))
        session.delete(endpoint)


def rotate_secret(*, tenant: TenantRef, endpoint_id: str, secret_key: str) -> str:
    """A new secret (shown once); for a day, deliveries carry signatures under both."""
    secret = signatures.new_secret()
    with unit_of_work():
        endpoint = get_endpoint(tenant=tenant, endpoint_id=endpoint_id, lock=True)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_until = utcnow() + ROTATION_OVERLAP
        endpoint.secret = seal(secret, secret_key)
    return secret


def send_test(*, tenant: TenantRef, endpoint_id: str) -> str:
    """Queue a `ping` to this endpoint alone; its message id."""
    with unit_of_work() as session:
        endpoint = get_endpoint(tenant=tenant, endpoint_id=endpoint_id)
        message = OutboxMessage(
            tenant_id=tenant.id,
            destination=WEBHOOK,
            path="",
            topic="ping",
            payload={"tenant": tenant.slug, "endpointId": endpoint.id},
            endpoint_id=endpoint.id,
        )
        session.add(message)
        session.flush()
        return message.id


def attempts(*, tenant: TenantRef, endpoint_id: str) -> list[WebhookAttempt]:
    """The last 100 delivery attempts to the endpoint, newest first."""
    endpoint = get_endpoint(tenant=tenant, endpoint_id=endpoint_id)
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.endpoint_id == endpoint.id)
        .order_by(WebhookAttempt.seq.desc())
        .limit(ATTEMPTS_SHOWN)
    )
    return list(db.session.scalars(query))


def retry_delivery(*, tenant: TenantRef, endpoint_id: str, message_id: str) -> None:
    """Queue a dead delivery to this endpoint again, with a fresh retry budget."""
    with unit_of_work() as session:
        endpoint = get_endpoint(tenant=tenant, endpoint_id=endpoint_id)
        now = utcnow()
        done = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.endpoint_id == endpoint.id,
                OutboxMessage.status == OutboxStatus.DEAD,
            )
            .values(
                status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, retrying_since=now
            )
        )
        if done.rowcount != 1:
            raise DeliveryNotFound()


def reseal_all(secret_keys: list[str]) -> int:
    """Seal every endpoint's secrets under SECRET_KEY (secret_keys[0]) now, so the key
    before a rotation can leave SECRET_KEY_FALLBACKS; returns how many were sealed anew."""
    count = 0
    with unit_of_work() as session:
        for endpoint in session.scalars(select(WebhookEndpoint).with_for_update()):
            for field in ("secret", "previous_secret"):
                sealed = getattr(endpoint, field)
                if sealed is None:
                    continue
                secret, opened_with = unseal_with(sealed, secret_keys)
                if opened_with:
                    setattr(endpoint, field, seal(secret, secret_keys[0]))
                    count += 1
    return count
