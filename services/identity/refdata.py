"""Demo users, units and grids from the reference file: the first load. What exists is
left as it is, so loading the file again (every `make run` and deploy provisions) adds
what is new in it but never undoes an admin's change (a renamed unit, a new grid leader:
services/identity/units.py)."""
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from services.identity import domain, models


def load(engine: sa.Engine, ref: dict) -> int:
    with engine.begin() as conn:
        existing = set(conn.execute(sa.select(models.users.c.username)).scalars())
        rows = [{"id": u["username"], "username": u["username"],
                 "display_name": u["display_name"], "roles": u["roles"],
                 "unit_id": u.get("unit"), "phone": u.get("phone"),
                 "password_hash": domain.hash_password(u.get("password")
                                                       or ref["demo_password"])}
                for u in ref["users"] if u["username"] not in existing]
        partners = ref.get("open311_partners") or []
        rows += [{"id": p["username"], "username": p["username"],
                  "display_name": p["display_name"], "roles": ["partner"], "unit_id": None,
                  "phone": None, "password_hash": domain.hash_password(ref["demo_password"])}
                 for p in partners if p["username"] not in existing]
        if rows:
            conn.execute(pg.insert(models.users).on_conflict_do_nothing(), rows)
        # Each demo partner's key, under a fixed id so that provisioning twice adds nothing.
        keys = [{"id": f"demo-{p['username']}"[:32], "partner_id": p["username"],
                 "name": "demo key (reference data)", "key_hash": domain.api_key_hash(p["api_key"])}
                for p in partners if p.get("api_key")]
        if keys:
            conn.execute(pg.insert(models.api_keys).on_conflict_do_nothing(), keys)
        load_units(conn, ref)
    return len(rows)


def load_units(conn, ref: dict) -> None:
    units = [{"id": c["id"], "kind": "community", "name_zh": c["name_zh"],
              "name_en": c["name_en"], "leader_id": c.get("leader")}
             for c in ref["communities"]]
    units += [{"id": u["id"], "kind": u["kind"], "name_zh": u["name_zh"],
               "name_en": u["name_en"], "leader_id": u.get("leader")} for u in ref["units"]]
    conn.execute(pg.insert(models.units).on_conflict_do_nothing(), units)
    grids = [{"id": g["id"], "community_id": g["community"], "name_zh": g["name_zh"],
              "leader_id": g.get("leader")} for g in ref["grids"]]
    if grids:
        conn.execute(pg.insert(models.grids).on_conflict_do_nothing(), grids)
