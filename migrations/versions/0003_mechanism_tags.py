"""mechanism tag per arm, activity kind per campaign

Revision ID: 0003_mechanism_tags
Revises: 0002_participant_baseline
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003_mechanism_tags'
down_revision = '0002_participant_baseline'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('arm', sa.Column('mechanism_tag', sa.String(length=40), nullable=True))
    op.add_column('campaign', sa.Column('activity_kind', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaign') as batch_op:
        batch_op.drop_column('activity_kind')
    with op.batch_alter_table('arm') as batch_op:
        batch_op.drop_column('mechanism_tag')
