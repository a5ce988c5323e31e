"""Cursor pagination, one way for every list: a cursor over a monotonic `seq`.

The cursor is the seq in decimal, 1 to 18 digits, exactly what the OpenAPI document's
`Cursor` parameter declares (`^[0-9]{1,18}$`): every value the document allows is one the
API takes, so a client (or a fuzzer) that follows the document is never refused. 18 digits
stay inside PostgreSQL's bigint, so no cursor can reach the database out of range. It
was base64 before; it never hid anything (the seq decoded in one step), and it made a
cursor the document could not describe.
"""
from __future__ import annotations

import re

from minqing_kernel.errors import BadRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR = re.compile(r"[0-9]{1,18}")
WHOLE = re.compile(r"-?[0-9]{1,20}")


def encode_cursor(seq: int) -> str:
    return str(seq)


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:  # absent; `cursor=` is not a cursor (the pattern refuses it)
        return None
    if not CURSOR.fullmatch(cursor):
        raise BadRequest.of("kernel.bad-cursor", code="bad-cursor")
    return int(cursor)


def page_limit(limit: int | str | None) -> int:
    """The page size asked for, 1 to MAX_LIMIT; anything else is refused (400), as the
    document's `minimum`/`maximum` say, rather than quietly changed."""
    if limit is None:
        return DEFAULT_LIMIT
    # Digits only: int() would also take " 5", "1_0" and other scripts' digits.
    text = str(limit) if isinstance(limit, int) and not isinstance(limit, bool) else limit
    value = int(text) if isinstance(text, str) and WHOLE.fullmatch(text) else None
    if value is None or not 1 <= value <= MAX_LIMIT:
        raise BadRequest.of("kernel.bad-limit", max=MAX_LIMIT, code="bad-limit")
    return value


def page(rows: list, limit: int, view) -> dict:
    """rows: up to limit+1 rows with a `seq`; the extra one only says there is more."""
    items = rows[:limit]
    more = len(rows) > limit
    return {"items": [view(r) for r in items],
            "next_cursor": encode_cursor(items[-1].seq) if more and items else None}


def paged(session, stmt, seq_column, query: dict, view, newest_first: bool = False) -> dict:
    """Run `stmt` (already ordered by `seq_column`) one page at a time: `query`'s `limit`
    and `cursor`, the next cursor in the answer. Newest first pages downwards."""
    limit = page_limit(query.get("limit"))
    cursor = decode_cursor(query.get("cursor"))
    if cursor is not None:
        stmt = stmt.where(seq_column < cursor if newest_first else seq_column > cursor)
    return page(session.execute(stmt.limit(limit + 1)).all(), limit, view)


# --- keyset cursors: a list in another order than `seq` --------------------------------
# A list sorted by a column that is not unique (a deadline) pages on (that value, seq):
# the cursor is `<key>.<seq>`, the key as whole microseconds since the epoch or `n` for a
# row without one (those come last). The document declares both forms for such a list
# (`KeyCursor`), and a seq cursor reads as one with no key: a client holding a cursor of the
# same list in another order gets a page from there, never an error for a value the
# document allows.
KEY_CURSOR = re.compile(r"(-?[0-9]{1,18}|n)\.([0-9]{1,18})")


def encode_key_cursor(key: int | None, seq: int) -> str:
    return f"{'n' if key is None else key}.{seq}"


def decode_key_cursor(cursor: str | None) -> tuple[int | None, int] | None:
    if cursor is None:
        return None
    found = KEY_CURSOR.fullmatch(cursor)
    if found is None:
        return None, decode_cursor(cursor)
    key, seq = found.groups()
    return (None if key == "n" else int(key)), int(seq)


def seq_of(cursor: str | None) -> str | None:
    """A cursor for a list in `seq` order: a key cursor's seq, or the cursor itself."""
    after = decode_key_cursor(cursor)
    return None if after is None else str(after[1])
