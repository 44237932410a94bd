"""Text a person gave, checked against the column that stores it before anything is written.

SQLite ignores VARCHAR lengths and PostgreSQL refuses longer text, so a value that is too
long would pass on one database and fail on the other with a database error. A service
checks it first, with the limit read from the model's column (never restated), and
refuses with a DomainError naming the field: both databases then behave the same.
"""

from __future__ import annotations

from typing import Any

from nudge_app.errors import DomainError


class TextTooLong(DomainError):
    """A value longer than the column that would store it."""

    code = "too_long"


def column_length(attribute: Any) -> int:
    """The declared length of a model's String(n) column, e.g. `Council.name`."""
    length = attribute.property.columns[0].type.length
    if length is None:
        raise TypeError(f"{attribute} has no declared length")
    return int(length)


def within_column(value: str, attribute: Any, field: str) -> str:
    """`value` if it fits `attribute`'s column, else TextTooLong naming `field`."""
    limit = column_length(attribute)
    if len(value) > limit:
        raise TextTooLong(
            f"{field}: at most {limit} characters (this one has {len(value)})", field=field
        )
    return value
