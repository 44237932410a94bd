"""participant postcode: a UK postcode from the council's list, stored as SW1A 1AA (issue 19)

Revision ID: 0012_participant_postcode
Revises: 0011_introductions
Create Date: 2026-12-02 11:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012_participant_postcode'
down_revision = '0011_introductions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('participant', sa.Column('postcode', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_column('postcode')
