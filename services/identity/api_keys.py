"""Issue or revoke an Open311 partner's API key from the command line.

    python -m services.identity.api_keys issue <partner-username> "<what it is for>"
    python -m services.identity.api_keys revoke <key-id>

Reads DB_URI like the services (default: the local development database). The key is
printed once; only its hash is stored.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy import orm

from services.identity import handlers


class EngineDb:
    """The `unit_of_work()` the handlers take, over a plain engine: a CLI has no nameko
    container (and these writes emit no events)."""

    def __init__(self, uri: str):
        self.engine = sa.create_engine(uri)

    @contextmanager
    def unit_of_work(self) -> Iterator[SimpleNamespace]:
        with orm.Session(self.engine) as session, session.begin():
            yield SimpleNamespace(session=session)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.identity.api_keys",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("issue", help="issue a key to a partner account")
    issue.add_argument("partner")
    issue.add_argument("name")
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    db = EngineDb(os.environ.get("DB_URI",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/minqing"))
    if args.command == "issue":
        print(json.dumps(handlers.issue_api_key(db, args.partner, args.name)))
        return 0
    done = handlers.revoke_api_key(db, args.key_id)
    print("revoked" if done else "no such active key")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
