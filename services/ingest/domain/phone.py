"""Normalising a phone number to E.164 with phonenumbers.

Every number is judged on its own (no result is ever reused for another number). The common shapes (`+`
and digits, or national digits with a default region, with simple punctuation) take `numbering_plan`'s
path, which gives phonenumbers' answer from phonenumbers' own metadata at a tenth of the cost; anything
else goes through phonenumbers itself, whose compiled-pattern cache keeps its metadata regexes compiled.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import re_util

from ingest.domain.numbering_plan import plain_e164

re_util.enable_pattern_cache()

INVALID_MARK = "!"
"""Results of `normalise_many` that start with this mark are not numbers: `!{problem}\x1f{raw cell}`."""
_RAW_SEPARATOR = "\x1f"
_NOT_VALID_FOR_COUNTRY = "not a valid number for its country"


@dataclass(frozen=True)
class Normalised:
    """A number in E.164, or why it is not one."""

    e164: str | None
    problem: str = ""


def normalise(raw: str, default_region: str | None) -> Normalised:
    """E.164 for a valid number; a number without '+' uses `default_region`, else it is invalid."""
    text = raw.strip()
    if not text:
        return Normalised(None, "the phone number is empty")
    international = text.startswith("+")
    if not international and not default_region:
        return Normalised(None, "no '+' country code, and the workspace has no default region")
    plain = plain_e164(text, default_region)
    if plain is not None:
        return Normalised(plain) if plain else Normalised(None, _NOT_VALID_FOR_COUNTRY)
    try:
        parsed = phonenumbers.parse(text, None if international else default_region)
    except phonenumbers.NumberParseException as exc:
        return Normalised(None, f"not a phone number: {exc._msg}")
    if not phonenumbers.is_valid_number(parsed):
        return Normalised(None, _NOT_VALID_FOR_COUNTRY)
    return Normalised(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalise_many(raws: list[str], default_region: str | None) -> list[str]:
    """The compact, picklable form a validation worker returns: E.164, or `INVALID_MARK` + the problem +
    the raw cell (see `invalid_parts`)."""
    out: list[str] = []
    append = out.append
    for raw in raws:
        # The common case without building a `Normalised` (the same answer as `normalise`).
        plain = plain_e164(raw.strip(), default_region)
        if plain:
            append(plain)
            continue
        result = normalise(raw, default_region)
        if result.e164 is not None:
            append(result.e164)
        else:
            append(f"{INVALID_MARK}{result.problem}{_RAW_SEPARATOR}{raw.strip()}")
    return out


def invalid_parts(result: str) -> tuple[str, str]:
    """(problem, raw cell) of a `normalise_many` result that starts with `INVALID_MARK`."""
    problem, _, raw = result[1:].partition(_RAW_SEPARATOR)
    return problem, raw


def is_region(code: str) -> bool:
    """True for a region phonenumbers knows (ISO 3166 alpha-2, e.g. "US")."""
    return code.upper() in phonenumbers.SUPPORTED_REGIONS
