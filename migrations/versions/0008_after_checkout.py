"""after checkout: outbox retries on a time budget, redemptions rolled back, budgets

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
    op.create_index('ix_redemptions_tenant_customer', 'redemptions', ['tenant_id', 'customer_number'], unique=False)
    op.add_column('coupons', sa.Column('budget_amount', sa.Numeric(precision=18, scale=4), nullable=True))
    op.add_column('coupons', sa.Column('budget_currency', sa.String(length=3), nullable=True))
    op.add_column('coupons', sa.Column('discount_used', sa.Numeric(precision=18, scale=4), server_default='0', nullable=False))
    op.add_column('coupons', sa.Column('budget_exhausted_at', sa.DateTime(timezone=True), nullable=True))
    # What the redemptions made so far granted: a budget set later starts from the truth.
    op.execute(
        "UPDATE coupons SET discount_used = COALESCE((SELECT SUM(r.discount_amount)"
        " FROM redemptions r WHERE r.coupon_id = coupons.id), 0)"
        " WHERE EXISTS (SELECT 1 FROM redemptions r WHERE r.coupon_id = coupons.id)"
    )
    op.add_column('campaigns', sa.Column('budget_max_redemptions', sa.Integer(), nullable=True))
    op.add_column('campaigns', sa.Column('budget_amount', sa.Numeric(precision=18, scale=4), nullable=True))
    op.add_column('campaigns', sa.Column('budget_currency', sa.String(length=3), nullable=True))
    op.add_column('campaigns', sa.Column('budget_max_per_customer', sa.Integer(), nullable=True))
    op.add_column('campaigns', sa.Column('redemptions_used', sa.Integer(), server_default='0', nullable=False))
    op.add_column('campaigns', sa.Column('discount_used', sa.Numeric(precision=18, scale=4), server_default='0', nullable=False))
    op.add_column('campaigns', sa.Column('budget_exhausted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    for column in ('budget_exhausted_at', 'discount_used', 'redemptions_used',
                   'budget_max_per_customer', 'budget_currency', 'budget_amount',
                   'budget_max_redemptions'):
        op.drop_column('campaigns', column)
    for column in ('budget_exhausted_at', 'discount_used', 'budget_currency', 'budget_amount'):
        op.drop_column('coupons', column)
    op.drop_index('ix_redemptions_tenant_customer', table_name='redemptions')
    for column in ('rollback_reason', 'rolled_back_amount', 'rolled_back_at', 'status'):
        op.drop_column('redemptions', column)
    op.drop_column('outbox_messages', 'retrying_since')
