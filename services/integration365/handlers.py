"""integration365's use cases: take an escalation on, send it, follow it, reconcile it.

Each runs in units of work of its own; the partner is called between them, never inside
a transaction (a slow partner must not hold database locks or connections).
"""
from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel import faults
from minqing_kernel.events import Event
from services.integration365 import domain, models, schemas
from services.integration365.adapters import (
    Partner,
    PartnerRefused,
    PartnerUnavailable,
    RemoteUpdate,
)
from services.integration365.domain import Kind, State
from services.integration365.metrics import (
    ESCALATIONS_IGNORED,
    HANDOVERS,
    HANDOVERS_SENT,
    PARTNER_BACKLOG,
    PARTNER_CALL_FAILURES,
    PARTNER_CIRCUIT_OPEN,
    PARTNER_ID_CONFLICTS,
    PARTNER_OLDEST_PENDING_SECONDS,
    PARTNER_UPDATES,
    PARTNER_UPDATES_UNPLACED,
    RECONCILIATION_REPAIRS,
)

log = logging.getLogger(__name__)
H = models.handovers
SEND_BATCH = 20
# Polls ask for updates from a little before the last one seen: partners' clocks and
# commit order are not ours, and a repeat costs only a primary-key lookup.
POLL_OVERLAP = timedelta(seconds=60)
# An update for a work order we do not know (yet: its POST answer was lost and the retry
# has not found it) holds the cursor back this long at most; reconciliation is the net.
MAX_HOLD = timedelta(minutes=10)
# A hand-over sent this recently is not judged by reconciliation: the partner may not
# list it yet.
RECONCILE_GRACE = timedelta(seconds=5)
RECONCILE_BATCH = 50
# Remote updates are remembered this long: far beyond the poll overlap and the hold, so
# no poll can see one again after it is forgotten.
UPDATE_RETENTION = timedelta(days=30)
# Failures after which the partner may or may not have acted on the request.
UNKNOWN_OUTCOME = frozenset({"timeout", "connection", "token-pending"})

Now = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- taking an escalation on ---------------------------------------------------------

def record_handovers(uow, events: Iterable[Event], partners: set[str],
                     now: Now = utcnow) -> int:
    """A pending hand-over for each case.escalated_external to a partner we serve.

    Runs in the consumer's unit of work, so the hand-over and the event's id commit
    together: the event is acked only after that, and a redelivery changes nothing.
    A case already live with the partner keeps its hand-over (never a second work
    order); one that came back (rejected, or resolved and reopened) starts a new round.
    """
    taken = 0
    for event in events:
        data = event.data
        partner = data["partner"]
        if partner not in partners:
            ESCALATIONS_IGNORED.labels(partner, "unknown-partner").inc()
            log.warning("escalation of case %s to %r ignored: this bridge serves %s",
                        data["case_id"], partner, sorted(partners))
            continue
        at = now()
        row = {"case_id": data["case_id"], "partner": partner, "ref": event.id,
               "work_order": domain.work_order(data), "state": State.PENDING.value,
               "attempts": 0, "next_attempt_at": at, "correlation_id": event.correlation_id,
               "created_at": at, "updated_at": at}
        stmt = pg.insert(H).values(row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[H.c.case_id],
            set_={"partner": stmt.excluded.partner, "ref": stmt.excluded.ref,
                  "work_order": stmt.excluded.work_order, "state": State.PENDING.value,
                  "remote_id": None, "attempts": 0, "next_attempt_at": at,
                  "last_error": None, "last_update_at": None, "sent_at": None,
                  "correlation_id": stmt.excluded.correlation_id,
                  "round": H.c.round + 1, "updated_at": at},
            where=H.c.state.in_([s.value for s in domain.TERMINAL]),
        ).returning(H.c.case_id)
        if uow.session.execute(stmt).first() is None:
            ESCALATIONS_IGNORED.labels(partner, "already-live").inc()
            log.info("case %s is already with %s; the repeated escalation %s changes "
                     "nothing", data["case_id"], partner, event.id)
            continue
        taken += 1
        log.info("case %s taken on for %s (hand-over ref %s)", data["case_id"], partner,
                 event.id, extra={"correlation_id": event.correlation_id})
    return taken


# --- sending -------------------------------------------------------------------------

def _claim_due(db, partner: Partner, limit: int, now: datetime) -> list:
    """Claim due pending hand-overs. The claim commits attempts+1 and a lease (the next
    attempt time) before the partner is called: a crash mid-call leaves the hand-over to
    be retried after the lease, and that retry knows (attempts > 1) that an earlier
    attempt may have reached the partner. SKIP LOCKED: two bridges never claim one row."""
    lease = timedelta(seconds=4 * partner.timeout_s + 1)
    with db.unit_of_work() as uow:
        due = (sa.select(H.c.case_id)
               .where(H.c.partner == partner.name, H.c.state == State.PENDING.value,
                      H.c.next_attempt_at <= now)
               .order_by(H.c.next_attempt_at).limit(limit)
               .with_for_update(skip_locked=True))
        return uow.session.execute(
            sa.update(H).where(H.c.case_id.in_(due.scalar_subquery()))
            .values(attempts=H.c.attempts + 1, next_attempt_at=now + lease, updated_at=now)
            .returning(H.c.case_id, H.c.ref, H.c.work_order, H.c.attempts,
                       H.c.correlation_id)).all()


def send_due(db, partner: Partner, now: Now = utcnow,
             rand: Callable[[], float] | None = None) -> int:
    """Send the due hand-overs; returns how many the partner confirmed."""
    rand = rand or random.random
    if not partner.breaker.allow():
        return 0
    # The call just allowed may be the half-open probe: claim one hand-over for it.
    limit = SEND_BATCH if partner.breaker.state is domain.Circuit.CLOSED else 1
    claimed = _claim_due(db, partner, limit, now())
    if not claimed:
        partner.breaker.release()  # an unused probe: let the poll or the next tick probe
        return 0
    sent = 0
    for i, row in enumerate(claimed):
        if i and not partner.breaker.allow():
            # The circuit opened mid-batch: the rest wait for their lease to pass.
            break
        sent += _send_one(db, partner, row, now, rand)
    return sent


def _send_one(db, partner: Partner, row, now: Now, rand) -> int:
    adapter = partner.adapter
    how = "created"
    try:
        remote_id = None
        if row.attempts > 1:
            try:
                remote_id = adapter.find(row.ref)
            except PartnerRefused as exc:
                # Without the look-up a retry could make a second work order: wait.
                raise PartnerUnavailable("lookup-refused", str(exc)) from None
            how = "found" if remote_id else how
        if remote_id is None:
            remote_id = adapter.create(row.ref, row.work_order)
    except PartnerUnavailable as exc:
        partner.breaker.record_failure()
        PARTNER_CALL_FAILURES.labels(partner.name, "send", exc.reason).inc()
        delay = partner.backoff.delay(row.attempts, rand)
        if exc.reason in UNKNOWN_OUTCOME:
            # The partner may still be working on the request we gave up on: give it
            # time to finish before `find` asks whether it made the work order.
            delay = max(delay, 2 * partner.timeout_s)
        log.warning("sending case %s to %s failed (attempt %d: %s); retrying in %.1fs",
                    row.case_id, partner.name, row.attempts, exc, delay,
                    extra={"correlation_id": row.correlation_id})
        with db.unit_of_work() as uow:
            uow.session.execute(
                sa.update(H).where(H.c.case_id == row.case_id, H.c.ref == row.ref,
                                   H.c.state == State.PENDING.value)
                .values(last_error=str(exc)[:2000],
                        next_attempt_at=now() + timedelta(seconds=delay), updated_at=now()))
        return 0
    except PartnerRefused as exc:
        partner.breaker.record_success()  # it answered: it is up
        PARTNER_CALL_FAILURES.labels(partner.name, "send", "refused").inc()
        log.warning("%s refused the work order for case %s: %s; the case goes back to "
                    "the command center", partner.name, row.case_id, exc,
                    extra={"correlation_id": row.correlation_id})
        with db.unit_of_work() as uow:
            refused = uow.session.execute(
                sa.update(H).where(H.c.case_id == row.case_id, H.c.ref == row.ref,
                                   H.c.state == State.PENDING.value)
                .values(state=State.REJECTED.value, last_error=str(exc)[:2000],
                        updated_at=now()).returning(H.c.case_id)).first()
            if refused:
                uow.emit("external.rejected", row.case_id, domain.event_data(
                    Kind.REJECTED, row.case_id, partner.name, None, now().isoformat(),
                    str(exc) or None, ""), correlation_id=row.correlation_id)
        return 0
    partner.breaker.record_success()
    # The partner has the work order; until the next commit only it knows its id. A
    # crash here is what `find` on the next attempt is for.
    faults.point("integration365.send.after_create")
    try:
        with db.unit_of_work() as uow:
            holder = _holder_of(uow, partner.name, remote_id, row.case_id)
            if holder is not None:
                return _needs_person(uow, partner.name, row, remote_id, holder, now)
            stored = uow.session.execute(
                sa.update(H).where(H.c.case_id == row.case_id, H.c.ref == row.ref,
                                   H.c.state == State.PENDING.value)
                .values(state=State.SENT.value, remote_id=remote_id, sent_at=now(),
                        last_error=None, updated_at=now()).returning(H.c.case_id)).first()
    except sa.exc.IntegrityError:
        # Another bridge stored the same id for another case between our look and our
        # write: the same conflict, seen through the unique key.
        with db.unit_of_work() as uow:
            holder = _holder_of(uow, partner.name, remote_id, row.case_id)
            return _needs_person(uow, partner.name, row, remote_id, holder or "?", now)
    if stored:
        HANDOVERS_SENT.labels(partner.name, how).inc()
        log.info("case %s is work order %s at %s (%s, attempt %d)", row.case_id, remote_id,
                 partner.name, how, row.attempts, extra={"correlation_id": row.correlation_id})
    return 1 if stored else 0


def _holder_of(uow, partner: str, remote_id: str, case_id: str) -> str | None:
    """The case whose hand-over already holds this partner's work-order id, if another."""
    return uow.session.execute(
        sa.select(H.c.case_id).where(H.c.partner == partner, H.c.remote_id == remote_id,
                                     H.c.case_id != case_id)).scalar()


def _needs_person(uow, partner: str, row, remote_id: str, holder: str, now: Now) -> int:
    """The partner gave an id another hand-over holds. Retrying gets the same id back
    (`find` by our ref returns it), so the bridge stops here, once: the hand-over waits for
    a person (state, metric, alert MinqingHandoverNeedsPerson, one log line) and the case
    goes back to the command center with the reason, rather than hang escalated."""
    reason = domain.id_conflict_reason(remote_id, holder)
    marked = uow.session.execute(
        sa.update(H).where(H.c.case_id == row.case_id, H.c.ref == row.ref,
                           H.c.state == State.PENDING.value)
        .values(state=State.NEEDS_PERSON.value, last_error=reason[:2000], updated_at=now())
        .returning(H.c.case_id)).first()
    if not marked:
        return 0
    uow.emit("external.rejected", row.case_id, domain.event_data(
        Kind.REJECTED, row.case_id, partner, None, now().isoformat(), reason, ""),
        correlation_id=row.correlation_id)
    PARTNER_ID_CONFLICTS.labels(partner).inc()
    log.error("%s answered the work order for case %s (ref %s) with id %s, which case %s "
              "already holds: the hand-over needs a person (check that id with %s); the "
              "case is back with the command center", partner, row.case_id, row.ref,
              remote_id, holder, partner, extra={"correlation_id": row.correlation_id})
    return 0


# --- following the partner's updates ---------------------------------------------------

def _emit(uow, partner: str, handover, kinds: list[Kind], at: datetime,
          note: str | None, remote_status: str) -> None:
    for kind in kinds:
        uow.emit(f"external.{kind.value}", handover.case_id, domain.event_data(
            kind, handover.case_id, partner, handover.remote_id, at.isoformat(), note,
            remote_status), correlation_id=handover.correlation_id)
        PARTNER_UPDATES.labels(partner, kind.value).inc()


def poll_updates(db, partner: Partner, now: Now = utcnow) -> int:
    """Act on the partner's updates since the last poll; returns how many were new.

    Each update is recorded by its id in the same transaction as the events it causes,
    so it causes them once however many polls see it.
    """
    if not partner.breaker.allow():
        return 0
    with db.unit_of_work() as uow:
        since = uow.session.execute(sa.select(models.poll_cursors.c.since).where(
            models.poll_cursors.c.partner == partner.name)).scalar()
    since = since or now() - timedelta(days=1)
    try:
        updates = partner.adapter.updates_since(since - POLL_OVERLAP)
    except (PartnerUnavailable, PartnerRefused) as exc:
        partner.breaker.record_failure()
        reason = exc.reason if isinstance(exc, PartnerUnavailable) else "refused"
        PARTNER_CALL_FAILURES.labels(partner.name, "poll", reason).inc()
        log.warning("polling %s for updates failed: %s", partner.name, exc)
        return 0
    partner.breaker.record_success()
    with db.unit_of_work() as uow:
        fresh = apply_updates(uow, partner.name, updates, now)
        PARTNER_UPDATES_UNPLACED.labels(partner.name).set(len(fresh.unmatched))
        cursor = next_cursor(since, updates, fresh.unmatched, now())
        stmt = pg.insert(models.poll_cursors).values(partner=partner.name, since=cursor)
        uow.session.execute(stmt.on_conflict_do_update(
            index_elements=[models.poll_cursors.c.partner], set_={"since": cursor}))
    return fresh.applied


@dataclass
class Applied:
    applied: int = 0
    unmatched: list[RemoteUpdate] = field(default_factory=list)


def apply_updates(uow, partner: str, updates: list[RemoteUpdate], now: Now = utcnow
                  ) -> Applied:
    out = Applied()
    if not updates:
        return out
    remote_ids = sorted({u.remote_id for u in updates})
    handovers = {h.remote_id: h for h in uow.session.execute(
        sa.select(H).where(H.c.partner == partner, H.c.remote_id.in_(remote_ids))
        .order_by(H.c.case_id).with_for_update()).all()}
    known = [u for u in updates if u.remote_id in handovers]
    out.unmatched = [u for u in updates if u.remote_id not in handovers]
    if not known:
        return out
    fresh = set(uow.session.execute(
        pg.insert(models.remote_updates).values([
            {"partner": partner, "update_id": u.update_id,
             "case_id": handovers[u.remote_id].case_id, "status": u.status[:100],
             "updated_at": u.updated_at} for u in known])
        .on_conflict_do_nothing().returning(models.remote_updates.c.update_id)).scalars())
    states = {rid: State(h.state) for rid, h in handovers.items()}
    for update in known:
        if update.update_id not in fresh:
            continue
        out.applied += 1
        handover = handovers[update.remote_id]
        kind = domain.kind_of(update.status)
        state, kinds = domain.apply_update(states[update.remote_id], kind)
        if not kinds:
            log.info("update %s (%s) of work order %s changes nothing for case %s (%s)",
                     update.update_id, update.status, update.remote_id, handover.case_id,
                     states[update.remote_id].value)
            continue
        _emit(uow, partner, handover, kinds, update.updated_at, update.description,
              update.status)
        states[update.remote_id] = state
        uow.session.execute(sa.update(H).where(H.c.case_id == handover.case_id).values(
            state=state.value, last_update_at=update.updated_at, updated_at=now()))
    return out


def next_cursor(since: datetime, updates: list[RemoteUpdate],
                unmatched: list[RemoteUpdate], at: datetime) -> datetime:
    """The newest update seen, held back to the oldest one we could not place yet
    (for at most MAX_HOLD); never moves backwards."""
    if not updates:
        return since
    cursor = max(u.updated_at for u in updates)
    holding = [u.updated_at for u in unmatched if u.updated_at > at - MAX_HOLD]
    if holding:
        cursor = min(cursor, min(holding))
    return max(since, cursor)


# --- reconciliation --------------------------------------------------------------------

def reconcile(db, partner: Partner, now: Now = utcnow) -> dict[str, int]:
    """Compare live hand-overs with the partner's view and repair what drifted:
    a work order the partner no longer has is sent again; one it closed without an
    update reaching us is resolved (or rejected) here. Returns the repairs by kind."""
    repairs = {"resent": 0, "closed": 0}
    with db.unit_of_work() as uow:
        uow.session.execute(sa.delete(models.remote_updates).where(
            models.remote_updates.c.partner == partner.name,
            models.remote_updates.c.seen_at < now() - UPDATE_RETENTION))
    if not partner.breaker.allow():
        return repairs
    with db.unit_of_work() as uow:
        rows = uow.session.execute(
            sa.select(H.c.case_id, H.c.remote_id)
            .where(H.c.partner == partner.name,
                   H.c.state.in_([s.value for s in domain.LIVE_REMOTE]),
                   H.c.remote_id.is_not(None), H.c.sent_at < now() - RECONCILE_GRACE)
            .order_by(H.c.updated_at)).all()
    for start in range(0, len(rows), RECONCILE_BATCH):
        batch = rows[start:start + RECONCILE_BATCH]
        try:
            remote = partner.adapter.fetch([r.remote_id for r in batch])
        except (PartnerUnavailable, PartnerRefused) as exc:
            partner.breaker.record_failure()
            reason = exc.reason if isinstance(exc, PartnerUnavailable) else "refused"
            PARTNER_CALL_FAILURES.labels(partner.name, "reconcile", reason).inc()
            log.warning("reconciliation with %s stopped: %s", partner.name, exc)
            break
        partner.breaker.record_success()
        with db.unit_of_work() as uow:
            for row in batch:
                repair = _reconcile_one(uow, partner.name, row, remote.get(row.remote_id), now)
                if repair:
                    repairs[repair] += 1
                    RECONCILIATION_REPAIRS.labels(partner.name, repair).inc()
    return repairs


def _reconcile_one(uow, partner: str, row, remote, now: Now) -> str | None:
    handover = uow.session.execute(
        sa.select(H).where(H.c.case_id == row.case_id, H.c.remote_id == row.remote_id)
        .with_for_update()).first()
    if handover is None or State(handover.state) not in domain.LIVE_REMOTE:
        return None  # moved on since we looked: nothing drifted
    if remote is None:
        log.warning("%s has no work order %s for case %s any more; sending it again",
                    partner, row.remote_id, row.case_id)
        uow.session.execute(sa.update(H).where(H.c.case_id == row.case_id).values(
            state=State.PENDING.value, remote_id=None, attempts=0, next_attempt_at=now(),
            last_error=f"work order {row.remote_id} missing at the partner",
            updated_at=now()))
        return "resent"
    if remote.status == "closed":
        kind = domain.kind_of(remote.detail_status or "CLOSED")
        if kind not in (Kind.RESOLVED, Kind.REJECTED):
            kind = Kind.RESOLVED
        state, kinds = domain.apply_update(State(handover.state), kind)
        log.warning("%s closed work order %s (case %s) without an update reaching us; "
                    "%s here", partner, row.remote_id, row.case_id, state.value)
        _emit(uow, partner, handover, kinds, now(), remote.notes, remote.detail_status or "")
        uow.session.execute(sa.update(H).where(H.c.case_id == row.case_id).values(
            state=state.value, updated_at=now()))
        return "closed"
    return None


# --- gauges ------------------------------------------------------------------------------

def refresh_gauges(db, partner: Partner, now: Now = utcnow) -> dict[str, int]:
    with db.unit_of_work() as uow:
        counts = dict(uow.session.execute(
            sa.select(H.c.state, sa.func.count()).where(H.c.partner == partner.name)
            .group_by(H.c.state)).all())
        oldest = uow.session.execute(
            sa.select(sa.func.min(H.c.created_at)).where(
                H.c.partner == partner.name, H.c.state == State.PENDING.value)).scalar()
    for state in State:
        HANDOVERS.labels(partner.name, state.value).set(counts.get(state.value, 0))
    PARTNER_BACKLOG.labels(partner.name).set(
        sum(counts.get(s.value, 0) for s in domain.BACKLOG))
    PARTNER_OLDEST_PENDING_SECONDS.labels(partner.name).set(
        max(0.0, (now() - oldest).total_seconds()) if oldest else 0)
    PARTNER_CIRCUIT_OPEN.labels(partner.name).set(
        0 if partner.breaker.state is domain.Circuit.CLOSED else 1)
    return counts


def handover_view(uow, case_id: str) -> dict | None:
    """The hand-over of a case, for the command center's view of 外部联动."""
    row = uow.session.execute(sa.select(H).where(H.c.case_id == case_id)).first()
    return None if row is None else schemas.HandoverView().dump(row)
