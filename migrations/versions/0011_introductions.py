"""introductions: messages the platform sends for a mentor to neighbours (issue 16); the
outbox row records the mentor it is for

Revision ID: 0011_introductions
Revises: 0010_mentoring
Create Date: 2026-12-02 11:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011_introductions'
down_revision = '0010_mentoring'
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('nudge', 'invitation', 'reminder', 'survey', 'mentor')"
NEW_KINDS = "kind IN ('nudge', 'invitation', 'reminder', 'survey', 'mentor', 'introduction')"


def upgrade() -> None:
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mentor_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbound_message_mentor_id'), ['mentor_id'], unique=False)
        batch_op.drop_constraint(op.f('ck_outbound_message_kind'), type_='check')
        batch_op.create_check_constraint('kind', NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM outbound_message WHERE kind = 'introduction'")
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_outbound_message_kind'), type_='check')
        batch_op.create_check_constraint('kind', OLD_KINDS)
        batch_op.drop_index(batch_op.f('ix_outbound_message_mentor_id'))
        batch_op.drop_column('mentor_id')
