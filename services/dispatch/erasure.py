"""A resident deleted their account (identity's internal `account.deleted`): the cases
they reported stay, under the pseudonym the event carries instead of their account id,
so that no case names them and what counts reports per reporter still counts them once.

The trail (留痕) is not rewritten: it is append-only and hash-chained, and an entry
changed after the fact is exactly what its check must catch. A rating's entry keeps the
account id, which names no one once identity's row is a tombstone (README, "What is kept,
and how long"). What the person wrote (a description, a rating's words) stays with the
case, as the report does."""
from __future__ import annotations

import logging

import sqlalchemy as sa

from services.dispatch import models
from services.dispatch.metrics import PSEUDONYMISED

log = logging.getLogger(__name__)


def pseudonymise_reporters(uow, events) -> None:
    c = models.cases
    for event in events:
        user_id, pseudonym = event.data["user_id"], event.data["pseudonym"]
        done = uow.session.execute(
            sa.update(c).where(c.c.reporter_ids.any(user_id))
            .values(reporter_ids=sa.func.array_replace(c.c.reporter_ids, user_id, pseudonym))
        ).rowcount
        PSEUDONYMISED.labels("cases").inc(done)
        log.info("a deleted account's %d case(s) now name its pseudonym", done)
