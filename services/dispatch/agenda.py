"""The leadership agenda (班子会): the meeting's decision on escalated cases, and the
livelihood projects (民生实事项目) it creates."""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from minqing_kernel import messages
from minqing_kernel.errors import Invalid, NotFound, validated
from minqing_kernel.ids import uuid_or_404
from minqing_kernel.pagination import paged
from minqing_kernel.reference import TimedReference
from services.dispatch import domain, models, schemas
from services.dispatch.case import ActionInput
from services.dispatch.clocks import SupervisionSettings
from services.dispatch.lifecycle import require_operator, take_action
from services.dispatch.repository import CaseRepository, case_id_or_404

log = logging.getLogger(__name__)


def _new_project(uow, actor: dict, request: dict, now: datetime) -> dict:
    missing = [f for f in ("title", "budget") if request.get(f) is None]
    if missing:
        raise Invalid.of("dispatch.project-incomplete", missing=" and ".join(missing),
                         errors=[{"field": f, "message": "required"} for f in missing],
                         code="project-incomplete")
    project = {"id": str(uuid.uuid4()), "title": request["title"],
               "budget": request["budget"], "status": "planned",
               "decision": request["answer"], "decided_by": actor["id"],
               "created_at": now, "updated_at": now}
    uow.session.execute(sa.insert(models.livelihood_projects).values(**project))
    return project


def decide(uow, reference: TimedReference, settings: SupervisionSettings, actor: dict,
           case_id: str, payload: dict) -> dict:
    """Record the meeting's decision on an agenda item (and any further source cases):
    a new project, or an answer without one. Either answers the reporters (resolved)."""
    require_operator(actor)
    request = validated(schemas.DecisionRequest(), payload, "meeting-decision")
    ids = list(dict.fromkeys([case_id_or_404(case_id)] + [
        case_id_or_404(c) for c in request["also_case_ids"]]))
    cases = CaseRepository(uow).lock_many(ids)
    project = None
    if request["decision"] == "create_project":
        project = _new_project(uow, actor, request, datetime.now(UTC))
        result = messages.zh("dispatch.project-decided", answer=request["answer"],
                             title=request["title"])
        action = "decide_project"
    else:
        result, action = request["answer"], "decide_no_project"
    for case in cases:
        take_action(uow, reference, settings, actor, case, action, ActionInput(
            result=result, project_id=project["id"] if project else None))
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


def _project_id_or_404(project_id: str) -> str:
    return uuid_or_404(project_id, "project")


def get_project(uow, project_id: str) -> dict:
    p = models.livelihood_projects
    row = uow.session.execute(sa.select(p).where(
        p.c.id == _project_id_or_404(project_id))).first()
    if row is None:
        raise NotFound.of("dispatch.project-not-found", project_id=project_id)
    return _project_view(row, _project_cases(uow, [row.id])[row.id])


def list_projects(uow, query: dict) -> dict:
    q = validated(schemas.ProjectQuery(), query, "project-query")
    p = models.livelihood_projects
    stmt = sa.select(p).order_by(p.c.seq)
    if q.get("status"):
        stmt = stmt.where(p.c.status == q["status"])
    page = paged(uow.session, stmt, p.c.seq, q, lambda r: r)
    linked = _project_cases(uow, [r.id for r in page["items"]])
    return {**page, "items": [_project_view(r, linked[r.id]) for r in page["items"]]}


def update_project(uow, actor: dict, project_id: str, payload: dict) -> dict:
    require_operator(actor)
    request = validated(schemas.ProjectUpdate(), payload, "project-update")
    p = models.livelihood_projects
    row = uow.session.execute(sa.select(p).where(p.c.id == _project_id_or_404(project_id))
                              .with_for_update()).first()
    if row is None:
        raise NotFound.of("dispatch.project-not-found", project_id=project_id)
    domain.check_project_move(row.status, request["status"])
    uow.session.execute(sa.update(p).where(p.c.id == row.id).values(
        status=request["status"], updated_at=datetime.now(UTC)))
    log.info("project %s: %s -> %s by %s", row.id, row.status, request["status"],
             actor["id"], extra={"project_id": row.id})
    return get_project(uow, row.id)
