"""A small registry through which areas attach their own extensions to the app.

Areas (the participant pages' translations and rate limits, say) register an
initializer here at import time of `nudge_app.<area>`; `create_app` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

_initializers: list[Callable[[Flask], None]] = []


def on_app_init(func: Callable[[Flask], None]) -> Callable[[Flask], None]:
    if func not in _initializers:
        _initializers.append(func)
    return func


def app_initializers() -> list[Callable[[Flask], None]]:
    # Import areas so that they can register themselves.
    import nudge_app.api  # noqa: F401
    import nudge_app.console  # noqa: F401
    import nudge_app.delivery  # noqa: F401
    import nudge_app.participant  # noqa: F401
    import nudge_app.reports  # noqa: F401

    return list(_initializers)
