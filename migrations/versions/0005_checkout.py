"""checkout: holds (reservations), stacking fields, codes per order

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 22:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

# Plain ADD/DROP COLUMN on `coupons` (no batch mode): a SQLite batch migration
# recreates the table and would drop the code registry's triggers (see 0004).

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('coupons', sa.Column('exclusive', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('coupons', sa.Column('stacking_priority', sa.Integer(), server_default='0', nullable=False))
    op.add_column('coupons', sa.Column('held_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tenants', sa.Column('max_codes_per_order', sa.Integer(), server_default='5', nullable=False))

    op.create_table('reservations',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('customer_number', sa.String(length=64), nullable=True),
    sa.Column('order_id', sa.String(length=128), nullable=True),
    sa.Column('order_total_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('order_total_currency', sa.String(length=3), nullable=True),
    sa.Column('discount_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('discount_currency', sa.String(length=3), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('redemption_id', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_reservations_coupon_id_coupons'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_reservations_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_reservations')),
    sa.UniqueConstraint('id', name=op.f('uq_reservations_id'))
    )
    op.create_index('ix_reservations_live', 'reservations', ['coupon_id', 'expires_at'], unique=False,
                    postgresql_where=sa.text("status = 'held'"), sqlite_where=sa.text("status = 'held'"))
    op.create_index('ix_reservations_coupon_order', 'reservations', ['coupon_id', 'order_id'], unique=False)
    op.create_index('ix_reservations_expires_at', 'reservations', ['expires_at'], unique=False)
    op.create_index(op.f('ix_reservations_tenant_id'), 'reservations', ['tenant_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_reservations_tenant_id'), table_name='reservations')
    op.drop_index('ix_reservations_expires_at', table_name='reservations')
    op.drop_index('ix_reservations_coupon_order', table_name='reservations')
    op.drop_index('ix_reservations_live', table_name='reservations')
    op.drop_table('reservations')
    op.drop_column('tenants', 'max_codes_per_order')
    op.drop_column('coupons', 'held_until')
    op.drop_column('coupons', 'stacking_priority')
    op.drop_column('coupons', 'exclusive')
