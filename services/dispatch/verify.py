"""Check a case's audit trail (留痕) from the command line.

    python -m services.dispatch.verify <case-id> [<case-id> ...]     (make verify CASE=<id>)

Reads DB_URI (as the services do). Prints one JSON line per case; exits 0 when every
chain is intact, 1 when one is not (the line names the first bad entry), 2 when a case
does not exist.
"""
from __future__ import annotations

import json
import os
import sys

import sqlalchemy as sa
from sqlalchemy import orm

from minqing_kernel.errors import NotFound
from services.dispatch import audit

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/minqing"


class _ReadOnly:
    """What the use case needs of a unit of work: a session."""

    def __init__(self, session: orm.Session):
        self.session = session


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    engine = sa.create_engine(os.environ.get("DB_URI", DEFAULT_DB))
    worst = 0
    try:
        with orm.Session(engine) as session:
            for case_id in argv:
                try:
                    result = audit.verify_case_trail(_ReadOnly(session), case_id)
                except NotFound as exc:
                    print(json.dumps({"case_id": case_id, "error": exc.detail_en}))
                    worst = max(worst, 2)
                    continue
                print(json.dumps(result, ensure_ascii=False))
                if not result["valid"]:
                    print(f"case {case_id}: trail broken at entry {result['first_bad_seq']} "
                          f"({result['reason']})", file=sys.stderr)
                    worst = max(worst, 1)
    finally:
        engine.dispose()
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
