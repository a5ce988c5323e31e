"""A phone caller's number, shown to an operator for a callback (issue #12, point 5).

The number stays here (SECURITY.md: "the number stays in intake"). It is shown only to an
operator (not an admin, nor discipline: they do not make the calls), only for a pending
callback dispatch has named, and each showing is a row of caller_number_reveals (who,
when, which case and callback, which report) written in the same transaction as the
read, and counted in minqing_caller_numbers_revealed_total.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from minqing_kernel.errors import Conflict, Forbidden, validated
from services.intake import models, schemas
from services.intake.metrics import CALLER_NUMBERS_REVEALED

REVEALS_TO = "operator"


def reveal_caller_number(db, actor: dict, callback: dict) -> dict:
    if REVEALS_TO not in actor["roles"]:
        raise Forbidden.of("intake.caller-number-operators-only", code="role-required")
    request = validated(schemas.CallbackToMake(), callback, "callback")
    r = models.reports
    now = datetime.now(UTC)
    with db.unit_of_work() as uow:
        rows = uow.session.execute(
            sa.select(r.c.id, r.c.reporter_phone)
            .where(r.c.id.in_([str(i) for i in request["report_ids"]]),
                   r.c.channel == "phone", r.c.reporter_phone.is_not(None))
            .order_by(r.c.seq)).all()
        if not rows:
            raise Conflict.of("intake.no-caller-number", code="no-caller-number")
        uow.session.execute(sa.insert(models.caller_number_reveals), [
            {"id": str(uuid.uuid4()), "report_id": row.id,
             "case_id": str(request["case_id"]), "callback_id": str(request["callback_id"]),
             "revealed_to": actor["id"], "revealed_at": now} for row in rows])
    CALLER_NUMBERS_REVEALED.inc(len(rows))
    return {"callback_id": str(request["callback_id"]), "case_id": str(request["case_id"]),
            "phones": list(dict.fromkeys(row.reporter_phone for row in rows)),
            "revealed_to": actor["id"], "revealed_at": now.isoformat()}
