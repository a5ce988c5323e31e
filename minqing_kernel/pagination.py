"""Cursor pagination, one way for every list: an opaque cursor over a monotonic `seq`."""
from __future__ import annotations

import base64

from minqing_kernel.errors import BadRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# A seq is a PostgreSQL bigint: a cursor outside it is not one we returned, and must be a
# 400 here rather than an out-of-range error (a 500) in the database.
MAX_SEQ = 2**63 - 1


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        digits = raw[1:]
        if not raw.startswith("s") or not digits.isascii() or not digits.isdigit() \
                or len(digits) > 19 or int(digits) > MAX_SEQ:
            raise ValueError(raw)
        return int(digits)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest.of("kernel.bad-cursor", code="bad-cursor") from None


def clamp_limit(limit: int | str | None) -> int:
    try:
        value = int(limit) if limit not in (None, "") else DEFAULT_LIMIT
    except (TypeError, ValueError):
        raise BadRequest.of("kernel.bad-limit", code="bad-limit") from None
    return max(1, min(MAX_LIMIT, value))


def page(rows: list, limit: int, view) -> dict:
    """rows: up to limit+1 rows with a `seq`; the extra one only says there is more."""
    items = rows[:limit]
    more = len(rows) > limit
    return {"items": [view(r) for r in items],
            "next_cursor": encode_cursor(items[-1].seq) if more and items else None}


def paged(session, stmt, seq_column, query: dict, view, newest_first: bool = False) -> dict:
    """Run `stmt` (already ordered by `seq_column`) one page at a time: `query`'s `limit`
    and `cursor`, the next cursor in the answer. Newest first pages downwards."""
    limit = clamp_limit(query.get("limit"))
    cursor = decode_cursor(query.get("cursor"))
    if cursor is not None:
        stmt = stmt.where(seq_column < cursor if newest_first else seq_column > cursor)
    return page(session.execute(stmt.limit(limit + 1)).all(), limit, view)


# --- keyset cursors: a list in another order than `seq` --------------------------------
# A list sorted by a column that is not unique (a deadline) pages on (that value, seq):
# the cursor carries both, the value as whole microseconds since the epoch or "-" for a
# row without one (those come last). Same opacity and the same 400 as a seq cursor.

def encode_key_cursor(key: int | None, seq: int) -> str:
    return base64.urlsafe_b64encode(
        f"k{'-' if key is None else key}:{seq}".encode()).decode().rstrip("=")


def decode_key_cursor(cursor: str | None) -> tuple[int | None, int] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        key, _, seq = raw[1:].partition(":")
        if not raw.startswith("k") or not _whole(seq) or (key != "-" and not _whole(
                key.removeprefix("-"))):
            raise ValueError(raw)
        return (None if key == "-" else int(key)), int(seq)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest.of("kernel.bad-cursor", code="bad-cursor") from None


def _whole(digits: str) -> bool:
    return digits.isascii() and digits.isdigit() and len(digits) <= 19 \
        and int(digits) <= MAX_SEQ
