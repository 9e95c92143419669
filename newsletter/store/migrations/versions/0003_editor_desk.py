"""editor desk: the audit log of changes to a day's stories

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('story_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('story_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.Enum('added', 'edited', 'deleted', 'moved', 'imported', name='story_action', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('before', sa.Text(), nullable=True),
    sa.Column('client', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('story_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_story_changes_date'), ['date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('story_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_story_changes_date'))
    op.drop_table('story_changes')
