"""Secret handling: random tokens, their hashes, password hashing."""

from __future__ import annotations

import hashlib
import hmac
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
