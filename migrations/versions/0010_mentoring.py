"""mentoring: mentors and their invitation links, referred_by, the mentor message kind (issue 16)

Revision ID: 0010_mentoring
Revises: 0009_evidence_library
Create Date: 2026-12-02 07:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import nudge_app.db


revision = '0010_mentoring'
down_revision = '0009_evidence_library'
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('nudge', 'invitation', 'reminder', 'survey')"
NEW_KINDS = "kind IN ('nudge', 'invitation', 'reminder', 'survey', 'mentor')"


def upgrade() -> None:
    op.add_column('campaign', sa.Column('mentoring', sa.JSON(), nullable=True))
    op.add_column('participant', sa.Column('referred_by', sa.Integer(), nullable=True))
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participant_referred_by'), ['referred_by'], unique=False)
    op.create_table('mentor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('referral_nonce', sa.String(length=64), nullable=False),
    sa.Column('referral_code_hash', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('show_first_name', sa.Boolean(), nullable=False),
    sa.Column('consent_text_hash', sa.String(length=64), nullable=False),
    sa.Column('invite_limit', sa.Integer(), nullable=False),
    sa.Column('expires_at', nudge_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opened', sa.Integer(), nullable=False),
    sa.Column('agreed_at', nudge_app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', nudge_app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_mentor_campaign_id_campaign'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], name=op.f('fk_mentor_participant_id_participant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mentor')),
    sa.UniqueConstraint('participant_id', name=op.f('uq_mentor_participant_id')),
    sa.UniqueConstraint('referral_code_hash', name=op.f('uq_mentor_referral_code_hash'))
    )
    with op.batch_alter_table('mentor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mentor_campaign_id'), ['campaign_id'], unique=False)
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_outbound_message_kind'), type_='check')
        batch_op.create_check_constraint('kind', NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM outbound_message WHERE kind = 'mentor'")
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_outbound_message_kind'), type_='check')
        batch_op.create_check_constraint('kind', OLD_KINDS)
    with op.batch_alter_table('mentor', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mentor_campaign_id'))
    op.drop_table('mentor')
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participant_referred_by'))
        batch_op.drop_column('referred_by')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_column('mentoring')
