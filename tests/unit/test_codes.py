"""Generated codes: unambiguous alphabet, enough entropy, valid shape."""

from app.services import codes


def test_generated_codes_avoid_ambiguous_characters():
    seen = set()
    for _ in range(2000):
        code = codes.generate()
        assert len(code) == codes.DEFAULT_LENGTH
        assert not set(code) & set("0O1IL")
        assert codes.is_valid(code)
        seen.add(code)
    assert len(seen) == 2000


def test_entropy_is_at_least_sixty_bits():
    assert codes.entropy_bits() >= 60


def test_code_shape():
    assert codes.is_valid("WINTER_SALE") and codes.is_valid("promo-1.a")
    assert codes.is_valid("ВЕСНА2024") and codes.is_valid("été")
    for bad in ("", "a b", "x/y", "-lead", "_lead", "A\n", "A" * 65, "ß" * 33):
        assert not codes.is_valid(bad)
