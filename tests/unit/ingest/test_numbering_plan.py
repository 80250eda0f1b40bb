"""The fast path gives phonenumbers' own answer, field for field, for every shape it covers.

The reference is phonenumbers alone (parse, is_valid_number, format E.164) exactly as ingest calls it.
Numbers are generated for every country calling code: valid ones from each region's example numbers
of every type (then mutated: a digit changed, added or dropped), and random digit strings; with or
without '+', with simple or other punctuation, with a default region or none.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from ingest.domain.numbering_plan import NOT_VALID, plain_e164
from ingest.domain.phone import Normalised, normalise, normalise_many

pytestmark = pytest.mark.unit

_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_TYPES = [
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
]


def _examples() -> list[phonenumbers.PhoneNumber]:
    found = []
    for region in _REGIONS:
        for kind in _TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append(number)
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            found.append(number)
    return found


_EXAMPLES = _examples()


def reference(raw: str, default_region: str | None) -> Normalised:
    """What ingest answered before the fast path: phonenumbers alone."""
    text = raw.strip()
    if not text:
        return Normalised(None, "the phone number is empty")
    international = text.startswith("+")
    if not international and not default_region:
        return Normalised(None, "no '+' country code, and the workspace has no default region")
    try:
        parsed = phonenumbers.parse(text, None if international else default_region)
    except phonenumbers.NumberParseException as exc:
        return Normalised(None, f"not a phone number: {exc._msg}")
    if not phonenumbers.is_valid_number(parsed):
        return Normalised(None, "not a valid number for its country")
    return Normalised(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _check(text: str, region: str | None) -> None:
    expected = reference(text, region)
    assert normalise(text, region) == expected, (text, region)
    fast = plain_e164(text.strip(), region)
    if fast is not None:  # covered: then it is phonenumbers' answer, and phonenumbers does not raise
        assert fast == (expected.e164 if expected.e164 is not None else NOT_VALID), (text, region)
        assert expected.e164 is not None or expected.problem == "not a valid number for its country"


regions = st.sampled_from([*_REGIONS, None, None, "us", "gb", "ZZ", "001", ""])
simple_punctuation = st.sampled_from(["", "", "", " ", "-", ".", "(", ")", " - "])
other_punctuation = st.sampled_from(["/", "x", "#", ",", ";", "~", "\u00a0", "\uff10", "+", "a", "ext"])


@st.composite
def digits_of_a_number(draw: st.DrawFn) -> str:
    """Country calling code and national digits (no '+'), from an example number or at random."""
    if draw(st.booleans()):
        number = draw(st.sampled_from(_EXAMPLES))
        digits = list(f"{number.country_code}{phonenumbers.national_significant_number(number)}")
        mutation = draw(st.sampled_from(["none", "none", "change", "add", "drop"]))
        if mutation == "change":
            digits[draw(st.integers(0, len(digits) - 1))] = draw(st.sampled_from("0123456789"))
        elif mutation == "add":
            digits.insert(draw(st.integers(0, len(digits))), draw(st.sampled_from("0123456789")))
        elif mutation == "drop" and len(digits) > 1:
            del digits[draw(st.integers(0, len(digits) - 1))]
        return "".join(digits)
    code = str(draw(st.sampled_from(_CODES)))
    return code + draw(st.text("0123456789", min_size=0, max_size=18))


@st.composite
def written(draw: st.DrawFn, digits: str) -> str:
    """`digits` as a person or a spreadsheet writes them: punctuation between some of them."""
    out = []
    for d in digits:
        if draw(st.integers(0, 9)) == 0:
            out.append(draw(other_punctuation if draw(st.integers(0, 7)) == 0 else simple_punctuation))
        out.append(d)
    return "".join(out)


@st.composite
def phone_cells(draw: st.DrawFn) -> tuple[str, str | None]:
    digits = draw(digits_of_a_number())
    shape = draw(st.sampled_from(["e164", "e164", "international", "national", "national", "digits"]))
    if shape == "national":
        # The cell without its calling code, read with a default region (ideally the number's own).
        for size in (1, 2, 3):
            if int(digits[:size] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                digits = digits[size:]
                break
        if draw(st.booleans()):
            digits = draw(st.sampled_from(["", "0", "1", "00", "011", "8"])) + digits
    text = draw(written(digits)) if shape in ("international", "national") else digits
    if shape in ("e164", "international"):
        text = "+" + text
    padding = draw(st.sampled_from(["", "", " ", "\t"]))
    return padding + text + padding, draw(regions)


@settings(max_examples=4000, deadline=None)
@given(cell=phone_cells())
@example(cell=("+14155550123", None))
@example(cell=("(415) 555-0123", "US"))
def test_the_fast_path_gives_phonenumbers_answer(cell: tuple[str, str | None]) -> None:
    _check(*cell)


@settings(max_examples=500, deadline=None)
@given(raw=st.text(alphabet="+0123456789 ().-/x#", max_size=24), region=regions)
def test_any_text_made_of_number_characters(raw: str, region: str | None) -> None:
    _check(raw, region)


@pytest.mark.parametrize("number", _EXAMPLES, ids=lambda n: f"+{n.country_code}")
def test_every_example_number_in_e164_and_national_form(number: phonenumbers.PhoneNumber) -> None:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    _check(e164, None)
    _check(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL), None)
    region = phonenumbers.region_code_for_number(number)
    if region and region != "001":
        _check(phonenumbers.national_significant_number(number), region)
        _check(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL), region)


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("+14155550123", None),  # US
        ("+1 (416) 555-0199", None),  # Canada: the same calling code, found by its own patterns
        ("+1 268 464 1234", None),  # Antigua: a NANPA region found by its leading digits
        ("+1 800 555 0199", "US"),  # toll free
        ("+44 7911 123456", None),  # GB mobile
        ("+44 1624 456789", None),  # Isle of Man shares +44
        ("+44 07911 123456", None),  # a national prefix after the calling code: left to phonenumbers
        ("+7 701 123 4567", None),  # Kazakhstan shares +7 with Russia
        ("+262 269 61 1234", None),  # Mayotte shares +262 with Réunion
        ("+39 06 698 12345", None),  # Italy keeps the leading zero
        ("+800 1234 5678", None),  # a non-geographic calling code
        ("+55 11 98765 4321", None),  # Brazil, whose national-prefix rule transforms
        ("+0123456789", None),  # no calling code starts with 0
        ("+999123456", None),  # an unknown calling code
        ("+1555", None),  # too short for its country
        ("+1 415 555 0123 4567 8901 2345", None),  # too long
        ("4155550123", "US"),
        ("415.555.0123", "US"),
        ("1 415 555 0123", "US"),  # starts with the region's calling code: left to phonenumbers
        ("011 44 7911 123456", "US"),  # the region's international prefix: left to phonenumbers
        ("07911 123456", "GB"),  # a national prefix: left to phonenumbers
        ("4155550123", "us"),  # phonenumbers takes the region as given, case included
        ("4155550123", "ZZ"),
        ("415-555-0123 x12", "US"),  # an extension: left to phonenumbers
        ("12", "US"),
    ],
)
def test_targeted_cases(text: str, region: str | None) -> None:
    _check(text, region)


def test_the_fast_path_covers_the_common_shapes() -> None:
    """Not a speed test: a guard that the covered shapes stay covered (else everything is slow)."""
    covered = [plain_e164("+14155550123", None), plain_e164("(415) 555-0123", "US")]
    covered += [plain_e164("+" + str(n.country_code) + str(n.national_number), None) for n in _EXAMPLES]
    assert sum(c is not None for c in covered) >= 0.9 * len(covered)
    assert covered[:2] == ["+14155550123", "+14155550123"]


def test_normalise_many_agrees_with_the_reference() -> None:
    cells = ["+14155550123", "415 555 0123", "+1555", "not a number", "", "+44 07911 123456"]
    for raw, result in zip(cells, normalise_many(cells, "US"), strict=True):
        expected = reference(raw, "US")
        assert result == (expected.e164 or f"!{expected.problem}\x1f{raw.strip()}")
