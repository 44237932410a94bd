"""What a dispatch worker keeps between batches: launched campaigns' texts and its renderer.

A launched campaign's design is frozen (`Campaign.is_frozen`): its arms' and follow-up
steps' texts never change again. So a worker reads them once per campaign and keeps them,
keyed by the campaign's id, salt and launch time (a campaign of another database with the
same id, as in the tests, never shares the entry); each batch still reads the campaign's
status, names and its council's rules (quiet hours, timezone, daily cap, name), which can
change at any time, in one small statement. A campaign not launched (it cannot be
dispatched; only tests make one) is read afresh every batch.

The renderer is kept per (secret key, base URL): its compiled patterns are keyed by the
texts themselves, and its per-campaign values are dropped at every batch.
"""

from __future__ import annotations

from nudge_app.delivery import queries
from nudge_app.services.outbox import MessageRenderer

KEEP = 256  # campaigns kept per process before the cache starts again

_texts: dict[tuple, tuple[dict, dict]] = {}
_renderers: dict[tuple[str, str], MessageRenderer] = {}


def renderer(config) -> MessageRenderer:
    """The worker's renderer for the app's secret key and base URL, ready for a batch."""
    key = (config["SECRET_KEY"], config["BASE_URL"])
    kept = _renderers.get(key)
    if kept is None:
        if len(_renderers) >= 8:
            _renderers.clear()
        kept = _renderers[key] = MessageRenderer(*key)
    kept.new_batch()
    return kept


def texts(campaigns: dict, arm_ids: set, step_ids: set) -> tuple[dict, dict]:
    """The batch's arms and steps by id (`queries.facts` rows), from the kept texts of
    launched campaigns; the rest (and campaigns seen for the first time) read now."""
    arms: dict = {}
    steps: dict = {}
    missing = []
    for campaign in campaigns.values():
        if campaign.launched_at is None:
            continue
        kept = _texts.get((campaign.id, campaign.salt, campaign.launched_at))
        if kept is None:
            missing.append(campaign)
        else:
            arms.update(kept[0])
            steps.update(kept[1])
    if missing:
        if len(_texts) + len(missing) > KEEP:
            _texts.clear()
        ids = [c.id for c in missing]
        by_campaign: dict[int, tuple[dict, dict]] = {i: ({}, {}) for i in ids}
        for row in queries.campaign_texts("arms", ids):
            by_campaign[row.campaign_id][0][row.id] = row
        for row in queries.campaign_texts("steps", ids):
            by_campaign[row.campaign_id][1][row.id] = row
        for c in missing:
            kept = _texts[(c.id, c.salt, c.launched_at)] = by_campaign[c.id]
            arms.update(kept[0])
            steps.update(kept[1])
    # Arms and steps of campaigns not launched, or of another campaign than the row's
    # (never written so; read rather than guessed).
    arms.update(queries.facts("arms", arm_ids - arms.keys()))
    steps.update(queries.facts("steps", step_ids - steps.keys()))
    return arms, steps
