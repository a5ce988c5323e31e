"""intake's use cases: each takes what it needs (a unit of work, the store) and a request."""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from minqing_kernel.errors import Conflict, Forbidden, NotFound, Problem, validated
from minqing_kernel.events import Event, EventRejected
from minqing_kernel.pagination import clamp_limit, decode_cursor, encode_cursor, page
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


def submit_report(db, store, catalogue: Catalogue, caller_key: bytes, actor: dict,
                  payload: dict, submission_id: str | None = None) -> dict:
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
        "reporter_id": domain.caller_id(phone, caller_key) if phone else actor["id"],
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
    report = {"report_id": row["id"], "channel": channel,
              "category": row["category"], "description": row["description"],
              "address": row["address"], "location": {"lat": lat, "lon": lon},
              "attachments": row["attachments"],
              "submitted_at": row["submitted_at"].isoformat()}
    # Two events, one commit: partners read the public one, which never names the
    # reporter; dispatch opens the case from the internal one, which does.
    event = db.new_event("report.submitted", row["id"], report)
    received = db.new_event("report.received", row["id"],
                            {**report, "reporter_id": row["reporter_id"]})
    # The hot path: every report in the city comes through here, so it is group-committed.
    try:
        db.insert_together([(models.reports, row)], [event, received])
    except sa.exc.IntegrityError:
        return _repeated_submission(db, actor, row["id"])
    REPORTS_SUBMITTED.labels(row["category"], channel).inc()
    log.info("report %s accepted: %s via %s with %d attachments", row["id"], row["category"],
             channel, len(attachments), extra={"report_id": row["id"], "event_id": event.id})
    return schemas.ReportView().dump(row)


def accept_partner_report(db, store, catalogue: Catalogue, caller_key: bytes,
                          event: Event) -> dict:
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
    try:
        actor = domain.partner_actor(event.user_id)
        report = submit_report(db, store, catalogue, caller_key, actor,
                               {**event.data, "channel": "partner"},
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


# cases_led(actor, report_ids) -> the ids among them whose case `actor` may see, from
# dispatch (which knows units and who leads them); intake asks only for a leader.
CasesLed = Callable[[dict, list[str]], list[str]]
LEADER_SCAN_ROWS = 200   # reports read per look at dispatch when a leader lists reports
LEADER_SCAN_ROUNDS = 5   # at most this many per page: a page may come back short


def get_report(uow, actor: dict, report_id: str, cases_led: CasesLed) -> dict:
    try:
        uuid.UUID(report_id)
    except ValueError:
        raise NotFound(f"No report {report_id}.", f"爆料 {report_id} 不存在。") from None
    row = uow.session.execute(sa.select(models.reports).where(
        models.reports.c.id == report_id)).first()
    if row is None:
        raise NotFound(f"No report {report_id}.", f"爆料 {report_id} 不存在。")
    led = (domain.is_scoped_leader(actor) and actor["id"] not in (row.reporter_id,
                                                                  row.submitted_by)
           and row.id in cases_led(actor, [row.id]))
    if not domain.can_read_report(actor, row.reporter_id, row.submitted_by, led):
        if domain.is_scoped_leader(actor):
            raise Forbidden("This report's case is not handled in a unit you lead.",
                            "这条爆料的案卷不在您分管的单位办理，您无权查看。")
        # Not 404: the resident should know the id is right but not theirs to read.
        raise Forbidden("This report belongs to someone else.", "这条爆料属于其他人，您无权查看。")
    return schemas.ReportView().dump(row)


def list_reports(uow, actor: dict, cursor: str | None, limit,
                 cases_led: CasesLed) -> dict:
    r = models.reports
    limit = clamp_limit(limit)
    after = decode_cursor(cursor)
    if domain.is_scoped_leader(actor):
        return _leaders_page(uow, actor, after, limit, cases_led)
    query = sa.select(r).order_by(r.c.seq.desc()).limit(limit + 1)
    if not domain.STAFF_READERS & set(actor["roles"]):
        query = query.where(sa.or_(r.c.reporter_id == actor["id"],
                                   r.c.submitted_by == actor["id"]))
    if after is not None:
        query = query.where(r.c.seq < after)
    rows = uow.session.execute(query).all()
    return page(rows, limit, schemas.ReportView().dump)


def _leaders_page(uow, actor: dict, after: int | None, limit: int,
                  cases_led: CasesLed) -> dict:
    """A leader's reports: their own, and those whose case is in a unit they lead. Which
    those are only dispatch knows, so reports are read newest first in chunks and dispatch
    is asked about each chunk. The work per page is bounded: after LEADER_SCAN_ROUNDS
    chunks the page is returned as it is (maybe short, even empty) with a cursor to go on."""
    r = models.reports
    view = schemas.ReportView().dump
    items: list = []
    for _ in range(LEADER_SCAN_ROUNDS):
        query = sa.select(r).order_by(r.c.seq.desc()).limit(LEADER_SCAN_ROWS)
        if after is not None:
            query = query.where(r.c.seq < after)
        chunk = uow.session.execute(query).all()
        others = [row.id for row in chunk
                  if actor["id"] not in (row.reporter_id, row.submitted_by)]
        led = set(cases_led(actor, others)) if others else set()
        for row in chunk:
            if row.id in led or row.id not in others:
                items.append(row)
                if len(items) == limit:
                    return {"items": [view(i) for i in items],
                            "next_cursor": encode_cursor(row.seq)}
        if len(chunk) < LEADER_SCAN_ROWS:
            return {"items": [view(i) for i in items], "next_cursor": None}
        after = chunk[-1].seq
    return {"items": [view(i) for i in items], "next_cursor": encode_cursor(after)}


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
