"""Phone numbers as council officers have them, stored in one form: E.164 (`+447700900123`).

A UK number may come in national form (`07700 900123`, `(07700) 900-123`) or international
form (`+44 7700 900123`, `0044 7700 900123`); other countries' numbers need their `+` and
country code. `phonenumbers` (Google's libphonenumber) parses and normalises them. Text
messages go to mobiles only, so a UK number must be a mobile one as GOV.UK Notify checks
it: 07 followed by nine digits (the metadata's own list of mobile ranges lags behind
Ofcom's, and leaves out the 07700 900 range kept for examples and tests); a UK landline
is refused with that reason. Numbers of other countries must be valid for their country.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

# Where a number without a country code is from: councils here are in the UK.
DEFAULT_REGION = "GB"
EXAMPLE = "07700 900123"
_UK_MOBILE = re.compile(r"^7[0-9]{9}$")
_NOISE = re.compile(r"[\s().-]")
_LANDLINES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE, PhoneNumberType.VOIP)


class PhoneProblem(ValueError):
    """Why a phone number cannot be used; the message completes "phone ..."."""


def normalise_phone(text: str, region: str = DEFAULT_REGION) -> str:
    """The number in E.164 form, or PhoneProblem saying what is wrong with it."""
    raw = (text or "").strip()
    if not raw:
        raise PhoneProblem("is empty")
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException:
        raise PhoneProblem(
            f"is not a phone number: give a UK mobile number like {EXAMPLE} or an "
            "international one starting with + and the country code"
        ) from None
    national = str(number.national_number)
    if number.country_code == 44:
        if _UK_MOBILE.match(national):
            return f"+44{national}"
        if phonenumbers.is_valid_number(number):
            raise PhoneProblem(
                "is a UK landline or service number: text messages need a mobile "
                f"number (07 and nine more digits, like {EXAMPLE})"
            )
        raise PhoneProblem(f"is not a UK mobile number: 07 and nine more digits, like {EXAMPLE}")
    if not phonenumbers.is_valid_number(number):
        raise PhoneProblem(
            f"is not a valid number for country code +{number.country_code}: check its digits"
        )
    if phonenumbers.number_type(number) in _LANDLINES:
        raise PhoneProblem("is a landline number: text messages need a mobile number")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def lookup_form(text: str | None) -> str | None:
    """The stored form of a number typed to look someone up (subject access, suppression):
    E.164 when it parses, else the text without spaces, brackets, dots and dashes."""
    raw = (text or "").strip()
    if not raw:
        return None
    try:
        return normalise_phone(raw)
    except PhoneProblem:
        return _NOISE.sub("", raw)
