"""ledger writes: one index fewer on every delivery row written

The unique (edition, subscriber) key turns round to (subscriber, edition): it then finds a
person's deliveries (erasure's ON DELETE CASCADE) as the separate subscriber index did,
which goes. Every claim and every result rewrites a delivery row, and PostgreSQL adds an
entry to each index for each rewrite (the state column is indexed, so no update is HOT):
four indexes instead of five, on two writes per recipient per day.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint('uq_deliveries_edition_subscriber', type_='unique')
        batch_op.drop_index('ix_deliveries_subscriber_id')
        batch_op.create_unique_constraint('uq_deliveries_subscriber_edition',
                                          ['subscriber_id', 'edition_id'])


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint('uq_deliveries_subscriber_edition', type_='unique')
        batch_op.create_index('ix_deliveries_subscriber_id', ['subscriber_id'], unique=False)
        batch_op.create_unique_constraint('uq_deliveries_edition_subscriber',
                                          ['edition_id', 'subscriber_id'])
