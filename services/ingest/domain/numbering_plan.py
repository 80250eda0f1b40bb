"""The common shapes of a phone number, validated straight from phonenumbers' own metadata.

phonenumbers spends ~40 µs on a number, almost all of it in Python around a handful of regex calls:
extracting the number from free text, trying extensions, international and national prefixes, building
objects, then walking up to eleven number-type patterns. For the shapes an upload is mostly made of —
`+` and digits, or digits alone with a default region, with at most spaces, dashes, dots and parentheses
between them — every one of those steps is decided by a few facts about the country calling code, so
this module takes the same decisions with the same metadata and the same patterns, compiled once per
calling code (`CallingCodeRule`), and returns the same answer as

    parse(text, None if text starts with "+" else region) → is_valid_number → format_number(E164)

Whenever a step could go another way than the plain one (an international or national prefix at the
start, the default region's calling code at the start, a country code phonenumbers does not know, too few
or too many digits), the input is not covered and the caller asks phonenumbers itself. Why each step is
exact is said where it is taken; `tests/unit/ingest/test_numbering_plan.py` compares both field by field
over generated numbers of every calling code.
"""

from __future__ import annotations

import re
from functools import cache

from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    REGION_CODE_FOR_NON_GEO_ENTITY,
    SUPPORTED_REGIONS,
    PhoneMetadata,
    PhoneNumberDesc,
    country_code_for_valid_region,
)

NOT_VALID = ""
"""`plain_e164`'s answer for a number that phonenumbers parses but does not find valid for its country."""

# ASCII digits with at most simple punctuation, and '+' only in front. For such text phonenumbers'
# extraction keeps every digit in order (no RFC 3966 parts, no second number, no extension label: those
# need ';', ',', '#', '/', '~', 'x' or letters), the "viable number" pattern matches from 3 digits on,
# and normalising yields exactly the digits.
_PLAIN = re.compile(r"\+?[0-9 ().\-]+")
_PUNCTUATION = str.maketrans("", "", " ().-")
_MAX_INPUT = 250  # phonenumbers' _MAX_INPUT_STRING_LENGTH
_MIN_NSN, _MAX_NSN = 2, 17  # its _MIN_LENGTH_FOR_NSN and _MAX_LENGTH_FOR_NSN
_MAX_CALLING_CODE = 3

# The number types `_number_type_helper` tries after the general description; any match means "not
# UNKNOWN", which is all validity needs (the order only decides which type is reported).
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)
# Constructs under which "fullmatch(a|b)" might differ from "fullmatch(a) or fullmatch(b)": none appear in
# the metadata today; a pattern with one is still checked, only on its own.
_NOT_COMBINABLE = re.compile(r"\(\?[^:]|\\[1-9]|[$^]")


def _usable(desc: PhoneNumberDesc | None) -> bool:
    # `_match_national_number` treats a missing or empty pattern as "never matches".
    return desc is not None and bool(desc.national_number_pattern)


class RegionRule:
    """`_number_type_helper(nsn, metadata) != UNKNOWN` for one region's metadata, as one pattern per
    length of the national significant number: the general description (its lengths, then its pattern)
    and any of the number types whose possible lengths admit that length (phonenumbers checks a type's
    lengths before its pattern)."""

    def __init__(self, metadata: PhoneMetadata) -> None:
        general = metadata.general_desc
        self._general = general if general is not None and _usable(general) else None
        names = _TYPES if metadata.same_mobile_and_fixed_line_pattern else (*_TYPES, "mobile")
        self._types: list[PhoneNumberDesc] = []
        for name in names:
            desc: PhoneNumberDesc | None = getattr(metadata, name)
            if desc is not None and _usable(desc):
                self._types.append(desc)
        self._by_length: dict[int, tuple[re.Pattern[str], ...]] = {}

    def _patterns_for(self, length: int) -> tuple[re.Pattern[str], ...]:
        """Patterns that must all match in full; () when no number of this length is valid."""
        general = self._general
        if general is None or (general.possible_length and length not in general.possible_length):
            return ()
        types = [
            d.national_number_pattern or ""
            for d in self._types
            if not d.possible_length or length in d.possible_length
        ]
        if not types:
            return ()
        general_source = general.national_number_pattern or ""
        if any(_NOT_COMBINABLE.search(s) for s in (general_source, *types)):
            # Kept apart: the general pattern, then each type on its own.
            return (re.compile(general_source), *(re.compile(s) for s in types))
        # fullmatch of "(?=(?:G)\Z)(?:T1|T2|...)" holds exactly when G and one of the Ti match in full.
        joined = "|".join(f"(?:{s})" for s in types)
        return (re.compile(f"(?=(?:{general_source})\\Z)(?:{joined})"),)

    def valid(self, nsn: str) -> bool:
        """True when phonenumbers finds a type for `nsn` (digits) in this region."""
        patterns = self._by_length.get(len(nsn))
        if patterns is None:
            patterns = self._by_length[len(nsn)] = self._patterns_for(len(nsn))
        if len(patterns) == 1:
            return patterns[0].fullmatch(nsn) is not None
        if not patterns:
            return False
        general, *types = patterns
        return general.fullmatch(nsn) is not None and any(p.fullmatch(nsn) is not None for p in types)


def _region_rule(country_code: int, region: str) -> tuple[RegionRule | None, bool]:
    """The rule of one region and whether its calling code is `country_code` (is_valid_number_for_region
    answers False for every number otherwise)."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region.upper())
    if metadata is None:
        return None, False
    same_code = region == REGION_CODE_FOR_NON_GEO_ENTITY or country_code == country_code_for_valid_region(
        region
    )
    return RegionRule(metadata), same_code


class CallingCodeRule:
    """What parsing and validating a number with this country calling code depends on."""

    def __init__(self, country_code: int) -> None:
        self.country_code = country_code
        self.e164_prefix = f"+{country_code}"
        regions = COUNTRY_CODE_TO_REGION_CODE[country_code]
        main = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
        # parse() strips a national prefix with the main region's metadata; a number that starts with one
        # is left to phonenumbers (whether it is stripped depends on what remains).
        self.national_prefix = _national_prefix(main)
        self._single: tuple[RegionRule | None, bool] | None = None
        # For a calling code shared by several regions, region_code_for_number picks the first region
        # whose leading digits match the number or, for a region without leading digits, whose patterns
        # find a type for it; is_valid_number_for_region then decides with that region alone (with the
        # same metadata: a shared calling code has no "001" region).
        self._claims: list[tuple[re.Pattern[str] | None, RegionRule, bool]] = []
        if len(regions) == 1:
            self._single = _region_rule(country_code, regions[0])
            return
        for region in regions:
            metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
            if metadata is None:
                continue
            leading = None if metadata.leading_digits is None else re.compile(metadata.leading_digits)
            rule, same_code = _region_rule(country_code, region)
            assert rule is not None  # the same metadata as above
            self._claims.append((leading, rule, same_code))

    def valid(self, nsn: str) -> bool:
        """is_valid_number for this calling code and national significant number (digits)."""
        if self._single is not None:
            rule, same_code = self._single
            return same_code and rule is not None and rule.valid(nsn)
        for leading, rule, same_code in self._claims:
            if leading is not None:
                if leading.match(nsn):
                    return same_code and rule.valid(nsn)
            elif rule.valid(nsn):
                return same_code
        return False


def _national_prefix(metadata: PhoneMetadata | None) -> re.Pattern[str] | None:
    if metadata is None or not metadata.national_prefix_for_parsing:
        return None
    return re.compile(metadata.national_prefix_for_parsing)


@cache
def calling_code_rule(country_code: int) -> CallingCodeRule:
    """The rule of one calling code, built from phonenumbers' metadata on first use."""
    return CallingCodeRule(country_code)


@cache
def _default_region(region: str) -> tuple[int, str, re.Pattern[str] | None, re.Pattern[str] | None] | None:
    """(calling code, its digits, international prefix, national prefix) of a default region."""
    if region not in SUPPORTED_REGIONS:  # _check_region_for_parsing compares as given, case included
        return None
    metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None or metadata.country_code is None:
        return None
    idd = None if metadata.international_prefix is None else re.compile(metadata.international_prefix)
    return metadata.country_code, str(metadata.country_code), idd, _national_prefix(metadata)


_CALLING_CODES = {str(code): code for code in COUNTRY_CODE_TO_REGION_CODE}


def _international(digits: str) -> str | None:
    if len(digits) <= _MIN_NSN or digits[0] == "0":
        return None  # "too short after IDD", or no calling code starts with 0: parse() raises or retries
    # _extract_country_code: the shortest prefix (of at most 3 digits) that is a known calling code.
    for size in range(1, _MAX_CALLING_CODE + 1):
        country_code = _CALLING_CODES.get(digits[:size])
        if country_code is not None:
            break
    else:
        return None  # an unknown calling code: phonenumbers raises
    nsn = digits[size:]
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN:
        return None
    rule = calling_code_rule(country_code)
    if rule.national_prefix is not None and rule.national_prefix.match(nsn):
        return None
    return rule.e164_prefix + nsn if rule.valid(nsn) else NOT_VALID


def _national(digits: str, region: str) -> str | None:
    facts = _default_region(region)
    if facts is None:
        return None
    country_code, code_digits, idd, national_prefix = facts
    if idd is not None and idd.match(digits):
        return None  # dialled with the region's international prefix
    if digits.startswith(code_digits):
        return None  # parse() may take these digits for the calling code
    if len(digits) > _MAX_NSN:
        return None
    if national_prefix is not None and national_prefix.match(digits):
        return None
    rule = calling_code_rule(country_code)
    return rule.e164_prefix + digits if rule.valid(digits) else NOT_VALID


def plain_e164(text: str, default_region: str | None) -> str | None:
    """phonenumbers' answer for `text` (already stripped) when its shape is covered here: the E.164
    string of a valid number, or `NOT_VALID`; None when not covered (ask phonenumbers).

    `text` starting with '+' is read as international (phonenumbers is given no region); otherwise the
    national number of `default_region`."""
    if len(text) > _MAX_INPUT or _PLAIN.fullmatch(text) is None:
        return None
    international = text[0] == "+"
    digits = (text[1:] if international else text).translate(_PUNCTUATION)
    if len(digits) < 3:
        return None
    if international:
        return _international(digits)
    if default_region is None:
        return None
    return _national(digits, default_region)
