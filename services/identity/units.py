"""Units (单位) and the grids (网格) of each community, managed by admins: list, create a
unit, rename it, add a grid to a community, set or change a unit's or a grid's leader.

identity owns them (ARCHITECTURE: "identity: accounts, roles, units and grids"); the
reference file is their first load (refdata.py, which never undoes what is here). Every
change is audited (unit_changes: who, when, what) and emitted as the unit's or grid's
whole new state (`unit.changed`, `grid.changed`, internal events) in the commit that
makes it. dispatch keeps the copy it routes and finds leaders with from those events,
never from these tables (services/dispatch/units.py).
"""
from __future__ import annotations

import logging
import re

import sqlalchemy as sa

from minqing_kernel.errors import Conflict, Invalid, NotFound, validated
from services.identity import models, schemas
from services.identity.metrics import UNIT_CHANGES

log = logging.getLogger(__name__)

UNIT_ID = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
# A community comes with its boundary, which routing needs: from the reference file only.
NEW_UNIT_KINDS = ("department", "social_org", "volunteer_team", "external")


def _unit_view(row, grids: list) -> dict:
    return {"id": row.id, "kind": row.kind, "name_zh": row.name_zh, "name_en": row.name_en,
            "leader_id": row.leader_id, "version": row.version,
            "grids": [_grid_view(g) for g in grids]}


def _grid_view(row) -> dict:
    return {"id": row.id, "community_id": row.community_id, "name_zh": row.name_zh,
            "leader_id": row.leader_id, "version": row.version}


def _unit_event(row) -> dict:
    return {"id": row.id, "kind": row.kind, "name_zh": row.name_zh, "name_en": row.name_en,
            "leader_id": row.leader_id, "version": row.version}


def _grid_event(row) -> dict:
    return {"id": row.id, "community_id": row.community_id, "name_zh": row.name_zh,
            "leader_id": row.leader_id, "version": row.version}


def _audit(uow, unit_id: str, grid_id: str | None, actor_id: str, what: str,
           changes: dict) -> None:
    uow.session.execute(sa.insert(models.unit_changes).values(
        unit_id=unit_id, grid_id=grid_id, actor_id=actor_id, what=what, changes=changes))
    UNIT_CHANGES.labels(what).inc()


def _checked_leader(uow, leader_id) -> str | None:
    """A leader is an active account with the leader role (what dispatch's leaders'
    views need), or null to leave the place without one."""
    if leader_id is None:
        return None
    u = models.users
    row = uow.session.execute(sa.select(u.c.roles, u.c.active).where(u.c.id == leader_id)
                              ).first()
    if row is None or not row.active or "leader" not in row.roles:
        raise Invalid.of("identity.bad-leader", leader_id=leader_id, code="bad-leader")
    return leader_id


def _unit_row(uow, unit_id: str, lock: bool = False):
    stmt = sa.select(models.units).where(models.units.c.id == unit_id)
    row = uow.session.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise NotFound.of("identity.unit-not-found", unit_id=unit_id)
    return row


def unit_exists(uow, unit_id: str) -> bool:
    return uow.session.execute(sa.select(models.units.c.id).where(
        models.units.c.id == unit_id)).first() is not None


def list_units(db) -> dict:
    with db.unit_of_work() as uow:
        units = uow.session.execute(sa.select(models.units).order_by(models.units.c.id)).all()
        grids = uow.session.execute(sa.select(models.grids).order_by(models.grids.c.id)).all()
    by_community: dict[str, list] = {}
    for g in grids:
        by_community.setdefault(g.community_id, []).append(g)
    return {"items": [_unit_view(u, by_community.get(u.id, [])) for u in units]}


def create_unit(db, actor_id: str, data: dict) -> dict:
    data = validated(schemas.NewUnit(), data, "unit")
    with db.unit_of_work() as uow:
        if unit_exists(uow, data["id"]):
            raise Conflict.of("identity.unit-exists", unit_id=data["id"], code="unit-exists")
        values = {"id": data["id"], "kind": data["kind"], "name_zh": data["name_zh"],
                  "name_en": data["name_en"],
                  "leader_id": _checked_leader(uow, data.get("leader_id")), "version": 1}
        row = uow.session.execute(sa.insert(models.units).values(**values)
                                  .returning(*models.units.c)).first()
        _audit(uow, row.id, None, actor_id, "unit-created",
               {k: v for k, v in values.items() if k != "version"})
        uow.emit("unit.changed", row.id, _unit_event(row))
    log.info("admin %s created unit %s (%s)", actor_id, row.id, row.name_zh,
             extra={"user_id": actor_id})
    return _unit_view(row, [])


def update_unit(db, actor_id: str, unit_id: str, data: dict) -> dict:
    """Rename a unit (its public Chinese name, and its English one) or set its leader."""
    data = validated(schemas.UnitChange(), data, "unit-change")
    if not data:
        raise Invalid.of("identity.bad-unit-change", code="bad-unit-change")
    u = models.units
    with db.unit_of_work() as uow:
        _unit_row(uow, unit_id, lock=True)
        if "leader_id" in data:
            data["leader_id"] = _checked_leader(uow, data["leader_id"])
        row = uow.session.execute(sa.update(u).where(u.c.id == unit_id)
                                  .values(**data, version=u.c.version + 1)
                                  .returning(*u.c)).first()
        _audit(uow, unit_id, None, actor_id, "unit-changed", data)
        uow.emit("unit.changed", row.id, _unit_event(row))
        grids = uow.session.execute(sa.select(models.grids).where(
            models.grids.c.community_id == unit_id).order_by(models.grids.c.id)).all()
    log.info("admin %s changed unit %s: %s", actor_id, unit_id, data,
             extra={"user_id": actor_id})
    return _unit_view(row, grids)


def _community(uow, unit_id: str):
    row = _unit_row(uow, unit_id, lock=True)
    if row.kind != "community":
        raise Invalid.of("identity.not-a-community", unit_id=unit_id, code="not-a-community")
    return row


def add_grid(db, actor_id: str, unit_id: str, data: dict) -> dict:
    data = validated(schemas.NewGrid(), data, "grid")
    g = models.grids
    with db.unit_of_work() as uow:
        _community(uow, unit_id)
        if uow.session.execute(sa.select(g.c.id).where(g.c.id == data["id"])).first():
            raise Conflict.of("identity.grid-exists", grid_id=data["id"], code="grid-exists")
        values = {"id": data["id"], "community_id": unit_id, "name_zh": data["name_zh"],
                  "leader_id": _checked_leader(uow, data.get("leader_id")), "version": 1}
        row = uow.session.execute(sa.insert(g).values(**values).returning(*g.c)).first()
        _audit(uow, unit_id, row.id, actor_id, "grid-added",
               {k: v for k, v in values.items() if k != "version"})
        uow.emit("grid.changed", row.id, _grid_event(row))
    log.info("admin %s added grid %s to %s", actor_id, row.id, unit_id,
             extra={"user_id": actor_id})
    return _grid_view(row)


def update_grid(db, actor_id: str, unit_id: str, grid_id: str, data: dict) -> dict:
    """Rename a grid or set its leader (网格长)."""
    data = validated(schemas.GridChange(), data, "grid-change")
    if not data:
        raise Invalid.of("identity.bad-grid-change", code="bad-grid-change")
    g = models.grids
    with db.unit_of_work() as uow:
        _community(uow, unit_id)
        if "leader_id" in data:
            data["leader_id"] = _checked_leader(uow, data["leader_id"])
        row = uow.session.execute(sa.update(g).where(g.c.id == grid_id,
                                                     g.c.community_id == unit_id)
                                  .values(**data, version=g.c.version + 1)
                                  .returning(*g.c)).first()
        if row is None:
            raise NotFound.of("identity.grid-not-found", grid_id=grid_id, unit_id=unit_id)
        _audit(uow, unit_id, grid_id, actor_id, "grid-changed", data)
        uow.emit("grid.changed", row.id, _grid_event(row))
    log.info("admin %s changed grid %s: %s", actor_id, grid_id, data,
             extra={"user_id": actor_id})
    return _grid_view(row)


def unit_changes(db, unit_id: str) -> dict:
    """Who changed the unit and its grids, when, and what (oldest first)."""
    c = models.unit_changes
    with db.unit_of_work() as uow:
        _unit_row(uow, unit_id)
        rows = uow.session.execute(sa.select(c).where(c.c.unit_id == unit_id)
                                   .order_by(c.c.id)).all()
    return {"items": [{"at": r.at.isoformat(), "actor_id": r.actor_id, "what": r.what,
                       "grid_id": r.grid_id, "changes": r.changes} for r in rows]}
