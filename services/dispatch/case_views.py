"""How cases are shown, and to whom: the case view, who may see which case, the lists."""
from __future__ import annotations

import sqlalchemy as sa

from minqing_kernel.errors import Forbidden, NotFound
from minqing_kernel.ids import uuid_or_none
from minqing_kernel.reference import TimedReference
from services.dispatch import case_list, domain, models, schemas
from services.dispatch.repository import case_id_or_404


class CaseRecord:
    """A case's state (a dict) read by attribute, as the dump schemas read rows."""

    def __init__(self, state: dict):
        self.__dict__.update(state)


def case_view(actor: dict, case, units: dict) -> dict:
    """The case as `actor` may read it (a row, or a state dict): who reported it and her
    rating comment only for those who may know. `units`: dispatch's copy, for names."""
    view = schemas.CaseView(units).dump(CaseRecord(case) if isinstance(case, dict) else case)
    if not domain.may_read_rating_comment(actor, view["reporter_ids"]):
        view["feedback"] = None
    view["reporter_ids"] = domain.visible_reporters(actor, view["reporter_ids"])
    # A resident reads who handles her case by unit and role, never a person's id: the
    # volunteer who took up her wish is shown to staff and to that volunteer only.
    if not set(actor["roles"]) & domain.STAFF_VIEWERS and view["wish_claimed_by"] != actor["id"]:
        view["wish_claimed_by"] = None
    return view


def visible_case(uow, reference: TimedReference, actor: dict, case_id: str):
    row = uow.session.execute(sa.select(models.cases).where(
        models.cases.c.id == case_id_or_404(case_id))).first()
    if row is None:
        raise NotFound.of("dispatch.case-not-found", case_id=case_id)
    if not domain.can_view(actor, row.unit_id, row.reporter_ids, row.community_id,
                           reference.fresh(uow.session).led_by(actor)):
        raise Forbidden.of("dispatch.case-not-visible")
    return row


def get_case(uow, reference: TimedReference, actor: dict, case_id: str) -> dict:
    return case_view(actor, visible_case(uow, reference, actor, case_id),
                     reference.fresh(uow.session).units)


def case_for_report(uow, reference: TimedReference, actor: dict,
                    report_id: str) -> dict | None:
    """The case a report belongs to now (after a merge: the case it was merged into), or
    None if it has none yet or the caller may not see it (a leader reads every report,
    but only the cases of the units they lead)."""
    report_id = uuid_or_none(report_id)
    if report_id is None:
        return None
    case_id = uow.session.execute(sa.select(models.case_reports.c.case_id).where(
        models.case_reports.c.report_id == report_id)).scalar()
    if not case_id:
        return None
    try:
        return get_case(uow, reference, actor, case_id)
    except Forbidden:
        return None


MAX_VISIBILITY_QUERY = 500


def cases_for_reports(uow, reference: TimedReference, actor: dict,
                      report_ids: list[str]) -> dict[str, dict]:
    """The case of each of these reports, as case_for_report shows it, in one query: what
    a resident's list of her reports shows beside each (issue #12, point 7). Reports
    without a case yet, or whose case `actor` may not see, are left out."""
    ids = [r for r in map(uuid_or_none, report_ids[:MAX_VISIBILITY_QUERY]) if r]
    if not ids:
        return {}
    cr, c = models.case_reports, models.cases
    stmt = sa.select(cr.c.report_id, c.c.id, c.c.status).join(c, c.c.id == cr.c.case_id) \
        .where(cr.c.report_id.in_(ids))
    visible = visibility_filter(uow, reference, actor)
    if visible is not None:
        stmt = stmt.where(visible)
    return {row.report_id: case_summary(row.id, row.status)
            for row in uow.session.execute(stmt).all()}


def case_summary(case_id: str, status: str) -> dict:
    return {"id": case_id, "status": status, "status_zh": domain.STATUS_ZH[status]}


def reports_visible_to(uow, reference: TimedReference, actor: dict,
                       report_ids: list[str]) -> list[str]:
    """The reports among `report_ids` whose case (after a merge, the case it joined)
    `actor` may see, as can_view decides: intake's answer to who reads which report."""
    ids = [r for r in map(uuid_or_none, report_ids[:MAX_VISIBILITY_QUERY]) if r]
    if not ids:
        return []
    cr, c = models.case_reports, models.cases
    stmt = sa.select(cr.c.report_id).join(c, c.c.id == cr.c.case_id) \
        .where(cr.c.report_id.in_(ids))
    visible = visibility_filter(uow, reference, actor)
    if visible is not None:
        stmt = stmt.where(visible)
    return list(uow.session.execute(stmt).scalars())


def visibility_filter(uow, reference: TimedReference, actor: dict):
    """The WHERE clause for the cases `actor` may list (None: all), as can_view decides."""
    c = models.cases
    roles = set(actor["roles"])
    if roles & domain.SEE_ALL:
        return None
    mine = c.c.reporter_ids.any(actor["id"])
    if "handler" in roles and actor.get("unit_id"):
        mine = sa.or_(mine, c.c.unit_id == actor["unit_id"])
    led = reference.fresh(uow.session).led_by(actor)
    if led:
        mine = sa.or_(mine, c.c.unit_id.in_(sorted(led)), c.c.community_id.in_(sorted(led)))
    return mine


def list_cases(uow, reference: TimedReference, actor: dict, query: dict) -> dict:
    """The cases `actor` may see, filtered and sorted as asked (case_list.py)."""
    units = reference.fresh(uow.session).units
    return case_list.list_cases(uow, reference, actor, query,
                                visibility_filter(uow, reference, actor),
                                lambda row: case_view(actor, row, units))
