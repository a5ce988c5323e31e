"""SLA clocks kept in step with a case (督办's reaction to every case change).

One layer below the use cases: lifecycle calls `on_case_changed` after saving each Change
of the Case aggregate, and `deadline` to start a clock; nothing here calls back up. The
scan, inbox, extensions and callbacks that read these clocks are in supervision.py.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from services.dispatch import callers, domain, models, sla
from services.dispatch.case import Change
from services.dispatch.metrics import CALLBACKS


@dataclass(frozen=True)
class SupervisionSettings:
    """From dispatch's nameko config (config.yaml, from the environment), injected."""
    reminders: tuple[float, ...] = sla.DEFAULT_REMINDERS
    satisfaction_wait_h: float = 72.0
    callback_sample_rate: float = 0.1

    @classmethod
    def from_config(cls, config: dict) -> SupervisionSettings:
        return cls(reminders=sla.parse_reminders(str(config.get("SLA_REMINDERS") or "")),
                   satisfaction_wait_h=float(config.get("SATISFACTION_WAIT_H", 72)),
                   callback_sample_rate=float(config.get("CALLBACK_SAMPLE_RATE", 0.1)))


def policy(session, category: str, priority: str | None) -> sla.Policy | None:
    """Read at each use, not cached: an admin's change applies to the next assignment."""
    row = session.execute(sa.select(models.sla_policies).where(
        models.sla_policies.c.category == category,
        models.sla_policies.c.priority == (priority or "normal"))).first()
    return sla.Policy(row.accept_hours, row.resolve_hours, row.yellow_at) if row else None


def deadline(session, case: dict, kind: str, now: datetime) -> datetime | None:
    """When a clock of `kind` started now runs out for this case (None: no policy)."""
    return sla.deadline(now, policy(session, case["category"], case.get("priority")), kind)


def clock_of(row, settings: SupervisionSettings) -> sla.Clock:
    return sla.Clock(row.kind, row.started_at, row.due_at, row.yellow_at, settings.reminders)


def _wanted(case: dict) -> dict[str, datetime]:
    """The clocks the case should have running now, and when each runs out."""
    if not case["unit_id"]:
        return {}
    status = case["status"]
    if status == domain.ASSIGNED and case.get("accept_due_at"):
        return {sla.ACCEPT: case["accept_due_at"]}
    # 外部联动: the partner is held to our resolve deadline from the hand-over on.
    if status in (domain.ACCEPTED, domain.ESCALATED_EXTERNAL) and case.get("resolve_due_at"):
        return {sla.RESOLVE: case["resolve_due_at"]}
    return {}


def on_case_changed(uow, settings: SupervisionSettings, case: dict, change: Change) -> None:
    """Keep the case's running clocks in step with its state: an accept clock while it is
    assigned to a unit, a resolve clock while accepted or with an external partner; stop
    the others. On closing, maybe queue a callback (回访)."""
    s, c, now = uow.session, models.sla_clocks, change.at
    running = {r.kind: r for r in s.execute(sa.select(c).where(
        c.c.case_id == case["id"], c.c.stopped_at.is_(None)).with_for_update()).all()}
    wanted = _wanted(case)
    keep = {k for k, r in running.items()
            if wanted.get(k) == r.due_at and r.unit_id == case["unit_id"]}
    stop = [r.id for k, r in running.items() if k not in keep]
    if stop:
        s.execute(sa.update(c).where(c.c.id.in_(stop)).values(
            stopped_at=now, stopped_by=change.action, next_warning_at=None))
    for kind, due in wanted.items():
        if kind not in keep:
            _start_clock(s, settings, case, kind, due, running.get(sla.ACCEPT), now)
    if callers.needs_a_rating_call(case, change.previous):
        callers.queue_rating_call(s, case, now)
    # A phone caller was called for their rating already: no second, sampled call.
    if case["status"] == domain.CLOSED and change.previous != domain.CLOSED \
            and case.get("channel") != domain.PHONE_CHANNEL:
        _maybe_queue_callback(uow, settings, case, now)


def _start_clock(session, settings: SupervisionSettings, case: dict, kind: str,
                 due: datetime, accept_clock, now: datetime) -> None:
    # A resolve clock remembers when its unit first got the case (the report's figures).
    assigned_at = (accept_clock.assigned_at if kind == sla.RESOLVE and accept_clock is not None
                   and accept_clock.unit_id == case["unit_id"] else now)
    p = policy(session, case["category"], case.get("priority"))
    clock = sla.Clock(kind, now, due, p.yellow_at if p else sla.DEFAULT_YELLOW_AT,
                      settings.reminders)
    session.execute(sa.insert(models.sla_clocks).values(
        case_id=case["id"], kind=kind, unit_id=case["unit_id"], assigned_at=assigned_at,
        started_at=now, due_at=due, yellow_at=clock.yellow_at,
        next_warning_at=clock.next_at(now)))


def _maybe_queue_callback(uow, settings: SupervisionSettings, case: dict,
                          now: datetime) -> None:
    if not sla.in_callback_sample(case["id"], settings.callback_sample_rate):
        return
    uow.session.execute(pg.insert(models.callbacks).values(
        id=str(uuid.uuid4()), case_id=case["id"], queued_at=now, status="pending")
        .on_conflict_do_nothing())
    CALLBACKS.labels("queued").inc()
