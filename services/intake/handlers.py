"""intake's use cases: each takes what it needs (a unit of work, the store) and a request."""
from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from minqing_kernel.errors import Conflict, Forbidden, NotFound, Problem, validated
from minqing_kernel.events import Event, EventRejected
from minqing_kernel.pagination import clamp_limit, decode_cursor, page
from minqing_kernel.ratelimit import RateLimiter
from services.intake import domain, models, schemas
from services.intake.metrics import PARTNER_REPORTS, REPORTS_SUBMITTED

log = logging.getLogger(__name__)
UPLOAD_URL_TTL = timedelta(minutes=15)
CATALOGUE_TTL_S = 60.0


class Catalogue:
    """Categories and the service area, read from the DB at most once a minute."""

    def __init__(self):
        self._loaded_at = 0.0
        self.categories: dict = {}
        self.area: domain.ServiceArea | None = None

    def fresh(self, db) -> Catalogue:
        if time.monotonic() - self._loaded_at > CATALOGUE_TTL_S:
            with db.engine.connect() as conn:
                rows = conn.execute(sa.select(models.categories).where(
                    models.categories.c.active)).all()
                boundary = conn.execute(sa.select(models.service_areas.c.boundary)).scalar()
            self.categories = {r.code: r for r in rows}
            self.area = domain.ServiceArea(boundary)
            self._loaded_at = time.monotonic()
        return self


def create_upload(store, actor: dict, payload: dict) -> dict:
    request = validated(schemas.UploadRequest(), payload, "upload request", "上传请求")
    kind, _, limit = domain.media_rule(request["content_type"], request["size"])
    store.check_reachable()
    key = domain.upload_key(actor["id"], request["content_type"])
    return {"object_key": key, "upload_url": store.presigned_put(key, UPLOAD_URL_TTL),
            "method": "PUT", "headers": {"Content-Type": request["content_type"]},
            "kind": kind, "max_size": limit,
            "expires_in": int(UPLOAD_URL_TTL.total_seconds())}


def check_attachments(store, owner_id: str, keys: list[str]) -> list[domain.Attachment]:
    keys = validated(schemas.AttachmentKeys(), {"keys": keys},
                     "attachment list", "附件列表")["keys"]
    checked = []
    for key in dict.fromkeys(keys):  # a key listed twice is one attachment
        stat = store.stat(key) if domain.owns_key(owner_id, key) else None
        head = store.head_bytes(key) if stat is not None and stat.size else None
        checked.append(domain.check_attachment(owner_id, key, stat, head))
    return checked


def submit_report(db, store, catalogue: Catalogue, actor: dict, payload: dict,
                  submission_id: str | None = None) -> dict:
    """Store a report and emit report.submitted. `submission_id` (the gateway's) makes a
    repeat of the same submission return the first report instead of making another."""
    request = validated(schemas.ReportSubmission(), payload, "report", "爆料")
    cat = catalogue.fresh(db)
    domain.check_category(cat.categories, request["category"])
    lat, lon = request["location"]["lat"], request["location"]["lon"]
    domain.check_location(cat.area, lat, lon)
    channel = domain.channel_for(actor, request.get("channel"))
    attributes = domain.check_attributes(cat.categories[request["category"]].attributes or [],
                                         request.get("attributes"),
                                         enforce_required=channel in domain.READS_DEFINITIONS)
    attachments = check_attachments(store, actor["id"], request["attachments"])
    phone = request.get("caller_phone") if channel == "phone" else None
    row = {
        "id": _valid_uuid(submission_id) or str(uuid.uuid4()),
        "reporter_id": domain.caller_id(phone) if phone else actor["id"],
        "reporter_phone": phone,
        "submitted_by": actor["id"],
        "channel": channel,
        "category": request["category"],
        "description": request["description"],
        "address": request.get("address"),
        "lat": lat, "lon": lon,
        "attachments": [a.__dict__ for a in attachments],
        "submitted_at": datetime.now(UTC),
        "attributes": attributes,
    }
    event = db.new_event("report.submitted", row["id"], {
        "report_id": row["id"], "reporter_id": row["reporter_id"], "channel": channel,
        "category": row["category"], "description": row["description"],
        "address": row["address"], "location": {"lat": lat, "lon": lon},
        "attachments": row["attachments"], "submitted_at": row["submitted_at"].isoformat()})
    # The hot path: every report in the city comes through here, so it is group-committed.
    try:
        db.insert_together([(models.reports, row)], [event])
    except sa.exc.IntegrityError:
        return _repeated_submission(db, actor, row["id"])
    REPORTS_SUBMITTED.labels(row["category"], channel).inc()
    log.info("report %s accepted: %s via %s with %d attachments", row["id"], row["category"],
             channel, len(attachments), extra={"report_id": row["id"], "event_id": event.id})
    return schemas.ReportView().dump(row)


def partner_over_limit(wait_s: float) -> EventRejected:
    seconds = max(1, math.ceil(wait_s))
    return EventRejected(
        "rate-limited",
        f"Too many reports from this partner in a short time; send this one again in "
        f"{seconds} s (PARTNER_REPORT_BURST, then PARTNER_REPORT_RATE_PER_MIN).",
        f"合作平台短时间内提交的报告过多，请 {seconds} 秒后重新发送本条。")


def accept_partner_report(db, store, catalogue: Catalogue, event: Event,
                          limiter: RateLimiter | None = None) -> dict:
    """A partner platform's report (partner_report.submitted) becomes a report like any
    other, on the `partner` channel, so report.submitted -> dispatch opens its case.

    The same rules as for a resident apply (category, service area, text); what breaks
    one is raised as EventRejected with the problem's code and both messages, and the
    consumer sends the event back to the partner's rejection queue with them.

    Deduplication is by the report's id, made of (partner, event id): the report row is
    the record that the event was handled, in the same group commit as its
    report.submitted, so the kernel's processed_events would only repeat it (and it
    keys by our UUIDs, while a partner's event id is any string).
    """
    partner = domain.partner_name(event.user_id) or "unknown"
    # Per partner, before any work: a runaway publisher gets its surplus back on its own
    # rejection queue with when to resend, nothing is dropped, and others are unaffected.
    wait = limiter.take(partner) if limiter is not None else 0.0
    if wait:
        PARTNER_REPORTS.labels(partner, "rate-limited").inc()
        log.warning("partner %s is over its report limit; event %s sent back", partner,
                    event.id, extra={"event_id": event.id})
        raise partner_over_limit(wait)
    try:
        actor = domain.partner_actor(event.user_id)
        report = submit_report(db, store, catalogue, actor, {**event.data, "channel": "partner"},
                               domain.partner_report_id(event.user_id, event.id))
    except Problem as problem:
        PARTNER_REPORTS.labels(partner, problem.code).inc()
        raise EventRejected(problem.code, problem.detail_en, problem.detail_zh) from None
    PARTNER_REPORTS.labels(partner, "accepted").inc()
    log.info("partner %s: event %s accepted as report %s", partner, event.id, report["id"],
             extra={"report_id": report["id"], "event_id": event.id})
    return report


def partner_rejections_route(user_id: str | None) -> tuple[str, str] | None:
    """Where a partner's refused message goes: its own rejection queue (bound to the
    rejections exchange with its name at provisioning), which only it can read. A
    message from no partner goes to intake's dead-letter queue, for the operators."""
    name = domain.partner_name(user_id)
    return (domain.REJECTIONS_EXCHANGE, name) if name else None


def _valid_uuid(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _repeated_submission(db, actor: dict, report_id: str) -> dict:
    """The same submission again: answer as the first time, change nothing."""
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(models.reports).where(
            models.reports.c.id == report_id)).first()
    if row is None or row.submitted_by != actor["id"]:
        raise Conflict("This submission id is already used.", "该提交编号已被使用。",
                       code="submission-conflict")
    log.info("report %s submitted again; answered with the stored one", report_id,
             extra={"report_id": report_id})
    return schemas.ReportView().dump(row)


def get_report(uow, actor: dict, report_id: str) -> dict:
    try:
        uuid.UUID(report_id)
    except ValueError:
        raise NotFound(f"No report {report_id}.", f"爆料 {report_id} 不存在。") from None
    row = uow.session.execute(sa.select(models.reports).where(
        models.reports.c.id == report_id)).first()
    if row is None:
        raise NotFound(f"No report {report_id}.", f"爆料 {report_id} 不存在。")
    if not domain.can_read_report(actor, row.reporter_id, row.submitted_by):
        # Not 404: the resident should know the id is right but not theirs to read.
        raise Forbidden("This report belongs to someone else.", "这条爆料属于其他人，您无权查看。")
    return schemas.ReportView().dump(row)


def list_reports(uow, actor: dict, cursor: str | None, limit) -> dict:
    r = models.reports
    limit = clamp_limit(limit)
    query = sa.select(r).order_by(r.c.seq.desc()).limit(limit + 1)
    if not domain.STAFF_READERS & set(actor["roles"]):
        query = query.where(sa.or_(r.c.reporter_id == actor["id"],
                                   r.c.submitted_by == actor["id"]))
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(r.c.seq < after)
    rows = uow.session.execute(query).all()
    return page(rows, limit, schemas.ReportView().dump)


# --- Open311 (the gateway's /open311/v2/) ----------------------------------------------

def category_view(c) -> dict:
    return {"code": c.code, "group": c.group, "name_zh": c.name_zh, "name_en": c.name_en,
            "rewarded_class": c.rewarded_class, "attributes": list(c.attributes or [])}


def open311_reports(uow, query: dict) -> list[dict]:
    """Reports as Open311 lists them: what was reported, where and when, never by whom
    (no reporter id, no phone). By ids, or by category and a submission-time range;
    newest first, `limit` of them after `offset`."""
    q = validated(schemas.Open311ReportQuery(), query, "Open311 query", "Open311 查询")
    r = models.reports
    stmt = sa.select(r.c.id, r.c.category, r.c.description, r.c.address, r.c.lat, r.c.lon,
                     r.c.submitted_at)
    if q.get("ids") is not None:
        stmt = stmt.where(r.c.id.in_([str(i) for i in q["ids"]]))
    else:
        if q.get("categories"):
            stmt = stmt.where(r.c.category.in_(q["categories"]))
        if q.get("start"):
            stmt = stmt.where(r.c.submitted_at >= q["start"])
        if q.get("end"):
            stmt = stmt.where(r.c.submitted_at <= q["end"])
    stmt = stmt.order_by(r.c.submitted_at.desc(), r.c.seq.desc()) \
        .offset(q["offset"]).limit(q["limit"])
    return [{"id": row.id, "category": row.category, "description": row.description,
             "address": row.address, "lat": row.lat, "lon": row.lon,
             "submitted_at": row.submitted_at.isoformat()}
            for row in uow.session.execute(stmt).all()]
