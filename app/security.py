"""Secret handling: random tokens, their hashes, password hashing."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_password_hasher = PasswordHasher()


def new_token(nbytes: int = 24) -> str:
    """A URL-safe random secret."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """SHA-256 hex of a high-entropy token (fit for tokens, not for passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(token), token_hash)


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _password_hasher.hash(password)


def password_matches(password: str, password_hash: str) -> bool:
    """Verify a password against its argon2 hash."""
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A valid hash to verify against when the account does not exist, so that
# login takes the same time for unknown and known emails.
DUMMY_PASSWORD_HASH = _password_hasher.hash("not-a-real-password")


# --- secrets that must be read back (webhook signing secrets) ---------------------------


def _sealing_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"coupon-service sealed secrets\0" + secret_key.encode()).digest()


def seal(plaintext: str, secret_key: str) -> bytes:
    """A secret the service must use again, encrypted (AES-256-GCM) under a key derived
    from SECRET_KEY: what is stored is never the secret itself."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return nonce + AESGCM(_sealing_key(secret_key)).encrypt(nonce, plaintext.encode(), None)


def unseal(sealed: bytes, secret_keys: list[str]) -> str:
    """The secret, opened with SECRET_KEY or one of its fallbacks (ValueError: none)."""
    return unseal_with(sealed, secret_keys)[0]


def unseal_with(sealed: bytes, secret_keys: list[str]) -> tuple[str, int]:
    """The secret and the index of the key that opened it (0: SECRET_KEY itself)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    for index, key in enumerate(secret_keys):
        try:
            opened = AESGCM(_sealing_key(key)).decrypt(sealed[:12], sealed[12:], None)
        except InvalidTag:
            continue
        return opened.decode(), index
    raise ValueError("sealed under a key that is neither SECRET_KEY nor a fallback")
