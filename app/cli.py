"""Command line: tenant bootstrap, the outbox worker, housekeeping."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from contextlib import nullcontext
from datetime import UTC

import click
from flask import Flask, current_app
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
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the secrets to this file (mode 0600) instead of printing them.",
)
def create_tenant_command(
    slug: str, api_token: str | None, currency: str, exists_ok: bool, output: str | None
) -> None:
    """Create a tenant and its OAuth client; prints the secrets once as JSON (or writes
    them to --output, so they never reach a container's log)."""
    from app.engine.tenants import TenantExists, create_tenant, find_tenant

    try:
        created = create_tenant(
            slug=slug,
            api_token=api_token,
            currency=currency,
            production=current_app.config["APP_ENV"] == "production",
        )
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
    if output is None:
        click.echo(json.dumps(created))
        return
    _write_private(output, json.dumps(created) + "\n")
    click.echo(f"secrets of tenant {slug} written to {output}")


def _write_private(path: str, text: str) -> None:
    """Write `text` to a file only its owner can read, created so from the start."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode otherwise
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


@tenant_cli.command("configure")
@click.argument("slug")
@click.option(
    "--max-codes-per-order", type=int, default=None, help="How many codes one cart may combine."
)
def configure_tenant_command(slug: str, max_codes_per_order: int | None) -> None:
    """Change a tenant's settings; prints them as JSON."""
    from app.engine.tenants import configure

    _echo_json(lambda: configure(slug=slug, max_codes_per_order=max_codes_per_order))


@tenant_cli.command("add-client")
@click.argument("slug")
def add_client_command(slug: str) -> None:
    """Create another OAuth client for a tenant; prints its secret once as JSON."""
    from app.engine.tenants import add_client

    _echo_json(lambda: add_client(slug=slug))


@tenant_cli.command("revoke-client")
@click.argument("client_id")
def revoke_client_command(client_id: str) -> None:
    """Revoke an OAuth client: its secret and tokens stop working (tokens within
    CACHE_TTL_SECONDS). Prints one JSON line."""
    from app.engine.clients import revoke

    _echo_json(lambda: revoke(client_id=client_id))


@tenant_cli.command("rotate-client-secret")
@click.argument("client_id")
def rotate_client_secret_command(client_id: str) -> None:
    """A new secret for an OAuth client, printed once; its earlier tokens stop working."""
    from app.engine.clients import rotate_secret

    _echo_json(lambda: rotate_secret(client_id=client_id))


@tenant_cli.command("rotate-token")
@click.argument("slug")
def rotate_token_command(slug: str) -> None:
    """A new X-API-Token for a brand, printed once; the old one stops working."""
    from app.engine.tenants import rotate_api_token

    _echo_json(lambda: rotate_api_token(slug=slug))


def _echo_json(action) -> None:
    try:
        result = action()
    except DomainError as error:
        _fail(error.message)
    click.echo(json.dumps(result))


outbox_cli = AppGroup("outbox", help="Deliver and inspect downstream messages.")
idempotency_cli = AppGroup("idempotency", help="Idempotency-Key records.")
events_cli = AppGroup("events", help="Redemption events (Standard Webhooks).")


@outbox_cli.command("dispatch")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
def dispatch_command(once: bool) -> None:
    """Run the outbox worker (until SIGINT/SIGTERM unless --once)."""
    from app.engine import jobs
    from app.engine.catalog import generation, transfer
    from app.engine.idempotency import purge_expired
    from app.engine.outbox import purge_finished
    from app.engine.usage import holds
    from app.engine.worker import deliver_due, run_worker

    config = current_app.config
    if once:
        deliver_due(config)
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo("outbox worker started", err=True)
    # The worker is the one long-running process: it also purges old Idempotency-Keys,
    # old holds and delivered messages, and runs campaigns' jobs, a batch per turn.
    owner = jobs.new_owner()

    def housekeeping() -> None:
        purge_expired()
        holds.purge(config["RESERVATION_RETENTION_SECONDS"])
        purge_finished(config["OUTBOX_RETENTION_SECONDS"])

    run_worker(
        config,
        stop,
        housekeeping=housekeeping,
        jobs=(
            lambda: generation.work(owner, config),
            lambda: transfer.work_imports(owner, config),
        ),
        # Webhook deliveries run in threads, each in an app context of its own.
        context=current_app._get_current_object().app_context,
    )
    click.echo("outbox worker stopped", err=True)


@outbox_cli.command("list")
@click.option("--dead", is_flag=True, help="Dead messages instead of pending ones.")
def list_command(dead: bool) -> None:
    """One JSON line per pending (or dead) message."""
    from app.engine.outbox import list_messages

    for message in list_messages(dead=dead):
        click.echo(
            json.dumps(
                {
                    "id": message.id,
                    "destination": message.destination,
                    "path": message.path,
                    "status": message.status,
                    "attempts": message.attempts,
                    "next_attempt_at": message.next_attempt_at.isoformat(),
                    "last_error": message.last_error,
                }
            )
        )


@outbox_cli.command("retry")
@click.argument("message_id")
def retry_command(message_id: str) -> None:
    """Make a dead message due again."""
    from app.engine.outbox import retry

    if not retry(message_id):
        _fail(f"no undelivered message {message_id}")
    click.echo(f"message {message_id} is due again")


@outbox_cli.command("retry-dead")
@click.option("--destination", help="Only messages to this destination (events, ...).")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
    help="Only messages dead since this UTC time (2026-12-01 or 2026-12-01T08:00:00).",
)
def retry_dead_command(destination: str | None, since) -> None:
    """Make every dead message due again, with a fresh retry budget."""
    from app.engine.outbox import DESTINATION_SETTINGS, retry_dead

    if destination and destination not in DESTINATION_SETTINGS:
        _fail(f"no destination {destination!r}: one of {', '.join(DESTINATION_SETTINGS)}")
    count = retry_dead(destination=destination, since=since and since.replace(tzinfo=UTC))
    click.echo(f"{count} dead messages are due again")


webhooks_cli = AppGroup("webhooks", help="Tenants' webhook endpoints.")


@webhooks_cli.command("reseal")
def reseal_command() -> None:
    """Seal every endpoint's secret under SECRET_KEY (after a rotation, before the old
    key leaves SECRET_KEY_FALLBACKS)."""
    from app.engine.webhooks import reseal_all

    config = current_app.config
    count = reseal_all([config["SECRET_KEY"], *config["SECRET_KEY_FALLBACKS"]])
    click.echo(f"{count} secrets sealed under the current SECRET_KEY")


campaign_cli = AppGroup("campaign", help="Campaigns: bulk unique codes.")


@campaign_cli.command("generate")
@click.argument("tenant")
@click.option("--count", type=click.IntRange(min=1), required=True, help="Codes to generate.")
@click.option("--length", type=click.IntRange(1, 64), help="Random characters (default 8).")
@click.option("--prefix", default="", help="Text before the random part.")
@click.option("--postfix", default="", help="Text after the random part.")
@click.option("--pattern", help="'#' is a random character: 'SPRING-####-####'.")
@click.option("--charset", help="readable (default), alphanumeric, numbers, uppercase, ...")
@click.option("--name", help="Campaign name (default: the time it was made).")
@click.option("--percent", type=float, help="A PERCENT discount of this many percent.")
@click.option("--amount", type=float, help="An ABSOLUTE discount of this amount ...")
@click.option("--currency", help="... in this ISO 4217 currency.")
@click.option(
    "--max-redemptions", type=int, default=1, show_default=True, help="Uses per code (-1: any)."
)
@click.option(
    "--identified-only",
    is_flag=True,
    help="Only identified customers may redeem (default: anyone).",
)
def generate_campaign_command(
    tenant,
    count,
    length,
    prefix,
    postfix,
    pattern,
    charset,
    name,
    percent,
    amount,
    currency,
    max_redemptions,
    identified_only,
) -> None:
    """Create a campaign and generate its codes here; prints one JSON line at the end."""
    import time
    from decimal import Decimal

    from app.database import utcnow
    from app.engine import jobs
    from app.engine.catalog import campaigns, generation
    from app.engine.tenants import get_tenant

    if (percent is None) == (amount is None) or (amount is not None and not currency):
        _fail("give --percent X, or --amount X with --currency C")
    if percent is not None:
        template = {"discount_type": "PERCENT", "discount_percentage": Decimal(str(percent))}
    else:
        template = {
            "discount_type": "ABSOLUTE",
            "discount_amount": Decimal(str(amount)),
            "discount_currency": currency.upper(),
        }
    template.update(max_redemptions=max_redemptions, allow_anonymous=not identified_only)
    code_config = {"length": length, "pattern": pattern, "prefix": prefix, "postfix": postfix}
    code_config = {k: v for k, v in code_config.items() if v not in (None, "")}
    if charset:
        code_config["charset"] = charset
    settings = campaigns.Settings.from_config(current_app.config)
    owner = jobs.new_owner()
    started = time.monotonic()
    try:
        campaign = campaigns.create_campaign(
            tenant=get_tenant(tenant),
            name=name or f"campaign {utcnow().isoformat(timespec='seconds')}",
            count=count,
            code_config=code_config,
            template=template,
            settings=settings,
            owner=owner,
        )
    except DomainError as error:
        details = "; ".join(f"{d['field']}: {d['message']}" for d in error.details)
        _fail(f"{error.message}{': ' + details if details else ''}")
    campaign_id = campaign.id
    # A progress bar on a terminal; the JSON line alone when piped.
    bar = (
        click.progressbar(length=count, label=f"campaign {campaign_id}", file=sys.stderr)
        if sys.stderr.isatty()
        else nullcontext()
    )
    with bar as shown:
        done = 0

        def progress(step) -> None:
            nonlocal done
            if shown is not None:
                shown.update(step.generated - done)
            done = step.generated

        last = generation.generate(campaign_id, owner=owner, settings=settings, progress=progress)
    if last.status != "completed":
        _fail(f"campaign {campaign_id} {last.status}: {generation.failure_reason(campaign_id)}")
    seconds = round(time.monotonic() - started, 3)
    click.echo(
        json.dumps({"campaign": campaign_id, "generated": last.generated, "seconds": seconds})
    )


@idempotency_cli.command("purge")
def purge_command() -> None:
    """Delete records past their 24-hour retention (the worker does this hourly)."""
    from app.engine.idempotency import purge_expired

    click.echo(f"purged {purge_expired()} idempotency records")


@events_cli.command("new-secret")
def new_secret_command() -> None:
    """Print a new EVENTS_SECRET (whsec_...) for signing redemption events."""
    from app.engine.signatures import new_secret

    click.echo(new_secret())


def register(app: Flask) -> None:
    """Attach the command groups to the app."""
    app.cli.add_command(tenant_cli)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(idempotency_cli)
    app.cli.add_command(events_cli)
    app.cli.add_command(campaign_cli)
