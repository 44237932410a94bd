"""What services derive from a campaign's design, kept per process once it is launched.

A launched campaign's design never changes again, so what randomization and the outbox
build from it (the stratification plan, the follow-up steps) is built once per process.
"""

from __future__ import annotations

from nudge_app.models import Campaign


class KeptWhileFrozen:
    """What `build(campaign)` derives from a campaign's design, kept per process once the
    campaign is launched (its design never changes again); drafts are always rebuilt.

    Keyed by campaign id, salt and version, so a campaign of another database with the
    same id is never taken for it.
    """

    def __init__(self, build, size: int = 256):
        self.build = build
        self.size = size
        self.kept: dict[tuple, object] = {}

    def __call__(self, campaign: Campaign):
        if not campaign.is_frozen:
            return self.build(campaign)
        key = (campaign.id, campaign.salt, str(campaign.updated_at))
        value = self.kept.get(key)
        if value is None:
            if len(self.kept) >= self.size:
                self.kept.clear()
            value = self.kept[key] = self.build(campaign)
        return value
