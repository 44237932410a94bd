"""UK postcodes as council officers type them, stored in one form: `SW1A 1AA`.

Case, spaces and a missing space do not matter (`sw1a1aa`, ` SW1A  1AA `); what remains
must have a UK postcode's shape: an outward code (area letters, district digit and an
optional letter or digit) and an inward code (a digit and two letters), with the letters
each position allows. The pattern is the one in the UK Government Data Standards
Catalogue (BS 7666), plus GIR 0AA; it checks the shape, not that the postcode is in use.
"""

from __future__ import annotations

import re

EXAMPLE = "SW1A 1AA"
# Positions: A = any letter but Q V X; B = any letter but I J Z; C = A-H J K P S T U W;
# D = A B E H M N P R V W X Y; the inward code's letters exclude C I K M O V.
_OUTWARD = (
    r"(?:[A-PR-UWYZ][0-9][0-9]?"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?"
    r"|[A-PR-UWYZ][0-9][A-HJKPSTUW]"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY])"
)
_INWARD = r"[0-9][ABD-HJLNP-UW-Z]{2}"
_POSTCODE = re.compile(rf"^(?:(?P<out>{_OUTWARD})(?P<in>{_INWARD})|(?P<gir>GIR0AA))$")
_SPACES = re.compile(r"\s+")
MAX_LENGTH = 8  # the longest, with its space: `EC1A 1BB`, `SW1A 1AA`, `CR90 2AA`


class PostcodeProblem(ValueError):
    """Why a postcode cannot be used; the message completes "postcode ..."."""


def normalise_postcode(text: str) -> str:
    """The postcode in capitals with one space before its last three characters, or
    PostcodeProblem saying what is wrong with it."""
    compact = _SPACES.sub("", text or "").upper()
    if not compact:
        raise PostcodeProblem("is empty")
    match = _POSTCODE.match(compact)
    if match is None:
        if not 5 <= len(compact) <= 7:
            raise PostcodeProblem(
                f"is not a UK postcode: it has {len(compact)} letters and digits, a "
                f"postcode has 5 to 7 (like {EXAMPLE})"
            )
        raise PostcodeProblem(
            f"is not a UK postcode: expected letters, digits, then a digit and two "
            f"letters, like {EXAMPLE}"
        )
    return f"{compact[:-3]} {compact[-3:]}"
