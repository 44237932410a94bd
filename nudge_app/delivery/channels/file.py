"""The file channel (development default): one JSON line per message in a local file.

Each line is written with a single `write` on a file opened for appending, so lines from
several processes never interleave, and a line is in the file as soon as `send` returns
(the page cache survives a killed process). `lookup` scans the file for the reference.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from nudge_app.delivery.channels import register
from nudge_app.delivery.channels.base import Channel, LookupResult, ProviderReceipt
from nudge_app.services.outbox import RenderedMessage

# json.dumps with an option builds an encoder per call; one encoder serves every line.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


@register
class FileChannel(Channel):
    name = "file"
    media = ("email", "sms")

    @classmethod
    def from_config(cls, config) -> FileChannel:
        return cls(config["FILE_CHANNEL_PATH"])

    def __init__(self, path: str | os.PathLike, minimal: bool = False):
        self.path = Path(path)
        self.minimal = minimal
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._seen: dict[str, str] = {}
        self._read_upto = 0

    def _record(self, message: RenderedMessage) -> dict:
        record = {
            "reference": message.reference,
            "message_id": message.message_id,
            "channel": message.channel,
            "pid": os.getpid(),
            "at": datetime.now(UTC).isoformat(),
        }
        if not self.minimal:
            record.update(
                to=message.to,
                subject=message.subject,
                text=message.text,
                kind=message.kind,
                campaign_id=message.campaign_id,
                unsubscribe_url=message.unsubscribe_url,
            )
            if message.check_in_code:
                record["check_in_code"] = message.check_in_code
        return record

    def send(self, message: RenderedMessage) -> ProviderReceipt:
        line = (_ENCODE(self._record(message)) + "\n").encode()
        try:
            with self._lock:
                if self._fd is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                os.write(self._fd, line)
        except OSError as exc:
            return ProviderReceipt(
                "retryable", error=f"cannot write {self.path.name}: {exc.strerror}"
            )
        return ProviderReceipt("accepted", provider_id=f"{self.name}:{message.reference}")

    def lookup(self, reference: str) -> LookupResult | None:
        with self._lock:
            self._scan()
            if reference in self._seen:
                return LookupResult(True, provider_id=self._seen[reference], status="accepted")
        return LookupResult(False)

    def _scan(self) -> None:
        """Read lines appended since the last scan (only whole lines)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._read_upto)
                data = fh.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        for raw in data[:end].splitlines():
            try:
                ref = json.loads(raw)["reference"]
            except (ValueError, KeyError, TypeError):
                continue
            self._seen[ref] = f"{self.name}:{ref}"
        self._read_upto += end

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
