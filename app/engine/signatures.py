"""Standard Webhooks signatures: `whsec_` secrets and `v1,` HMAC-SHA256 signatures that
any `standardwebhooks` library verifies."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form: `whsec_` + base64 of 32 bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("EVENTS_SECRET must look like whsec_<base64>")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError("EVENTS_SECRET must be whsec_ followed by base64") from None
    if len(key) < 24:
        raise ValueError("EVENTS_SECRET must hold at least 24 random bytes")
    return key


def sign(key: bytes, message_id: str, timestamp: str, body: bytes) -> str:
    """`v1,` + base64 HMAC-SHA256 over `id.timestamp.body` (the spec's signature)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
