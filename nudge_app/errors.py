"""Domain errors: what a service raises when an action breaks one of the platform's rules.

Each names its rule and carries what the one place that answers them (`nudge_app.app`)
needs: the HTTP status, a stable machine-readable code and, when one form field is at
fault, its name. They are ValueErrors, so a CLI command shows their message as is.
"""

from __future__ import annotations

from typing import Any


class DomainError(ValueError):
    """An action the domain refuses; the message says why, in words for the person asking.

    Subclasses set `http_status` and `code`; `field` (the form field or design-file path
    at fault) and `details` (anything machine-readable) are optional.
    """

    http_status: int = 422
    code: str = "invalid"
    field: str | None = None
    details: Any = None

    def __init__(self, message: str = "", *, field: str | None = None, details: Any = None):
        super().__init__(message)
        if field is not None:
            self.field = field
        if details is not None:
            self.details = details

    @property
    def message(self) -> str:
        return str(self)
