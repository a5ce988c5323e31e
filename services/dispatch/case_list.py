"""The command center's list of cases (issue #12, point 6): filters, three orders, and
cursor pages that stay right under each order.

- `oldest` (the default, the screening queue worked first come first served) and `newest`
  page on `seq`, the order cases were opened in.
- `urgent`: the deadline each case runs against now (`current_due_at`: accept while
  assigned, resolve while accepted or with a partner), the most passed first, then the
  closest; cases with no deadline running (screening, closed, ...) come after, oldest
  first. It pages on (deadline, seq), so a case whose deadline ties another's is neither
  skipped nor shown twice. A case whose deadline moves while someone pages (accepted,
  extended) shows where it belongs on the pages read after that, as in any live list.
- `overdue` is judged against the database's clock at the query, the same one the SLA
  scan uses.
Every filter uses an index with `seq` (migration 0007).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from minqing_kernel.errors import Invalid, validated
from minqing_kernel.pagination import (
    decode_key_cursor,
    encode_key_cursor,
    page_limit,
    paged,
    seq_of,
)
from minqing_kernel.reference import TimedReference
from services.dispatch import models, schemas

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FILTERS = {"status": "status", "category": "category", "community": "community_id",
           "unit": "unit_id", "priority": "priority"}


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def _filtered(stmt, q: dict):
    c = models.cases
    for param, column in FILTERS.items():
        if q.get(param) is not None:
            stmt = stmt.where(c.c[column] == q[param])
    if q.get("opened_from") is not None:
        stmt = stmt.where(c.c.opened_at >= q["opened_from"])
    if q.get("opened_to") is not None:
        stmt = stmt.where(c.c.opened_at < q["opened_to"])
    if q.get("overdue") is True:
        stmt = stmt.where(c.c.current_due_at < sa.func.now())
    elif q.get("overdue") is False:
        stmt = stmt.where(sa.or_(c.c.current_due_at.is_(None),
                                 c.c.current_due_at >= sa.func.now()))
    return stmt


def _urgent_page(session, stmt, q: dict, view) -> dict:
    c = models.cases
    due, seq = c.c.current_due_at, c.c.seq
    limit = page_limit(q.get("limit"))
    after = decode_key_cursor(q.get("cursor"))
    if after is not None:
        key, last = after
        if key is None:  # among the cases without a deadline, which come last
            stmt = stmt.where(due.is_(None), seq > last)
        else:
            at = EPOCH + timedelta(microseconds=key)
            stmt = stmt.where(sa.or_(due > at, sa.and_(due == at, seq > last), due.is_(None)))
    rows = session.execute(stmt.order_by(due.asc().nulls_last(), seq.asc())
                           .limit(limit + 1)).all()
    items = rows[:limit]
    more = len(rows) > limit and items
    return {"items": [view(r) for r in items],
            "next_cursor": encode_key_cursor(
                None if items[-1].current_due_at is None else _micros(items[-1].current_due_at),
                items[-1].seq) if more else None}


def list_cases(uow, reference: TimedReference, actor: dict, query: dict, visible,
               view) -> dict:
    """`visible`: the WHERE clause for the cases `actor` may list (None: all)."""
    q = validated(schemas.CaseQuery(), query, "case-query")
    # Between two parameters, so no schema can say it: its own problem type (bad-period).
    if q.get("opened_from") and q.get("opened_to") and q["opened_from"] >= q["opened_to"]:
        raise Invalid.of("dispatch.bad-opened-range", code="bad-period")
    c = models.cases
    stmt = sa.select(c)
    if visible is not None:
        stmt = stmt.where(visible)
    stmt = _filtered(stmt, q)
    if q["sort"] == "urgent":
        return _urgent_page(uow.session, stmt, q, view)
    newest = q["sort"] == "newest"
    return paged(uow.session, stmt.order_by(c.c.seq.desc() if newest else c.c.seq),
                 c.c.seq, dict(q, cursor=seq_of(q.get("cursor"))), view, newest_first=newest)
