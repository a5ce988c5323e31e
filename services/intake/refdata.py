"""The report catalogue and the service area from the reference file (upserted)."""
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from services.intake import models


def _upsert(conn, table, rows, key):
    stmt = pg.insert(table)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[key], set_={c: stmt.excluded[c] for c in rows[0] if c != key}), rows)


def load(engine: sa.Engine, ref: dict) -> int:
    area = ref["subdistrict"]
    attributes = ref.get("category_attributes") or {}
    categories = [{"code": c["code"], "group": c["group"], "name_zh": c["name_zh"],
                   "name_en": c["name_en"], "rewarded_class": c.get("rewarded_class"),
                   "attributes": attributes.get(c["code"], [])}
                  for c in ref["categories"]]
    with engine.begin() as conn:
        _upsert(conn, models.categories, categories, "code")
        _upsert(conn, models.service_areas, [{
            "id": area["id"], "name_zh": area["name_zh"],
            "boundary": {"type": "Polygon", "coordinates": [area["boundary"]]}}], "id")
    return len(categories)
