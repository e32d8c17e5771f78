"""Coupon code generation and the shape of acceptable codes."""

from __future__ import annotations

import math
import re
import secrets
import unicodedata

from app.engine.canonical import code_key, nfkc

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
    """Letters, digits, '_', '.', '-', at most 64 once NFKC-normalised, and a key
    (the NFKC case fold: "ß" -> "ss") of at most 64."""
    return bool(CODE_PATTERN.fullmatch(nfkc(code))) and len(code_key(code)) <= 64


# --- bulk codes: a charset and a pattern ------------------------------------------------

# Named charsets for campaigns; "readable" (the default) leaves out 0/O, 1/I/L.
CHARSETS = {
    "readable": ALPHABET,
    "alphanumeric": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "alphanumeric_upper": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "alphabetic": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "uppercase": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "lowercase": "abcdefghijklmnopqrstuvwxyz",
    "numbers": "0123456789",
}
DEFAULT_CHARSET = "readable"
PLACEHOLDER = "#"
MAX_CHARSET = 256


class BadCodeSpec(ValueError):
    """A pattern or charset that cannot make valid codes; `field` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class CodeSpec:
    """How to draw codes: a pattern whose `#` are characters of a charset."""

    def __init__(self, pattern: str, charset: str):
        self.pattern = pattern
        self.charset = charset
        self.slots = pattern.count(PLACEHOLDER)
        # Literal text and the run of slots after it: "AB-##-#" -> [("AB-", 2), ("-", 1)].
        self._groups = [
            (literal, len(run))
            for literal, run in re.findall(r"([^#]*)(#*)", pattern)
            if literal or run
        ]

    @classmethod
    def build(
        cls,
        *,
        length: int | None = None,
        pattern: str | None = None,
        prefix: str = "",
        postfix: str = "",
        charset: str | None = None,
        characters: str | None = None,
    ) -> CodeSpec:
        """Check a campaign's code configuration; BadCodeSpec says what is wrong."""
        if charset is not None and characters is not None:
            raise BadCodeSpec("characters", "Give a charset name or characters, not both")
        if characters is not None:
            chars = "".join(dict.fromkeys(characters))  # distinct, in order
            if len(chars) < 2 or len(chars) > MAX_CHARSET:
                raise BadCodeSpec("characters", f"2 to {MAX_CHARSET} distinct characters")
            if not all(c.isalnum() for c in chars):
                raise BadCodeSpec("characters", "Letters and digits only")
            unstable = _unstable_characters(chars)
            if unstable:
                raise BadCodeSpec(
                    "characters",
                    f"{unstable!r}: each character must stay one character when normalised "
                    "and case-folded (as codes are compared), and none may combine with another",
                )
        else:
            name = charset or DEFAULT_CHARSET
            if name not in CHARSETS:
                raise BadCodeSpec("charset", f"Unknown charset; one of {', '.join(CHARSETS)}")
            chars = CHARSETS[name]
        if pattern is not None and length is not None:
            raise BadCodeSpec("pattern", "Give a length or a pattern, not both")
        if pattern is None:
            pattern = PLACEHOLDER * (length or 8)
        elif PLACEHOLDER not in pattern:
            raise BadCodeSpec("pattern", f"A pattern needs at least one '{PLACEHOLDER}'")
        spec = cls(prefix + pattern + postfix, chars)
        sample = spec.pattern.replace(PLACEHOLDER, chars[0])
        if not is_valid(sample):
            field = "pattern" if pattern and not (prefix or postfix) else "prefix"
            raise BadCodeSpec(
                field,
                "Codes would not be valid: letters, digits, '_', '.', '-', starting with a "
                "letter or digit, 64 characters at most",
            )
        return spec

    @property
    def space(self) -> int:
        """How many distinct codes, ignoring case, the pattern can make."""
        return len({code_key(c) for c in self.charset}) ** self.slots

    def draw(self, count: int) -> list[str]:
        """`count` random codes (not yet checked against each other or the database)."""
        text = _random_text(self.charset, count * self.slots)
        width = self.slots
        if all(run == 0 for _, run in self._groups[1:]):
            # prefix + slots + postfix: one slice per code.
            head = self._groups[0][0]
            tail = "".join(literal for literal, _ in self._groups[1:])
            return [head + text[i : i + width] + tail for i in range(0, count * width, width)]
        out = []
        for start in range(0, count * width, width):
            parts, offset = [], start
            for literal, run in self._groups:
                parts.append(literal)
                parts.append(text[offset : offset + run])
                offset += run
            out.append("".join(parts))
        return out


def _unstable_characters(chars: str) -> str:
    """The characters of a charset that a drawn code would not keep as they are: those
    whose NFKC form or key is not one character (so a code's key could outgrow its
    column: "ß" folds to "ss"), and those that compose with a neighbour."""
    bad = [c for c in chars if nfkc(c) != c or len(code_key(c)) != 1 or unicodedata.combining(c)]
    if not bad and not chars.isascii():
        bad = [a + b for a in chars for b in chars if nfkc(a + b) != a + b][:1]
    return "".join(bad)


def _random_text(chars: str, length: int) -> str:
    """`length` characters drawn uniformly from `chars` (secrets-grade randomness).

    Random bytes are mapped through a table; bytes past the largest multiple of
    the charset's size are dropped (rejection sampling, no modulo bias).
    """
    size = len(chars)
    limit = 256 - 256 % size
    pieces: list[str] = []
    missing = length
    if chars.isascii():
        table = bytes(ord(chars[b % size]) if b < limit else 0 for b in range(256))
        rejected = bytes(range(limit, 256))
        while missing > 0:
            chunk = secrets.token_bytes(missing + missing // 4 + 16).translate(table, rejected)
            pieces.append(chunk[:missing].decode("ascii"))
            missing -= min(len(chunk), missing)
    else:
        mapping = {b: (chars[b % size] if b < limit else None) for b in range(256)}
        while missing > 0:
            chunk = secrets.token_bytes(missing + missing // 4 + 16).decode("latin-1")
            chunk = chunk.translate(mapping)
            pieces.append(chunk[:missing])
            missing -= min(len(chunk), missing)
    return "".join(pieces)
