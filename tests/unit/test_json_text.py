"""JSON read by orjson where it reads what the standard library reads, and only there."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import json_text

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, -(10**19) + 1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(values)
def test_it_reads_what_the_standard_library_reads(value):
    text = json.dumps(value, ensure_ascii=False)
    expected = json.loads(text)
    assert json_text.loads(text) == expected
    assert json_text.loads(text.encode()) == expected


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",
        "-9223372036854775809",
        '{"q": -99999999999999999999}',
        "NaN",
        "[1e400]",
    ],
)
def test_what_orjson_would_read_otherwise_goes_to_the_standard_library(text):
    read = json_text.loads(text)
    expected = json.loads(text)
    assert repr(read) == repr(expected)  # NaN is not equal to itself; its repr is
    assert type(read) is type(expected)
