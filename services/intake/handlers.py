"""intake's use cases: each takes what it needs (a unit of work, the store) and a request."""
from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from minqing_kernel import messages
from minqing_kernel.errors import Conflict, Forbidden, NotFound, Problem, validated
from minqing_kernel.events import Event, EventRejected
from minqing_kernel.ids import uuid_or_404, uuid_or_none
from minqing_kernel.pagination import decode_cursor, encode_cursor, page, page_limit
from minqing_kernel.ratelimit import RateLimiter
from minqing_kernel.reference import CachedReference, TimedReference
from services.intake import domain, models, schemas
from services.intake.metrics import (
    ATTACHMENTS_REFUSED,
    PARTNER_REPORTS,
    REPORTS_SUBMITTED,
    UPLOADS_ISSUED,
)

log = logging.getLogger(__name__)
UPLOAD_URL_TTL = timedelta(minutes=15)
CATALOGUE_TTL_S = 60.0


@dataclass(frozen=True)
class Catalogue:
    """Active categories and the service area, as last read."""
    categories: dict
    area: domain.ServiceArea


def load_catalogue(db) -> Catalogue:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(models.categories).where(
            models.categories.c.active)).all()
        boundary = conn.execute(sa.select(models.service_areas.c.boundary)).scalar()
    return Catalogue({r.code: r for r in rows}, domain.ServiceArea(boundary))


def CatalogueReference() -> CachedReference:  # noqa: N802 (reads like the provider it returns)
    """The catalogue per process, read from the DB at most once a minute."""
    return CachedReference(load_catalogue, CATALOGUE_TTL_S)


def create_upload(db, store, actor: dict, payload: dict) -> dict:
    """A ticket to upload one file: a presigned POST bound to a random key, the declared
    content type and at most the declared size, for UPLOAD_URL_TTL. The row in
    intake.uploads is what says whose the key is."""
    request = validated(schemas.UploadRequest(), payload, "upload-request")
    content_type, size = request["content_type"], request["size"]
    kind, _, _ = domain.media_rule(content_type, size)
    store.check_reachable()
    key = domain.upload_key(content_type)
    url, fields = store.presigned_post(key, content_type, size, UPLOAD_URL_TTL)
    now = datetime.now(UTC)
    with db.unit_of_work() as uow:
        uow.session.execute(sa.insert(models.uploads).values(
            key=key, owner_id=actor["id"], content_type=content_type, size=size,
            issued_at=now, expires_at=now + UPLOAD_URL_TTL))
    UPLOADS_ISSUED.labels(kind).inc()
    return {"object_key": key, "upload_url": url, "method": "POST", "fields": fields,
            "file_field": "file", "kind": kind, "max_size": size,
            "expires_in": int(UPLOAD_URL_TTL.total_seconds())}


def _refused(problem: Problem) -> Problem:
    # Keys are random, so the line names nobody; a run of attachment-already-used or
    # -not-yours from one account is someone trying keys that are not theirs.
    ATTACHMENTS_REFUSED.labels(problem.code).inc()
    log.info("attachment refused (%s): %s", problem.code, problem.detail_en)
    return problem


def accept_attachments(db, store, owner_id: str, keys: list[str],
                       use: str) -> tuple[list[domain.Attachment], list[dict]]:
    """Accept `owner_id`'s uploads for one `use` (report:<id>, case:<id>, ...): each is
    copied to an attachment key no ticket can write, and that copy is checked against
    what was declared. Returns the attachments, and the rows that record the new ones
    (to be inserted by the caller, with whatever uses them). An upload accepted for this
    use before (a resent request) is answered with the same attachment, not copied again."""
    keys = validated(schemas.AttachmentKeys(), {"keys": keys}, "attachment-list")["keys"]
    keys = list(dict.fromkeys(keys))  # a key listed twice is one attachment
    if not keys:
        return [], []
    u, a = models.uploads, models.attachments
    with db.engine.connect() as conn:
        found = conn.execute(
            sa.select(u, a.c.key.label("attachment_key"), a.c.used_for,
                      a.c.size.label("accepted_size"))
            .select_from(u.outerjoin(a, a.c.upload_key == u.c.key))
            .where(u.c.key.in_(keys))).all()
    by_key = {row.key: row for row in found}
    accepted, new_rows = [], []
    try:
        for key in keys:
            row = by_key.get(key)
            try:
                upload = domain.check_upload_owner(owner_id, key, row and domain.Upload(
                    row.key, row.owner_id, row.content_type, row.size))
                domain.check_single_use(key, row.used_for, use)
            except Problem as problem:
                raise _refused(problem) from None
            if row.used_for is not None:
                accepted.append(domain.Attachment(row.attachment_key, row.content_type,
                                                  row.accepted_size))
                continue
            attachment, record = _accept_copy(store, upload, use)
            accepted.append(attachment)
            new_rows.append(record)
    except BaseException:
        discard_copies(store, new_rows)
        raise
    return accepted, new_rows


def _accept_copy(store, upload: domain.Upload, use: str) -> tuple[domain.Attachment, dict]:
    """Copy first, then check the copy: what is checked is exactly what is kept, whatever
    is written to the upload key meanwhile."""
    key = domain.attachment_key(upload.content_type)
    if not store.copy(upload.key, key):
        raise _refused(domain.missing(upload.key))
    stat = store.stat(key)
    head = store.head_bytes(key) if stat is not None and stat.size else None
    try:
        attachment = domain.check_attachment(upload, key, stat, head)
    except Problem as problem:
        store.remove(key)
        raise _refused(problem) from None
    return attachment, {"key": key, "upload_key": upload.key, "used_for": use,
                        "content_type": attachment.content_type, "size": attachment.size,
                        "etag": getattr(stat, "etag", None), "accepted_at": datetime.now(UTC)}


def discard_copies(store, rows: list[dict]) -> None:
    """Copies made for a use that did not happen (refused, or a repeat): nobody points at
    them. Best effort: a leftover is an unreferenced object, not a leak of anything."""
    for row in rows:
        try:
            store.remove(row["key"])
        except Problem:
            log.warning("could not remove unused attachment copy %s; it is unreferenced",
                        row["key"])


def check_attachments(db, store, owner_id: str, keys: list[str],
                      use: str | None = None) -> list[domain.Attachment]:
    """For other services' attachments (a handler's result photos, a volunteer's): the
    same checks as a report's, and the upload is used up by `use` at once. Without a
    `use`, every call is a use of its own (a repeat is refused)."""
    use = (use or f"once:{uuid.uuid4()}")[:100]  # the column's width; a longer id is no case
    accepted, rows = accept_attachments(db, store, owner_id, keys, use)
    if rows:
        try:
            with db.unit_of_work() as uow:
                uow.session.execute(sa.insert(models.attachments), rows)
        except sa.exc.IntegrityError:
            discard_copies(store, rows)
            raise _refused(domain.already_used(rows[0]["upload_key"])) from None
    return accepted


def submit_report(db, store, catalogue: TimedReference, caller_key: bytes, actor: dict,
                  payload: dict, submission_id: str | None = None) -> dict:
    """Store a report and emit report.submitted. `submission_id` (the gateway's) makes a
    repeat of the same submission return the first report instead of making another."""
    request = validated(schemas.ReportSubmission(), payload, "report")
    cat = catalogue.fresh(db)
    domain.check_category(cat.categories, request["category"])
    lat, lon = request["location"]["lat"], request["location"]["lon"]
    domain.check_location(cat.area, lat, lon)
    channel = domain.channel_for(actor, request.get("channel"))
    attributes = domain.check_attributes(cat.categories[request["category"]].attributes or [],
                                         request.get("attributes"),
                                         enforce_required=channel in domain.READS_DEFINITIONS)
    report_id = uuid_or_none(submission_id) or str(uuid.uuid4())
    attachments, claims = accept_attachments(db, store, actor["id"], request["attachments"],
                                             f"report:{report_id}")
    phone = request.get("caller_phone") if channel == "phone" else None
    row = {
        "id": report_id,
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
    # The claims on the uploads commit with the report: a report never points at an upload
    # another report took, and a refused report leaves its uploads free.
    try:
        db.insert_together([(models.reports, row)] +
                           [(models.attachments, claim) for claim in claims], [event, received])
    except sa.exc.IntegrityError:
        discard_copies(store, claims)
        return _repeated_submission(db, actor, row["id"], claims)
    except BaseException:
        discard_copies(store, claims)
        raise
    REPORTS_SUBMITTED.labels(row["category"], channel).inc()
    log.info("report %s accepted: %s via %s with %d attachments", row["id"], row["category"],
             channel, len(attachments), extra={"report_id": row["id"], "event_id": event.id})
    return schemas.ReportView().dump(row)


def partner_over_limit(wait_s: float) -> EventRejected:
    seconds = max(1, math.ceil(wait_s))
    said = messages.say("intake.partner-over-limit", seconds=seconds)
    return EventRejected("rate-limited", said.en, said.zh)


def accept_partner_report(db, store, catalogue: TimedReference, caller_key: bytes, event: Event,
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


def _repeated_submission(db, actor: dict, report_id: str, claims: list[dict]) -> dict:
    """The same submission again: answer as the first time, change nothing. If there is
    no such report, what collided was a claim: an upload another report took meanwhile."""
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(models.reports).where(
            models.reports.c.id == report_id)).first()
    if row is None and claims:
        raise _refused(domain.already_used(claims[0]["upload_key"]))
    if row is None or row.submitted_by != actor["id"]:
        raise Conflict.of("intake.submission-conflict", code="submission-conflict")
    log.info("report %s submitted again; answered with the stored one", report_id,
             extra={"report_id": report_id})
    return schemas.ReportView().dump(row)


# cases_led(actor, report_ids) -> the ids among them whose case `actor` may see, from
# dispatch (which knows units and who leads them); intake asks only for a leader.
CasesLed = Callable[[dict, list[str]], list[str]]
LEADER_SCAN_ROWS = 200   # reports read per look at dispatch when a leader lists reports
LEADER_SCAN_ROUNDS = 5   # at most this many per page: a page may come back short


def get_report(uow, actor: dict, report_id: str, cases_led: CasesLed) -> dict:
    report_id = uuid_or_404(report_id, "report")
    row = uow.session.execute(sa.select(models.reports).where(
        models.reports.c.id == report_id)).first()
    if row is None:
        raise NotFound.of("intake.report-not-found", report_id=report_id)
    led = (domain.is_scoped_leader(actor) and actor["id"] not in (row.reporter_id,
                                                                  row.submitted_by)
           and row.id in cases_led(actor, [row.id]))
    if not domain.can_read_report(actor, row.reporter_id, row.submitted_by, led):
        if domain.is_scoped_leader(actor):
            raise Forbidden.of("intake.report-not-led")
        # Not 404: the resident should know the id is right but not theirs to read.
        raise Forbidden.of("intake.report-of-someone-else")
    return report_view(actor, row)


def report_view(actor: dict, row) -> dict:
    """A report as `actor` may read it: who reported is left out for those who may read
    the report but not know its reporter (a leader)."""
    view = schemas.ReportView().dump(row)
    if not domain.sees_reporter(actor, row.reporter_id):
        view["reporter_id"] = None
    return view


def list_reports(uow, actor: dict, cursor: str | None, limit,
                 cases_led: CasesLed) -> dict:
    r = models.reports
    limit = page_limit(limit)
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
    return page(rows, limit, lambda row: report_view(actor, row))


def _leaders_page(uow, actor: dict, after: int | None, limit: int,
                  cases_led: CasesLed) -> dict:
    """A leader's reports: their own, and those whose case is in a unit they lead. Which
    those are only dispatch knows, so reports are read newest first in chunks and dispatch
    is asked about each chunk. The work per page is bounded: after LEADER_SCAN_ROUNDS
    chunks the page is returned as it is (maybe short, even empty) with a cursor to go on."""
    r = models.reports
    def view(row) -> dict:
        return report_view(actor, row)
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
    q = validated(schemas.Open311ReportQuery(), query, "open311-query")
    r = models.reports
    stmt = sa.select(r.c.id, r.c.category, r.c.description, r.c.address, r.c.lat, r.c.lon,
                     r.c.submitted_at, r.c.attachments)
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
             "submitted_at": row.submitted_at.isoformat(),
             "attachments": row.attachments}  # made into media_url (media.py), then dropped
            for row in uow.session.execute(stmt).all()]
