"""One canonical form for every identifier that keys a limit, a lookup or an account.

Text that looks the same must count the same: a code typed in fullwidth letters,
a customer number with a trailing space or a zero-width character, an email
with a `+tag` are each the same thing as their plain form. These functions are
pure; callers raise their dialect's 400 when one says the text is unusable.
"""

from __future__ import annotations

import unicodedata

# Dotless i and dotted capital I case-fold to something other than "i" ("ı", "i̇"):
# fold both to "i", so "ıNFO" and "İNFO" are the code "INFO".
_TURKISH_I = str.maketrans({"ı": "i", "\u0307": None})
# Control (Cc) and format (Cf: zero-width space and joiners, direction marks, BOM)
# characters: invisible, so never part of an identifier.
_INVISIBLE = frozenset(("Cc", "Cf"))
# Providers that ignore dots in the local part: "a.lice" is "alice" there.
_DOTLESS_DOMAINS = frozenset(("gmail.com", "googlemail.com"))


def nfkc(text: str) -> str:
    """Compatibility composition: fullwidth "ＩＮＦＯ" is "INFO", "ﬁ" is "fi"."""
    return unicodedata.normalize("NFKC", text)


def has_invisible(text: str) -> bool:
    """True when `text` holds a control or format (zero-width) character."""
    if text.isascii():  # ASCII has no format characters: its invisibles are its controls
        return not text.isprintable()
    return any(unicodedata.category(c) in _INVISIBLE for c in text)


def code(text: str) -> str:
    """A coupon code as stored: NFKC, case kept."""
    return nfkc(text)


def code_key(text: str) -> str:
    """The registry key of a code: NFKC case fold, Turkish i's folded to "i"."""
    if text.isascii():  # the common case (every generated code): NFKC changes nothing
        return text.lower()
    return nfkc(nfkc(text).casefold().translate(_TURKISH_I))


def customer_number(text: str) -> str | None:
    """A customer number's one form (NFKC, trimmed, upper case), or None when it holds
    an invisible character or nothing but space."""
    if has_invisible(text):
        return None
    value = nfkc(nfkc(text).strip().upper())
    return value or None


def email_key(email: str) -> str:
    """The key of an email address: one inbox, one key.

    NFKC and case fold; the `+tag` of the local part dropped; dots dropped where the
    provider ignores them; the domain as IDNA (punycode), so "exämple.com" and
    "xn--exmple-cua.com" are one domain.
    """
    text = nfkc(email).strip().casefold()
    local, _, domain = text.rpartition("@")
    local = local.split("+", 1)[0]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # not IDNA-encodable: its case-folded form is its key
    domain = domain.rstrip(".")
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def password(text: str) -> str:
    """A password as hashed and compared: NFKC, so composed and decomposed "café" match."""
    return nfkc(text)
