"""eligibility: a campaign's screening rules, each participant's screening result (issue 20)

Revision ID: 0007_eligibility
Revises: 0006_trust
Create Date: 2026-12-02 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import nudge_app.db


revision = '0007_eligibility'
down_revision = '0006_trust'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('campaign', sa.Column('eligibility', sa.JSON(), nullable=True))
    op.add_column(
        'participant',
        sa.Column('screened_at', nudge_app.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        'participant', sa.Column('screened_out_rule', sa.String(length=200), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table('participant') as batch_op:
        batch_op.drop_column('screened_out_rule')
        batch_op.drop_column('screened_at')
    with op.batch_alter_table('campaign') as batch_op:
        batch_op.drop_column('eligibility')
