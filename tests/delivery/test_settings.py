"""Dispatch and fake-channel settings come from the environment through config.py only."""

from __future__ import annotations

from types import SimpleNamespace

from config import config_from_env
from nudge_app.delivery.channels.fake import FakeLogChannel
from nudge_app.delivery.manager import settings_for
from nudge_app.delivery.retry import RetryPolicy
from nudge_app.settings import settings_of


def test_dispatch_and_fake_channel_settings_come_through_config(tmp_path):
    environ = {
        "NUDGE_DISPATCH_BATCH_SIZE": "50", "NUDGE_DISPATCH_LEASE_SECONDS": "8",
        "NUDGE_DISPATCH_MAX_ATTEMPTS": "3", "NUDGE_DISPATCH_BACKOFF_BASE": "5",
        "NUDGE_DISPATCH_BACKOFF_CAP": "60", "NUDGE_FAKE_CHANNEL_LOG": str(tmp_path / "f.log"),
        "NUDGE_FAKE_CHANNEL_LATENCY": "0.25", "NUDGE_INSTANCE_PATH": str(tmp_path),
    }  # fmt: skip
    config = settings_of(config_from_env(environ))
    settings = settings_for(SimpleNamespace(config=config))
    assert (settings.batch_size, settings.lease_seconds) == (50, 8.0)
    assert settings.retry == RetryPolicy(max_attempts=3, base=5.0, cap=60.0)
    channel = FakeLogChannel.from_config(config)
    assert (channel.path, channel.latency) == (tmp_path / "f.log", 0.25)


def test_defaults_without_the_environment(tmp_path):
    config = settings_of(config_from_env({"NUDGE_INSTANCE_PATH": str(tmp_path)}))
    settings = settings_for(SimpleNamespace(config=config))
    assert (settings.batch_size, settings.lease_seconds) == (200, 120.0)
    assert settings.retry == RetryPolicy(max_attempts=8, base=30.0, cap=3600.0)
