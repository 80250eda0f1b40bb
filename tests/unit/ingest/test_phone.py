"""Phone normalisation: E.164 out, whatever the formatting in; property tests over many regions."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.domain.phone import INVALID_MARK, invalid_parts, is_region, normalise, normalise_many

pytestmark = pytest.mark.unit

_REGIONS = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if phonenumbers.example_number(r) is not None)
_FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.RFC3966,
]


@given(region=st.sampled_from(_REGIONS), style=st.sampled_from(_FORMATS))
def test_every_formatting_of_a_valid_number_normalises_to_its_e164(region: str, style: int) -> None:
    example = phonenumbers.example_number(region)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    text = phonenumbers.format_number(example, style).removeprefix("tel:")
    assert normalise(text, None).e164 == e164
    assert normalise(e164, None).e164 == e164  # E.164 is a fixed point


@given(region=st.sampled_from(_REGIONS))
def test_a_national_number_uses_the_default_region(region: str) -> None:
    example = phonenumbers.example_number(region)
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    expected = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert normalise(national, region).e164 == expected


def test_without_plus_and_without_a_default_region_it_is_invalid() -> None:
    result = normalise("4155550123", None)
    assert result.e164 is None and "default region" in result.problem
    assert normalise("4155550123", "US").e164 == "+14155550123"  # spreadsheets strip the '+'


@pytest.mark.parametrize("raw", ["", "   ", "not a number", "+1234567890", "+999123456", "12"])
def test_garbage_is_invalid_with_a_reason(raw: str) -> None:
    result = normalise(raw, "US")
    assert result.e164 is None and result.problem


@given(raws=st.lists(st.text(max_size=20), max_size=20))
def test_normalise_many_keeps_order_and_the_raw_cell_of_invalid_numbers(raws: list[str]) -> None:
    results = normalise_many(raws, "US")
    assert len(results) == len(raws)
    for raw, result in zip(raws, results, strict=True):
        single = normalise(raw, "US")
        if single.e164 is not None:
            assert result == single.e164
        else:
            assert result.startswith(INVALID_MARK)
            assert invalid_parts(result) == (single.problem, raw.strip())


def test_regions() -> None:
    assert is_region("us") and is_region("FR") and not is_region("XX")
