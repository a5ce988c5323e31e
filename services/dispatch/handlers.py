"""dispatch's use cases: open a case from a report, act on it, show it and its trail."""
from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.errors import Forbidden, Invalid, NotFound, validated
from minqing_kernel.pagination import clamp_limit, decode_cursor, page
from services.dispatch import domain, models, schemas, sla, supervision
from services.dispatch.metrics import CASE_TRANSITIONS

log = logging.getLogger(__name__)
REFDATA_TTL_S = 60.0
SYSTEM = {"id": "system", "roles": ["system"]}


class RefData:
    """Routing rules, community polygons, units and SLA hours; reread at most once a minute."""

    def __init__(self):
        self._loaded_at = 0.0

    def fresh(self, session) -> RefData:
        if time.monotonic() - self._loaded_at > REFDATA_TTL_S:
            communities = {r.id: r.boundary for r in session.execute(
                sa.select(models.communities)).all()}
            rules = [domain.Rule(r.category, r.community, r.unit_id, r.reason_zh, r.reason_en)
                     for r in session.execute(sa.select(models.routing_rules)).all()]
            self.router = domain.Router(communities, rules)
            self.units = {r.id: r for r in session.execute(sa.select(models.units)).all()}
            self.sla = {r.category: r for r in session.execute(
                sa.select(models.category_sla)).all()}
            self._loaded_at = time.monotonic()
        return self


def _uuid_or_404(case_id: str) -> str:
    try:
        return str(uuid.UUID(case_id))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"No case {case_id}.", f"案卷 {case_id} 不存在。") from None


def _case_event(case, previous: str | None, action: str, actor: dict, role: str,
                note: str | None = None, **extra) -> dict:
    data = {
        "case_id": case["id"], "status": case["status"], "previous_status": previous,
        "action": action, "category": case["category"], "report_ids": case["report_ids"],
        "community_id": case["community_id"], "unit_id": case["unit_id"],
        "actor": {"id": actor["id"], "role": role}, "note": note,
        "at": case["updated_at"].isoformat(),
    }
    data.update(extra)
    return data


def _trail_entry(case: dict, at: datetime, actor: dict, role: str, action: str,
                 previous: str | None, note: str | None, attachments: list) -> dict:
    """The next trail row for `case`, chained to its head; also moves the case's head."""
    entry = {"case_id": case["id"], "seq": case["trail_length"] + 1, "at": at.isoformat(),
             "actor_id": actor["id"], "actor_role": role, "action": action,
             "from_status": previous, "to_status": case["status"], "unit_id": case["unit_id"],
             "note": note, "attachments": attachments}
    row = {**entry, "at": at, "prev_hash": case["trail_head"],
           "hash": domain.chain_hash(case["trail_head"], entry)}
    case.update(trail_head=row["hash"], trail_length=row["seq"])
    return row


def open_cases(uow, refdata: RefData, events: list) -> list[str]:
    """A new case for each submitted report that has none yet; returns their ids.

    Written as a batch (one statement per table) because this is the hot path: every
    report in the city passes here once.
    """
    if not events:
        return []
    ref = refdata.fresh(uow.session)
    planned = {e.data["report_id"]: (e, str(uuid.uuid4())) for e in events}
    claimed = set(uow.session.execute(
        pg.insert(models.case_reports)
        .values([{"report_id": r, "case_id": c} for r, (_, c) in planned.items()])
        .on_conflict_do_nothing().returning(models.case_reports.c.report_id)).scalars())
    now = datetime.now(UTC)
    cases, trails = [], []
    for report_id, (event, case_id) in planned.items():
        if report_id not in claimed:
            continue  # this report already has its case
        report = event.data
        loc = report["location"]
        suggestion = ref.router.suggest(report["category"], loc["lat"], loc["lon"])
        case = {
            "id": case_id, "status": domain.SCREENING, "category": report["category"],
            "description": report["description"], "address": report.get("address"),
            "lat": loc["lat"], "lon": loc["lon"], "channel": report["channel"],
            "attachments": report["attachments"], "reporter_ids": [report["reporter_id"]],
            "report_ids": [report_id], "community_id": suggestion.community_id,
            "suggested_unit_id": suggestion.unit_id,
            "suggestion_reason_zh": suggestion.reason_zh,
            "suggestion_reason_en": suggestion.reason_en, "unit_id": None,
            "opened_at": now, "updated_at": now, "trail_head": domain.GENESIS,
            "trail_length": 0,
        }
        trails.append(_trail_entry(case, now, SYSTEM, "system", "open", None,
                                   f"report {report_id}", []))
        cases.append(case)
        log.info("case %s opened for report %s; suggested unit %s", case_id, report_id,
                 suggestion.unit_id, extra={"correlation_id": event.correlation_id,
                                            "case_id": case_id, "report_id": report_id})
        uow.emit("case.opened", case_id, _case_event(
            case, None, "open", SYSTEM, "system", suggested_unit_id=suggestion.unit_id,
            suggestion_reason={"zh": suggestion.reason_zh, "en": suggestion.reason_en}),
            correlation_id=event.correlation_id)
    if cases:
        # case_reports was claimed first (it is the gate); its FK is deferred to the commit.
        uow.session.execute(sa.insert(models.cases), cases)
        uow.session.execute(sa.insert(models.case_trail), trails)
        CASE_TRANSITIONS.labels("open", domain.SCREENING).inc(len(cases))
    return [c["id"] for c in cases]


def _locked_case(uow, case_id: str) -> dict:
    row = uow.session.execute(sa.select(models.cases).where(
        models.cases.c.id == _uuid_or_404(case_id)).with_for_update()).mappings().first()
    if row is None:
        raise NotFound(f"No case {case_id}.", f"案卷 {case_id} 不存在。")
    return dict(row)


def _transition(uow, refdata: RefData, actor: dict, case: dict, action: str, *,
                unit_id: str | None = None, note: str | None = None,
                result: str | None = None, attachments: list | None = None,
                rating: int | None = None, feedback: str | None = None) -> dict:
    # Role first (may this kind of user do this at all), then the case's state, then
    # whether it is theirs: a handler on a case not yet assigned hears "not now", not
    # "not yours".
    domain.actor_role(actor, action)
    previous = case["status"]
    new_status = domain.next_status(previous, action)
    role = domain.authorize(actor, action, case["unit_id"], case["reporter_ids"])
    now = datetime.now(UTC)
    changes: dict = {"status": new_status, "updated_at": now}
    if action == "assign":
        ref = refdata.fresh(uow.session)
        unit_id = unit_id or case["suggested_unit_id"]
        if unit_id not in ref.units:
            raise Invalid(f"No unit {unit_id!r} to assign to.", f"派单对象 {unit_id!r} 不存在。",
                          errors=[{"field": "unit_id", "message": "unknown unit"}],
                          code="unknown-unit")
        changes.update(unit_id=unit_id, accept_due_at=supervision.deadline(
            uow, case, sla.ACCEPT, now), resolve_due_at=None)
    elif action == "accept":
        changes["resolve_due_at"] = supervision.deadline(uow, case, sla.RESOLVE, now)
    elif action == "resolve":
        changes.update(result=result, result_attachments=attachments or [])
    elif action in domain.REPORTER_ACTIONS:
        changes.update(rating=rating, feedback=feedback)
    case.update(changes)
    trail = _trail_entry(case, now, actor, role, action, previous,
                         note or result or feedback, attachments or [])
    uow.session.execute(sa.update(models.cases).where(models.cases.c.id == case["id"]).values(
        **changes, trail_head=case["trail_head"], trail_length=case["trail_length"]))
    uow.session.execute(sa.insert(models.case_trail).values(**trail))
    supervision.after_transition(uow, case, previous, action, now)  # SLA clocks, 回访
    extra = {}
    if action == "resolve":
        extra = {"result": result, "attachments": attachments or []}
    elif action in domain.REPORTER_ACTIONS:
        extra = {"rating": rating}
    uow.emit(f"case.{domain.event_verb(new_status)}", case["id"], _case_event(
        case, previous, action, actor, role, note or feedback, **extra))
    CASE_TRANSITIONS.labels(action, new_status).inc()
    log.info("case %s: %s by %s (%s), %s -> %s", case["id"], action, actor["id"], role,
             previous, new_status, extra={"case_id": case["id"], "unit_id": case["unit_id"]})
    return case


def act(uow, refdata: RefData, actor: dict, case_id: str, payload: dict) -> dict:
    request = validated(schemas.ActionRequest(), payload, "case action", "案卷操作")
    case = _locked_case(uow, case_id)
    domain.check_action_input(request["action"], request.get("note"), request.get("result"))
    case = _transition(uow, refdata, actor, case, request["action"],
                       unit_id=request.get("unit_id"), note=request.get("note"),
                       result=request.get("result"), attachments=request["attachments"])
    return _case_view(actor, _row(case))


def give_feedback(uow, refdata: RefData, actor: dict, case_id: str, payload: dict) -> dict:
    request = validated(schemas.FeedbackRequest(), payload, "feedback", "评价")
    case = _locked_case(uow, case_id)
    if actor["id"] not in case["reporter_ids"]:
        raise Forbidden("Only the person who reported this can rate it.",
                        "只有爆料人可以评价该案卷。", code="not-your-case")
    case = _transition(uow, refdata, actor, case, domain.rating_action(request["rating"]),
                       rating=request["rating"], feedback=request.get("comment"))
    return _case_view(actor, _row(case))


class _row:
    """Attribute access over a dict, for the dump schemas."""

    def __init__(self, data: dict):
        self.__dict__.update(data)


def _visible_case(uow, actor: dict, case_id: str):
    row = uow.session.execute(sa.select(models.cases).where(
        models.cases.c.id == _uuid_or_404(case_id))).first()
    if row is None:
        raise NotFound(f"No case {case_id}.", f"案卷 {case_id} 不存在。")
    if not domain.can_view(actor, row.unit_id, row.reporter_ids):
        raise Forbidden("This case is not yours to see.", "您无权查看该案卷。")
    return row


def _case_view(actor: dict, case) -> dict:
    view = schemas.CaseView().dump(case)
    view["reporter_ids"] = domain.visible_reporters(actor, view["reporter_ids"])
    return view


def get_case(uow, actor: dict, case_id: str) -> dict:
    return _case_view(actor, _visible_case(uow, actor, case_id))


def case_for_report(uow, actor: dict, report_id: str) -> dict | None:
    try:
        report_id = str(uuid.UUID(report_id))
    except ValueError:
        return None
    case_id = uow.session.execute(sa.select(models.case_reports.c.case_id).where(
        models.case_reports.c.report_id == report_id)).scalar()
    return get_case(uow, actor, case_id) if case_id else None


def list_cases(uow, actor: dict, query: dict) -> dict:
    q = validated(schemas.CaseQuery(), query, "case query", "案卷查询")
    c = models.cases
    limit = clamp_limit(q.get("limit"))
    stmt = sa.select(c).order_by(c.c.seq).limit(limit + 1)
    roles = set(actor["roles"])
    if not roles & domain.SEE_ALL:
        mine = c.c.reporter_ids.any(actor["id"])
        if "handler" in roles and actor.get("unit_id"):
            mine = sa.or_(mine, c.c.unit_id == actor["unit_id"])
        stmt = stmt.where(mine)
    if q.get("status"):
        stmt = stmt.where(c.c.status == q["status"])
    after = decode_cursor(q.get("cursor"))
    if after is not None:
        stmt = stmt.where(c.c.seq > after)
    return page(uow.session.execute(stmt).all(), limit, lambda row: _case_view(actor, row))


def timeline(uow, actor: dict, case_id: str) -> dict:
    row = _visible_case(uow, actor, case_id)
    entries = uow.session.execute(sa.select(models.case_trail).where(
        models.case_trail.c.case_id == row.id).order_by(models.case_trail.c.seq)).all()
    shown = schemas.TrailEntryView(many=True).dump(entries)
    visible = set(domain.visible_reporters(actor, row.reporter_ids))
    for entry in shown:
        # A reporter's rating is in the trail under her id: hidden as in the case view.
        if entry["actor_role"] == "reporter" and entry["actor_id"] not in visible:
            entry["actor_id"] = None
    return {"case_id": row.id, "status": row.status, "entries": shown}


def verify_trail(uow, case_id: str) -> dict:
    """Recompute the chain; report the first entry whose hash does not follow."""
    entries = uow.session.execute(sa.select(models.case_trail).where(
        models.case_trail.c.case_id == _uuid_or_404(case_id))
        .order_by(models.case_trail.c.seq)).mappings().all()
    prev = domain.GENESIS
    for e in entries:
        entry = {k: e[k] for k in ("case_id", "seq", "actor_id", "actor_role", "action",
                                   "from_status", "to_status", "unit_id", "note",
                                   "attachments")}
        entry["at"] = e["at"].astimezone(UTC).isoformat()
        if e["prev_hash"] != prev or domain.chain_hash(prev, entry) != e["hash"]:
            return {"case_id": case_id, "valid": False, "first_bad_seq": e["seq"],
                    "entries": len(entries)}
        prev = e["hash"]
    return {"case_id": case_id, "valid": True, "first_bad_seq": None, "entries": len(entries)}
