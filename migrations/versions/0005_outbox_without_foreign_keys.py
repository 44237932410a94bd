"""outbox without foreign keys: enqueueing a step for a million participants is set-based,
from rows already checked, and the per-row checks cost two thirds of it

Revision ID: 0005_outbox_without_foreign_keys
Revises: 0004_scheduler_heartbeat
Create Date: 2026-12-02 02:35:00
"""

from __future__ import annotations

from alembic import op


revision = '0005_outbox_without_foreign_keys'
down_revision = '0004_scheduler_heartbeat'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outbound_message_participant_id_participant', type_='foreignkey')
        batch_op.drop_constraint('fk_outbound_message_arm_id_arm', type_='foreignkey')
        batch_op.drop_constraint('fk_outbound_message_step_id_follow_up_step', type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_outbound_message_step_id_follow_up_step', 'follow_up_step', ['step_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key('fk_outbound_message_arm_id_arm', 'arm', ['arm_id'], ['id'], ondelete='RESTRICT')
        batch_op.create_foreign_key('fk_outbound_message_participant_id_participant', 'participant', ['participant_id'], ['id'], ondelete='CASCADE')
