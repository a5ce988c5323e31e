"""Units, communities, grids, routing rules and SLA hours from the reference file."""
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from services.dispatch import models, sla


def _upsert(conn, table, rows, keys):
    if not rows:
        return
    stmt = pg.insert(table)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}),
        rows)


def load(engine: sa.Engine, ref: dict) -> int:
    units = [{"id": c["id"], "kind": "community", "name_zh": c["name_zh"],
              "name_en": c["name_en"], "leader_id": c.get("leader")}
             for c in ref["communities"]]
    units += [{"id": u["id"], "kind": u["kind"], "name_zh": u["name_zh"],
               "name_en": u["name_en"], "leader_id": u.get("leader")} for u in ref["units"]]
    with engine.begin() as conn:
        _upsert(conn, models.units, units, ["id"])
        _upsert(conn, models.communities, [
            {"id": c["id"], "boundary": {"type": "Polygon", "coordinates": [c["boundary"]]}}
            for c in ref["communities"]], ["id"])
        _upsert(conn, models.grids, [
            {"id": g["id"], "community_id": g["community"], "name_zh": g["name_zh"],
             "leader_id": g.get("leader")} for g in ref["grids"]], ["id"])
        _upsert(conn, models.routing_rules, [
            {"category": r["category"], "community": r["community"], "unit_id": r["unit"],
             "reason_zh": r["reason_zh"], "reason_en": r["reason_en"]}
            for r in ref["routing_rules"]], ["category", "community"])
        _upsert(conn, models.category_sla, [
            {"category": c["code"], "accept_hours": c["accept_hours"],
             "resolve_hours": c["resolve_hours"]} for c in ref["categories"]], ["category"])
    seed_sla_policies(engine, ref)
    return len(units)


def seed_sla_policies(engine: sa.Engine, ref: dict) -> None:
    """Category x priority SLA hours, from the categories' hours; an admin's edits are
    kept (a row that exists is left as it is)."""
    policies = sla.seed_policies({c["code"]: (c["accept_hours"], c["resolve_hours"])
                                  for c in ref["categories"]})
    rows = [{"category": c, "priority": p, "accept_hours": v.accept_hours,
             "resolve_hours": v.resolve_hours, "yellow_at": v.yellow_at}
            for (c, p), v in policies.items()]
    with engine.begin() as conn:
        conn.execute(pg.insert(models.sla_policies).on_conflict_do_nothing(), rows)
