"""dispatch's copy of the units and grids identity owns: kept from identity's internal
`unit.changed` and `grid.changed` events, never by reading identity's tables. Each event
carries the whole new state and its version; a row is written only if the event is newer
than what is here, so repeats and events out of order change nothing. The reference data
this process routes with is reread at once after a change; other dispatch processes
reread theirs within routing.REFERENCE_TTL_S."""
from __future__ import annotations

import logging

from sqlalchemy.dialects import postgresql as pg

from services.dispatch import models
from services.dispatch.metrics import UNIT_COPIES

log = logging.getLogger(__name__)


def _newer(table, row: dict, keys: tuple[str, ...]):
    stmt = pg.insert(table).values(**row)
    return stmt.on_conflict_do_update(
        index_elements=["id"], set_={k: stmt.excluded[k] for k in keys},
        where=table.c.version < stmt.excluded.version).returning(table.c.id)


def apply_unit_changes(uow, events) -> int:
    applied = 0
    for event in events:
        d = event.data
        done = uow.session.execute(_newer(models.units, {
            "id": d["id"], "kind": d["kind"], "name_zh": d["name_zh"], "name_en": d["name_en"],
            "leader_id": d["leader_id"], "version": d["version"]},
            ("kind", "name_zh", "name_en", "leader_id", "version"))).first() is not None
        UNIT_COPIES.labels("unit", "applied" if done else "older").inc()
        applied += done
        log.info("unit %s at version %d %s", d["id"], d["version"],
                 "applied" if done else "ignored: ours is as new or newer")
    return applied


def apply_grid_changes(uow, events) -> int:
    applied = 0
    for event in events:
        d = event.data
        done = uow.session.execute(_newer(models.grids, {
            "id": d["id"], "community_id": d["community_id"], "name_zh": d["name_zh"],
            "leader_id": d["leader_id"], "version": d["version"]},
            ("community_id", "name_zh", "leader_id", "version"))).first() is not None
        UNIT_COPIES.labels("grid", "applied" if done else "older").inc()
        applied += done
        log.info("grid %s at version %d %s", d["id"], d["version"],
                 "applied" if done else "ignored: ours is as new or newer")
    return applied
