"""Shared helpers for the delivery benchmarks: a fresh migrated PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import uuid

SERVER = os.environ.get("NUDGE_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def fresh_database(prefix: str):
    import psycopg
    from sqlalchemy.engine import make_url

    from config import normalize_database_url
    from nudge_app.cli.db import upgrade

    base = make_url(normalize_database_url(SERVER))
    admin = base.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_campaign(db, *, participants: int, follow_ups: bool, due_now: bool):
    """A running list campaign with `participants` assigned residents, made in SQL.

    Returns the campaign. With due_now, each participant also gets the nudge row
    (enqueued by the outbox service itself).
    """
    from sqlalchemy import text

    from experiments.design import load_design
    from nudge_app.models import Campaign, Council
    from nudge_app.services import campaigns, outbox

    council = Council(slug=f"bench{uuid.uuid4().hex[:6]}", name="Benchshire Council",
                      quiet_start="00:00", quiet_end="00:00", daily_message_cap=5)  # fmt: skip
    db.session.add(council)
    db.session.flush()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    design = load_design(os.path.join(root, "experiments/catalog/council-consultation.toml"))
    if not follow_ups:
        design.follow_ups = []
    campaign = campaigns.create_campaign(council, design, actor="bench")
    db.session.flush()
    arms = [a.id for a in campaign.arms]
    db.session.execute(
        text(
            "INSERT INTO participant (campaign_id, access_nonce, access_token_hash, email, "
            "first_name, consent_status, created_at) "
            "SELECT :c, 'n' || g, md5(g::text) || md5((g + 7)::text), "
            "'p' || g || '@example.org', 'P' || g, 'given', now() "
            "FROM generate_series(1, :n) AS g"
        ),
        {"c": campaign.id, "n": participants},
    )
    db.session.execute(
        text(
            "INSERT INTO assignment (participant_id, campaign_id, arm_id, stratum, method, "
            "probability, assigned_at) "
            "SELECT id, :c, CASE WHEN id % 2 = 0 THEN :a0 ELSE :a1 END, '', 'complete', 0.5, "
            "now() FROM participant WHERE campaign_id = :c"
        ),
        {"c": campaign.id, "a0": arms[0], "a1": arms[1]},
    )
    c = db.session.get(Campaign, campaign.id)
    c.status = "running"
    db.session.flush()
    if due_now:
        outbox.enqueue_first_messages(c)
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return c
