"""identities and abuse: canonical identifiers, callers' idempotency keys, order owners,
listable coupons, revocable clients, activation resends, background CSV imports

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 00:29:42.899942

"""
import re

from alembic import op
import sqlalchemy as sa

# The service's own canonical forms: rows written before this revision are brought to
# them here, so that old and new rows compare alike.
from app.engine import canonical

# Plain ADD COLUMN on `coupons` (no batch mode), as in 0005: a SQLite batch migration
# recreates the table and would drop the code registry's triggers (see 0004).

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{1,62}")


def _refuse_bad_slugs(connection):
    bad = [slug for (slug,) in connection.execute(sa.text("SELECT slug FROM tenants"))
           if not SLUG.fullmatch(slug)]
    if bad:
        raise RuntimeError(
            f"tenant slugs {bad!r} are not 2-63 characters of a-z, 0-9, '_' or '-' (a slug "
            "ending in a newline was once accepted): rename them in the tenants table, then "
            "run the upgrade again"
        )


def _non_ascii(column, connection):
    """Rows whose `column` may change under NFKC and the new case fold: non-ASCII text
    (PostgreSQL filters in SQL; SQLite, whose databases here are small, reads them all)."""
    if connection.dialect.name == "postgresql":
        return column.op("~")("[^[:ascii:]]")
    return sa.true()


def _refuse_look_alike_clashes(connection):
    """Codes stored apart before that are one code now (fullwidth, Turkish i's): refuse,
    naming them, rather than pick which to keep."""
    codes = sa.table('codes', sa.column('tenant_id'), sa.column('code'), sa.column('code_key'))
    rows = connection.execute(
        sa.select(codes).where(_non_ascii(codes.c.code, connection))
    ).all()
    written = {(r.tenant_id, r.code_key): r.code for r in rows}
    moved = {(r.tenant_id, r.code_key): canonical.code_key(r.code) for r in rows}
    moved = {old: new for old, new in moved.items() if new != old[1]}
    final: dict = {}
    clashes = []
    for (tenant, old), new in moved.items():
        taken = connection.execute(
            sa.select(codes.c.code).where(codes.c.tenant_id == tenant, codes.c.code_key == new)
        ).first()
        if (tenant, new) in final or (taken is not None and (tenant, new) not in moved):
            clashes.append(f"tenant {tenant}: {written[(tenant, old)]!r} is {new!r}")
        final[(tenant, new)] = old
    if clashes:
        raise RuntimeError(
            "codes that look alike are one code from this revision on, and these would "
            f"collide: {'; '.join(clashes[:50])}. Rename or delete one of each pair (a "
            "coupon's code in `coupons`, or a campaign's in `codes`), then upgrade again"
        )


def _canonical_data(connection):
    """Code keys, customer numbers and email keys in their canonical forms."""
    coupons = sa.table('coupons', sa.column('id'), sa.column('code'), sa.column('code_key'),
                       sa.column('valid_for', sa.JSON))
    rows = connection.execute(
        sa.select(coupons.c.id, coupons.c.code, coupons.c.code_key, coupons.c.valid_for).where(
            sa.or_(_non_ascii(coupons.c.code, connection), coupons.c.valid_for.is_not(None))
        )
    ).all()
    for row in rows:
        values = {}
        key = canonical.code_key(row.code)
        if key != row.code_key:
            values['code_key'] = key  # the triggers rename it in the registry too
        if row.valid_for:
            numbers = [canonical.customer_number(n) or n for n in row.valid_for]
            if numbers != row.valid_for:
                values['valid_for'] = numbers
        if values:
            connection.execute(coupons.update().where(coupons.c.id == row.id).values(**values))
    codes = sa.table('codes', sa.column('tenant_id'), sa.column('code'), sa.column('code_key'),
                     sa.column('campaign_id'))
    # Campaign codes are drawn from letters and digits: only non-ASCII ones can change.
    query = sa.select(codes).where(
        codes.c.campaign_id.is_not(None), _non_ascii(codes.c.code, connection)
    )
    for row in connection.execute(query).all():
        key = canonical.code_key(row.code)
        if key != row.code_key:
            connection.execute(codes.update().where(
                codes.c.tenant_id == row.tenant_id, codes.c.code_key == row.code_key
            ).values(code_key=key))
    for name in ('redemptions', 'reservations'):
        table = sa.table(name, sa.column('seq'), sa.column('customer_number'))
        number = table.c.customer_number
        query = sa.select(table).where(
            number.is_not(None),
            sa.or_(number != sa.func.upper(sa.func.trim(number)), _non_ascii(number, connection)),
        )
        for row in connection.execute(query).all():
            number = canonical.customer_number(row.customer_number) or row.customer_number
            if number != row.customer_number:
                connection.execute(table.update().where(table.c.seq == row.seq)
                                   .values(customer_number=number))
    for name, scope in (('customers', 'tenant_id'), ('fans', 'discount_id')):
        table = sa.table(name, sa.column('id'), sa.column(scope), sa.column('email'),
                         sa.column('email_key'))
        taken = set()
        query = sa.select(table.c.id, table.c[scope], table.c.email).order_by(table.c.id)
        for row in connection.execute(query).all():
            key = canonical.email_key(row.email)
            if (row[1], key) in taken:  # two accounts of one inbox from before: kept apart
                key = f"{key}#{row.id}"
            taken.add((row[1], key))
            connection.execute(table.update().where(table.c.id == row.id).values(email_key=key))


def upgrade():
    connection = op.get_bind()
    _refuse_bad_slugs(connection)
    _refuse_look_alike_clashes(connection)
    op.create_table('campaign_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('code_column', sa.Integer(), nullable=False),
    sa.Column('offset', sa.Integer(), nullable=False),
    sa.Column('lines_read', sa.Integer(), nullable=False),
    sa.Column('imported', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('invalid', sa.Integer(), nullable=False),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_imports_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_campaign_imports_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_imports'))
    )
    with op.batch_alter_table('campaign_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_imports_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_imports_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_version', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))

    op.add_column('coupons', sa.Column('listable', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('customers', sa.Column('email_key', sa.String(length=254), nullable=True))
    op.add_column('fans', sa.Column('email_key', sa.String(length=254), nullable=True))
    op.add_column('redemptions', sa.Column('order_owner', sa.String(length=64), server_default='', nullable=False))
    op.add_column('reservations', sa.Column('order_owner', sa.String(length=64), server_default='', nullable=False))
    _canonical_data(connection)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('email_key', existing_type=sa.String(length=254), nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_customers_tenant_id_email'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_customers_tenant_id_email_key'), ['tenant_id', 'email_key'])

    with op.batch_alter_table('fans', schema=None) as batch_op:
        batch_op.alter_column('email_key', existing_type=sa.String(length=254), nullable=False)
        batch_op.add_column(sa.Column('activation_salt', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('activation_sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_fans_discount_id_email'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_fans_discount_id_email_key'), ['discount_id', 'email_key'])

    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('caller', sa.String(length=100), server_default='', nullable=False))
        batch_op.drop_constraint(batch_op.f('uq_idempotency_records_tenant_id_key'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_idempotency_records_tenant_id_caller_key'), ['tenant_id', 'caller', 'key'])

    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_redemptions_coupon_id_order_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_redemptions_coupon_id_order_owner_order_id'), ['coupon_id', 'order_owner', 'order_id'])


def downgrade():
    op.drop_column('reservations', 'order_owner')

    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_redemptions_coupon_id_order_owner_order_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_redemptions_coupon_id_order_id'), ['coupon_id', 'order_id'])
        batch_op.drop_column('order_owner')

    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_idempotency_records_tenant_id_caller_key'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_idempotency_records_tenant_id_key'), ['tenant_id', 'key'])
        batch_op.drop_column('caller')

    with op.batch_alter_table('fans', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_fans_discount_id_email_key'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_fans_discount_id_email'), ['discount_id', 'email'])
        batch_op.drop_column('activation_sent_at')
        batch_op.drop_column('activation_salt')
        batch_op.drop_column('email_key')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_customers_tenant_id_email_key'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_customers_tenant_id_email'), ['tenant_id', 'email'])
        batch_op.drop_column('email_key')

    op.drop_column('coupons', 'listable')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('token_version')

    with op.batch_alter_table('campaign_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_imports_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_campaign_imports_campaign_id'))

    op.drop_table('campaign_imports')
