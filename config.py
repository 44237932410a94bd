"""Settings from the environment (and an optional `.env`), with testing and production variants.

Every secret comes from the environment; nothing secret is written in the code. The
environment is read when `config_from_env()` is called (not at import), so a process
that sets variables first, such as a test or a CLI wrapper, gets what it set.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent


def normalize_database_url(url: str) -> str:
    """Accept the usual `postgresql://` (and `postgres://`) forms; use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


# setting name -> (environment variable, converter). Unset variables keep the class default.
ENVIRONMENT = {
    "SECRET_KEY": ("SECRET_KEY", str),
    "SQLALCHEMY_DATABASE_URI": ("DATABASE_URL", normalize_database_url),
    "INSTANCE_PATH": ("NUDGE_INSTANCE_PATH", str),
    "TIMEZONE": ("NUDGE_TIMEZONE", str),
    "BASE_URL": ("NUDGE_BASE_URL", str),
    "MAX_CONTENT_LENGTH": ("NUDGE_MAX_UPLOAD_BYTES", int),
    "SESSION_COOKIE_SECURE": ("NUDGE_SECURE_COOKIES", _bool),
    "RATELIMIT_ENABLED": ("NUDGE_RATELIMIT", _bool),
    "RATELIMIT_STORAGE_URI": ("NUDGE_RATELIMIT_STORAGE", str),
    "EMAIL_CHANNEL": ("NUDGE_EMAIL_CHANNEL", str),
    "SMS_CHANNEL": ("NUDGE_SMS_CHANNEL", str),
    "FILE_CHANNEL_PATH": ("NUDGE_FILE_CHANNEL_PATH", str),
    "SMTP_HOST": ("NUDGE_SMTP_HOST", str),
    "SMTP_PORT": ("NUDGE_SMTP_PORT", int),
    "SMTP_USERNAME": ("NUDGE_SMTP_USERNAME", str),
    "SMTP_PASSWORD": ("NUDGE_SMTP_PASSWORD", str),
    "SMTP_STARTTLS": ("NUDGE_SMTP_STARTTLS", _bool),
    "SMTP_TIMEOUT": ("NUDGE_SMTP_TIMEOUT", int),
    "MAIL_FROM": ("NUDGE_MAIL_FROM", str),
    "NOTIFY_API_KEY": ("NOTIFY_API_KEY", str),
    "NOTIFY_BASE_URL": ("NOTIFY_BASE_URL", str),
    "NOTIFY_EMAIL_TEMPLATE_ID": ("NOTIFY_EMAIL_TEMPLATE_ID", str),
    "NOTIFY_SMS_TEMPLATE_ID": ("NOTIFY_SMS_TEMPLATE_ID", str),
    "NOTIFY_CALLBACK_TOKEN": ("NOTIFY_CALLBACK_TOKEN", str),
    "NOTIFY_RATE_PER_MINUTE": ("NOTIFY_RATE_PER_MINUTE", int),
    "SCHEDULER_TICK_SECONDS": ("NUDGE_SCHEDULER_TICK_SECONDS", int),
    "SCHEDULER_STALE_SECONDS": ("NUDGE_SCHEDULER_STALE_SECONDS", int),
    "DISPATCH_BATCH_SIZE": ("NUDGE_DISPATCH_BATCH_SIZE", int),
    "DISPATCH_LEASE_SECONDS": ("NUDGE_DISPATCH_LEASE_SECONDS", float),
    "DISPATCH_MAX_ATTEMPTS": ("NUDGE_DISPATCH_MAX_ATTEMPTS", int),
    "DISPATCH_BACKOFF_BASE": ("NUDGE_DISPATCH_BACKOFF_BASE", float),
    "DISPATCH_BACKOFF_CAP": ("NUDGE_DISPATCH_BACKOFF_CAP", float),
    "FAKE_CHANNEL_LOG": ("NUDGE_FAKE_CHANNEL_LOG", str),
    "FAKE_CHANNEL_LATENCY": ("NUDGE_FAKE_CHANNEL_LATENCY", float),
    "METRICS_TOKEN": ("NUDGE_METRICS_TOKEN", str),
    # prometheus-client's own variable: set by `nudge serve` for its gunicorn workers.
    "METRICS_MULTIPROCESS_DIR": ("PROMETHEUS_MULTIPROC_DIR", str),
    "LOG_FORMAT": ("NUDGE_LOG_FORMAT", str),
    "LOG_LEVEL": ("NUDGE_LOG_LEVEL", str),
    "TRUSTED_PROXIES": ("NUDGE_TRUSTED_PROXIES", int),
    "IMPORT_MAX_ROWS": ("NUDGE_IMPORT_MAX_ROWS", int),
    "IMPORT_MAX_BYTES": ("NUDGE_IMPORT_MAX_BYTES", int),
}


class Config:
    """Defaults for every setting; `config_from_env` overlays the environment."""

    ENV_NAME = "development"
    SECRET_KEY: str | None = None
    INSTANCE_PATH = str(ROOT / "instance")
    # None means: a SQLite file in the instance folder.
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    TIMEZONE = "Europe/London"
    BASE_URL = "http://127.0.0.1:5000"
    MAX_CONTENT_LENGTH = 32 * 1024 * 1024
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    BABEL_DEFAULT_LOCALE = "en"
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"

    # Message channels: file (development default), smtp, notify.
    EMAIL_CHANNEL = "file"
    SMS_CHANNEL = "file"
    FILE_CHANNEL_PATH: str | None = None  # None: instance/outbox.jsonl
    SMTP_HOST = "localhost"
    SMTP_PORT = 587
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_STARTTLS = True
    SMTP_TIMEOUT = 30
    MAIL_FROM = "nudge@localhost"
    NOTIFY_API_KEY: str | None = None
    NOTIFY_BASE_URL = "https://api.notifications.service.gov.uk"
    NOTIFY_EMAIL_TEMPLATE_ID: str | None = None
    NOTIFY_SMS_TEMPLATE_ID: str | None = None
    NOTIFY_CALLBACK_TOKEN: str | None = None
    NOTIFY_RATE_PER_MINUTE = 3000

    # Scheduler: how often each tick runs, in seconds; after how long without a heartbeat
    # the console warns that it is not running.
    SCHEDULER_TICK_SECONDS = 30
    SCHEDULER_STALE_SECONDS = 120

    # Dispatch: messages claimed per batch, lease length, and the retry policy (attempts
    # before a transient failure is final, backoff base and cap in seconds).
    DISPATCH_BATCH_SIZE = 200
    DISPATCH_LEASE_SECONDS = 120.0
    DISPATCH_MAX_ATTEMPTS = 8
    DISPATCH_BACKOFF_BASE = 30.0
    DISPATCH_BACKOFF_CAP = 3600.0

    # The `fakelog` channel (crash tests, benchmarks): where it logs references, and the
    # seconds each send takes (a provider's round trip).
    FAKE_CHANNEL_LOG: str | None = None
    FAKE_CHANNEL_LATENCY = 0.0

    # /metrics: a bearer token; unset, it answers only requests from this machine. The
    # folder where several worker processes keep their counts (None: one process).
    METRICS_TOKEN: str | None = None
    METRICS_MULTIPROCESS_DIR: str | None = None
    # Log lines as JSON objects (one per line, with the request id) or plain text, and
    # the least severe level written by `nudge serve` (INFO: one access line per request).
    LOG_FORMAT = "json"
    LOG_LEVEL = "INFO"

    # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (rate
    # limits key on the client address). 0: the app faces clients directly.
    TRUSTED_PROXIES = 0

    # Participant CSV imports larger than this are refused with a clear message.
    IMPORT_MAX_ROWS = 200_000
    IMPORT_MAX_BYTES = 32 * 1024 * 1024


class DevelopmentConfig(Config):
    # A fixed development key keeps sessions across restarts; production refuses to run
    # without a real one.
    DEV_SECRET_KEY = "dev-only-not-secret"


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key"
    RATELIMIT_ENABLED = False


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_env(environ: dict | None = None) -> type[Config]:
    """The config class named by NUDGE_ENV (development by default), with the environment
    (and `.env`, which never overrides a variable already set) laid over its defaults."""
    if environ is None:
        load_dotenv(ROOT / ".env", override=False)
        environ = dict(os.environ)
    name = (environ.get("NUDGE_ENV") or "development").lower()
    if name not in CONFIGS:
        raise RuntimeError(f"NUDGE_ENV={name!r}: must be one of {', '.join(CONFIGS)}")
    base = CONFIGS[name]
    values: dict = {}
    for setting, (variable, convert) in ENVIRONMENT.items():
        raw = environ.get(variable)
        if raw not in (None, ""):
            try:
                values[setting] = convert(raw)
            except ValueError:
                raise RuntimeError(f"{variable}={raw!r} is not a valid value") from None
    cls = type(base.__name__, (base,), values)
    finish(cls)
    return cls


def finish(cls) -> None:
    """Fill settings derived from others (paths in the instance folder, the dev key)."""
    instance = Path(cls.INSTANCE_PATH)
    if not cls.SQLALCHEMY_DATABASE_URI:
        cls.SQLALCHEMY_DATABASE_URI = f"sqlite:///{instance / 'nudge.sqlite3'}"
    if not cls.FILE_CHANNEL_PATH:
        cls.FILE_CHANNEL_PATH = str(instance / "outbox.jsonl")
    if not cls.SECRET_KEY and getattr(cls, "DEV_SECRET_KEY", None):
        cls.SECRET_KEY = cls.DEV_SECRET_KEY
