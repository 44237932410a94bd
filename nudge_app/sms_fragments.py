"""The length of a text message as GOV.UK Notify counts and charges it.

Notify tidies a message before it counts it: typographic quotes, dashes and ellipses
become their plain forms, zero-width characters go, every run of spaces or tabs within
a line becomes one space, lines are trimmed, more than two line breaks in a row become
two and the message is trimmed. The tidied text is GSM-7 when every character is in the
GSM 03.38 alphabet; its extension characters (``^ { } \\ [ ~ ] | €``) take two places.
A GSM-7 message of up to 160 places is one fragment, a longer one is charged per 153;
any other character makes the whole message Unicode: 70 characters in one fragment,
else 67 a fragment (https://www.notifications.service.gov.uk/pricing/text-messages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€")

# What Notify replaces before it counts (its published downgrades of typography).
REPLACEMENTS = {
    "\u2011": "-",  # non-breaking hyphen
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # ellipsis
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u180e": "",  # zero-width characters
    "\u200b": "",
    "\u200c": "",
    "\u2060": "",
    "\ufeff": "",
    "\u2028": "",
    "\u2029": "",
    "\u00a0": " ",  # no-break spaces and tabs
    "\u202f": " ",
    "\t": " ",
}

SINGLE = {"GSM-7": 160, "Unicode": 70}
PER_FRAGMENT = {"GSM-7": 153, "Unicode": 67}

_MANY_NEWLINES = re.compile(r"\n{3,}")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ ]+([,.:;!?])")

Encoding = Literal["GSM-7", "Unicode"]


@dataclass(frozen=True)
class SmsLength:
    """A message's length in the places Notify charges and the fragments it is sent in."""

    characters: int
    fragments: int
    encoding: Encoding

    @property
    def per_fragment(self) -> int:
        return PER_FRAGMENT[self.encoding] if self.fragments > 1 else SINGLE[self.encoding]


def tidy(text: str) -> str:
    """The message as Notify sends it (typography downgraded, whitespace normalised)."""
    text = "".join(REPLACEMENTS.get(c, c) for c in text or "")
    lines = (" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n"))
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", "\n".join(lines))
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def sms_length(text: str) -> SmsLength:
    """Characters, fragments and encoding of a filled-in message, as Notify charges it."""
    sent = tidy(text)
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in sent):
        encoding: Encoding = "GSM-7"
        places = sum(2 if c in GSM7_EXTENSION else 1 for c in sent)
    else:
        encoding = "Unicode"
        places = len(sent)
    if places == 0:
        return SmsLength(0, 0, encoding)
    fragments = 1 if places <= SINGLE[encoding] else -(-places // PER_FRAGMENT[encoding])
    return SmsLength(places, fragments, encoding)
