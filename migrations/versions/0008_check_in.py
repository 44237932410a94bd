"""check_in: verified attendance, one row per participant and session (issue 15)

Revision ID: 0008_check_in
Revises: 0007_eligibility
Create Date: 2026-12-02 07:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import nudge_app.db


revision = '0008_check_in'
down_revision = '0007_eligibility'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'check_in',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('participant_id', sa.Integer(), nullable=False),
        sa.Column('session', sa.String(length=10), nullable=False),
        sa.Column('method', sa.String(length=16), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=True),
        sa.Column('checked_in_at', nudge_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("method IN ('door', 'qr', 'register')", name=op.f('ck_check_in_method')),
        sa.ForeignKeyConstraint(
            ['campaign_id'], ['campaign.id'],
            name=op.f('fk_check_in_campaign_id_campaign'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['participant_id'], ['participant.id'],
            name=op.f('fk_check_in_participant_id_participant'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['recorded_by_id'], ['staff_user.id'],
            name=op.f('fk_check_in_recorded_by_id_staff_user'), ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_check_in')),
        sa.UniqueConstraint(
            'participant_id', 'session', name=op.f('uq_check_in_participant_id_session')
        ),
    )
    op.create_index(
        'ix_check_in_campaign_session', 'check_in', ['campaign_id', 'session'], unique=False
    )
    op.create_index(
        op.f('ix_check_in_participant_id'), 'check_in', ['participant_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_check_in_participant_id'), table_name='check_in')
    op.drop_index('ix_check_in_campaign_session', table_name='check_in')
    op.drop_table('check_in')
