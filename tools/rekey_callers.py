"""Give phone callers of reports made before caller ids were keyed their keyed id.

    python -m tools.rekey_callers            rewrite them (DB_URI, CALLER_ID_KEY)
    python -m tools.rekey_callers --check    count them, change nothing; exit 1 if any

Why: a caller's id used to be an unkeyed SHA-256 of her number cut to 16 hex digits,
which anyone holding the id reverses in a second by trying the few million numbers of a
known prefix (issue #10, finding 3). Those ids are still stored: in intake.reports and,
copied, in dispatch.cases.reporter_ids, where the command center and leaders read them.
intake still has each caller's number, so each is recomputed under the installation's key
(services/intake/domain.caller_id) and replaced in both places, in one transaction.

What it cannot reach: the public report.submitted events already published with the old
ids (they are gone from our side; partners may have kept them). Callers never sign in,
so no trail entry names one and nothing else has to follow. Run it once after deploying
the keyed ids, with the intake and dispatch schemas in one database as `make run` has
them; it is idempotent (a keyed id is 32 hex digits and never matches again).
"""
from __future__ import annotations

import argparse
import os
import sys

import sqlalchemy as sa

from minqing_kernel.keys import check_key
from services.intake.domain import caller_id

LEGACY_ID = r"^caller-[0-9a-f]{16}$"


def legacy_callers(conn) -> dict[str, str]:
    """old id -> keyed id, for every legacy caller id intake can recompute."""
    rows = conn.execute(sa.text(
        "SELECT DISTINCT reporter_id, reporter_phone FROM intake.reports "
        "WHERE reporter_phone IS NOT NULL AND reporter_id ~ :legacy"),
        {"legacy": LEGACY_ID}).all()
    return {old: phone for old, phone in rows}


def rekey(engine: sa.Engine, key: bytes) -> int:
    """Replace every legacy caller id by the keyed one; return how many callers."""
    with engine.begin() as conn:
        phones = legacy_callers(conn)
        for old, phone in phones.items():
            new = caller_id(phone, key)
            conn.execute(sa.text("UPDATE intake.reports SET reporter_id = :new "
                                 "WHERE reporter_id = :old"), {"old": old, "new": new})
            conn.execute(sa.text(
                "UPDATE dispatch.cases SET reporter_ids = array_replace(reporter_ids, "
                "CAST(:old AS varchar), CAST(:new AS varchar)) WHERE :old = ANY(reporter_ids)"),
                {"old": old, "new": new})
    return len(phones)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rekey_callers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    engine = sa.create_engine(os.environ["DB_URI"])
    try:
        if args.check:
            with engine.connect() as conn:
                count = len(legacy_callers(conn))
            print(f"{count} phone callers still have an unkeyed id")
            return 1 if count else 0
        count = rekey(engine, check_key("CALLER_ID_KEY", os.environ.get("CALLER_ID_KEY")))
        print(f"{count} phone callers now have a keyed id")
        return 0
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
