"""Generated codes: unambiguous alphabet, enough entropy, valid shape."""

import re
from collections import Counter

import pytest

from app.engine import codes
from app.engine.codes import CHARSETS, BadCodeSpec, CodeSpec


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


# --- campaign code specs ------------------------------------------------------------------


def test_spec_from_length_prefix_and_postfix():
    spec = CodeSpec.build(length=6, prefix="SPRING-", postfix="-24")
    assert spec.pattern == "SPRING-######-24" and spec.charset == CHARSETS["readable"]
    codes = spec.draw(500)
    assert all(re.fullmatch(r"SPRING-[A-HJKMNP-Z2-9]{6}-24", code) for code in codes)
    assert spec.space == 31**6


def test_spec_from_a_pattern_with_several_groups():
    spec = CodeSpec.build(pattern="A##-#-##B", charset="numbers")
    assert all(re.fullmatch(r"A\d\d-\d-\d\dB", code) for code in spec.draw(200))
    assert spec.space == 10**5


def test_space_ignores_case():
    assert CodeSpec.build(pattern="###", characters="aAbBcC").space == 27
    assert CodeSpec.build(length=2, charset="alphanumeric").space == 36**2


def test_draws_are_uniform_over_the_charset():
    """Rejection sampling: 62 characters do not divide 256, and no character is favoured."""
    spec = CodeSpec.build(length=10, charset="alphanumeric")
    counts = Counter("".join(spec.draw(20_000)))
    assert set(counts) == set(CHARSETS["alphanumeric"])
    expected = 200_000 / 62
    assert all(abs(n - expected) < expected * 0.1 for n in counts.values())


def test_non_ascii_characters():
    spec = CodeSpec.build(pattern="##-##", characters="АБВГ")
    assert all(re.fullmatch(r"[АБВГ]{2}-[АБВГ]{2}", code) for code in spec.draw(100))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pattern": "ABC"}, "pattern"),
        ({"pattern": "-##"}, "pattern"),
        ({"pattern": "A B#"}, "pattern"),
        ({"length": 4, "pattern": "##"}, "pattern"),
        ({"charset": "nope"}, "charset"),
        ({"characters": "a"}, "characters"),
        ({"characters": "ab-"}, "characters"),
        ({"charset": "numbers", "characters": "ab"}, "characters"),
        ({"length": 60, "prefix": "ABCDE"}, "prefix"),
    ],
)
def test_bad_specs_name_their_field(kwargs, field):
    with pytest.raises(BadCodeSpec) as error:
        CodeSpec.build(**kwargs)
    assert error.value.field == field
