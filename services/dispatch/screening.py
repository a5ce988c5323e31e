"""Screening (筛选): finding a case's duplicates nearby and merging one into another."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from minqing_kernel.errors import Invalid, NotFound, validated
from minqing_kernel.ids import uuid_or_none
from minqing_kernel.reference import TimedReference
from services.dispatch import domain, models, schemas
from services.dispatch.case import ActionInput
from services.dispatch.case_views import case_view
from services.dispatch.clocks import SupervisionSettings
from services.dispatch.lifecycle import require_operator, take_action
from services.dispatch.repository import CaseRepository, case_id_or_404


def merge(uow, reference: TimedReference, settings: SupervisionSettings, actor: dict,
          case_id: str, target_id: str, note: str | None) -> dict:
    """A duplicate follows its case: the source becomes `merged` (pointing at the target);
    its reports and reporters join the target, so GET /v1/reports/{id} shows the target
    and the reporter sees its progress (and rates it) like its first reporter."""
    target_id = uuid_or_none(target_id)
    if target_id is None or target_id == case_id_or_404(case_id):
        raise Invalid.of("dispatch.bad-merge-target",
                         errors=[{"field": "target_case_id", "message": "not another case"}],
                         code="bad-merge-target")
    case, target = CaseRepository(uow).lock_pair(case_id, target_id)
    if target["category"] != case["category"]:
        raise Invalid.of("dispatch.category-mismatch", category=case['category'],
                         category2=target['category'],
                         errors=[{"field": "target_case_id", "message": "other category"}],
                         code="category-mismatch")
    # The target first: if it is finished, the table refuses and nothing changes.
    target = take_action(uow, reference, settings, actor, target, "absorb_duplicate",
                         ActionInput(
                             note=f"merged case {case['id']}" + (f": {note}" if note else ""),
                             extra_changes={
                                 "reporter_ids": list(dict.fromkeys(
                                     target["reporter_ids"] + case["reporter_ids"])),
                                 "report_ids": list(dict.fromkeys(
                                     target["report_ids"] + case["report_ids"]))}))
    case = take_action(uow, reference, settings, actor, case, "merge", ActionInput(
        merged_into=target["id"], note=note or f"duplicate of case {target['id']}"))
    uow.session.execute(sa.update(models.case_reports)
                        .where(models.case_reports.c.case_id == case["id"])
                        .values(case_id=target["id"]))
    return case


def duplicate_candidates(uow, reference: TimedReference, actor: dict, case_id: str,
                         query: dict) -> dict:
    """Open cases of the same category near this one in space and time, nearest first
    (PostGIS: ST_DWithin on the GiST-indexed geography point)."""
    require_operator(actor)
    q = validated(schemas.DuplicateQuery(), query, "duplicate-search")
    c = models.cases
    source = uow.session.execute(sa.select(c.c.id, c.c.category, c.c.opened_at, c.c.geog)
                                 .where(c.c.id == case_id_or_404(case_id))).first()
    if source is None:
        raise NotFound.of("dispatch.case-not-found", case_id=case_id)
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
    units = reference.fresh(uow.session).units
    for row in rows:
        view = case_view(actor, row, units)
        view["distance_m"] = round(float(row.distance_m), 1)
        items.append(view)
    return {"case_id": source.id, "radius_m": q["radius_m"], "days": q["days"],
            "items": items}
