"""Phone callers stay in the loop (issue #12, point 5).

A caller has no app: nobody can ask them for a rating but the command center. So a case
that came in on the phone and is resolved goes to the callback queue at once (not as a
sample), the operator who takes it may be shown the caller's number (intake keeps it and
audits each showing; dispatch only says which reports the callback is about), and the
rating they hear is recorded with POST /v1/cases/{id}/feedback, which closes the callback.
"""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.errors import Conflict, Forbidden, NotFound
from minqing_kernel.ids import uuid_or_404
from services.dispatch import domain, models
from services.dispatch.metrics import CALLBACKS


def needs_a_rating_call(case: dict, previous: str | None) -> bool:
    return (case["status"] == domain.RESOLVED and previous != domain.RESOLVED
            and case.get("channel") == domain.PHONE_CHANNEL)


def queue_rating_call(session, case: dict, now: datetime) -> None:
    session.execute(pg.insert(models.callbacks).values(
        id=str(uuid.uuid4()), case_id=case["id"], queued_at=now, status="pending")
        .on_conflict_do_nothing())
    CALLBACKS.labels("queued").inc()


def close_rating_call(session, actor: dict, case_id: str, rating: int,
                      comment: str | None, now: datetime) -> None:
    """The operator recorded the caller's rating: their pending callback is answered."""
    cb = models.callbacks
    status = "satisfied" if rating >= domain.SATISFIED_FROM else "unsatisfied"
    done = session.execute(sa.update(cb).where(
        cb.c.case_id == case_id, cb.c.status == "pending").values(
        status=status, recorded_by=actor["id"], recorded_at=now, note=comment)).rowcount
    if done:
        CALLBACKS.labels(status).inc()


def callback_to_make(uow, actor: dict, callback_id: str) -> dict:
    """For the gateway, before intake shows an operator a caller's number: the pending
    callback and the reports of its case (intake decides which have a number)."""
    if domain.RECORDS_FOR_CALLERS not in actor["roles"]:
        raise Forbidden.of("dispatch.caller-number-operators-only", code="role-required")
    cb, cs = models.callbacks, models.cases
    row = uow.session.execute(
        sa.select(cb.c.id, cb.c.case_id, cb.c.status, cs.c.report_ids)
        .join(cs, cs.c.id == cb.c.case_id)
        .where(cb.c.id == uuid_or_404(callback_id, "callback"))).first()
    if row is None:
        raise NotFound.of("dispatch.callback-not-found", callback_id=callback_id)
    if row.status != "pending":
        # Once the call is recorded, the number has no more use here.
        raise Conflict.of("dispatch.callback-recorded", code="callback-recorded")
    return {"callback_id": row.id, "case_id": row.case_id, "report_ids": list(row.report_ids)}
