"""scale: indexes for every ledger lookup, rolled-up counts of pruned editions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

LEASED = sa.text("state = 'sending'")


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_subscriber_id', ['subscriber_id'], unique=False)
        batch_op.create_index('ix_deliveries_leased', ['lease_until'], unique=False,
                              postgresql_where=LEASED, sqlite_where=LEASED)
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('counts', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('pruned_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.drop_column('pruned_at')
        batch_op.drop_column('counts')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_leased')
        batch_op.drop_index('ix_deliveries_subscriber_id')
