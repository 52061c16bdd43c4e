"""Phone numbers: caller ids normalized to E.164 with Google's libphonenumber (the phonenumbers package)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import phonenumbers

from errors import InvalidRequest


@dataclass(frozen=True)
class PhoneQuery:
    """A caller's number in the forms CRMs commonly store it, for matching whichever one a CRM holds."""

    e164: str  # +971501234567
    national_significant: str  # 501234567: the digits every stored form ends with
    country_code: int  # 971

    @property
    def e164_digits(self) -> str:
        """E.164 without the plus: 971501234567."""
        return self.e164.lstrip("+")

    @cached_property
    def variants(self) -> tuple[str, ...]:
        """Common stored spellings, most canonical first (for vendors whose filters match exactly)."""
        number = phonenumbers.parse(self.e164)
        forms = [
            self.e164,
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
            self.e164_digits,
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966).removeprefix("tel:"),
        ]
        national_digits = "".join(c for c in forms[2] if c.isdigit())
        forms += [national_digits, self.national_significant]
        return tuple(dict.fromkeys(forms))


@lru_cache(maxsize=4096)  # callers call again; a PhoneQuery is immutable, so one per spelling is shared
def parse_phone(raw: str, region: str) -> PhoneQuery:
    """Parse a caller's number (any common spelling; national ones in `region`) or raise a 400 (never cached)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise InvalidRequest("phone is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidRequest("phone is not a possible phone number for its country")
    return PhoneQuery(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        national_significant=phonenumbers.national_significant_number(number),
        country_code=number.country_code,
    )


def to_e164(stored: str | None, region: str) -> str | None:
    """A stored number in E.164 where it parses, else as stored (so nothing the vendor held is lost)."""
    if not stored:
        return stored
    return _stored_e164(stored, region)


# Every returned record's number is normalised, and the same numbers come back call after call (the caller's
# own, searched and then mapped): parse each spelling once. Bounded, and only strings are kept.
@lru_cache(maxsize=8192)
def _stored_e164(stored: str, region: str) -> str:
    """to_e164 for a non-empty number."""
    try:
        number = phonenumbers.parse(stored, region)
    except phonenumbers.NumberParseException:
        return stored
    if not phonenumbers.is_possible_number(number):
        return stored
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
