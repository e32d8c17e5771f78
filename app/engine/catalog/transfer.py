"""A campaign's codes out and in as CSV: the export streamed page by page, imports read
by the worker a batch of lines per transaction."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator

from sqlalchemy import bindparam, select

from app.database import read, utcnow
from app.engine import canonical, jobs, rules
from app.engine.canonical import code_key
from app.engine.catalog import bulk_codes
from app.engine.catalog.campaigns import Settings, get_campaign, invalid
from app.engine.codes import is_valid
from app.engine.definition import (
    CODE_RULE,
    template_coupon,
)
from app.engine.tenants import TenantRef
from app.engine.uow import OUTAGE_ERRORS, unit_of_work
from app.errors import NotFound
from app.extensions import db
from app.models import (
    Campaign,
    CampaignImport,
    Code,
    Coupon,
    ImportStatus,
)

log = logging.getLogger(__name__)

CSV_MAX_BYTES = 10 * 1024 * 1024


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
        raise invalid("file", f"Unreadable CSV: {error}") from None
    columns = [name.strip().casefold() for name in header or ()]
    if "code" not in columns:
        raise invalid("file", "The first line must name the columns, one of them `code`")
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
        raise invalid("file", f"Not UTF-8 (byte {error.start})") from None


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
    lines before stay imported); so does a batch the database refuses, or a defect, so
    that one bad import never blocks the others. An outage propagates and the lease
    runs out.
    """
    job_id = None
    try:
        with unit_of_work():
            job = _claim_import(owner, settings, import_id)
            if job is None:
                return False
            job_id = job.id
            campaign = db.session.scalar(
                select(Campaign).where(Campaign.id == job.campaign_id).with_for_update()
            )
            if campaign is None or campaign.deleted:
                _finish(job, ImportStatus.FAILED, "The campaign was deleted")
            else:
                _import_batch(job, campaign)
    except OUTAGE_ERRORS:
        raise
    except Exception as error:
        if job_id is None:
            raise
        log.exception("campaign import failed", extra={"message_id": str(job_id)})
        with unit_of_work():
            job = db.session.get(CampaignImport, job_id)
            _finish(job, ImportStatus.FAILED, f"Import failed: {jobs.failure_text(error)}")
    return True


def _claim_import(owner: str, settings: Settings, import_id: int | None) -> CampaignImport | None:
    return jobs.lease_next(
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
            problem(line, raw or None, "invalid: " + CODE_RULE)
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
