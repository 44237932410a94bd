"""The app's settings as one dict: a config class, overrides or the environment, checked.

Both the web app (`create_app`) and the processes that need only configuration and the
database (the dispatch worker) build their settings here, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config import Config, config_from_env, finish


class ConfigurationError(RuntimeError):
    """The app cannot start with this configuration (e.g. no SECRET_KEY in production)."""


def settings_of(cls: type) -> dict[str, Any]:
    """Every upper-case setting of a config class, with the settings derived from others."""
    cls = type(cls.__name__, (cls,), {})
    finish(cls)  # derived paths for a class given directly
    return {key: getattr(cls, key) for key in dir(cls) if key.isupper()}


def app_settings(config: type[Config] | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Settings from a config class, or the environment's with a mapping of overrides."""
    if isinstance(config, type):
        return settings_of(config)
    settings = settings_of(config_from_env())
    settings.update(config or {})
    if config and "INSTANCE_PATH" in config and "FILE_CHANNEL_PATH" not in config:
        # Paths derived from the instance folder follow an overridden folder.
        settings["FILE_CHANNEL_PATH"] = str(Path(config["INSTANCE_PATH"]) / "outbox.jsonl")
    return settings


def check(settings: Mapping[str, Any]) -> None:
    """Refuse settings the app cannot safely run with."""
    if settings.get("ENV_NAME") == "production":
        key = settings.get("SECRET_KEY")
        if not key or len(key) < 32:
            raise ConfigurationError(
                "production needs SECRET_KEY in the environment (at least 32 characters)"
            )
