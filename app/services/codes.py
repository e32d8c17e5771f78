"""Coupon code generation and the shape of acceptable codes."""

from __future__ import annotations

import math
import re
import secrets

# No 0/O, 1/I/L: codes are read aloud and typed from print.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
DEFAULT_LENGTH = 13  # 13 * log2(31) = 64.4 bits
# Letters of any script (promo codes like "ВЕСНА"), digits, '_', '.', '-'.
CODE_PATTERN = re.compile(r"[^\W_][\w.-]{0,63}")


def generate(length: int = DEFAULT_LENGTH, prefix: str = "") -> str:
    """A random code from the unambiguous alphabet."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


def entropy_bits(length: int = DEFAULT_LENGTH) -> float:
    """Bits of randomness in a generated code of this length."""
    return length * math.log2(len(ALPHABET))


def is_valid(code: str) -> bool:
    """Letters, digits, '_', '.', '-', at most 64, also once case-folded ("ß" -> "ss")."""
    return bool(CODE_PATTERN.fullmatch(code)) and len(code.casefold()) <= 64
