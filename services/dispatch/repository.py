"""Where cases are loaded, locked and saved: the Case aggregate's only way to the database.

A case is locked (SELECT ... FOR UPDATE) for the rest of the unit of work; two cases are
locked in id order, so two merges crossing each other cannot deadlock. A Change is saved
whole: the case's columns, its trail entry and its events (the outbox, in the same
commit as the rest of the unit of work).
"""
from __future__ import annotations

import sqlalchemy as sa

from minqing_kernel.errors import NotFound
from minqing_kernel.ids import uuid_or_404
from services.dispatch import models
from services.dispatch.case import Change


def case_id_or_404(case_id) -> str:
    return uuid_or_404(case_id, "case")


class CaseRepository:
    def __init__(self, uow):
        self.uow = uow

    def lock(self, case_id) -> dict:
        """The case's state, locked until the commit; NotFound if there is none."""
        row = self.uow.session.execute(sa.select(models.cases).where(
            models.cases.c.id == case_id_or_404(case_id)).with_for_update()).mappings().first()
        if row is None:
            raise NotFound.of("dispatch.case-not-found", case_id=case_id)
        return dict(row)

    def lock_pair(self, first_id, second_id) -> tuple[dict, dict]:
        first_id, second_id = case_id_or_404(first_id), case_id_or_404(second_id)
        locked = {cid: self.lock(cid) for cid in sorted({first_id, second_id})}
        return locked[first_id], locked[second_id]

    def lock_many(self, case_ids: list[str]) -> list[dict]:
        """Several cases, locked in id order (returned in that order)."""
        return [self.lock(cid) for cid in sorted(case_ids)]

    def save(self, change: Change) -> None:
        self.uow.session.execute(sa.update(models.cases).where(
            models.cases.c.id == change.case_id).values(**change.changes))
        self._add(change)

    def add_opened(self, opened: list[tuple[Change, str | None]]) -> None:
        """New cases with the correlation id of the report each answers; one statement per
        table (opening is the hot path: every report in the city passes here once)."""
        for change, correlation_id in opened:
            for event in change.events:
                self.uow.emit(event.verb, event.subject, event.data,
                              correlation_id=correlation_id)
        if opened:
            self.uow.session.execute(sa.insert(models.cases), [c.changes for c, _ in opened])
            self.uow.session.execute(sa.insert(models.case_trail),
                                     [c.trail_entry for c, _ in opened])

    def _add(self, change: Change) -> None:
        self.uow.session.execute(sa.insert(models.case_trail).values(**change.trail_entry))
        for event in change.events:
            self.uow.emit(event.verb, event.subject, event.data)
