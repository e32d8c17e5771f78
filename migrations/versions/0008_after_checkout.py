"""after checkout: outbox retries on a time budget, redemptions rolled back

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 11:00:00.000000

Only added columns, each NULL or with a server default: the previous release's code
keeps working on this schema (docs/operations.md, "Upgrading").
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('outbox_messages', sa.Column('retrying_since', sa.DateTime(timezone=True), nullable=True))
    op.add_column('redemptions', sa.Column('status', sa.String(length=24), server_default='REDEEMED', nullable=False))
    op.add_column('redemptions', sa.Column('rolled_back_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('redemptions', sa.Column('rolled_back_amount', sa.Numeric(precision=18, scale=4), nullable=True))
    op.add_column('redemptions', sa.Column('rollback_reason', sa.String(length=500), nullable=True))


def downgrade():
    for column in ('rollback_reason', 'rolled_back_amount', 'rolled_back_at', 'status'):
        op.drop_column('redemptions', column)
    op.drop_column('outbox_messages', 'retrying_since')
