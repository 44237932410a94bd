"""nudge: the web service, scheduler and CLI around the `experiments` science.

`create_app` is imported lazily so that `nudge` commands which need no web app do not
pay for importing Flask.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from nudge_app.app import create_app

        return create_app
    raise AttributeError(name)
