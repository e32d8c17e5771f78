"""Command line: tenant bootstrap (and, later, outbox and code tools)."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask
from flask.cli import AppGroup

from app.errors import DomainError

tenant_cli = AppGroup("tenant", help="Manage tenants.")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@tenant_cli.command("create")
@click.argument("slug")
@click.option("--api-token", default=None, help="Use this API token instead of a random one.")
@click.option("--currency", default="EUR", show_default=True, help="Default ISO 4217 currency.")
@click.option("--exists-ok", is_flag=True, help="Exit 0 with a note when the tenant exists.")
def create_tenant_command(slug: str, api_token: str | None, currency: str, exists_ok: bool) -> None:
    """Create a tenant and its OAuth client; prints the secrets once as JSON."""
    from app.services.tenants import TenantExists, create_tenant, find_tenant

    try:
        created = create_tenant(slug=slug, api_token=api_token, currency=currency)
    except TenantExists as error:
        if exists_ok and find_tenant(slug) is not None:
            click.echo(
                f"tenant {slug} exists; `flask --app app tenant add-client {slug}` "
                "prints new OAuth credentials",
                err=True,
            )
            return
        _fail(error.message)
    except DomainError as error:
        _fail(error.message)
    click.echo(json.dumps(created))


@tenant_cli.command("add-client")
@click.argument("slug")
def add_client_command(slug: str) -> None:
    """Create another OAuth client for a tenant; prints its secret once as JSON."""
    from app.services.tenants import add_client

    try:
        created = add_client(slug=slug)
    except DomainError as error:
        _fail(error.message)
    click.echo(json.dumps(created))


def register(app: Flask) -> None:
    """Attach the command groups to the app."""
    app.cli.add_command(tenant_cli)
