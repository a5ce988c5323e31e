"""A resident deleted their account (identity's internal `account.deleted`): the reports
they filed stay, under the pseudonym the event carries instead of their account id, and
whatever else here names them (an upload ticket's owner) follows. Once done, nothing in
intake leads from a report back to the person; the same pseudonym in dispatch keeps
their reports and cases together. A phone caller's reports are keyed by caller id, not an
account, and are not touched by this."""
from __future__ import annotations

import logging

import sqlalchemy as sa

from services.intake import models
from services.intake.metrics import PSEUDONYMISED

log = logging.getLogger(__name__)


def pseudonymise_reporter(uow, events) -> None:
    r, u = models.reports, models.uploads
    for event in events:
        user_id, pseudonym = event.data["user_id"], event.data["pseudonym"]
        s = uow.session
        reported = s.execute(sa.update(r).where(r.c.reporter_id == user_id)
                             .values(reporter_id=pseudonym, reporter_phone=None)).rowcount
        s.execute(sa.update(r).where(r.c.submitted_by == user_id)
                  .values(submitted_by=pseudonym))
        uploads = s.execute(sa.update(u).where(u.c.owner_id == user_id)
                            .values(owner_id=pseudonym)).rowcount
        PSEUDONYMISED.labels("reports").inc(reported)
        PSEUDONYMISED.labels("uploads").inc(uploads)
        log.info("a deleted account's %d report(s) and %d upload(s) now name its pseudonym",
                 reported, uploads)
