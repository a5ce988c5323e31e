"""Supervision (督办) use cases: the warnings of SLA clocks, the inbox, extensions, the
satisfaction wait, callbacks (回访), SLA policies and the supervision summary (督办报告).

The rules are in sla.py (no I/O); the clocks follow each case change in clocks.py (one
layer below the lifecycle); here each step is one unit of work. Exactly-once
warnings: a warning row with a unique key (case, deadline kind, deadline value, rung) is
inserted with ON CONFLICT DO NOTHING in the same transaction as its inbox rows and its
event (the outbox), so the scan may run on every dispatch instance, be killed anywhere
and run again: a warning exists, with its inbox rows and event, once or not at all.
"""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel import messages
from minqing_kernel.errors import BadRequest, Conflict, Forbidden, NotFound, validated
from minqing_kernel.ids import uuid_or_404
from minqing_kernel.pagination import paged
from minqing_kernel.reference import TimedReference, category_name
from services.dispatch import domain, models, schemas, sla
from services.dispatch.case import SYSTEM, ActionInput, Case
from services.dispatch.clocks import SupervisionSettings, clock_of
from services.dispatch.lifecycle import take_action
from services.dispatch.metrics import (
    CALLBACKS,
    CASES_CLOSED_UNANSWERED,
    OPEN_RED_LINES,
    SLA_WARNINGS,
)
from services.dispatch.repository import CaseRepository

log = logging.getLogger(__name__)
SCAN_BATCH = 200
INBOX_KIND = {sla.YELLOW: "yellow_line", sla.RED: "red_line", sla.REMINDER: "reminder"}


# --- the scan: yellow and red lines, reminders -------------------------------------------

def scan(uow, settings: SupervisionSettings, now: datetime | None = None,
         limit: int = SCAN_BATCH) -> int:
    """Send every warning that is due; returns how many were sent by this call."""
    now = now or datetime.now(UTC)
    s, c = uow.session, models.sla_clocks
    rows = s.execute(
        sa.select(c, models.cases.c.category, models.cases.c.priority,
                  models.units.c.leader_id, models.units.c.kind.label("unit_kind"))
        .join(models.cases, models.cases.c.id == c.c.case_id)
        .outerjoin(models.units, models.units.c.id == c.c.unit_id)
        .where(c.c.stopped_at.is_(None), c.c.next_warning_at <= now)
        .order_by(c.c.next_warning_at).limit(limit)
        # Another instance scanning now takes other clocks; a warning is sent once anyway.
        .with_for_update(of=c, skip_locked=True)).all()
    sent_total = 0
    for row in rows:
        clock = clock_of(row, settings)
        w = models.sla_warnings
        sent = set(s.execute(sa.select(w.c.rung).where(
            w.c.case_id == row.case_id, w.c.kind == row.kind, w.c.due_at == row.due_at)
        ).scalars())
        for rung in clock.due(now, sent):
            if _send_warning(uow, row, rung, now):
                sent_total += 1
            sent.add(rung.rung)
        s.execute(sa.update(c).where(c.c.id == row.id).values(
            next_warning_at=clock.next_at(now, sent)))
    return sent_total


def _send_warning(uow, clock_row, rung: sla.Rung, now: datetime) -> bool:
    w = models.sla_warnings
    inserted = uow.session.execute(pg.insert(w).values(
        case_id=clock_row.case_id, kind=clock_row.kind, due_at=clock_row.due_at,
        rung=rung.rung, level=rung.level, unit_id=clock_row.unit_id, sent_at=now,
    ).on_conflict_do_nothing(constraint="uq_dispatch_sla_warning").returning(w.c.id)).scalar()
    if inserted is None:
        return False  # another instance sent it first
    zh, en = sla.warning_message(rung.level, clock_row.kind, clock_row.due_at,
                                 clock_row.case_id, category_name(clock_row.category))
    # Nobody of ours works in a partner's unit (平安365): the command center chases it.
    recipients = [("role", "operator") if clock_row.unit_kind == "external"
                  else ("unit", clock_row.unit_id)]
    if rung.level in (sla.RED, sla.REMINDER) and clock_row.leader_id:
        recipients.append(("user", clock_row.leader_id))
    if rung.level == sla.RED:
        recipients.append(("role", "discipline"))
    _deliver(uow, recipients, INBOX_KIND[rung.level], clock_row.case_id, zh, en, now)
    uow.emit("case.sla_warning", clock_row.case_id, {
        "case_id": clock_row.case_id, "level": rung.level, "rung": rung.rung,
        "deadline": clock_row.kind, "due_at": clock_row.due_at.isoformat(),
        "unit_id": clock_row.unit_id, "leader_id": clock_row.leader_id,
        "category": clock_row.category, "priority": clock_row.priority,
        "message": {"zh": zh, "en": en}, "at": now.isoformat()})
    SLA_WARNINGS.labels(rung.level, clock_row.kind).inc()
    log.warning("%s line for case %s: %s deadline %s at unit %s", rung.level,
                clock_row.case_id, clock_row.kind, clock_row.due_at.isoformat(),
                clock_row.unit_id, extra={"case_id": clock_row.case_id,
                                          "unit_id": clock_row.unit_id})
    return True


def _deliver(uow, recipients: list[tuple[str, str]], kind: str, case_id: str, zh: str,
             en: str, now: datetime) -> None:
    uow.session.execute(sa.insert(models.inbox_items), [
        {"id": str(uuid.uuid4()), "recipient_kind": rk, "recipient_id": rid, "kind": kind,
         "case_id": case_id, "message_zh": zh, "message_en": en, "created_at": now}
        for rk, rid in recipients])


def refresh_open_red_lines(uow, now: datetime | None = None) -> dict[str, int]:
    """The gauge of deadlines passed and not yet met, by unit (set from the database, so
    every instance reports the same figure)."""
    now = now or datetime.now(UTC)
    c = models.sla_clocks
    counts = dict(uow.session.execute(
        sa.select(c.c.unit_id, sa.func.count()).where(c.c.stopped_at.is_(None),
                                                      c.c.due_at <= now)
        .group_by(c.c.unit_id)).all())
    OPEN_RED_LINES.clear()
    for unit, n in counts.items():
        OPEN_RED_LINES.labels(unit).set(n)
    return counts


# --- satisfaction and callbacks (回访) ---------------------------------------------------

def close_unanswered(uow, reference: TimedReference, settings: SupervisionSettings,
                     now: datetime | None = None, limit: int = 100) -> list[str]:
    """Close the resolved cases whose reporters did not rate them within the wait."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(hours=settings.satisfaction_wait_h)
    cases = uow.session.execute(
        sa.select(models.cases).where(models.cases.c.status == domain.RESOLVED,
                                      models.cases.c.updated_at <= cutoff)
        .order_by(models.cases.c.updated_at).limit(limit)
        .with_for_update(skip_locked=True)).mappings().all()
    closed = []
    wait = f"{settings.satisfaction_wait_h:g}"
    said = messages.say("sla.closed-unanswered", hours=wait)
    note = f"{said.zh} / {said.en}"
    for case in cases:
        take_action(uow, reference, settings, SYSTEM, dict(case), "close_unanswered",
                    ActionInput(note=note))
        closed.append(case["id"])
    if closed:
        CASES_CLOSED_UNANSWERED.inc(len(closed))
    return closed


def list_callbacks(uow, actor: dict, query: dict) -> dict:
    q = validated(schemas.CallbackQuery(), query, "callback-query")
    cb, cs = models.callbacks, models.cases
    stmt = (sa.select(cb, cs.c.category, cs.c.unit_id, cs.c.rating, cs.c.reporter_ids,
                      cs.c.channel, cs.c.status.label("case_status"))
            .join(cs, cs.c.id == cb.c.case_id).where(cb.c.status == q["status"])
            .order_by(cb.c.seq))
    return paged(uow.session, stmt, cb.c.seq, q, schemas.CallbackView().dump)


def record_callback(uow, reference: TimedReference, settings: SupervisionSettings,
                    actor: dict, callback_id: str, payload: dict) -> dict:
    """Staff phoned the reporter: satisfied → noted on the trail; unsatisfied → the case
    reopens with the reason."""
    request = validated(schemas.CallbackRecord(), payload, "callback")
    cb = models.callbacks
    row = uow.session.execute(sa.select(cb).where(
        cb.c.id == uuid_or_404(callback_id, "callback-item")).with_for_update()).first()
    if row is None:
        raise NotFound.of("dispatch.callback-not-found", callback_id=callback_id)
    if row.status != "pending":
        raise Conflict.of("dispatch.callback-recorded", code="callback-recorded")
    now = datetime.now(UTC)
    case = CaseRepository(uow).lock(row.case_id)
    status = "satisfied" if request["satisfied"] else "unsatisfied"
    note = request.get("note")
    if request["satisfied"]:
        CaseRepository(uow).save(Case(case).note_on_trail(
            actor, "callback_satisfied", note or messages.zh("sla.callback-satisfied"), now))
    else:
        case = take_action(uow, reference, settings, actor, case, "callback_unsatisfied",
                           ActionInput(note=note))
    uow.session.execute(sa.update(cb).where(cb.c.id == row.id).values(
        status=status, recorded_by=actor["id"], recorded_at=now, note=note))
    CALLBACKS.labels(status).inc()
    return {"id": row.id, "case_id": row.case_id, "status": status, "note": note,
            "recorded_by": actor["id"], "recorded_at": now.isoformat(),
            "case_status": case["status"]}


# --- deadline extensions ----------------------------------------------------------------

def request_extension(uow, actor: dict, case_id: str, payload: dict) -> dict:
    request = validated(schemas.ExtensionRequest(), payload, "extension-request")
    case = CaseRepository(uow).lock(case_id)
    if "handler" not in actor["roles"] or actor.get("unit_id") != case["unit_id"]:
        raise Forbidden.of("dispatch.extension-not-your-unit", code="not-your-unit")
    kind = {domain.ASSIGNED: sla.ACCEPT, domain.ACCEPTED: sla.RESOLVE}.get(case["status"])
    if kind is None or case[f"{kind}_due_at"] is None:
        raise Conflict.of("dispatch.no-running-deadline", code="no-running-deadline")
    now = datetime.now(UTC)
    ext = {"id": str(uuid.uuid4()), "case_id": case["id"], "kind": kind,
           "hours": request["hours"], "reason": request["reason"],
           "requested_by": actor["id"], "requested_at": now, "status": "pending"}
    inserted = uow.session.execute(pg.insert(models.sla_extensions).values(**ext)
                                   .on_conflict_do_nothing().returning(
                                       models.sla_extensions.c.id)).scalar()
    if inserted is None:
        raise Conflict.of("dispatch.extension-pending", code="extension-pending")
    said = messages.say("sla.extension-requested", case=case["id"][:8], kind=kind,
                        kind_zh=sla.KIND_ZH[kind], hours=request["hours"],
                        reason=request["reason"])
    _deliver(uow, [("role", "operator")], "extension_requested", case["id"], said.zh,
             said.en, now)
    return _extension_view(ext)


def decide_extension(uow, settings: SupervisionSettings, actor: dict, case_id: str,
                     extension_id: str, payload: dict) -> dict:
    request = validated(schemas.ExtensionDecision(), payload, "extension-decision")
    e = models.sla_extensions
    case = CaseRepository(uow).lock(case_id)
    ext = uow.session.execute(sa.select(e).where(
        e.c.id == uuid_or_404(extension_id, "extension"), e.c.case_id == case["id"])
        .with_for_update()).mappings().first()
    if ext is None:
        raise NotFound.of("dispatch.extension-not-found",
                          extension_id=extension_id)
    if ext["status"] != "pending":
        raise Conflict.of("dispatch.extension-decided", code="extension-decided")
    now = datetime.now(UTC)
    kind, approve = ext["kind"], request["approve"]
    due_col = f"{kind}_due_at"
    still_running = ({domain.ASSIGNED: sla.ACCEPT, domain.ACCEPTED: sla.RESOLVE}
                     .get(case["status"]) == kind and case[due_col] is not None)
    if approve and not still_running:
        raise Conflict.of("dispatch.deadline-moved-on", code="no-running-deadline")
    status = "approved" if approve else "refused"
    uow.session.execute(sa.update(e).where(e.c.id == ext["id"]).values(
        status=status, decided_by=actor["id"], decided_at=now, note=request.get("note")))
    if approve:
        new_due = case[due_col] + timedelta(hours=ext["hours"])
        case[due_col] = new_due
        uow.session.execute(sa.update(models.cases).where(models.cases.c.id == case["id"])
                            .values(**{due_col: new_due}))
        c = models.sla_clocks
        row = uow.session.execute(sa.select(c).where(
            c.c.case_id == case["id"], c.c.kind == kind, c.c.stopped_at.is_(None))).first()
        if row is not None:
            # A moved deadline is a new deadline: its warnings are keyed by the new value.
            clock = clock_of(row, settings).extended(ext["hours"])
            uow.session.execute(sa.update(c).where(c.c.id == row.id).values(
                due_at=clock.due_at, next_warning_at=clock.next_at(now)))
        CaseRepository(uow).save(Case(case).note_on_trail(
            actor, "extend_deadline", messages.zh(
                "sla.deadline-extended", kind_zh=sla.KIND_ZH[kind], hours=ext["hours"],
                due=messages.beijing(new_due), reason=ext["reason"]), now))
    said = messages.say(f"sla.extension-{status}", case=case["id"][:8],
                        note=request.get("note") or "")
    _deliver(uow, [("unit", case["unit_id"])], f"extension_{status}", case["id"],
             said.zh.strip(), said.en.strip(), now)
    return _extension_view({**ext, "status": status, "decided_by": actor["id"],
                            "decided_at": now, "note": request.get("note"),
                            "due_at": case[due_col]})


def _extension_view(ext: dict) -> dict:
    return schemas.ExtensionView().dump(ext)


# --- the inbox ---------------------------------------------------------------------------

def _mine(actor: dict):
    i = models.inbox_items
    mine = [sa.and_(i.c.recipient_kind == "user", i.c.recipient_id == actor["id"]),
            sa.and_(i.c.recipient_kind == "role", i.c.recipient_id.in_(list(actor["roles"])))]
    if "handler" in actor["roles"] and actor.get("unit_id"):
        mine.append(sa.and_(i.c.recipient_kind == "unit",
                            i.c.recipient_id == actor["unit_id"]))
    return sa.or_(*mine)


def list_inbox(uow, actor: dict, query: dict) -> dict:
    """Newest first. A unit's items are shared by its handlers (one read flag for all)."""
    q = validated(schemas.InboxQuery(), query, "inbox-query")
    i = models.inbox_items
    stmt = sa.select(i).where(_mine(actor)).order_by(i.c.seq.desc())
    if q.get("unread"):
        stmt = stmt.where(i.c.read_at.is_(None))
    if q.get("kind"):
        stmt = stmt.where(i.c.kind == q["kind"])
    return paged(uow.session, stmt, i.c.seq, q, schemas.InboxItemView().dump,
                 newest_first=True)


def mark_read(uow, actor: dict, item_id: str) -> dict:
    i = models.inbox_items
    row = uow.session.execute(sa.update(i).where(
        i.c.id == uuid_or_404(item_id, "inbox-item"), _mine(actor))
        .values(read_at=sa.func.coalesce(i.c.read_at, sa.func.now()))
        .returning(*i.c)).first()
    if row is None:
        raise NotFound.of("dispatch.inbox-item-not-found", item_id=item_id)
    return schemas.InboxItemView().dump(row)


# --- SLA policies ------------------------------------------------------------------------

def list_policies(uow, query: dict) -> dict:
    q = validated(schemas.PolicyQuery(), query, "policy-query")
    p = models.sla_policies
    stmt = sa.select(p).order_by(p.c.category, p.c.priority)
    if q.get("category"):
        stmt = stmt.where(p.c.category == q["category"])
    return {"items": schemas.PolicyView(many=True).dump(uow.session.execute(stmt).all())}


def set_policy(uow, actor: dict, category: str, priority: str, payload: dict) -> dict:
    request = validated(schemas.PolicyUpdate(), payload, "sla-policy")
    if priority not in sla.PRIORITIES:
        raise NotFound.of("dispatch.unknown-priority", priority=priority,
                          priorities=", ".join(sla.PRIORITIES))
    p = models.sla_policies
    exists = uow.session.execute(sa.select(p.c.category).where(
        p.c.category == category).limit(1)).first()
    if exists is None:
        raise NotFound.of("dispatch.no-sla-policy", category=category)
    row = {"category": category, "priority": priority, **request}
    stmt = pg.insert(p).values(**row)
    uow.session.execute(stmt.on_conflict_do_update(
        index_elements=["category", "priority"],
        set_={k: stmt.excluded[k] for k in request}))
    log.info("SLA policy %s/%s set by %s: %s", category, priority, actor["id"], request)
    return schemas.PolicyView().dump(row)


# --- the supervision summary (督办报告) ---------------------------------------------------

def supervision_summary(uow, actor: dict, query: dict) -> dict:
    """Per unit over a period (30 days by default): cases received, accepted and resolved
    on time, satisfaction, reopened cases and warnings sent; as JSON or CSV."""
    q = validated(schemas.ReportQuery(), query, "report-query")
    now = datetime.now(UTC)
    to = q.get("to") or now
    start = q.get("from") or to - timedelta(days=30)
    if start >= to or to - start > timedelta(days=366):
        raise BadRequest.of("dispatch.bad-period", code="bad-period")
    unit = q.get("unit_id")
    roles = set(actor["roles"])
    if not roles & {"operator", "admin", "discipline"}:  # a leader: their own unit
        if unit and unit != actor.get("unit_id"):
            raise Forbidden.of("dispatch.report-not-your-unit", code="not-your-unit")
        unit = actor.get("unit_id")
        if not unit:
            raise Forbidden.of("dispatch.leads-no-unit", code="not-your-unit")
    units = [unit] if unit else list(uow.session.execute(
        sa.select(models.units.c.id).order_by(models.units.c.id)).scalars())
    rows = sla.report_figures(_assignments(uow, start, to, unit),
                              _warning_counts(uow, start, to, unit), units,
                              domain.SATISFIED_FROM)
    body = {"from": start.isoformat(), "to": to.isoformat(), "items": rows}
    if q.get("format") == "csv":
        names = dict(uow.session.execute(
            sa.select(models.units.c.id, models.units.c.name_zh)).tuples().all())
        return {"csv": sla.report_csv(rows, start, to, names)}
    return body


def _assignments(uow, start: datetime, to: datetime, unit: str | None) -> list[sla.Assignment]:
    c = models.sla_clocks
    where = [c.c.kind == sla.ACCEPT, c.c.assigned_at >= start, c.c.assigned_at < to]
    if unit:
        where.append(c.c.unit_id == unit)
    received = {}
    for r in uow.session.execute(sa.select(c).where(*where).order_by(c.c.assigned_at)).all():
        received.setdefault((r.unit_id, r.case_id), r)  # a case counts once per unit
    if not received:
        return []
    case_ids = list({cid for _, cid in received})
    clocks = uow.session.execute(sa.select(c).where(c.c.case_id.in_(case_ids))).all()
    ratings = dict(uow.session.execute(sa.select(models.cases.c.id, models.cases.c.rating)
                                       .where(models.cases.c.id.in_(case_ids))).all())
    t = models.case_trail
    reopened = set(uow.session.execute(sa.select(t.c.case_id).where(
        t.c.case_id.in_(case_ids), t.c.to_status == domain.REOPENED).distinct()).scalars())
    out = []
    for (unit_id, case_id), first in received.items():
        mine = [k for k in clocks if k.case_id == case_id and k.unit_id == unit_id]
        accepted = [k for k in mine if k.kind == sla.ACCEPT and k.stopped_by == "accept"]
        resolved = [k for k in mine if k.kind == sla.RESOLVE and k.stopped_by == "resolve"]
        out.append(sla.Assignment(
            unit_id, case_id, first.assigned_at,
            accepted_on_time=any(k.stopped_at <= k.due_at for k in accepted),
            resolved=bool(resolved),
            resolved_on_time=any(k.stopped_at <= k.due_at for k in resolved),
            handling_s=((resolved[0].stopped_at - resolved[0].assigned_at).total_seconds()
                        if resolved else None),
            rating=ratings.get(case_id) if resolved else None,
            reopened=case_id in reopened))
    return out


def _warning_counts(uow, start, to, unit) -> dict[tuple[str, str], int]:
    w = models.sla_warnings
    stmt = (sa.select(w.c.unit_id, w.c.level, sa.func.count())
            .where(w.c.sent_at >= start, w.c.sent_at < to).group_by(w.c.unit_id, w.c.level))
    if unit:
        stmt = stmt.where(w.c.unit_id == unit)
    return {(u, level): n for u, level, n in uow.session.execute(stmt).all()}



