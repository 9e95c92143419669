"""signup safety: the mail queue and the webhook replay keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('mail_queue',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('subscriber_id', BIG_ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('state', sa.Enum('queued', 'sending', 'sent', 'failed', 'expired', 'dropped', name='mail_state', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_mail_queue_state_due', 'mail_queue', ['state', 'next_attempt_at'])
    op.create_index('ix_mail_queue_subscriber', 'mail_queue', ['subscriber_id', 'state'])
    op.create_table('webhook_replays',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider', 'key', name='uq_webhook_replays_provider_key')
    )
    op.create_index('ix_webhook_replays_seen_at', 'webhook_replays', ['seen_at'])


def downgrade() -> None:
    op.drop_index('ix_webhook_replays_seen_at', table_name='webhook_replays')
    op.drop_table('webhook_replays')
    op.drop_index('ix_mail_queue_subscriber', table_name='mail_queue')
    op.drop_index('ix_mail_queue_state_due', table_name='mail_queue')
    op.drop_table('mail_queue')
