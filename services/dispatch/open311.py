"""What the gateway's Open311 GeoReport v2 server asks dispatch: where each report's case
stands, and what happened to it since a given time.

A service request is a report; its state is its case's. These are read-only queries over
cases, case_reports and case_trail. Nothing here names a person: no reporter ids, no
actor ids, no rating comments (a reporter's own words may identify her).
"""
from __future__ import annotations

import sqlalchemy as sa

from minqing_kernel.errors import validated
from services.dispatch import models
from services.dispatch.domain import ACTION_ZH, FINAL
from services.dispatch.schemas import Open311StatusQuery, Open311UpdatesQuery

# Open311 knows two states. A case that is finished for good, refused or folded into
# another is closed; anything still moving (or waiting on a partner, the leadership
# meeting or a volunteer) is open. Statuses this module has not heard of count as open:
# a new state added elsewhere must not make a live request look finished.
CLOSED_STATUSES = frozenset(FINAL)  # closed, rejected, merged
# Trail entries whose note is not for the public: the system's own bookkeeping ("report
# <id>") and whatever a reporter wrote with her rating.
PRIVATE_NOTE_ROLES = frozenset({"system", "reporter"})


def open311_status(status: str) -> str:
    return "closed" if status in CLOSED_STATUSES else "open"


def public_note(entry) -> str | None:
    """What an update may say: the entry's note unless it is private, else the action's
    name (派单, 接单, …) so the update still says what happened."""
    if entry.actor_role not in PRIVATE_NOTE_ROLES and entry.note:
        return entry.note
    return ACTION_ZH.get(entry.action, entry.action)


def _status_notes(case, notes: list) -> str | None:
    """Why the request is where it is: the result once resolved, else the latest note
    a member of staff wrote (a rejection's reason, a transfer's note); else nothing."""
    if case.status in ("resolved", "closed") and case.result:
        return case.result
    return next((n.note for n in notes if n.note and n.actor_role not in PRIVATE_NOTE_ROLES),
                None)


def statuses(uow, query: dict) -> dict[str, dict]:
    """report id -> its case's Open311 state, for the reports that have a case yet (one
    just submitted may not: the gateway shows it open, as it was submitted)."""
    q = validated(Open311StatusQuery(), query, "open311-status-query")
    report_ids = [str(r) for r in q["report_ids"]]
    if not report_ids:
        return {}
    c, cr, t, u = models.cases, models.case_reports, models.case_trail, models.units
    rows = uow.session.execute(
        sa.select(cr.c.report_id, c.c.id, c.c.status, c.c.updated_at, c.c.accept_due_at,
                  c.c.resolve_due_at, c.c.result, u.c.name_zh, u.c.name_en)
        .join(c, c.c.id == cr.c.case_id)
        .outerjoin(u, u.c.id == c.c.unit_id)
        .where(cr.c.report_id.in_(report_ids))).all()
    case_ids = list({r.id for r in rows})
    notes: dict[str, list] = {}
    if case_ids:
        for n in uow.session.execute(
                sa.select(t.c.case_id, t.c.note, t.c.actor_role)
                .where(t.c.case_id.in_(case_ids), t.c.note.is_not(None))
                .order_by(t.c.case_id, t.c.seq.desc())).all():
            notes.setdefault(n.case_id, []).append(n)
    out = {}
    for r in rows:
        expected = r.resolve_due_at or r.accept_due_at
        out[r.report_id] = {
            "status": open311_status(r.status),
            "status_notes": _status_notes(r, notes.get(r.id, [])),
            "agency_responsible": ({"zh": r.name_zh, "en": r.name_en}
                                   if r.name_zh else None),
            "updated_datetime": r.updated_at.isoformat(),
            "expected_datetime": expected.isoformat() if expected else None,
        }
    return out


def updates(uow, query: dict) -> list[dict]:
    """One update per trail entry of each report's case, in [start, end], oldest first
    (a partner polls with start = the last updated_datetime it saw). Entries that
    happened before the report joined its case are its case's history, shown too."""
    q = validated(Open311UpdatesQuery(), query, "open311-updates-query")
    cr, t = models.case_reports, models.case_trail
    stmt = (sa.select(cr.c.report_id, t.c.case_id, t.c.seq, t.c.at, t.c.action,
                      t.c.to_status, t.c.note, t.c.actor_role)
            .join(cr, cr.c.case_id == t.c.case_id)
            .where(t.c.at >= q["start"], t.c.at <= q["end"])
            .order_by(t.c.at, cr.c.report_id, t.c.seq)
            .offset(q["offset"]).limit(q["limit"]))
    return [{"update_id": f"{e.report_id}-{e.seq}", "service_request_id": e.report_id,
             "status": open311_status(e.to_status), "updated_datetime": e.at.isoformat(),
             "description": public_note(e)}
            for e in uow.session.execute(stmt).all()]
