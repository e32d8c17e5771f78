"""after checkout: outbox retries on a time budget, redemptions rolled back, budgets,
webhook endpoints per tenant

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
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('event_filter', sa.String(length=2000), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=200), nullable=True),
    sa.Column('secret', sa.LargeBinary(), nullable=False),
    sa.Column('previous_secret', sa.LargeBinary(), nullable=True),
    sa.Column('previous_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_webhook_endpoints_tenant_id', 'webhook_endpoints', ['tenant_id'], unique=False)
    op.create_table('webhook_attempts',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.String(length=32), nullable=False),
    sa.Column('message_id', sa.String(length=32), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index('ix_webhook_attempts_endpoint', 'webhook_attempts', ['endpoint_id', 'seq'], unique=False)
    # Batch mode: on SQLite it recreates outbox_messages (no triggers there, unlike
    # coupons: see 0004); on PostgreSQL it is a plain ALTER.
    with op.batch_alter_table('outbox_messages') as batch:
        batch.add_column(sa.Column('endpoint_id', sa.String(length=32), nullable=True))
        batch.create_foreign_key('outbox_messages_endpoint_id_fkey', 'webhook_endpoints', ['endpoint_id'], ['id'], ondelete='CASCADE')
    op.create_index('ix_outbox_messages_endpoint_id', 'outbox_messages', ['endpoint_id'], unique=False)
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
    op.drop_index('ix_outbox_messages_endpoint_id', table_name='outbox_messages')
    with op.batch_alter_table('outbox_messages') as batch:
        batch.drop_constraint('outbox_messages_endpoint_id_fkey', type_='foreignkey')
        batch.drop_column('endpoint_id')
    op.drop_index('ix_webhook_attempts_endpoint', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index('ix_webhook_endpoints_tenant_id', table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
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
