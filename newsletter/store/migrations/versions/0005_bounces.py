"""bounces and complaints by mail (issue 18)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bounces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_key', sa.String(length=64), nullable=False),
    sa.Column('email_key', sa.String(length=320), nullable=False),
    sa.Column('delivery_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.Enum('hard', 'soft', 'refused', 'complaint', 'auto-reply',
                              'unrecognised', 'forged', name='bounce_kind', native_enum=False,
                              create_constraint=True, length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_key', 'email_key', name='uq_bounces_message_email')
    )
    op.create_index('ix_bounces_email_kind_received', 'bounces',
                    ['email_key', 'kind', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_bounces_email_kind_received', table_name='bounces')
    op.drop_table('bounces')
