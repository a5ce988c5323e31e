"""rewards' use cases: learn who reported what, propose a reward when a case closes,
decide it (four eyes), batch and pay payouts, answer balances and rankings.

Each takes a unit of work (or the db, to open one) and plain data; the rules are in
domain.py. The ledger is written only through `_post`, one balanced transaction at a
time, in the same commit as the state change it records.
"""
from __future__ import annotations

import csv
import io
import logging
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel import messages
from minqing_kernel.errors import Forbidden, Invalid, NotFound, Unavailable, validated
from minqing_kernel.events import Event
from minqing_kernel.ids import uuid_or_404
from minqing_kernel.pagination import paged
from services.rewards import domain, models, schemas
from services.rewards.metrics import (
    AWAITING_APPROVAL,
    CLOSURES_UNREWARDED,
    PAYOUTS,
    REWARDED_FEN,
    REWARDS,
)

log = logging.getLogger(__name__)
R, L, P = models.rewards, models.ledger_entries, models.payouts
STAFF_VIEWERS = {"operator", "admin"}  # see who a reward is for (they pay and call back)
PAYOUT_LOCK = 0x52455744  # one payout batch at a time (pg_advisory_xact_lock)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(at: datetime | None) -> str | None:
    """RFC 3339, as every time this API sends (UTC as stored)."""
    return None if at is None else at.isoformat()


def _roles(actor: dict) -> set[str]:
    return set(actor.get("roles") or ())


# --- what the events tell us -----------------------------------------------------------

def learn_reports(uow, events: Iterable[Event]) -> int:
    """Who filed each report (internal report.received): the only place rewards learns a
    reporter, on the exchange partners cannot read."""
    rows = [{"report_id": e.data["report_id"], "reporter_id": e.data["reporter_id"],
             "channel": e.data["channel"], "category": e.data["category"],
             "submitted_at": e.data["submitted_at"]} for e in events]
    if rows:
        uow.session.execute(pg.insert(models.reports).on_conflict_do_nothing(), rows)
    return len(rows)


def _actor_id(data: dict) -> str | None:
    actor = data.get("actor") or {}
    if actor.get("role") in ("reporter", "system") or not actor.get("id"):
        return None
    return actor["id"]


def note_handlers(uow, events: Iterable[Event]) -> None:
    """Who worked a case (case.accepted, case.resolved): never rewarded for it."""
    rows = [{"case_id": e.data["case_id"], "handler_id": who}
            for e in events if (who := _actor_id(e.data))]
    if rows:
        uow.session.execute(pg.insert(models.case_handlers).on_conflict_do_nothing(), rows)


def _handlers(session, case_id: str) -> set[str]:
    return set(session.execute(sa.select(models.case_handlers.c.handler_id).where(
        models.case_handlers.c.case_id == case_id)).scalars())


def award_closed_cases(uow, events: Iterable[Event], now=utcnow) -> int:
    """case.closed (resolved and rated, closed unanswered, or closed directly: all valid;
    a rejected case emits case.rejected, which rewards does not take) proposes a reward
    for the case's first reporter from the rule of its class and priority. Runs in the
    consumer's unit of work: the reward (case_id unique) and the event's id commit
    together, so a redelivered case.closed changes nothing."""
    proposed = 0
    s = uow.session
    for event in events:
        data = event.data
        case_id, report_ids = data["case_id"], data["report_ids"]
        s.execute(sa.update(models.reports).where(models.reports.c.report_id.in_(report_ids))
                  .values(valid=True, case_id=case_id, community_id=data["community_id"]))
        if closer := _actor_id(data):
            s.execute(pg.insert(models.case_handlers).on_conflict_do_nothing(),
                      [{"case_id": case_id, "handler_id": closer}])
        seen = s.execute(sa.select(models.reports).where(
            models.reports.c.report_id.in_(report_ids))).all()
        if len(seen) < len(set(report_ids)):
            # report.received travels on another queue; it is on its way. A 503-like
            # failure makes the consumer hold the event and retry, without spending its
            # delivery limit (minqing_kernel.consumer).
            raise Unavailable.of("rewards.reporter-not-known-yet", case_id=case_id,
                                 code="reporter-not-known-yet")
        reward_class = s.execute(sa.select(models.categories.c.rewarded_class).where(
            models.categories.c.code == data["category"])).scalar()
        priority = data.get("priority") or "normal"
        rule = s.execute(sa.select(models.reward_rules).where(
            models.reward_rules.c.reward_class == reward_class,
            models.reward_rules.c.priority == priority)).first()
        award = domain.award_for(
            reward_class,
            rule and domain.Rule(rule.reward_class, rule.priority, rule.min_fen, rule.max_fen),
            [domain.ReportSeen(r.report_id, r.reporter_id, r.submitted_at) for r in seen],
            _handlers(s, case_id))
        if isinstance(award, str):
            CLOSURES_UNREWARDED.labels(award).inc()
            continue
        at = now()
        row = {"id": str(uuid.uuid4()), "case_id": case_id, "report_id": award.report_id,
               "resident_id": award.resident_id, "category": data["category"],
               "reward_class": reward_class, "priority": priority,
               "community_id": data["community_id"], "amount_fen": award.min_fen,
               "min_fen": award.min_fen, "max_fen": award.max_fen,
               "status": domain.PROPOSED, "proposed_by": domain.SYSTEM, "created_at": at}
        made = s.execute(pg.insert(R).values(row).on_conflict_do_nothing(
            index_elements=[R.c.case_id]).returning(R.c.id)).first()
        if made is None:  # closed before (reopened by a callback and closed again)
            CLOSURES_UNREWARDED.labels("already").inc()
            continue
        uow.emit("reward.proposed", row["id"], _event_data(row, domain.SYSTEM, at))
        REWARDS.labels(reward_class, "proposed").inc()
        proposed += 1
    return proposed


def _event_data(row, actor: str | None, at: datetime) -> dict:
    get = row.get if isinstance(row, dict) else row._mapping.get
    data = {"reward_id": get("id"), "case_id": get("case_id"), "report_id": get("report_id"),
            "resident_id": get("resident_id"), "reward_class": get("reward_class"),
            "category": get("category"), "amount_fen": get("amount_fen"),
            "status": get("status"), "actor": actor, "at": at.isoformat()}
    if get("status") == domain.REFUSED:
        data["reason"] = get("reason")
    return data


# --- the ledger --------------------------------------------------------------------------

def _post(uow, kind: str, entries: list[domain.Entry], at: datetime,
          reward_id: str | None = None, payout_id: str | None = None) -> str:
    if sum(amount for _, amount in entries) != 0:
        raise ValueError(f"unbalanced {kind} transaction: {entries}")
    txn = str(uuid.uuid4())
    uow.session.execute(sa.insert(L), [
        {"txn_id": txn, "account": account, "amount_fen": amount, "kind": kind,
         "reward_id": reward_id, "payout_id": payout_id, "at": at}
        for account, amount in entries])
    return txn


def balance_of(session, account: str) -> int:
    return int(session.execute(sa.select(sa.func.coalesce(sa.func.sum(L.c.amount_fen), 0))
                               .where(L.c.account == account)).scalar())


# --- deciding a reward -------------------------------------------------------------------

def _earned_since(session, resident_id: str, since: datetime) -> int:
    return int(session.execute(sa.select(sa.func.coalesce(sa.func.sum(R.c.amount_fen), 0))
                               .where(R.c.resident_id == resident_id,
                                      R.c.status == domain.APPROVED,
                                      R.c.decided_at >= since)).scalar())


def _check_caps(session, reward: dict, at: datetime, daily_cap_fen: int | None,
                monthly_cap_fen: int | None) -> None:
    if daily_cap_fen is None and monthly_cap_fen is None:
        return
    # One approval per resident at a time, so two at once cannot both slip under a cap.
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(
        sa.func.hashtext(f"rewards-cap:{reward['resident_id']}"))))
    local = at.astimezone(domain.BEIJING)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    domain.check_caps(reward["amount_fen"], _earned_since(session, reward["resident_id"], day),
                      _earned_since(session, reward["resident_id"], day.replace(day=1)),
                      daily_cap_fen, monthly_cap_fen)


def reward_action(db, actor: dict, reward_id: str, body: dict, threshold_fen: int,
                  now=utcnow, daily_cap_fen: int | None = None,
                  monthly_cap_fen: int | None = None) -> dict:
    reward_id = uuid_or_404(reward_id, "reward")
    req = validated(schemas.RewardAction(), body, "reward-action")
    with db.unit_of_work() as uow:
        s = uow.session
        row = s.execute(sa.select(R).where(R.c.id == reward_id).with_for_update()).first()
        if row is None:
            raise NotFound.of("rewards.reward-not-found", reward_id=reward_id)
        reward = dict(row._mapping)
        at = now()
        action = req["action"]
        if action == "propose":
            if "amount_fen" not in req:
                raise Invalid.of("rewards.amount-required", code="amount-required")
            changes = domain.propose(reward, actor, req["amount_fen"])
        elif action == "approve":
            changes = domain.approve(reward, actor, threshold_fen, _handlers(s, reward["case_id"]))
            domain.check_not_flagged(s.execute(sa.select(models.flagged_residents.c.reason)
                                               .where(models.flagged_residents.c.resident_id
                                                      == reward["resident_id"])).scalar())
            _check_caps(s, reward, at, daily_cap_fen, monthly_cap_fen)
        else:
            changes = domain.refuse(reward, actor, req.get("reason"))
        if "status" in changes:
            changes["decided_at"] = at
        s.execute(sa.update(R).where(R.c.id == reward_id).values(**changes))
        reward.update(changes)
        if action == "approve":
            _post(uow, "reward", domain.approval_entries(reward["resident_id"],
                                                        reward["amount_fen"]), at,
                  reward_id=reward_id)
            REWARDED_FEN.labels(reward["reward_class"]).inc(reward["amount_fen"])
        if action != "propose":
            uow.emit(f"reward.{reward['status']}", reward_id,
                     _event_data(reward, actor["id"], at))
            REWARDS.labels(reward["reward_class"], reward["status"]).inc()
    return reward_view(reward, actor)


def reward_view(reward, actor: dict) -> dict:
    get = reward.get if isinstance(reward, dict) else reward._mapping.get
    view = {"id": get("id"), "case_id": get("case_id"), "report_id": get("report_id"),
            "category": get("category"), "reward_class": get("reward_class"),
            "priority": get("priority"), "community_id": get("community_id"),
            "amount_fen": get("amount_fen"), "amount_yuan": domain.yuan(get("amount_fen")),
            "min_fen": get("min_fen"), "max_fen": get("max_fen"),
            "status": get("status"), "status_zh": messages.name("reward-status", get("status")),
            "reason": get("reason"), "proposed_by": get("proposed_by"),
            "decided_by": get("decided_by"), "created_at": _iso(get("created_at")),
            "decided_at": _iso(get("decided_at"))}
    # Who a reward is for is who reported: the command center and admins know it (they
    # pay and call back), the resident is told her own, a leader approves without it.
    if _roles(actor) & STAFF_VIEWERS or get("resident_id") == actor["id"]:
        view["resident_id"] = get("resident_id")
    return view


def list_rewards(db, actor: dict, query: dict) -> dict:
    q = validated(schemas.RewardQuery(), query, "query")
    stmt = sa.select(R).order_by(R.c.seq.desc())
    if not _roles(actor) & domain.REVIEWERS:
        stmt = stmt.where(R.c.resident_id == actor["id"])  # a resident: her own only
    if q.get("status"):
        stmt = stmt.where(R.c.status == q["status"])
    with db.unit_of_work() as uow:
        page = paged(uow.session, stmt, R.c.seq, q, lambda r: reward_view(r, actor),
                     newest_first=True)
        AWAITING_APPROVAL.set(uow.session.execute(sa.select(sa.func.count()).where(
            R.c.status == domain.PROPOSED)).scalar())
    return page


def my_balance(db, actor: dict) -> dict:
    """The signed-in person's balance and its history (every ledger entry on her account)."""
    account = domain.resident_account(actor["id"])
    with db.unit_of_work() as uow:
        s = uow.session
        entries = s.execute(sa.select(L).where(L.c.account == account)
                            .order_by(L.c.seq.desc()).limit(200)).all()
        balance = balance_of(s, account)
        paid = s.execute(sa.select(sa.func.coalesce(sa.func.sum(P.c.amount_fen), 0)).where(
            P.c.resident_id == actor["id"], P.c.status == domain.PAID)).scalar()
        reversed_fen = s.execute(
            sa.select(sa.func.coalesce(sa.func.sum(P.c.amount_fen), 0))
            .select_from(P.join(models.payout_reversals))
            .where(P.c.resident_id == actor["id"])).scalar()
        in_payment = s.execute(sa.select(sa.func.coalesce(sa.func.sum(P.c.amount_fen), 0))
                               .where(P.c.resident_id == actor["id"],
                                      P.c.status.in_([domain.PENDING, domain.APPROVED]))
                               ).scalar()
    return {"resident_id": actor["id"], "balance_fen": balance,
            "balance_yuan": domain.yuan(balance), "in_payment_fen": int(in_payment),
            "paid_fen": int(paid) - int(reversed_fen),
            "entries": [{"kind": e.kind, "amount_fen": e.amount_fen, "reward_id": e.reward_id,
                         "payout_id": e.payout_id, "at": _iso(e.at)} for e in entries]}


# --- flagged reporters ------------------------------------------------------------------

RESIDENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _resident_id(value: str) -> str:
    """A reporter id from a path: an account id or a keyed caller id; anything else names
    nobody (404, as for any id we do not hold)."""
    if not isinstance(value, str) or not RESIDENT_ID.match(value):
        raise NotFound.of("rewards.resident-not-found", value=value)
    return value


def flag_resident(db, actor: dict, resident_id: str, body: dict, now=utcnow) -> dict:
    """An operator flags a reporter (suspected abuse): her rewards are held."""
    resident_id = _resident_id(resident_id)
    req = validated(schemas.FlagRequest(), body, "flag")
    F = models.flagged_residents
    row = {"resident_id": resident_id, "reason": req["reason"], "flagged_by": actor["id"],
           "flagged_at": now()}
    with db.unit_of_work() as uow:
        stmt = pg.insert(F).values(row)
        uow.session.execute(stmt.on_conflict_do_update(
            index_elements=[F.c.resident_id],
            set_={k: stmt.excluded[k] for k in ("reason", "flagged_by", "flagged_at")}))
    return {**row, "flagged_at": _iso(row["flagged_at"])}


def unflag_resident(db, actor: dict, resident_id: str) -> dict:
    """A leader or an admin has reviewed the reporter: her rewards may be approved."""
    resident_id = _resident_id(resident_id)
    F = models.flagged_residents
    with db.unit_of_work() as uow:
        gone = uow.session.execute(sa.delete(F).where(F.c.resident_id == resident_id)
                                   .returning(F.c.resident_id)).first()
    if gone is None:
        raise NotFound.of("rewards.not-flagged", resident_id=resident_id)
    return {"resident_id": resident_id, "flagged": False}


# --- rules ---------------------------------------------------------------------------------

def _rule_view(r) -> dict:
    # A class seeded from the reference data but not one of ours has no name: null.
    class_zh = (messages.name("reward-class", r.reward_class)
                if r.reward_class in domain.REWARD_CLASSES else None)
    return {"reward_class": r.reward_class, "reward_class_zh": class_zh,
            "priority": r.priority, "min_fen": r.min_fen, "max_fen": r.max_fen,
            "updated_at": _iso(r.updated_at), "updated_by": r.updated_by}


def list_rules(db) -> dict:
    with db.unit_of_work() as uow:
        rows = uow.session.execute(sa.select(models.reward_rules).order_by(
            models.reward_rules.c.reward_class, models.reward_rules.c.priority)).all()
    return {"items": [_rule_view(r) for r in rows]}


def set_rule(db, actor: dict, reward_class: str, priority: str, body: dict,
             now=utcnow) -> dict:
    """An admin's edit of one rule, audited in rule_changes in the same commit."""
    if "admin" not in _roles(actor):
        raise Forbidden.of("rewards.admins-edit-rules")
    req = validated(schemas.RuleChange(), body, "reward-rule")
    rule = domain.check_rule(reward_class, priority, req["min_fen"], req["max_fen"])
    T = models.reward_rules
    with db.unit_of_work() as uow:
        before = uow.session.execute(sa.select(T).where(
            T.c.reward_class == reward_class, T.c.priority == priority).with_for_update()).first()
        at = now()
        values = {"reward_class": reward_class, "priority": priority,
                  "min_fen": rule.min_fen, "max_fen": rule.max_fen, "updated_at": at,
                  "updated_by": actor["id"]}
        stmt = pg.insert(T).values(values)
        row = uow.session.execute(stmt.on_conflict_do_update(
            index_elements=[T.c.reward_class, T.c.priority],
            set_={"min_fen": rule.min_fen, "max_fen": rule.max_fen, "updated_at": at,
                  "updated_by": actor["id"]}).returning(*T.c)).first()
        uow.session.execute(sa.insert(models.rule_changes).values(
            reward_class=reward_class, priority=priority, actor_id=actor["id"], at=at,
            before=before and {"min_fen": before.min_fen, "max_fen": before.max_fen},
            after={"min_fen": rule.min_fen, "max_fen": rule.max_fen}))
    return _rule_view(row)


def rule_changes(db, query: dict) -> dict:
    query = validated(schemas.Page(), query, "query")
    C = models.rule_changes
    stmt = sa.select(C).order_by(C.c.seq.desc())
    with db.unit_of_work() as uow:
        return paged(uow.session, stmt, C.c.seq, query, lambda r: {
            "reward_class": r.reward_class, "priority": r.priority, "before": r.before,
            "after": r.after, "actor_id": r.actor_id, "at": _iso(r.at)}, newest_first=True)


# --- payouts -------------------------------------------------------------------------------

def create_payouts(db, actor: dict, now=utcnow) -> dict:
    """Batch every positive resident balance into a pending payout (finance's batch)."""
    if not _roles(actor) & domain.FINANCE:
        raise Forbidden.of("rewards.admins-batch-payouts")
    batch_id, at, made = str(uuid.uuid4()), now(), []
    with db.unit_of_work() as uow:
        s = uow.session
        s.execute(sa.select(sa.func.pg_advisory_xact_lock(PAYOUT_LOCK)))
        owed = s.execute(sa.select(L.c.account, sa.func.sum(L.c.amount_fen).label("fen"))
                         .where(L.c.account.like("resident:%")).group_by(L.c.account)
                         .having(sa.func.sum(L.c.amount_fen) > 0)
                         .order_by(L.c.account)).all()
        for account, fen in owed:
            resident_id = account.split(":", 1)[1]
            payout = {"id": str(uuid.uuid4()), "batch_id": batch_id, "resident_id": resident_id,
                      "amount_fen": int(fen), "status": domain.PENDING,
                      "created_by": actor["id"], "created_at": at}
            s.execute(sa.insert(P).values(payout))
            _post(uow, "payout", domain.payout_entries(resident_id, int(fen)), at,
                  payout_id=payout["id"])
            made.append(payout)
    PAYOUTS.labels("batch").inc(len(made))
    return {"batch_id": batch_id, "payouts": len(made),
            "amount_fen": sum(p["amount_fen"] for p in made)}


def payout_action(db, actor: dict, payout_id: str, body: dict, now=utcnow) -> dict:
    payout_id = uuid_or_404(payout_id, "payout")
    req = validated(schemas.PayoutAction(), body, "payout-action")
    action = req["action"]
    with db.unit_of_work() as uow:
        s = uow.session
        row = s.execute(sa.select(P).where(P.c.id == payout_id).with_for_update()).first()
        if row is None:
            raise NotFound.of("rewards.payout-not-found", payout_id=payout_id)
        payout = dict(row._mapping)
        reversed_already = s.execute(sa.select(models.payout_reversals.c.payout_id).where(
            models.payout_reversals.c.payout_id == payout_id)).first() is not None
        new = domain.payout_step(payout, actor, action, reversed_already)
        at, resident, fen = now(), payout["resident_id"], payout["amount_fen"]
        if action == "reverse":
            s.execute(sa.insert(models.payout_reversals).values(
                payout_id=payout_id, reason=req.get("note") or "reversed", actor_id=actor["id"],
                at=at))
            _post(uow, "reversal", domain.reversal_entries(resident, fen), at,
                  payout_id=payout_id)
        else:
            changes = {"status": new}
            if action == "approve":
                changes.update(approved_by=actor["id"], approved_at=at)
            else:
                changes.update(decided_by=actor["id"], decided_at=at,
                               note=req.get("note") or payout["note"])
            s.execute(sa.update(P).where(P.c.id == payout_id).values(**changes))
            payout.update(changes)
            if action == "refuse":
                _post(uow, "payout-refused", domain.payout_refusal_entries(resident, fen), at,
                      payout_id=payout_id)
            if action == "pay":
                _post(uow, "payment", domain.payment_entries(fen), at, payout_id=payout_id)
                uow.emit("reward.paid", payout_id, {
                    "payout_id": payout_id, "batch_id": payout["batch_id"],
                    "resident_id": resident, "amount_fen": fen, "actor": actor["id"],
                    "at": at.isoformat()})
        PAYOUTS.labels(action).inc()
    return payout_view(payout, actor, reversed_already or action == "reverse")


def payout_view(p, actor: dict, reversed_: bool = False) -> dict:
    get = p.get if isinstance(p, dict) else p._mapping.get
    view = {"id": get("id"), "batch_id": get("batch_id"), "amount_fen": get("amount_fen"),
            "amount_yuan": domain.yuan(get("amount_fen")), "status": get("status"),
            "status_zh": messages.name("payout-status", get("status")), "reversed": reversed_,
            "created_by": get("created_by"), "approved_by": get("approved_by"),
            "decided_by": get("decided_by"), "note": get("note"),
            "created_at": _iso(get("created_at")), "approved_at": _iso(get("approved_at")),
            "decided_at": _iso(get("decided_at"))}
    if _roles(actor) & STAFF_VIEWERS:
        view["resident_id"] = get("resident_id")
    return view


def _payouts_stmt(q: dict):
    rev = models.payout_reversals
    stmt = (sa.select(P, rev.c.payout_id.is_not(None).label("reversed"))
            .select_from(P.outerjoin(rev, rev.c.payout_id == P.c.id)))
    if q.get("status"):
        stmt = stmt.where(P.c.status == q["status"])
    if q.get("batch_id"):
        stmt = stmt.where(P.c.batch_id == str(q["batch_id"]))
    return stmt


def list_payouts(db, actor: dict, query: dict) -> dict:
    q = validated(schemas.PayoutQuery(), query, "query")
    with db.unit_of_work() as uow:
        return paged(uow.session, _payouts_stmt(q).order_by(P.c.seq.desc()), P.c.seq, q,
                     lambda r: payout_view(r, actor, r.reversed), newest_first=True)


def payout_residents(db, query: dict) -> list[str]:
    q = validated(schemas.PayoutQuery(), query, "query")
    with db.unit_of_work() as uow:
        return sorted(set(uow.session.execute(
            _payouts_stmt(q).with_only_columns(P.c.resident_id)).scalars()))


# Finance's spreadsheet: its column headings, in Chinese, by their catalogue keys.
CSV_FIELDS = tuple(f"rewards.payouts-csv.{c}" for c in (
    "id", "batch", "resident-id", "name", "amount", "status", "reversed", "created-by",
    "approved-by", "decided-by", "created-at", "approved-at", "decided-at", "note"))


def export_payouts(db, query: dict, names: dict[str, str | None]) -> str:
    """Finance's CSV: UTF-8 with a byte-order mark (so a spreadsheet opens the Chinese
    intact), CRLF rows, amounts in yuan with two decimals, times in Beijing time."""
    q = validated(schemas.PayoutQuery(), query, "query")
    with db.unit_of_work() as uow:
        rows = uow.session.execute(_payouts_stmt(q).order_by(P.c.seq)).all()
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([messages.zh(key) for key in CSV_FIELDS])
    for r in rows:
        writer.writerow([r.id, r.batch_id, r.resident_id, names.get(r.resident_id) or "",
                         f"{r.amount_fen / 100:.2f}", messages.name("payout-status", r.status),
                         messages.zh("rewards.yes" if r.reversed else "rewards.no"),
                         r.created_by, r.approved_by or "",
                         r.decided_by or "", domain.beijing(r.created_at),
                         domain.beijing(r.approved_at), domain.beijing(r.decided_at),
                         r.note or ""])
    return out.getvalue()


# --- ranking -------------------------------------------------------------------------------

TOP_FIELDS = tuple(f"rewards.top-csv.{c}" for c in (
    "rank", "name", "reports", "valid-reports", "rewards"))


def top_reporters_csv(year: str, rows: list[dict]) -> str:
    """The year's 爆料达人 as CSV: rows as the gateway shows them (names, not ids);
    UTF-8 with a BOM like every CSV here, so a spreadsheet opens the Chinese intact."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([messages.zh(key) for key in TOP_FIELDS])
    for r in rows:
        writer.writerow([r["rank"], r["name"], r["reports"], r["valid_reports"],
                         f"{r['rewards_fen'] / 100:.2f}"])
    return out.getvalue()


def leaderboard(db, actor: dict, query: dict, now=utcnow) -> dict:
    """爆料排名 for a Beijing-time month or year, optionally one community: reports filed,
    valid reports (their case closed), rewards approved. Resident ids go to the gateway,
    which shows a display name or a mask instead and never passes the ids on."""
    q = validated(schemas.LeaderboardQuery(), query, "query")
    start, end, label = domain.period_bounds(q["period"], q.get("at"), now())
    rep = models.reports
    in_period = [rep.c.submitted_at >= start, rep.c.submitted_at < end]
    if q.get("community_id"):
        in_period.append(rep.c.community_id == q["community_id"])
    reward_where = [R.c.status == domain.APPROVED, R.c.decided_at >= start,
                    R.c.decided_at < end]
    if q.get("community_id"):
        reward_where.append(R.c.community_id == q["community_id"])
    with db.unit_of_work() as uow:
        s = uow.session
        counts = s.execute(sa.select(rep.c.reporter_id, sa.func.count(),
                                     sa.func.count().filter(rep.c.valid))
                           .where(*in_period).group_by(rep.c.reporter_id)).all()
        earned = dict(s.execute(sa.select(R.c.resident_id, sa.func.sum(R.c.amount_fen))
                                .where(*reward_where).group_by(R.c.resident_id)).all())
    rows = {who: {"resident_id": who, "reports": n, "valid_reports": valid, "rewards_fen": 0}
            for who, n, valid in counts}
    for who, fen in earned.items():
        rows.setdefault(who, {"resident_id": who, "reports": 0, "valid_reports": 0,
                              "rewards_fen": 0})["rewards_fen"] = int(fen)
    ranking = domain.ranked(rows.values())
    mine = next((r for r in ranking if r["resident_id"] == actor["id"]), None)
    return {"period": q["period"], "at": label, "community_id": q.get("community_id"),
            "items": ranking[:q["limit"]], "me": mine}
