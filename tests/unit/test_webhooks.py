"""Event signatures verify with the Standard Webhooks reference library itself."""

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.engine import outbox, signatures


def signed(secret: str, body: bytes, message_id="msg_1", timestamp=None):
    timestamp = timestamp or str(int(datetime.now(UTC).timestamp()))
    key = signatures.secret_key(secret)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signatures.sign(key, message_id, timestamp, body),
    }


def test_signature_verifies_with_the_reference_library():
    secret = signatures.new_secret()
    body = json.dumps({"type": "hybris.coupon.redemption", "data": {"é": 1}}).encode()
    assert Webhook(secret).verify(body, signed(secret, body)) == json.loads(body)


def test_tampering_or_another_secret_fails_verification():
    secret = signatures.new_secret()
    body = b'{"a":1}'
    headers = signed(secret, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signatures.new_secret()).verify(body, headers)


def test_event_body_is_the_standard_envelope():
    message = {
        "destination": outbox.EVENTS,
        "topic": "hybris.coupon.redemption",
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "payload": {"couponCode": "X"},
    }
    assert json.loads(outbox.wire_body(message)) == {
        "type": "hybris.coupon.redemption",
        "timestamp": "2026-01-02T03:04:05Z",
        "data": {"couponCode": "X"},
    }
    message["destination"] = outbox.COUPON_REALIZER
    assert json.loads(outbox.wire_body(message)) == {"couponCode": "X"}
