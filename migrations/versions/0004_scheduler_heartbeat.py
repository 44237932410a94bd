"""scheduler heartbeat: each scheduler process's last sign of life and lag

Revision ID: 0004_scheduler_heartbeat
Revises: 0003_mechanism_tags
Create Date: 2026-12-02 02:08:06.654031
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import nudge_app.db


revision = '0004_scheduler_heartbeat'
down_revision = '0003_mechanism_tags'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scheduler_heartbeat',
    sa.Column('worker', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('started_at', nudge_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('beat_at', nudge_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lag_seconds', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('worker', name=op.f('pk_scheduler_heartbeat'))
    )
    with op.batch_alter_table('scheduler_heartbeat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduler_heartbeat_beat_at'), ['beat_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scheduler_heartbeat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scheduler_heartbeat_beat_at'))

    op.drop_table('scheduler_heartbeat')
