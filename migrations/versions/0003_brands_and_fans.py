"""brands and fans

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:05:08.629973

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('discounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('discount_type', sa.String(length=16), nullable=False),
    sa.Column('discount_amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('usage_limit', sa.Integer(), nullable=False),
    sa.Column('free_shipping', sa.Boolean(), nullable=False),
    sa.Column('verify_email', sa.Boolean(), nullable=False),
    sa.Column('fixed_code', sa.String(length=64), nullable=True),
    sa.Column('date_expires', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_modified', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_discounts_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_discounts'))
    )
    with op.batch_alter_table('discounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_discounts_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('fans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('discount_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('facebook_handle', sa.String(length=255), nullable=True),
    sa.Column('activation_token_hash', sa.String(length=64), nullable=True),
    sa.Column('activation_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('coupon_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_fans_coupon_id_coupons'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['discount_id'], ['discounts.id'], name=op.f('fk_fans_discount_id_discounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_fans_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fans')),
    sa.UniqueConstraint('activation_token_hash', name=op.f('uq_fans_activation_token_hash')),
    sa.UniqueConstraint('discount_id', 'email', name=op.f('uq_fans_discount_id_email'))
    )
    with op.batch_alter_table('fans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fans_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_coupons_discount_id'), ['discount_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_coupons_discount_id_discounts'), 'discounts', ['discount_id'], ['id'], ondelete='SET NULL')



def downgrade():
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_coupons_discount_id_discounts'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_coupons_discount_id'))
        batch_op.drop_column('discount_id')

    with op.batch_alter_table('fans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fans_tenant_id'))

    op.drop_table('fans')
    with op.batch_alter_table('discounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_discounts_tenant_id'))

    op.drop_table('discounts')
