"""delivery safety: failure cause and Message-ID per delivery, suppression changes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries') as batch:
        batch.add_column(sa.Column('failure', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('message_id', sa.String(length=255), nullable=True))
    op.create_table('suppression_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email_key', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_suppression_changes_email_key', 'suppression_changes', ['email_key'])


def downgrade() -> None:
    op.drop_index('ix_suppression_changes_email_key', table_name='suppression_changes')
    op.drop_table('suppression_changes')
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('message_id')
        batch.drop_column('failure')
