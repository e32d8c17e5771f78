"""console: its sessions, and a tenant's redemptions by time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 20:40:00.000000

Console sign-ins are kept in console_sessions (the token's SHA-256), so signing out
ends them on the server. The console's overview reads a tenant's redemptions of the last 30 days: the index on
(tenant_id, redeemed_at) replaces the one on tenant_id alone (its prefix serves those
lookups), so a redemption maintains as many indexes as before. On PostgreSQL both run
CONCURRENTLY (no lock on writers while a big table is indexed), outside a transaction.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _postgresql() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade():
    op.create_table('console_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('proof', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_console_sessions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_console_sessions'))
    )
    op.create_index(op.f('ix_console_sessions_expires_at'), 'console_sessions', ['expires_at'], unique=False)
    if _postgresql():
        with op.get_context().autocommit_block():
            op.create_index('ix_redemptions_tenant_redeemed', 'redemptions',
                            ['tenant_id', 'redeemed_at'], unique=False,
                            postgresql_concurrently=True, if_not_exists=True)
            op.drop_index('ix_redemptions_tenant_id', table_name='redemptions',
                          postgresql_concurrently=True, if_exists=True)
        return
    op.create_index('ix_redemptions_tenant_redeemed', 'redemptions',
                    ['tenant_id', 'redeemed_at'], unique=False)
    op.drop_index('ix_redemptions_tenant_id', table_name='redemptions')


def downgrade():
    op.create_index('ix_redemptions_tenant_id', 'redemptions', ['tenant_id'], unique=False)
    op.drop_index('ix_redemptions_tenant_redeemed', table_name='redemptions')
    op.drop_index(op.f('ix_console_sessions_expires_at'), table_name='console_sessions')
    op.drop_table('console_sessions')
