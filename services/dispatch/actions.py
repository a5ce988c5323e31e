"""POST /v1/cases/{id}/actions: one door for the command center's and the handlers'
actions; a merge takes two cases (screening.py), every other action one (lifecycle.py)."""
from __future__ import annotations

from minqing_kernel.errors import validated
from minqing_kernel.reference import TimedReference
from services.dispatch import domain, schemas, screening
from services.dispatch.case import ActionInput
from services.dispatch.case_views import case_view
from services.dispatch.clocks import SupervisionSettings
from services.dispatch.lifecycle import take_action
from services.dispatch.repository import CaseRepository


def act(uow, reference: TimedReference, settings: SupervisionSettings, actor: dict,
        case_id: str, payload: dict) -> dict:
    """POST /v1/cases/{id}/actions: the console's and the handler's actions."""
    request = validated(schemas.ActionRequest(), payload, "case-action")
    action = request["action"]
    domain.check_action_input(action, request.get("note"), request.get("result"),
                              **{k: request.get(k) for k in ("unit_id", "priority",
                                                             "target_case_id", "partner")})
    if action == "merge":
        domain.actor_role(actor, action)
        state = screening.merge(uow, reference, settings, actor, case_id,
                                request["target_case_id"], request.get("note"))
    else:
        state = take_action(uow, reference, settings, actor,
                            CaseRepository(uow).lock(case_id), action, ActionInput(
                                unit_id=request.get("unit_id"), note=request.get("note"),
                                result=request.get("result"),
                                attachments=request["attachments"] or [],
                                priority=request.get("priority"),
                                partner=request.get("partner")))
    return case_view(actor, state, reference.fresh(uow.session).units)
