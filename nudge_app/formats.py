"""Numbers as people read them on every page: whole numbers without ".0" and with
thousands separators, other numbers to a stated number of decimals.

Registered as the Jinja filter `number` (`{{ n|number }}`, `{{ x|number(1) }}`).
"""

from __future__ import annotations

import math
from numbers import Real


def number(value, decimals: int | None = None) -> str:
    """2500.0 -> "2,500"; 2500.5 -> "2,500.5"; 0.025 -> "0.025"; 0.125 with decimals=2 ->
    "0.13"; None and NaN -> "–"."""
    if value is None or isinstance(value, bool) or not isinstance(value, Real):
        return "–" if value is None else str(value)
    x = float(value)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if decimals is None:
        if x.is_integer():
            return f"{int(x):,}"
        if abs(x) >= 1:
            return f"{x:,.2f}".rstrip("0").rstrip(".")
        return f"{x:.3g}"  # 0.025 stays 0.025, 1/3 is 0.333
    return f"{x:,.{decimals}f}"


def init_formats(app) -> None:
    app.jinja_env.filters["number"] = number
