"""campaigns: bulk codes, and one registry of every code

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 19:45:10.017219

"""
from alembic import op
import sqlalchemy as sa

# Every coupon's code is registered in `codes` (whose primary key makes codes unique
# per tenant regardless of case, campaign codes included) by these triggers. A
# coupon made from a campaign code (campaign_id set) is already registered. On
# SQLite a batch migration that recreates `coupons` drops them: recreate them after.
PG_TRIGGER = """
CREATE FUNCTION register_coupon_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.campaign_id IS NULL THEN
            INSERT INTO codes (tenant_id, code_key, code) VALUES (NEW.tenant_id, NEW.code_key, NEW.code);
        END IF;
    ELSIF NEW.code_key IS DISTINCT FROM OLD.code_key THEN
        UPDATE codes SET code_key = NEW.code_key, code = NEW.code
        WHERE tenant_id = OLD.tenant_id AND code_key = OLD.code_key;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER coupons_register_code BEFORE INSERT OR UPDATE OF code_key ON coupons
FOR EACH ROW EXECUTE FUNCTION register_coupon_code();
"""
SQLITE_TRIGGERS = (
    """CREATE TRIGGER coupons_register_code BEFORE INSERT ON coupons
    WHEN NEW.campaign_id IS NULL
    BEGIN
        INSERT INTO codes (tenant_id, code_key, code) VALUES (NEW.tenant_id, NEW.code_key, NEW.code);
    END""",
    """CREATE TRIGGER coupons_rename_code AFTER UPDATE OF code_key ON coupons
    WHEN NEW.code_key IS NOT OLD.code_key
    BEGIN
        UPDATE codes SET code_key = NEW.code_key, code = NEW.code
        WHERE tenant_id = OLD.tenant_id AND code_key = OLD.code_key;
    END""",
)


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('codes',
    sa.Column('tenant_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('code_key', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'code_key', name=op.f('pk_codes'))
    )
    with op.batch_alter_table('codes', schema=None) as batch_op:
        batch_op.create_index('ix_codes_campaign', ['campaign_id', 'position'], unique=False)

    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('generated', sa.Integer(), nullable=False),
    sa.Column('imported', sa.Integer(), nullable=False),
    sa.Column('code_config', sa.JSON(), nullable=False),
    sa.Column('template', sa.JSON(), nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('positions', sa.Integer(), nullable=False),
    sa.Column('issue_cursor', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_campaigns_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_coupons_campaign', ['campaign_id', 'id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_coupons_campaign_id_campaigns'), 'campaigns', ['campaign_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('discounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_discounts_campaign_id_campaigns'), 'campaigns', ['campaign_id'], ['id'], ondelete='SET NULL')

    op.execute("INSERT INTO codes (tenant_id, code_key, code) SELECT tenant_id, code_key, code FROM coupons")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_TRIGGER)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER coupons_register_code ON coupons")
        op.execute("DROP FUNCTION register_coupon_code()")
    else:
        op.execute("DROP TRIGGER coupons_register_code")
        op.execute("DROP TRIGGER coupons_rename_code")
    with op.batch_alter_table('discounts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_discounts_campaign_id_campaigns'), type_='foreignkey')
        batch_op.drop_column('campaign_id')

    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_coupons_campaign_id_campaigns'), type_='foreignkey')
        batch_op.drop_index('ix_coupons_campaign')
        batch_op.drop_column('campaign_id')

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaigns_tenant_id'))

    op.drop_table('campaigns')
    with op.batch_alter_table('codes', schema=None) as batch_op:
        batch_op.drop_index('ix_codes_campaign')

    op.drop_table('codes')
