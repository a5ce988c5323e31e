"""dispatch's use cases: open a case from a report, act on it, show it and its trail."""
from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.errors import Conflict, Forbidden, Invalid, NotFound, validated
from minqing_kernel.pagination import clamp_limit, decode_cursor, page
from services.dispatch import domain, models, schemas, sla, supervision
from services.dispatch.metrics import (
    CASE_TRANSITIONS,
    EXTERNAL_EVENTS_IGNORED,
    REPEATED_RETURNS,
    ROUTING_RULE_CHANGES,
)

log = logging.getLogger(__name__)
REFDATA_TTL_S = 60.0
SYSTEM = {"id": "system", "roles": ["system"]}


class RefData:
    """Routing rules, community polygons, units and SLA hours; reread at most once a minute,
    and at once in this process after an admin changes a rule (invalidate). Another
    dispatch process picks the change up within REFDATA_TTL_S."""

    def __init__(self):
        self._loaded_at = 0.0

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    def fresh(self, session) -> RefData:
        if self._loaded_at == 0.0 or time.monotonic() - self._loaded_at > REFDATA_TTL_S:
            communities = {r.id: r.boundary for r in session.execute(
                sa.select(models.communities)).all()}
            rules = [domain.Rule(r.category, r.community, r.unit_id, r.reason_zh, r.reason_en,
                                 r.id)
                     for r in session.execute(sa.select(models.routing_rules)).all()]
            self.router = domain.Router(communities, rules)
            self.communities = set(communities)
            self.units = {r.id: r for r in session.execute(sa.select(models.units)).all()}
            self.sla = {r.category: r for r in session.execute(
                sa.select(models.category_sla)).all()}
            # What each leader leads: units (units.leader_id) and the community of a grid
            # they lead (a grid leader oversees their grid's community).
            led: dict[str, set] = {}
            for unit in self.units.values():
                if unit.leader_id:
                    led.setdefault(unit.leader_id, set()).add(unit.id)
            for grid in session.execute(sa.select(models.grids)).all():
                if grid.leader_id:
                    led.setdefault(grid.leader_id, set()).add(grid.community_id)
            self.led = {leader: frozenset(units) for leader, units in led.items()}
            self._loaded_at = time.monotonic()
        return self

    def led_by(self, actor: dict) -> frozenset:
        return self.led.get(actor["id"], frozenset()) if "leader" in actor["roles"] \
            else frozenset()


def _uuid_or_404(case_id: str) -> str:
    try:
        return str(uuid.UUID(case_id))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"No case {case_id}.", f"案卷 {case_id} 不存在。") from None


def _case_event(case, previous: str | None, action: str, actor: dict, role: str,
                note: str | None = None, **extra) -> dict:
    """The data of a public case.* event. Partners read these: a reporter acting (her
    rating) is named by her role only, and her words (the comment) stay out."""
    data = {
        "case_id": case["id"], "status": case["status"], "previous_status": previous,
        "action": action, "category": case["category"], "report_ids": case["report_ids"],
        "community_id": case["community_id"], "unit_id": case["unit_id"],
        "actor": domain.public_actor(actor, role),
        "note": None if role == domain.REPORTER else note,
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
            "suggestion_reason_en": suggestion.reason_en,
            "suggestion_rule": suggestion.rule, "unit_id": None,
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


def _unit_or_invalid(ref: RefData, unit_id: str | None) -> str:
    if unit_id not in ref.units:
        raise Invalid(f"No unit {unit_id!r} to assign to.", f"派单对象 {unit_id!r} 不存在。",
                      errors=[{"field": "unit_id", "message": "unknown unit"}],
                      code="unknown-unit")
    return unit_id


def _transition(uow, refdata: RefData, actor: dict, case: dict, action: str, *,
                unit_id: str | None = None, note: str | None = None,
                result: str | None = None, attachments: list | None = None,
                rating: int | None = None, feedback: str | None = None,
                priority: str | None = None, partner: str | None = None,
                merged_into: str | None = None, project_id: str | None = None,
                extra_changes: dict | None = None) -> dict:
    """Every change to a case goes through here: the table says whether it is allowed,
    then one trail entry, one event (if the state changed), one metric and a log line."""
    # Role first (may this kind of user do this at all), then the case's state, then
    # whether it is theirs: a handler on a case not yet assigned hears "not now", not
    # "not yours".
    domain.actor_role(actor, action)
    previous = case["status"]
    new_status = domain.next_status(previous, action)
    role = domain.authorize(actor, action, case["unit_id"], case["reporter_ids"])
    now = datetime.now(UTC)
    changes: dict = {"status": new_status, "updated_at": now, **(extra_changes or {})}
    extra: dict = {}
    if action in ("assign", "transfer"):
        ref = refdata.fresh(uow.session)
        unit_id = _unit_or_invalid(ref, unit_id or case["suggested_unit_id"])
        if action == "transfer" and unit_id == case["unit_id"]:
            raise Invalid("A transfer goes to another unit than the one holding the case.",
                          "内部流转须转给其他单位。",
                          errors=[{"field": "unit_id", "message": "same unit"}],
                          code="same-unit")
        # SLA: the accept clock starts on assign and on transfer (the new unit's clock).
        changes.update(unit_id=unit_id, accept_due_at=supervision.deadline(
            uow, case, sla.ACCEPT, now), resolve_due_at=None)
    elif action == "accept":
        changes["resolve_due_at"] = supervision.deadline(uow, case, sla.RESOLVE, now)
    elif action in ("resolve", "external_resolved", "fulfil_wish", "decide_project",
                    "decide_no_project"):
        changes.update(result=result, result_attachments=attachments or [])
        extra = {"result": result, "attachments": attachments or []}
    elif action in domain.REPORTER_ACTIONS:
        changes.update(rating=rating, feedback=feedback)
        extra = {"rating": rating}
    elif action == "set_priority":
        changes["priority"] = priority
    elif action == "merge":
        changes["merged_into"] = merged_into
        extra = {"merged_into": merged_into}
    elif action in ("return", "external_rejected"):
        # 退单: back to the command center's queue, the reason kept; from the second
        # return on the operator is asked to decide rather than assign again.
        count = case["return_count"] + 1
        changes.update(return_count=count, return_reason=note, unit_id=None,
                       accept_due_at=None, resolve_due_at=None)
        extra = {"reason": note, "return_count": count,
                 "repeated": count >= domain.REPEATED_RETURNS}
        if count >= domain.REPEATED_RETURNS:
            REPEATED_RETURNS.inc()
            log.warning("case %s returned %d times (last by %s: %s): the operator decides "
                        "(reassign, transfer, escalate or close)", case["id"], count,
                        actor["id"], note, extra={"case_id": case["id"]})
    elif action == "escalate_external":
        # The partner is held to our resolve deadline (its clock starts now).
        partner = partner or "ping_an_365"
        changes.update(partner=partner, unit_id=domain.PARTNERS[partner], accept_due_at=None,
                       resolve_due_at=supervision.deadline(uow, case, sla.RESOLVE, now))
    elif action in ("escalate_leadership", "publish_wish"):
        changes.update(unit_id=None, accept_due_at=None, resolve_due_at=None,
                       wish_claimed_by=None, wish_claimed_at=None)
    elif action == "claim_wish":
        if case["wish_claimed_by"] is not None:
            raise Conflict("Another volunteer has claimed this wish already.",
                           "该微心愿已被其他志愿者认领。", code="wish-claimed")
        changes.update(wish_claimed_by=actor["id"], wish_claimed_at=now)
    if action == "fulfil_wish" and case["wish_claimed_by"] != actor["id"]:
        raise Forbidden("Only the volunteer who claimed this wish can fulfil it.",
                        "只有认领该微心愿的志愿者可以完成它。", code="not-your-wish")
    if project_id is not None:
        changes["project_id"] = project_id
    case.update(changes)
    trail = _trail_entry(case, now, actor, role, action, previous,
                         note or result or feedback, attachments or [])
    uow.session.execute(sa.update(models.cases).where(models.cases.c.id == case["id"]).values(
        **changes, trail_head=case["trail_head"], trail_length=case["trail_length"]))
    uow.session.execute(sa.insert(models.case_trail).values(**trail))
    supervision.after_transition(uow, case, previous, action, now)  # SLA clocks, 回访
    verb = domain.event_verb(action, previous, new_status)
    if verb == domain.ESCALATED_EXTERNAL:
        # what the partner needs to open a work order; never who reported it
        extra = {"partner": case["partner"], "description": case["description"],
                 "location": {"lat": case["lat"], "lon": case["lon"]},
                 "address": case["address"], "attachments": case["attachments"],
                 "resolve_due_at": case["resolve_due_at"].isoformat()
                 if case["resolve_due_at"] else None}
    elif verb == "wish_published":
        extra = {"description": case["description"], "address": case["address"],
                 "location": {"lat": case["lat"], "lon": case["lon"]}}
    if verb:
        uow.emit(f"case.{verb}", case["id"], _case_event(
            case, previous, action, actor, role, note or feedback, **extra))
    CASE_TRANSITIONS.labels(action, new_status).inc()
    log.info("case %s: %s by %s (%s), %s -> %s", case["id"], action, actor["id"], role,
             previous, new_status, extra={"case_id": case["id"], "unit_id": case["unit_id"]})
    return case


def _locked_pair(uow, first_id: str, second_id: str) -> tuple[dict, dict]:
    """Two cases locked in id order, so two merges crossing each other cannot deadlock."""
    first_id, second_id = _uuid_or_404(first_id), _uuid_or_404(second_id)
    locked = {cid: _locked_case(uow, cid) for cid in sorted({first_id, second_id})}
    return locked[first_id], locked[second_id]


def _merge(uow, refdata: RefData, actor: dict, case_id: str, target_id: str,
           note: str | None) -> dict:
    """A duplicate follows its case: the source becomes `merged` (pointing at the target);
    its reports and reporters join the target, so GET /v1/reports/{id} shows the target
    and the reporter sees its progress (and rates it) like its first reporter."""
    try:
        target_id = str(uuid.UUID(target_id))
    except (ValueError, TypeError, AttributeError):
        target_id = None
    if target_id is None or target_id == _uuid_or_404(case_id):
        raise Invalid("Merge into another existing case (target_case_id).",
                      "请指定要并入的另一个案卷（target_case_id）。",
                      errors=[{"field": "target_case_id", "message": "not another case"}],
                      code="bad-merge-target")
    case, target = _locked_pair(uow, case_id, target_id)
    if target["category"] != case["category"]:
        raise Invalid(f"A duplicate merges into a case of the same category "
                      f"({case['category']}, not {target['category']}).",
                      "只能并入同一类别的案卷。",
                      errors=[{"field": "target_case_id", "message": "other category"}],
                      code="category-mismatch")
    # The target first: if it is finished, the table refuses and nothing changes.
    target = _transition(uow, refdata, actor, target, "absorb_duplicate",
                         note=f"merged case {case['id']}" + (f": {note}" if note else ""),
                         extra_changes={
                             "reporter_ids": list(dict.fromkeys(
                                 target["reporter_ids"] + case["reporter_ids"])),
                             "report_ids": list(dict.fromkeys(
                                 target["report_ids"] + case["report_ids"]))})
    case = _transition(uow, refdata, actor, case, "merge", merged_into=target["id"],
                       note=note or f"duplicate of case {target['id']}")
    uow.session.execute(sa.update(models.case_reports)
                        .where(models.case_reports.c.case_id == case["id"])
                        .values(case_id=target["id"]))
    return case


def act(uow, refdata: RefData, actor: dict, case_id: str, payload: dict) -> dict:
    request = validated(schemas.ActionRequest(), payload, "case action", "案卷操作")
    action = request["action"]
    domain.check_action_input(action, request.get("note"), request.get("result"),
                              **{k: request.get(k) for k in ("unit_id", "priority",
                                                             "target_case_id", "partner")})
    if action == "merge":
        domain.actor_role(actor, action)
        case = _merge(uow, refdata, actor, case_id, request["target_case_id"],
                      request.get("note"))
    else:
        case = _transition(uow, refdata, actor, _locked_case(uow, case_id), action,
                           unit_id=request.get("unit_id"), note=request.get("note"),
                           result=request.get("result"), attachments=request["attachments"],
                           priority=request.get("priority"), partner=request.get("partner"))
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


def _visible_case(uow, refdata: RefData, actor: dict, case_id: str):
    row = uow.session.execute(sa.select(models.cases).where(
        models.cases.c.id == _uuid_or_404(case_id))).first()
    if row is None:
        raise NotFound(f"No case {case_id}.", f"案卷 {case_id} 不存在。")
    if not domain.can_view(actor, row.unit_id, row.reporter_ids, row.community_id,
                           refdata.fresh(uow.session).led_by(actor)):
        raise Forbidden("This case is not yours to see.", "您无权查看该案卷。")
    return row


def _case_view(actor: dict, case) -> dict:
    view = schemas.CaseView().dump(case)
    if not domain.may_read_rating_comment(actor, view["reporter_ids"]):
        view["feedback"] = None
    view["reporter_ids"] = domain.visible_reporters(actor, view["reporter_ids"])
    return view


def get_case(uow, refdata: RefData, actor: dict, case_id: str) -> dict:
    return _case_view(actor, _visible_case(uow, refdata, actor, case_id))


def case_for_report(uow, refdata: RefData, actor: dict, report_id: str) -> dict | None:
    """The case a report belongs to now (after a merge: the case it was merged into), or
    None if it has none yet or the caller may not see it (a leader reads every report,
    but only the cases of the units they lead)."""
    try:
        report_id = str(uuid.UUID(report_id))
    except ValueError:
        return None
    case_id = uow.session.execute(sa.select(models.case_reports.c.case_id).where(
        models.case_reports.c.report_id == report_id)).scalar()
    if not case_id:
        return None
    try:
        return get_case(uow, refdata, actor, case_id)
    except Forbidden:
        return None


MAX_VISIBILITY_QUERY = 500


def reports_visible_to(uow, refdata: RefData, actor: dict, report_ids: list[str]) -> list[str]:
    """The reports among `report_ids` whose case (after a merge, the case it joined)
    `actor` may see, as can_view decides: intake's answer to who reads which report."""
    ids = []
    for report_id in report_ids[:MAX_VISIBILITY_QUERY]:
        try:
            ids.append(str(uuid.UUID(report_id)))
        except (ValueError, TypeError, AttributeError):
            continue
    if not ids:
        return []
    cr, c = models.case_reports, models.cases
    stmt = sa.select(cr.c.report_id).join(c, c.c.id == cr.c.case_id) \
        .where(cr.c.report_id.in_(ids))
    visible = _visibility_filter(refdata, uow, actor)
    if visible is not None:
        stmt = stmt.where(visible)
    return list(uow.session.execute(stmt).scalars())


def _visibility_filter(refdata: RefData, uow, actor: dict):
    """The WHERE clause for the cases `actor` may list (None: all), as can_view decides."""
    c = models.cases
    roles = set(actor["roles"])
    if roles & domain.SEE_ALL:
        return None
    mine = c.c.reporter_ids.any(actor["id"])
    if "handler" in roles and actor.get("unit_id"):
        mine = sa.or_(mine, c.c.unit_id == actor["unit_id"])
    led = refdata.fresh(uow.session).led_by(actor)
    if led:
        mine = sa.or_(mine, c.c.unit_id.in_(sorted(led)), c.c.community_id.in_(sorted(led)))
    return mine


def list_cases(uow, refdata: RefData, actor: dict, query: dict) -> dict:
    q = validated(schemas.CaseQuery(), query, "case query", "案卷查询")
    c = models.cases
    limit = clamp_limit(q.get("limit"))
    stmt = sa.select(c).order_by(c.c.seq).limit(limit + 1)
    visible = _visibility_filter(refdata, uow, actor)
    if visible is not None:
        stmt = stmt.where(visible)
    if q.get("status"):
        stmt = stmt.where(c.c.status == q["status"])
    after = decode_cursor(q.get("cursor"))
    if after is not None:
        stmt = stmt.where(c.c.seq > after)
    return page(uow.session.execute(stmt).all(), limit, lambda row: _case_view(actor, row))


def timeline(uow, refdata: RefData, actor: dict, case_id: str) -> dict:
    row = _visible_case(uow, refdata, actor, case_id)
    entries = uow.session.execute(sa.select(models.case_trail).where(
        models.case_trail.c.case_id == row.id).order_by(models.case_trail.c.seq)).all()
    shown = schemas.TrailEntryView(many=True).dump(entries)
    visible = set(domain.visible_reporters(actor, row.reporter_ids))
    comments = domain.may_read_rating_comment(actor, row.reporter_ids)
    for entry in shown:
        # A reporter's rating is in the trail under her id, with her comment as its note:
        # both hidden as in the case view (the stored entry stays whole: it is hashed).
        if entry["actor_role"] == domain.REPORTER:
            if entry["actor_id"] not in visible:
                entry["actor_id"] = None
            if not comments:
                entry["note"] = None
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


# --- duplicates ------------------------------------------------------------------------

def duplicate_candidates(uow, actor: dict, case_id: str, query: dict) -> dict:
    """Open cases of the same category near this one in space and time, nearest first
    (PostGIS: ST_DWithin on the GiST-indexed geography point)."""
    _require_operator(actor)
    q = validated(schemas.DuplicateQuery(), query, "duplicate search", "重复案卷查询")
    c = models.cases
    source = uow.session.execute(sa.select(c.c.id, c.c.category, c.c.opened_at, c.c.geog)
                                 .where(c.c.id == _uuid_or_404(case_id))).first()
    if source is None:
        raise NotFound(f"No case {case_id}.", f"案卷 {case_id} 不存在。")
    window = timedelta(days=q["days"])
    distance = sa.func.ST_Distance(c.c.geog, source.geog).label("distance_m")
    rows = uow.session.execute(
        sa.select(c, distance)
        .where(c.c.id != source.id, c.c.category == source.category,
               c.c.status.in_(domain.MERGEABLE_INTO),
               c.c.opened_at.between(source.opened_at - window, source.opened_at + window),
               sa.func.ST_DWithin(c.c.geog, source.geog, q["radius_m"]))
        .order_by(distance, c.c.seq).limit(q["limit"])).all()
    items = []
    for row in rows:
        view = _case_view(actor, row)
        view["distance_m"] = round(float(row.distance_m), 1)
        items.append(view)
    return {"case_id": source.id, "radius_m": q["radius_m"], "days": q["days"],
            "items": items}


def _require_operator(actor: dict) -> None:
    if not set(actor["roles"]) & domain.OPERATORS:
        raise Forbidden("Only the command center may do this.", "只有指挥中心可以执行此操作。",
                        code="role-required")


def _require_admin(actor: dict) -> None:
    if "admin" not in actor["roles"]:
        raise Forbidden("Only an admin may change routing rules.", "只有管理员可以修改派单规则。",
                        code="role-required")


# --- routing rules (data, edited by admins) ---------------------------------------------

def _rule_view(row) -> dict:
    return {"id": row.id, "category": row.category, "community": row.community,
            "unit_id": row.unit_id, "reason_zh": row.reason_zh, "reason_en": row.reason_en}


def list_rules(uow) -> dict:
    r = models.routing_rules
    rows = uow.session.execute(sa.select(r).order_by(r.c.id)).all()
    return {"items": [_rule_view(row) for row in rows]}


def put_rule(uow, refdata: RefData, actor: dict, payload: dict) -> dict:
    """Create or replace the rule for a category x community (its natural key)."""
    _require_admin(actor)
    rule = validated(schemas.RuleRequest(), payload, "routing rule", "派单规则")
    ref = refdata.fresh(uow.session)
    errors = []
    if rule["unit_id"] not in ref.units:
        errors.append({"field": "unit_id", "message": "unknown unit"})
    if rule["category"] != "*" and rule["category"] not in ref.sla:
        errors.append({"field": "category", "message": "unknown category"})
    if rule["community"] != "*" and rule["community"] not in ref.communities:
        errors.append({"field": "community", "message": "unknown community"})
    if errors:
        raise Invalid("The rule names something that does not exist: "
                      + ", ".join(f"{e['field']} ({e['message']})" for e in errors) + ".",
                      "派单规则引用了不存在的单位、类别或社区。", errors=errors,
                      code="invalid-rule")
    r = models.routing_rules
    stmt = pg.insert(r).values(**rule)
    row = uow.session.execute(stmt.on_conflict_do_update(
        index_elements=["category", "community"],
        set_={k: stmt.excluded[k] for k in ("unit_id", "reason_zh", "reason_en")})
        .returning(r)).first()
    _rules_changed(uow, refdata, actor, "put", _rule_view(row))
    return _rule_view(row)


def delete_rule(uow, refdata: RefData, actor: dict, rule_id: str) -> dict:
    _require_admin(actor)
    r = models.routing_rules
    row = None
    if str(rule_id).isdigit() and int(rule_id) < 2**31:
        row = uow.session.execute(sa.delete(r).where(r.c.id == int(rule_id))
                                  .returning(r)).first()
    if row is None:
        raise NotFound(f"No routing rule {rule_id}.", f"派单规则 {rule_id} 不存在。")
    _rules_changed(uow, refdata, actor, "delete", _rule_view(row))
    return _rule_view(row)


def _rules_changed(uow, refdata: RefData, actor: dict, change: str, rule: dict) -> None:
    # The router is rebuilt on its next use in this process; the service invalidates
    # again after the commit, in case a request in between reloaded the old rules.
    refdata.invalidate()
    ROUTING_RULE_CHANGES.labels(change).inc()
    log.info("routing rule %s by %s: %s x %s -> %s", change, actor["id"], rule["category"],
             rule["community"], rule["unit_id"], extra={"rule_id": rule["id"]})


# --- leadership agenda (班子会) and livelihood projects (民生实事项目) -----------------

def decide(uow, refdata: RefData, actor: dict, case_id: str, payload: dict) -> dict:
    """Record the meeting's decision on an agenda item (and any further source cases):
    a new project, or an answer without one. Either answers the reporters (resolved)."""
    _require_operator(actor)
    request = validated(schemas.DecisionRequest(), payload, "meeting decision", "班子会决定")
    ids = list(dict.fromkeys([_uuid_or_404(case_id)] + [
        _uuid_or_404(c) for c in request["also_case_ids"]]))
    cases = [_locked_case(uow, cid) for cid in sorted(ids)]
    now = datetime.now(UTC)
    project = None
    if request["decision"] == "create_project":
        missing = [f for f in ("title", "budget") if request.get(f) is None]
        if missing:
            raise Invalid(f"A project needs {' and '.join(missing)}.",
                          "列入民生实事项目需要填写项目名称和预算。",
                          errors=[{"field": f, "message": "required"} for f in missing],
                          code="project-incomplete")
        project = {"id": str(uuid.uuid4()), "title": request["title"],
                   "budget": request["budget"], "status": "planned",
                   "decision": request["answer"], "decided_by": actor["id"],
                   "created_at": now, "updated_at": now}
        uow.session.execute(sa.insert(models.livelihood_projects).values(**project))
        result = f"{request['answer']}（已列入民生实事项目「{request['title']}」）"
        action = "decide_project"
    else:
        result, action = request["answer"], "decide_no_project"
    for case in cases:
        _transition(uow, refdata, actor, case, action, result=result,
                    project_id=project["id"] if project else None)
    return {"decision": request["decision"],
            "project": get_project(uow, project["id"]) if project else None,
            "case_ids": ids}


def _project_view(row, case_ids: list[str]) -> dict:
    return {"id": row.id, "title": row.title, "budget": float(row.budget),
            "status": row.status, "status_zh": domain.PROJECT_STATUS_ZH[row.status],
            "decision": row.decision, "decided_by": row.decided_by,
            "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
            "case_ids": case_ids}


def _project_cases(uow, project_ids: list[str]) -> dict[str, list[str]]:
    c = models.cases
    linked: dict[str, list[str]] = {p: [] for p in project_ids}
    for row in uow.session.execute(sa.select(c.c.project_id, c.c.id)
                                   .where(c.c.project_id.in_(project_ids))
                                   .order_by(c.c.seq)).all():
        linked[row.project_id].append(row.id)
    return linked


def _project_uuid(project_id: str) -> str:
    try:
        return str(uuid.UUID(project_id))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"No project {project_id}.", f"项目 {project_id} 不存在。") from None


def get_project(uow, project_id: str) -> dict:
    p = models.livelihood_projects
    row = uow.session.execute(sa.select(p).where(p.c.id == _project_uuid(project_id))).first()
    if row is None:
        raise NotFound(f"No project {project_id}.", f"项目 {project_id} 不存在。")
    return _project_view(row, _project_cases(uow, [row.id])[row.id])


def list_projects(uow, query: dict) -> dict:
    q = validated(schemas.ProjectQuery(), query, "project query", "项目查询")
    p = models.livelihood_projects
    limit = clamp_limit(q.get("limit"))
    stmt = sa.select(p).order_by(p.c.seq).limit(limit + 1)
    if q.get("status"):
        stmt = stmt.where(p.c.status == q["status"])
    after = decode_cursor(q.get("cursor"))
    if after is not None:
        stmt = stmt.where(p.c.seq > after)
    rows = uow.session.execute(stmt).all()
    linked = _project_cases(uow, [r.id for r in rows])
    return page(rows, limit, lambda r: _project_view(r, linked[r.id]))


def update_project(uow, actor: dict, project_id: str, payload: dict) -> dict:
    _require_operator(actor)
    request = validated(schemas.ProjectUpdate(), payload, "project update", "项目更新")
    p = models.livelihood_projects
    row = uow.session.execute(sa.select(p).where(p.c.id == _project_uuid(project_id))
                              .with_for_update()).first()
    if row is None:
        raise NotFound(f"No project {project_id}.", f"项目 {project_id} 不存在。")
    domain.check_project_move(row.status, request["status"])
    uow.session.execute(sa.update(p).where(p.c.id == row.id).values(
        status=request["status"], updated_at=datetime.now(UTC)))
    log.info("project %s: %s -> %s by %s", row.id, row.status, request["status"],
             actor["id"], extra={"project_id": row.id})
    return get_project(uow, row.id)


# --- micro-wishes (微心愿) on the volunteer board ----------------------------------------

def list_wishes(uow, actor: dict, query: dict) -> dict:
    """The board: every published wish, what it asks and where; never who asked."""
    q = validated(schemas.WishQuery(), query, "wish query", "微心愿查询")
    c = models.cases
    limit = clamp_limit(q.get("limit"))
    stmt = sa.select(c).where(c.c.status == domain.WISH).order_by(c.c.seq).limit(limit + 1)
    if q.get("claimed") is not None:
        stmt = stmt.where(c.c.wish_claimed_by.isnot(None) if q["claimed"]
                          else c.c.wish_claimed_by.is_(None))
    after = decode_cursor(q.get("cursor"))
    if after is not None:
        stmt = stmt.where(c.c.seq > after)
    return page(uow.session.execute(stmt).all(), limit, schemas.WishView().dump)


def _wish_case(uow, case_id: str) -> dict:
    try:
        return _locked_case(uow, case_id)
    except NotFound:
        raise NotFound(f"No wish {case_id}.", f"微心愿 {case_id} 不存在。") from None


def claim_wish(uow, refdata: RefData, actor: dict, case_id: str) -> dict:
    case = _transition(uow, refdata, actor, _wish_case(uow, case_id), "claim_wish",
                       note="claimed")
    return schemas.WishView().dump(_row(case))


def fulfil_wish(uow, refdata: RefData, actor: dict, case_id: str, payload: dict) -> dict:
    request = validated(schemas.FulfilRequest(), payload, "wish fulfilment", "微心愿完成")
    case = _transition(uow, refdata, actor, _wish_case(uow, case_id), "fulfil_wish",
                       result=request["note"], attachments=request["attachments"])
    return schemas.WishView().dump(_row(case))


# --- the partner's word (integration365 events) ------------------------------------------

EXTERNAL_ACTIONS = {"external.accepted": "external_accepted",
                    "external.progress": "external_progress",
                    "external.resolved": "external_resolved",
                    "external.rejected": "external_rejected"}


def on_external(uow, refdata: RefData, kind: str, events: list) -> None:
    """A partner accepted, progressed, resolved or rejected a case handed to it. An event
    that no longer fits (the case was closed meanwhile, or is unknown) is logged, counted
    and dropped: requeueing it would never make it fit."""
    action = EXTERNAL_ACTIONS[kind]
    for event in events:
        data = event.data
        actor = {"id": f"partner:{data['partner']}", "roles": ["system"]}
        note = {"external_accepted": data.get("note") or f"remote id {data.get('remote_id')}",
                "external_progress": f"[{data.get('remote_status')}] {data.get('note') or ''}"
                .strip(),
                "external_resolved": data.get("note"),
                "external_rejected": data.get("reason")}[action]
        try:
            case = _locked_case(uow, data["case_id"])
            with uow.session.begin_nested():  # a refusal leaves the batch's others intact
                _transition(uow, refdata, actor, case, action, note=note,
                            result=data.get("result"))
        except (Conflict, NotFound) as exc:
            EXTERNAL_EVENTS_IGNORED.labels(kind).inc()
            log.warning("ignored %s for case %s from %s: %s", kind, data["case_id"],
                        data["partner"], exc.detail_en,
                        extra={"case_id": data["case_id"], "event_id": event.id})
