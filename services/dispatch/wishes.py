"""Micro-wishes (微心愿) on the volunteer board: published by the command center, claimed
and fulfilled by a volunteer."""
from __future__ import annotations

import sqlalchemy as sa

from minqing_kernel.errors import NotFound, validated
from minqing_kernel.pagination import paged
from minqing_kernel.reference import TimedReference
from services.dispatch import domain, models, schemas
from services.dispatch.case import ActionInput
from services.dispatch.case_views import CaseRecord
from services.dispatch.clocks import SupervisionSettings
from services.dispatch.lifecycle import take_action
from services.dispatch.repository import CaseRepository


def list_wishes(uow, reference: TimedReference, actor: dict, query: dict) -> dict:
    """The board: every published wish, what it asks and where; never who asked."""
    q = validated(schemas.WishQuery(), query, "wish-query")
    c = models.cases
    stmt = sa.select(c).where(c.c.status == domain.WISH).order_by(c.c.seq)
    if q.get("claimed") is not None:
        stmt = stmt.where(c.c.wish_claimed_by.isnot(None) if q["claimed"]
                          else c.c.wish_claimed_by.is_(None))
    view = schemas.WishView(reference.fresh(uow.session).units)
    return paged(uow.session, stmt, c.c.seq, q, view.dump)


def _locked_wish(uow, case_id: str) -> dict:
    try:
        return CaseRepository(uow).lock(case_id)
    except NotFound:
        raise NotFound.of("dispatch.wish-not-found", case_id=case_id) from None


def claim_wish(uow, reference: TimedReference, settings: SupervisionSettings, actor: dict,
               case_id: str) -> dict:
    state = take_action(uow, reference, settings, actor, _locked_wish(uow, case_id),
                        "claim_wish", ActionInput(note="claimed"))
    return schemas.WishView(reference.fresh(uow.session).units).dump(CaseRecord(state))


def fulfil_wish(uow, reference: TimedReference, settings: SupervisionSettings, actor: dict,
                case_id: str, payload: dict) -> dict:
    request = validated(schemas.FulfilRequest(), payload, "wish-fulfilment")
    state = take_action(uow, reference, settings, actor, _locked_wish(uow, case_id),
                        "fulfil_wish", ActionInput(result=request["note"],
                                                   attachments=request["attachments"] or []))
    return schemas.WishView(reference.fresh(uow.session).units).dump(CaseRecord(state))
