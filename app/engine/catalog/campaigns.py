"""Campaigns: a named batch of unique codes that share one coupon template.

A campaign's codes are rows of the `codes` registry (tenant, case-folded key,
campaign, position), written in bulk at close to COPY speed. The first time a
code is looked up it becomes a coupon row carrying the template
(`materialize`), and from then on validation, redemption and the promo check
treat it like any other coupon. Changing the template or deactivating the
campaign therefore touches the campaign row and only the codes already used.

Generation is a resumable job done in batches: each batch is one transaction
that locks the campaign row, registers codes and advances `generated`, so a
crash loses at most the batch in flight and a worker resumes after the lease.
"""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import bindparam, case, func, select, update

from app.database import insert_or_ignore, read, utcnow
from app.engine import canonical, rules
from app.engine.canonical import code_key
from app.engine.catalog import bulk_codes, coupons
from app.engine.codes import BadCodeSpec, CodeSpec, is_valid
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.models import (
    Campaign,
    CampaignImport,
    CampaignStatus,
    Code,
    Coupon,
    ImportStatus,
    Origin,
    Redemption,
)

log = logging.getLogger(__name__)

# Template keys stored as text in JSON, and their types.
_DECIMALS = ("discount_percentage", "discount_amount", "min_order_amount")
_DATES = ("valid_from", "valid_until")
# Rounds in a row that find no free code before a batch gives up (space exhausted).
MAX_EMPTY_ROUNDS = 3
CSV_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    batch_size: int
    lease_seconds: float
    max_codes: int
    capacity_factor: int

    @classmethod
    def from_config(cls, config) -> Settings:
        return cls(
            batch_size=config["CAMPAIGN_BATCH_SIZE"],
            lease_seconds=config["CAMPAIGN_LEASE_SECONDS"],
            max_codes=config["CAMPAIGN_MAX_CODES"],
            capacity_factor=config["CAMPAIGN_CAPACITY_FACTOR"],
        )


class CampaignNotFound(NotFound):
    type, message = "campaign_not_found", "Campaign not found"


class CampaignExhausted(Conflict):
    type, message = "campaign_exhausted", "The campaign has no code left to issue"


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(details=[{"field": field, "type": "invalid", "message": message}])


# --- template ------------------------------------------------------------------------------


def _template_json(definition: dict) -> dict:
    """A definition as stored: JSON-safe (decimals and dates as text), without `active`
    (the campaign's own flag)."""
    out = {key: value for key, value in definition.items() if key != "active"}
    for key in _DECIMALS:
        if out.get(key) is not None:
            out[key] = str(out[key])
    for key in _DATES:
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    return out


def template_definition(campaign: Campaign) -> dict:
    """The campaign's template as an engine definition; `active` is the campaign's."""
    definition = {**coupons.DEFAULTS, **campaign.template}
    for key in _DECIMALS:
        if definition.get(key) is not None:
            definition[key] = Decimal(definition[key])
    for key in _DATES:
        if definition.get(key) is not None:
            definition[key] = datetime.fromisoformat(definition[key])
    definition["active"] = campaign.active
    return definition


def _checked_template(values: dict, explicit: set[str]) -> dict:
    definition = {**coupons.DEFAULTS, **values, "active": True}
    problems = coupons.check_definition(definition, explicit)
    if problems:
        for problem in problems:
            problem["field"] = f"template.{problem['field']}"
        raise ValidationFailed(details=problems)
    return definition


def template_coupon(campaign: Campaign) -> Coupon:
    """A transient coupon carrying the template (what every code of the campaign holds)."""
    coupon = Coupon(
        tenant_id=campaign.tenant_id,
        campaign_id=campaign.id,
        origin=Origin.CAMPAIGN,
        redemption_count=0,
        deleted=False,
        discount_id=None,
    )
    coupons.apply_definition(coupon, template_definition(campaign))
    now = utcnow()
    coupon.created_at = coupon.updated_at = now
    return coupon


# Every coupon column a campaign code takes from its campaign (all but id and the code).
TEMPLATE_COLUMNS = tuple(
    c.name for c in Coupon.__table__.columns if c.name not in ("id", "code", "code_key")
)

# What a template change rewrites on the codes already used (not who, what or how often).
_REWRITTEN = tuple(
    name
    for name in TEMPLATE_COLUMNS
    if name
    not in (
        "tenant_id",
        "campaign_id",
        "origin",
        "discount_id",
        "redemption_count",
        # Holds on a used code outlive a template change.
        "held_until",
        "deleted",
        "created_at",
    )
)


def _row_values(campaign: Campaign) -> dict:
    coupon = template_coupon(campaign)
    return {name: getattr(coupon, name) for name in TEMPLATE_COLUMNS}


# --- create, read, change ------------------------------------------------------------------


def _spec(code_config: dict) -> CodeSpec:
    return CodeSpec(code_config["pattern"], code_config["characters"])


def create_campaign(
    *,
    tenant: TenantRef,
    name: str,
    count: int | None,
    code_config: dict,
    template: dict,
    settings: Settings,
    owner: str | None = None,
) -> Campaign:
    """Check and queue a campaign (202); `owner` generates it itself (the CLI)."""
    if count is not None and not 1 <= count <= settings.max_codes:
        raise _invalid(
            "count",
            f"Must be 1 to {settings.max_codes:,}; leave it out for a campaign filled by import",
        )
    try:
        spec = CodeSpec.build(**code_config)
    except BadCodeSpec as error:
        raise _invalid(f"codeConfig.{error.field}", str(error)) from None
    definition = _checked_template(template, set(template))
    with unit_of_work():
        if count:
            existing = db.session.scalar(
                select(func.count()).select_from(Code).where(Code.tenant_id == tenant.id)
            )
            needed = settings.capacity_factor * (count + existing)
            if spec.space < needed:
                raise _invalid(
                    "codeConfig",
                    f"The pattern makes {spec.space:,} distinct codes; {count:,} asked plus "
                    f"{existing:,} existing codes need at least {needed:,} "
                    f"({settings.capacity_factor} times as many) to be drawn without long "
                    "collision retries: lengthen the pattern or widen the charset",
                )
        now = utcnow()
        campaign = Campaign(
            tenant_id=tenant.id,
            name=name,
            status=CampaignStatus.QUEUED if count else CampaignStatus.COMPLETED,
            active=True,
            deleted=False,
            requested=count or 0,
            generated=0,
            imported=0,
            code_config={"pattern": spec.pattern, "characters": spec.charset},
            template=_template_json(definition),
            positions=0,
            issue_cursor=0,
            finished_at=None if count else now,
        )
        if count and owner:
            campaign.status = CampaignStatus.GENERATING
            campaign.lease_owner = owner
            campaign.lease_until = now + timedelta(seconds=settings.lease_seconds)
        db.session.add(campaign)
        db.session.flush()
    return campaign


def get_campaign(*, tenant: TenantRef, campaign_id: int, for_update: bool = False) -> Campaign:
    query = select(Campaign).where(
        Campaign.tenant_id == tenant.id, Campaign.id == campaign_id, Campaign.deleted.is_(False)
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    campaign = db.session.scalar(query)
    if campaign is None:
        raise CampaignNotFound()
    return campaign


def list_campaigns(*, tenant: TenantRef, page: int, page_size: int) -> tuple[list[Campaign], int]:
    conditions = (Campaign.tenant_id == tenant.id, Campaign.deleted.is_(False))
    total = db.session.scalar(select(func.count()).select_from(Campaign).where(*conditions))
    items = db.session.scalars(
        select(Campaign)
        .where(*conditions)
        .order_by(Campaign.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(items), total or 0


def update_campaign(*, tenant: TenantRef, campaign_id: int, changes: dict) -> Campaign:
    """Rename, (de)activate, or change the template of every code at once.

    The campaign row is locked first, so a generation batch (which holds the same
    lock) writes its codes either wholly before or wholly after the change.
    """
    with unit_of_work():
        campaign = get_campaign(tenant=tenant, campaign_id=campaign_id, for_update=True)
        if "name" in changes:
            campaign.name = changes["name"]
        codes_change = False
        if "template" in changes:
            definition = _checked_template(
                {**template_definition(campaign), **changes["template"]}, set(changes["template"])
            )
            campaign.template = _template_json(definition)
            codes_change = True
        if "active" in changes and changes["active"] != campaign.active:
            campaign.active = changes["active"]
            codes_change = True
        if codes_change:
            values = _row_values(campaign)
            db.session.execute(
                update(Coupon)
                .where(Coupon.campaign_id == campaign.id, Coupon.deleted.is_(False))
                .values({name: values[name] for name in _REWRITTEN})
                .execution_options(synchronize_session=False)
            )
    return campaign


def delete_campaign(*, tenant: TenantRef, campaign_id: int) -> None:
    """Delete the campaign and soft-delete its codes (they stay taken, like any coupon's)."""
    with unit_of_work():
        campaign = get_campaign(tenant=tenant, campaign_id=campaign_id, for_update=True)
        campaign.deleted = True
        campaign.lease_owner = campaign.lease_until = None
        db.session.execute(
            update(Coupon)
            .where(Coupon.campaign_id == campaign.id, Coupon.deleted.is_(False))
            .values(deleted=True, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def retry_campaign(*, tenant: TenantRef, campaign_id: int) -> Campaign:
    """Queue a failed campaign again; it goes on from the codes it already has."""
    with unit_of_work():
        campaign = get_campaign(tenant=tenant, campaign_id=campaign_id, for_update=True)
        if campaign.status != CampaignStatus.FAILED:
            raise Conflict(f"Only a failed campaign can be retried (this one is {campaign.status})")
        campaign.status = CampaignStatus.QUEUED
        campaign.failure_reason = None
        campaign.finished_at = None
    return campaign


@dataclass(frozen=True)
class Totals:
    codes: int
    codes_used: int
    redemptions: int
    discounts: list[dict]


def totals(campaign: Campaign) -> Totals:
    """Codes, codes used at least once, redemptions, and the discount given per currency."""
    used, redemptions = read(
        db.session,
        select(
            func.coalesce(func.sum(case((Coupon.redemption_count > 0, 1), else_=0)), 0),
            func.coalesce(func.sum(Coupon.redemption_count), 0),
        ).where(Coupon.campaign_id == campaign.id),
    )[0]
    given = read(
        db.session,
        select(Redemption.discount_currency, func.sum(Redemption.discount_amount))
        .join(Coupon, Coupon.id == Redemption.coupon_id)
        .where(Coupon.campaign_id == campaign.id, Redemption.discount_amount.is_not(None))
        .group_by(Redemption.discount_currency)
        .order_by(Redemption.discount_currency),
    )
    return Totals(
        # Kept in the transactions that register codes: no count over the registry.
        codes=campaign.generated + campaign.imported,
        codes_used=int(used),
        redemptions=int(redemptions),
        discounts=[{"amount": amount, "currency": currency} for currency, amount in given],
    )


# --- generation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    campaign_id: int
    generated: int
    requested: int
    status: str


class _Exhausted(Exception):
    pass


def new_owner() -> str:
    """An identity for a generating process (leases name it)."""
    return uuid.uuid4().hex


def _lease_next(model, *, waiting: str, working: str, owner: str, settings, row_id, where=()):
    """The first row of a job table (campaigns, imports) that is `waiting`, or `working`
    under this owner's lease or an expired one, now leased to `owner`; None when none
    is. SKIP LOCKED lets several workers share the table."""
    now = utcnow()
    query = (
        select(model)
        .where(
            *where,
            (model.status == waiting)
            | (
                (model.status == working)
                & ((model.lease_owner == owner) | (model.lease_until < now))
            ),
        )
        .order_by(model.id)
        .limit(1)
        .execution_options(populate_existing=True)
    )
    if row_id is not None:
        query = query.where(model.id == row_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = db.session.scalar(query)
    if row is not None:
        row.status = working
        row.lease_owner = owner
        row.lease_until = now + timedelta(seconds=settings.lease_seconds)
    return row


def _claim(owner: str, settings: Settings, campaign_id: int | None) -> Campaign | None:
    return _lease_next(
        Campaign,
        waiting=CampaignStatus.QUEUED,
        working=CampaignStatus.GENERATING,
        owner=owner,
        settings=settings,
        row_id=campaign_id,
        where=(Campaign.deleted.is_(False),),
    )


def generate_step(
    *, owner: str, settings: Settings, campaign_id: int | None = None
) -> Progress | None:
    """Generate one batch of the next campaign that needs it; None when none does.

    A database error propagates (the lease runs out and the job resumes); a space
    too small to find free codes in marks the campaign failed, with the reason.
    """
    campaign = None
    try:
        with unit_of_work():
            campaign = _claim(owner, settings, campaign_id)
            if campaign is None:
                return None
            quota = min(campaign.requested - campaign.generated, settings.batch_size)
            if quota > 0:
                campaign.generated += _draw_into(campaign, quota)
            if campaign.generated >= campaign.requested:
                _COLLISIONS.pop(campaign.id, None)
                campaign.status = CampaignStatus.COMPLETED
                campaign.finished_at = utcnow()
                campaign.lease_owner = campaign.lease_until = None
            return Progress(campaign.id, campaign.generated, campaign.requested, campaign.status)
    except _Exhausted as error:
        return _fail(campaign.id, str(error))
    except bulk_codes.OUTAGE_ERRORS:
        raise  # an outage, not the campaign's fault: the lease runs out, the job resumes
    except Exception as error:
        # The campaign's own data (a value the database refuses) or a defect: this
        # campaign fails with the reason, and the worker goes on with everyone else's.
        if campaign is None:
            raise
        log.exception("campaign generation failed", extra={"campaign_id": campaign.id})
        return _fail(campaign.id, f"Generation failed: {_reason(error)}")


# Batches per campaign whose COPY hit a taken code, in this process. In a sparse space a
# collision is rare (about one per million codes of 8 readable characters) and costs one
# COPY, the batch goes on through the staged path and the next one is fast again; a
# campaign that keeps colliding (a dense space) takes the staged path from then on.
_COLLISIONS: Counter[int] = Counter()
MAX_FAST_COLLISIONS = 3


def _draw_into(campaign: Campaign, quota: int) -> int:
    """Register `quota` new codes, drawing again for collisions; returns how many."""
    spec = _spec(campaign.code_config)
    connection = db.session.connection()
    fast = (
        connection.dialect.name == "postgresql" and _COLLISIONS[campaign.id] < MAX_FAST_COLLISIONS
    )
    added, empty_rounds = 0, 0
    while added < quota:
        missing = quota - added
        if fast:
            codes = list({code_key(code): code for code in spec.draw(missing)}.values())
            if bulk_codes.copy_codes(
                connection, campaign.tenant_id, campaign.id, campaign.positions + 1, codes
            ):
                campaign.positions += len(codes)
                added += len(codes)
                continue
            _COLLISIONS[campaign.id] += 1
            fast = False
        # A few spare candidates, so a round rarely ends short because of collisions.
        drawn = spec.draw(missing + missing // 20 + 16)
        candidates = {code_key(code): code for code in drawn}
        bulk_codes.stage(
            connection, ((i, code, key) for i, (key, code) in enumerate(candidates.items(), 1))
        )
        inserted = bulk_codes.insert_staged(
            connection, campaign.tenant_id, campaign.id, campaign.positions, missing
        )
        campaign.positions += len(candidates)
        added += len(inserted)
        empty_rounds = 0 if inserted else empty_rounds + 1
        if empty_rounds >= MAX_EMPTY_ROUNDS:
            total = campaign.generated + added
            raise _Exhausted(
                f"No free code found in {MAX_EMPTY_ROUNDS} rounds of drawing: the pattern's "
                f"space ({spec.space:,}) is nearly used up; {total:,} of "
                f"{campaign.requested:,} codes generated"
            )
    return added


def _reason(error: Exception) -> str:
    """What went wrong, without statement parameters (codes stay out of the reason)."""
    original = getattr(error, "orig", error)
    summary = str(original).splitlines()[0] if str(original) else ""
    if isinstance(original, bulk_codes.DATABASE_ERRORS):
        return f"the database refused a code ({type(original).__name__}: {summary[:200]})"
    return f"internal error ({type(original).__name__})"


def failure_reason(campaign_id: int) -> str | None:
    campaign = db.session.get(Campaign, campaign_id)
    return campaign.failure_reason if campaign else None


def _fail(campaign_id: int, reason: str) -> Progress:
    with unit_of_work():
        campaign = db.session.get(Campaign, campaign_id)
        campaign.status = CampaignStatus.FAILED
        campaign.failure_reason = reason
        campaign.finished_at = utcnow()
        campaign.lease_owner = campaign.lease_until = None
        return Progress(campaign.id, campaign.generated, campaign.requested, campaign.status)


def generate(
    campaign_id: int,
    *,
    owner: str,
    settings: Settings,
    progress: Callable[[Progress], object] = lambda _: None,
) -> Progress:
    """Generate a campaign to the end in this process (the CLI); returns the last progress."""
    while True:
        step = generate_step(owner=owner, settings=settings, campaign_id=campaign_id)
        if step is None:
            raise CampaignNotFound("Campaign not found or generated by another process")
        progress(step)
        if step.status != CampaignStatus.GENERATING:
            return step


def current_settings() -> Settings:
    return Settings.from_config(current_app.config)


def work(owner: str, config) -> bool:
    """One batch of whichever campaign needs it (the worker's turn); True if it did one."""
    return generate_step(owner=owner, settings=Settings.from_config(config)) is not None


# --- export and import ---------------------------------------------------------------------


def export_rows(
    campaign: Campaign, batch: int, on_page: Callable[[], object] = lambda: None
) -> Iterator[str]:
    """The campaign's codes as CSV text, a page at a time (keyset by position);
    `on_page()` is called before each page (the server's keep-alive: see app.heartbeat)."""
    header = io.StringIO()
    csv.writer(header).writerow(("code", "status", "redemptionCount"))
    yield header.getvalue()
    query = (
        select(
            Code.position,
            Code.code,
            Coupon.id.label("coupon_id"),
            Coupon.deleted,
            Coupon.active,
            Coupon.valid_from,
            Coupon.valid_until,
            Coupon.max_redemptions,
            Coupon.redemption_count,
        )
        .select_from(Code)
        .outerjoin(
            Coupon, (Coupon.tenant_id == Code.tenant_id) & (Coupon.code_key == Code.code_key)
        )
        .where(Code.campaign_id == campaign.id, Code.position > bindparam("after"))
        .order_by(Code.position)
        .limit(batch)
    )
    # A code never looked up is the template, unused.
    after, now = 0, utcnow()
    unused = rules.status(template_coupon(campaign), now)
    while True:
        on_page()
        rows = read(db.session, query, {"after": after})
        if not rows:
            return
        out = io.StringIO()
        writer = csv.writer(out)
        for row in rows:
            if row.coupon_id is None:
                writer.writerow((row.code, unused, 0))
            else:
                status = "DELETED" if row.deleted else rules.status(row, now)
                writer.writerow((row.code, status, row.redemption_count))
        yield out.getvalue()
        after = rows[-1].position


MAX_REPORTED = 1000
# Lines of a CSV file read per import transaction: what bounds an import's memory.
IMPORT_BATCH_LINES = 50_000


class ImportNotFound(NotFound):
    type, message = "import_not_found", "Import not found"


def queue_import(*, tenant: TenantRef, campaign_id: int, data: bytes) -> CampaignImport:
    """Check a CSV file's encoding and header now (400s at once) and queue its lines for
    the worker, which imports them a batch per transaction (202)."""
    get_campaign(tenant=tenant, campaign_id=campaign_id)  # a 404 before any 400
    text = _decoded(data)
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise _invalid("file", f"Unreadable CSV: {error}") from None
    columns = [name.strip().casefold() for name in header or ()]
    if "code" not in columns:
        raise _invalid("file", "The first line must name the columns, one of them `code`")
    with unit_of_work():
        job = CampaignImport(
            tenant_id=tenant.id,
            campaign_id=campaign_id,
            status=ImportStatus.QUEUED,
            data=data,
            code_column=columns.index("code"),
            offset=stream.tell(),
            lines_read=reader.line_num,
            problems=[],
        )
        db.session.add(job)
        db.session.flush()
    return job


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _invalid("file", f"Not UTF-8 (byte {error.start})") from None


def get_import(*, tenant: TenantRef, campaign_id: int, import_id: int) -> CampaignImport:
    job = db.session.scalar(
        select(CampaignImport).where(
            CampaignImport.id == import_id,
            CampaignImport.campaign_id == campaign_id,
            CampaignImport.tenant_id == tenant.id,
        )
    )
    if job is None:
        raise ImportNotFound()
    return job


def import_step(*, owner: str, settings: Settings, import_id: int | None = None) -> bool:
    """Import the next batch of lines of the next file that needs it; False when none does.

    One transaction: the import's lease, the campaign's row lock, its codes and the
    report so far. A file that turns out unreadable part-way fails with the reason (the
    lines before stay imported); an outage propagates and the lease runs out.
    """
    with unit_of_work():
        job = _claim_import(owner, settings, import_id)
        if job is None:
            return False
        campaign = db.session.scalar(
            select(Campaign).where(Campaign.id == job.campaign_id).with_for_update()
        )
        if campaign is None or campaign.deleted:
            _finish(job, ImportStatus.FAILED, "The campaign was deleted")
        else:
            _import_batch(job, campaign)
    return True


def _claim_import(owner: str, settings: Settings, import_id: int | None) -> CampaignImport | None:
    return _lease_next(
        CampaignImport,
        waiting=ImportStatus.QUEUED,
        working=ImportStatus.RUNNING,
        owner=owner,
        settings=settings,
        row_id=import_id,
    )


def _import_batch(job: CampaignImport, campaign: Campaign) -> None:
    """Read up to IMPORT_BATCH_LINES lines from where the import stands, register their
    free codes in the campaign, and add to the report."""
    stream = io.StringIO(job.data.decode("utf-8-sig"), newline="")
    stream.seek(job.offset)
    reader = csv.reader(stream, strict=True)
    problems = list(job.problems)

    def problem(line: int, code: str | None, reason: str) -> None:
        if len(problems) < MAX_REPORTED:
            problems.append({"line": line, "code": code, "reason": reason})

    candidates: dict[str, tuple[int, str]] = {}
    ended, failure = False, None
    while reader.line_num < IMPORT_BATCH_LINES:
        try:
            row = next(reader, None)
        except csv.Error as error:
            failure = f"Unreadable CSV at line {job.lines_read + reader.line_num}: {error}"
            break
        if row is None:
            ended = True
            break
        line = job.lines_read + reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        raw = row[job.code_column].strip() if job.code_column < len(row) else ""
        if not raw or not is_valid(raw):
            job.invalid += 1
            problem(line, raw or None, "invalid: " + coupons.CODE_RULE)
            continue
        code = canonical.code(raw)
        key = code_key(code)
        if key in candidates:
            job.duplicates += 1
            problem(line, code, f"duplicate: same code as line {candidates[key][0]}")
            continue
        candidates[key] = (line, code)
    connection = db.session.connection()
    items = list(candidates.items())
    bulk_codes.stage(connection, ((i, code, key) for i, (key, (_, code)) in enumerate(items, 1)))
    inserted = set(
        bulk_codes.insert_staged(
            connection, campaign.tenant_id, campaign.id, campaign.positions, limit=None
        )
    )
    campaign.positions += len(items)
    campaign.imported += len(inserted)
    job.imported += len(inserted)
    for key, (line, code) in items:
        if key not in inserted:
            job.duplicates += 1
            problem(line, code, "duplicate: the tenant (or an earlier line) has this code")
    job.problems = sorted(problems, key=lambda p: p["line"])
    job.lines_read += reader.line_num
    job.offset = stream.tell()
    if failure is not None:
        _finish(job, ImportStatus.FAILED, failure)
    elif ended:
        _finish(job, ImportStatus.COMPLETED, None)


def _finish(job: CampaignImport, status: str, reason: str | None) -> None:
    job.status, job.failure_reason = status, reason
    job.finished_at = utcnow()
    job.lease_owner = job.lease_until = None
    job.data = b""  # read to the end (or given up on): the file is not kept


def work_imports(owner: str, config) -> bool:
    """One batch of whichever import needs it (the worker's turn); True if it did one."""
    return import_step(owner=owner, settings=Settings.from_config(config))


# --- from code to coupon --------------------------------------------------------------------


def materialize(tenant_id: int, code: str) -> bool:
    """Make a campaign's code a coupon row, the first time it is looked up; False when
    the code is no live campaign's.

    The campaign row is read FOR SHARE, so a template change (which holds it FOR
    UPDATE while it rewrites the campaign's coupons) is either wholly before this
    coupon is made or sees it. A concurrent first lookup inserts nothing.
    """
    key = code_key(code)
    found = read(
        db.session,
        select(Code.campaign_id, Code.code).where(
            Code.tenant_id == tenant_id, Code.code_key == key, Code.campaign_id.is_not(None)
        ),
    )
    if not found:
        return False
    with unit_of_work():
        campaign = db.session.scalar(
            select(Campaign)
            .where(Campaign.id == found[0].campaign_id, Campaign.deleted.is_(False))
            .with_for_update(read=True)
        )
        if campaign is None:
            return False
        values = _row_values(campaign)
        db.session.execute(
            insert_or_ignore(db.session, Coupon, code=found[0].code, code_key=key, **values)
        )
    return True


def issue_next(campaign_id: int, tenant: TenantRef) -> Coupon:
    """The campaign's next code not yet given out, as a coupon (in the caller's
    transaction; the campaign row is locked until it ends)."""
    campaign = db.session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id, Campaign.tenant_id == tenant.id)
        .with_for_update()
    )
    if campaign is None or campaign.deleted or not campaign.active:
        raise CampaignExhausted("The discount's campaign is deleted or inactive")
    code = db.session.execute(
        select(Code.position, Code.code)
        .where(Code.campaign_id == campaign.id, Code.position > campaign.issue_cursor)
        .order_by(Code.position)
        .limit(1)
    ).first()
    if code is None:
        raise CampaignExhausted()
    campaign.issue_cursor = code.position
    return coupons.find(tenant=tenant, code=code.code)  # made a coupon by that first lookup
