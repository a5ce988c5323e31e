"""Demo users from the reference file; existing users are left as they are."""
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
        if rows:
            conn.execute(pg.insert(models.users).on_conflict_do_nothing(), rows)
    return len(rows)
