"""The reward class of each category, and the rules seeded from them (reference file).

Rules are seeded only where none exists: an admin's edit survives every provisioning."""
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from services.rewards import domain, models


def load(engine: sa.Engine, ref: dict) -> int:
    categories = [{"code": c["code"], "rewarded_class": c.get("rewarded_class")}
                  for c in ref["categories"]]
    rules = [{"reward_class": r.reward_class, "priority": r.priority, "min_fen": r.min_fen,
              "max_fen": r.max_fen, "updated_by": "seed"}
             for r in domain.seeded_rules(ref["categories"])]
    with engine.begin() as conn:
        stmt = pg.insert(models.categories)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["code"], set_={"rewarded_class": stmt.excluded.rewarded_class}),
            categories)
        if rules:
            conn.execute(pg.insert(models.reward_rules).on_conflict_do_nothing(), rules)
    return len(categories)
