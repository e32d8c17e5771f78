"""promotions: coupon targets (items, shipping), line selectors, allocation, caps, buy X get Y,
automatic promotions, metadata

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 05:40:00.000000

Only added columns, each NULL or with a server default: the previous release's code
keeps working on this schema (docs/operations.md, "Upgrading").
"""
from alembic import op
import sqlalchemy as sa

# Plain ADD/DROP COLUMN on `coupons` (no batch mode): a SQLite batch migration
# recreates the table and would drop the code registry's triggers (see 0004).

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('coupons', sa.Column('target', sa.String(length=16), server_default='ORDER', nullable=False))
    op.add_column('coupons', sa.Column('applies_to', sa.JSON(), nullable=True))
    op.add_column('coupons', sa.Column('excludes', sa.JSON(), nullable=True))
    op.add_column('coupons', sa.Column('allocation', sa.String(length=8), server_default='ACROSS', nullable=False))
    op.add_column('coupons', sa.Column('max_quantity', sa.Integer(), nullable=True))
    op.add_column('coupons', sa.Column('max_discount_amount', sa.Numeric(precision=18, scale=4), nullable=True))
    op.add_column('coupons', sa.Column('buy_x_get_y', sa.JSON(), nullable=True))
    op.add_column('coupons', sa.Column('automatic', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index('ix_coupons_tenant_automatic', 'coupons', ['tenant_id', 'automatic'], unique=False)
    for table in ('coupons', 'redemptions', 'reservations'):
        op.add_column(table, sa.Column('metadata', sa.JSON(), nullable=True))


def downgrade():
    for table in ('reservations', 'redemptions', 'coupons'):
        op.drop_column(table, 'metadata')
    op.drop_index('ix_coupons_tenant_automatic', table_name='coupons')
    for column in ('automatic', 'buy_x_get_y', 'max_discount_amount', 'max_quantity', 'allocation', 'excludes', 'applies_to', 'target'):
        op.drop_column('coupons', column)
