"""The ledger's invariants, over random sequences of what people and events do.

Hypothesis draws sequences of closed cases (rewards proposed by the case.closed handler),
proposals, approvals and refusals by various people, payout batches, and payout steps
(approve, refuse, pay, reverse) by various people; each runs through the real use cases
(services/rewards/handlers.py) against the real PostgreSQL schema, in the kernel's units
of work. Whatever is refused is refused; after every step:

- every transaction's entries sum to zero, so all entries do;
- each resident's balance (GET /v1/rewards/balance) equals the sum of her entries, and
  what the model of the sequence says she is owed: approved rewards, less what went into
  payouts not refused, plus what was reversed;
- nothing paid changes (a paid payout's row is the same as when it was paid);
- only approved rewards have ledger entries (an unapproved one never reaches a payout).

Each example uses residents of its own, so examples and other tests do not interfere.
"""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import orm

from minqing_kernel import events as ev
from minqing_kernel.db import DatabaseHandle
from minqing_kernel.errors import Problem
from services.rewards import handlers, models

pytestmark = pytest.mark.integration

THRESHOLD = 20000
PEOPLE = [{"id": "operator-chen", "roles": ["operator"]},
          {"id": "operator-zhou", "roles": ["operator"]},
          {"id": "leader-jinjiang", "roles": ["leader"]},
          {"id": "admin", "roles": ["admin", "operator"]},
          {"id": "admin-finance", "roles": ["admin"]},
          {"id": "resident-li", "roles": ["resident"]}]
T0 = datetime(2026, 12, 1, tzinfo=UTC)

person = st.integers(0, len(PEOPLE) - 1)
# Payouts are a leader's or an admin's. Hypothesis favours the first of a list, so the
# first batcher (admin) and the first approver (the leader) differ and the first action
# moves money along; the others come often enough for the four-eyes and state refusals.
batcher = st.sampled_from([3, 4, 2])
payout_person = st.sampled_from([2, 4, 3])
pick = st.integers(0, 50)  # which reward or payout (modulo how many there are)
ARGUMENTS = {
    "close": st.tuples(st.just("close"), st.integers(0, 2),
                       st.sampled_from(["urgent", "high", "normal", "low"])),
    "propose": st.tuples(st.just("propose"), pick, person, st.integers(500, 40000)),
    "approve": st.tuples(st.just("approve"), pick, person),
    "refuse": st.tuples(st.just("refuse"), pick, person),
    "batch": st.tuples(st.just("batch"), batcher),
    "payout": st.tuples(st.just("payout"), pick, payout_person,
                        st.sampled_from(["approve", "pay", "reverse", "refuse"])),
    # the next step of a payout's life (approve a pending one, pay an approved one,
    # reverse a paid one), by someone who may well be allowed to
    "advance": st.tuples(st.just("advance"), pick, payout_person),
}
NEXT = {"pending": "approve", "approved": "pay", "paid": "reverse"}


@pytest.fixture(scope="module")
def db(stack):
    engine = sa.create_engine(stack.st.env["DB_URI"], pool_size=2)
    provider = SimpleNamespace(sessions=orm.sessionmaker(engine, expire_on_commit=False),
                               service="rewards", outbox=models.outbox,
                               processed=models.processed_events,
                               relay=SimpleNamespace(wake=lambda: None))
    yield DatabaseHandle(provider, None)
    engine.dispose()


def _closed_case(db, resident: str, priority: str, n: int) -> str | None:
    report_id, case_id = str(uuid.uuid4()), str(uuid.uuid4())
    received = ev.new_event("intake", ev.event_type("report.received"), report_id, {
        "report_id": report_id, "reporter_id": resident, "channel": "app",
        "category": "hazard-facility", "description": "路灯杆倾斜",
        "location": {"lat": 30.24, "lon": 120.18}, "attachments": [],
        "submitted_at": (T0 + timedelta(minutes=n)).isoformat()})
    closed = ev.new_event("dispatch", ev.event_type("case.closed"), case_id, {
        "case_id": case_id, "status": "closed", "previous_status": "resolved",
        "action": "rate_satisfied", "category": "hazard-facility", "report_ids": [report_id],
        "community_id": "comm-shibanqiao", "unit_id": "comm-shibanqiao",
        "actor": {"id": None, "role": "reporter"}, "note": None, "rating": 5,
        "at": (T0 + timedelta(minutes=n, seconds=30)).isoformat(), "priority": priority})
    with db.unit_of_work() as uow:
        handlers.learn_reports(uow, [received])
    with db.unit_of_work() as uow:
        handlers.award_closed_cases(uow, [closed])
        return uow.session.execute(sa.select(models.rewards.c.id).where(
            models.rewards.c.case_id == case_id)).scalar()


class Model:
    """What the sequence says each resident is owed, and what was paid when."""

    def __init__(self, residents: list[str]):
        self.residents = residents
        self.rewards: dict[str, str] = {}  # id -> status
        self.approved = dict.fromkeys(residents, 0)
        self.payouts: dict[str, dict] = {}  # id -> resident, amount, status, reversed
        self.paid_rows: dict[str, tuple] = {}

    def owed(self, resident: str) -> int:
        mine = [p for p in self.payouts.values() if p["resident"] == resident]
        return (self.approved[resident]
                - sum(p["amount"] for p in mine if p["status"] != "refused")
                + sum(p["amount"] for p in mine if p["reversed"]))


def _payout_row(db, payout_id: str) -> tuple:
    with db.unit_of_work() as uow:
        return tuple(uow.session.execute(sa.select(models.payouts).where(
            models.payouts.c.id == payout_id)).one())


ELIGIBLE = {"approve": {"pending"}, "refuse": {"pending", "approved"}, "pay": {"approved"},
            "reverse": {"paid"}}


def _target(statuses: dict[str, str], pick: int, eligible: set[str]) -> str | None:
    """Mostly one the step can apply to (else nearly every step would be refused), now
    and then any one, so refusals of the wrong state are exercised too."""
    pool = sorted(statuses) if pick % 5 == 0 else sorted(
        k for k, status in statuses.items() if status in eligible)
    return pool[pick % len(pool)] if pool else None


def run(db, model: Model, step: tuple, n: int, done: Counter) -> None:
    """Take one step; `done` counts the steps that were not refused, by kind."""
    kind = step[0]
    if kind == "close":
        reward_id = _closed_case(db, model.residents[step[1]], step[2], n)
        if reward_id:
            model.rewards[reward_id] = "proposed"
            done["close"] += 1
        return
    if kind in ("propose", "approve", "refuse"):
        _reward_step(db, model, step, done)
        return
    if kind == "batch":
        _batch(db, model, step, done)
        return
    _payout_step(db, model, step, done)


def _reward_step(db, model: Model, step: tuple, done: Counter) -> None:
    kind = step[0]
    reward_id = _target(model.rewards, step[1], {"proposed"})
    if reward_id is None:
        return
    body = {"action": kind}
    if kind == "propose":
        body["amount_fen"] = step[3]
    if kind == "refuse":
        body["reason"] = "不予奖励"
    try:
        result = handlers.reward_action(db, PEOPLE[step[2]], reward_id, body, THRESHOLD)
    except Problem:
        return
    done[kind] += 1
    model.rewards[reward_id] = result["status"]
    if kind == "approve":
        with db.unit_of_work() as uow:
            resident = uow.session.execute(sa.select(models.rewards.c.resident_id).where(
                models.rewards.c.id == reward_id)).scalar()
        model.approved[resident] += result["amount_fen"]


def _batch(db, model: Model, step: tuple, done: Counter) -> None:
    try:
        batch = handlers.create_payouts(db, PEOPLE[step[1]])
    except Problem:
        return
    done["batch"] += batch["payouts"] > 0
    with db.unit_of_work() as uow:
        for p in uow.session.execute(sa.select(models.payouts).where(
                models.payouts.c.batch_id == batch["batch_id"])):
            model.payouts[p.id] = {"resident": p.resident_id, "amount": p.amount_fen,
                                   "status": p.status, "reversed": False}


def _payout_step(db, model: Model, step: tuple, done: Counter) -> None:
    kind = step[0]
    statuses = {p: ("reversed" if v["reversed"] else v["status"])
                for p, v in model.payouts.items() if v["resident"] in model.residents}
    if kind == "advance":
        live = sorted(p for p, status in statuses.items() if status in NEXT)
        if not live:
            return
        payout_id = live[step[1] % len(live)]
        action = NEXT[statuses[payout_id]]
        # paying and reversing are an admin's: the leader drawn hands over to one
        person = PEOPLE[4 if action != "approve" and step[2] == 2 else step[2]]
        step = ("payout", step[1], PEOPLE.index(person), action)
    else:
        payout_id = _target(statuses, step[1], ELIGIBLE[step[3]])
    if payout_id is None:
        return
    try:
        result = handlers.payout_action(db, PEOPLE[step[2]], payout_id, {"action": step[3]})
    except Problem as refused:
        done[f"refused payout {step[3]}: {refused.code}"] += 1
        return
    done[f"payout {step[3]}"] += 1
    model.payouts[payout_id].update(status=result["status"], reversed=result["reversed"])
    if result["status"] == "paid" and payout_id not in model.paid_rows:
        model.paid_rows[payout_id] = _payout_row(db, payout_id)


def check(db, model: Model) -> None:
    L = models.ledger_entries
    with db.unit_of_work() as uow:
        s = uow.session
        assert s.execute(sa.select(sa.func.coalesce(sa.func.sum(L.c.amount_fen), 0))).scalar() == 0
        assert s.execute(sa.select(sa.func.count()).select_from(
            sa.select(L.c.txn_id).group_by(L.c.txn_id)
            .having(sa.func.sum(L.c.amount_fen) != 0).subquery())).scalar() == 0
        not_approved = s.execute(sa.select(sa.func.count()).select_from(
            L.join(models.rewards, models.rewards.c.id == L.c.reward_id))
            .where(models.rewards.c.status != "approved")).scalar()
        assert not_approved == 0, "an unapproved reward reached the ledger"
    for resident in model.residents:
        shown = handlers.my_balance(db, {"id": resident, "roles": ["resident"]})
        assert shown["balance_fen"] == sum(e["amount_fen"] for e in shown["entries"])
        assert shown["balance_fen"] == model.owed(resident) >= 0
    for payout_id, row in model.paid_rows.items():
        assert _payout_row(db, payout_id) == row, "a paid payout changed"


def test_the_ledger_balances_and_nothing_paid_changes_whatever_happens(db):
    done: Counter = Counter()

    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def every_sequence(data):
        model = Model([f"resident-p{uuid.uuid4().hex[:10]}" for _ in range(3)])
        for n in range(data.draw(st.integers(1, 40), label="steps")):
            # Each step is one that has something to act on (a reward, a payout of these
            # residents), so sequences reach payments and reversals; who acts is drawn
            # at random, so refusals by role and by state are exercised all along.
            kinds = ["close", "batch"]
            if model.rewards:
                kinds += ["propose", "approve", "approve", "refuse"]
            if any(p["resident"] in model.residents for p in model.payouts.values()):
                kinds += ["advance"] * 3 + ["payout"]
            step = data.draw(st.sampled_from(kinds).flatmap(ARGUMENTS.__getitem__))
            run(db, model, step, n, done)
            check(db, model)

    every_sequence()
    # The sequences reached every kind of step, reversals of paid payouts included
    kinds = {"close", "propose", "approve", "refuse", "batch", "payout approve",
             "payout refuse", "payout pay", "payout reverse"}
    assert kinds <= {kind for kind, n in done.items() if n}, done
