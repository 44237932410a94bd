"""The fake channel (`fakelog`): references only, to a log file, at a provider's pace.

For crash tests and benchmarks: it writes no personal data, just the reference, the
message id and the process id, and it can take a provider's round trip per send
(FAKE_CHANNEL_LATENCY seconds), half before the line is written (the request on its
way) and half after (the answer on its way back), so a worker killed while sending is
caught on either side of the provider taking the message. Asked by reference, it
answers from its log, as Notify does.
"""

from __future__ import annotations

import os
import time

from nudge_app.delivery.channels import register
from nudge_app.delivery.channels.base import ChannelConfigError, ProviderReceipt
from nudge_app.delivery.channels.file import FileChannel
from nudge_app.services.outbox import RenderedMessage


@register
class FakeLogChannel(FileChannel):
    name = "fakelog"
    media = ("email", "sms")

    def __init__(self, path: str | os.PathLike, latency: float = 0.0):
        super().__init__(path, minimal=True)
        self.latency = max(0.0, float(latency))

    @classmethod
    def from_config(cls, config) -> FakeLogChannel:
        if not config.get("FAKE_CHANNEL_LOG"):
            raise ChannelConfigError("the fakelog channel needs NUDGE_FAKE_CHANNEL_LOG")
        return cls(config["FAKE_CHANNEL_LOG"], latency=config.get("FAKE_CHANNEL_LATENCY") or 0)

    def send(self, message: RenderedMessage) -> ProviderReceipt:
        if not self.latency:
            return super().send(message)
        time.sleep(self.latency / 2)
        result = super().send(message)
        time.sleep(self.latency / 2)
        return result
