"""Database access: one engine per service, one unit of work per transaction.

A unit of work wraps one SQLAlchemy session. Events emitted during it are written to
the service's outbox table in the same commit, which is what makes "state changed" and
"event will be published" one fact. A consumer's unit of work also records the id of the
event it handles in the same commit, so a redelivered event has no second effect.

Each service owns one PostgreSQL schema; the kernel's two tables (`outbox`,
`processed_events`) live in it beside the service's own.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from eventlet.event import Event
from eventlet.queue import Empty, Full, LightQueue
from nameko.extensions import DependencyProvider
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel import events as ev
from minqing_kernel import faults
from minqing_kernel.errors import Unavailable

log = logging.getLogger(__name__)


def check_wait_func() -> None:
    """psycopg's C wait function blocks the eventlet hub (see STACK-NOTES); refuse to run so."""
    if os.environ.get("PSYCOPG_WAIT_FUNC") != "wait_select":
        raise RuntimeError("PSYCOPG_WAIT_FUNC=wait_select must be set in the environment of "
                           "every nameko process, or DB calls block every other greenthread")


def kernel_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """Add the outbox and processed-events tables to a service's metadata."""
    outbox = sa.Table(
        "outbox", metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", pg.UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("type", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(120)),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Index("outbox_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")),
    )
    processed = sa.Table(
        "processed_events", metadata,
        sa.Column("consumer", sa.String(120), primary_key=True),
        sa.Column("event_id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    return outbox, processed


def make_engine(uri: str, pool_size: int) -> sa.Engine:
    # No pre-ping: it costs a round trip per transaction. A connection that died with a
    # PostgreSQL restart fails its statement once and is discarded (SQLAlchemy invalidates
    # the pool on disconnect errors); consumers requeue that event, callers may retry.
    return sa.create_engine(uri, pool_size=pool_size, max_overflow=pool_size,
                            pool_recycle=1800)


class UnitOfWork:
    """One transaction. `emit` queues an event; `commit` writes state and outbox together."""

    def __init__(self, session: orm.Session, service: str, outbox: sa.Table,
                 processed: sa.Table, on_commit: Callable[[], None],
                 correlation_id: str | None = None):
        self.session = session
        self.service = service
        self._outbox = outbox
        self._processed = processed
        self._on_commit = on_commit
        self.correlation_id = correlation_id
        self.events: list[ev.Event] = []

    def emit(self, entity_verb: str, subject: str, data: dict, version: int = 1,
             correlation_id: str | None = None) -> ev.Event:
        """Queue an event for the outbox; `correlation_id` defaults to the request's."""
        event = ev.new_event(self.service, ev.event_type(entity_verb, version), subject, data,
                             correlation_id or self.correlation_id)
        self.events.append(event)
        return event

    def first_time(self, consumer: str, events: list[ev.Event]) -> list[ev.Event]:
        """Record that `consumer` handles these events; return those it had not before
        (a redelivered event is recorded already and is left out)."""
        if not events:
            return []
        stmt = (pg.insert(self._processed)
                .values([{"consumer": consumer, "event_id": e.id} for e in events])
                .on_conflict_do_nothing().returning(self._processed.c.event_id))
        fresh = set(self.session.execute(stmt).scalars())
        return [e for e in events if e.id in fresh]

    def commit(self) -> None:
        if self.events:
            self.session.execute(sa.insert(self._outbox), [_outbox_row(e) for e in self.events])
        faults.point(f"{self.service}.before_commit")
        self.session.commit()
        published, self.events = self.events, []
        if published:
            self._on_commit()

    def rollback(self) -> None:
        self.events = []
        self.session.rollback()


class GroupWriter:
    """Commits the inserts of many concurrent requests in one transaction (group commit).

    For write-only hot paths (a report submitted): each request waits until its rows and
    events are committed, but under load the requests waiting together share one BEGIN,
    one multi-row INSERT per table and one COMMIT, instead of paying four round trips
    each. A lone request is written at once, so there is no added latency when idle. If
    a group fails, its members are retried alone so that each gets its own answer.
    """

    MAX_GROUP = 200

    def __init__(self, provider: Database):
        self._p = provider
        self._pending: list = []
        self._wakeups: LightQueue = LightQueue(maxsize=1)
        self._running = False

    def write(self, rows: list[tuple[sa.Table, dict]], events: list[ev.Event]) -> None:
        done = Event()
        self._pending.append((rows, events, done))
        try:
            self._wakeups.put_nowait(True)
        except Full:
            pass  # the writer is already awake
        done.wait()  # re-raises what the write raised

    def run(self) -> None:
        self._running = True
        while self._running:
            try:
                self._wakeups.get(timeout=0.5)
            except Empty:
                continue
            while self._pending:
                group = self._pending[:self.MAX_GROUP]
                del self._pending[:self.MAX_GROUP]
                self._write_group(group)

    def stop(self) -> None:
        self._running = False

    def _write_group(self, group: list) -> None:
        try:
            self._commit(group)
        except Exception as exc:
            if len(group) == 1:
                group[0][2].send_exception(exc)
                return
            for item in group:
                self._write_group([item])
            return
        for _, _, done in group:
            done.send(None)

    def _commit(self, group: list) -> None:
        by_table: dict[sa.Table, list[dict]] = {}
        outbox_rows = []
        for rows, events, _ in group:
            for table, row in rows:
                by_table.setdefault(table, []).append(row)
            outbox_rows += [_outbox_row(e) for e in events]
        with self._p.engine.begin() as conn:
            for table, table_rows in by_table.items():
                conn.execute(sa.insert(table), table_rows)
            if outbox_rows:
                conn.execute(sa.insert(self._p.outbox), outbox_rows)
            faults.point(f"{self._p.service}.before_commit")
        if outbox_rows:
            self._p.relay.wake()


def database_unavailable(exc: Exception) -> Unavailable:
    """What a caller hears when PostgreSQL is away (restarting, failing over): a 503 it
    may retry, since nothing was committed. Consumers requeue it like any failure."""
    log.error("database unavailable: %s", str(exc).splitlines()[0][:300])
    return Unavailable.of("kernel.database-unavailable", code="database-unavailable")


def _outbox_row(event: ev.Event) -> dict:
    return {"event_id": event.id, "type": event.type, "subject": event.subject,
            "body": ev.to_body(event)}


class Database(DependencyProvider):
    """Gives each worker `self.db`: a factory of units of work on this service's schema.

    It also runs the service's outbox relay, so that every process that can write an
    event also publishes it; two instances share the outbox safely (SKIP LOCKED).
    """

    def __init__(self, metadata: sa.MetaData, outbox: sa.Table, processed: sa.Table):
        self.metadata = metadata
        self.outbox = outbox
        self.processed = processed
        self.engine: sa.Engine | None = None
        self.relay = None

    def setup(self) -> None:
        from minqing_kernel.outbox import (
            OutboxRelay,  # the relay needs the broker config
        )

        check_wait_func()
        config = self.container.config
        self.service = self.container.service_name
        pool = int(config.get("max_workers", 10)) + 2
        self.engine = make_engine(config["DB_URI"], pool)
        self.sessions = orm.sessionmaker(self.engine, expire_on_commit=False)
        self.relay = OutboxRelay(self.engine, self.outbox, self.service, config)
        self.writer = GroupWriter(self)

    def start(self) -> None:
        self.container.spawn_managed_thread(self.relay.run, identifier="outbox-relay")
        self.container.spawn_managed_thread(self.writer.run, identifier="group-writer")

    def stop(self) -> None:
        self.writer.stop()
        self.relay.stop()
        self.engine.dispose()

    def kill(self) -> None:
        self.writer.stop()
        self.relay.stop()

    def get_dependency(self, worker_ctx: Any) -> DatabaseHandle:
        return DatabaseHandle(self, worker_ctx.context_data.get("correlation_id"))


class DatabaseHandle:
    """What a service method sees as `self.db`."""

    def __init__(self, provider: Database, correlation_id: str | None):
        self._p = provider
        self.correlation_id = correlation_id

    @property
    def engine(self) -> sa.Engine:
        return self._p.engine

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """Commits on a clean exit (only if the block did not), rolls back on an exception."""
        session = self._p.sessions()
        uow = UnitOfWork(session, self._p.service, self._p.outbox, self._p.processed,
                         self._p.relay.wake, self.correlation_id)
        try:
            yield uow
            if session.in_transaction() or uow.events:
                uow.commit()
        except sa.exc.OperationalError as exc:
            uow.rollback()
            raise database_unavailable(exc) from exc
        except BaseException:
            uow.rollback()
            raise
        finally:
            session.close()

    def new_event(self, entity_verb: str, subject: str, data: dict,
                  version: int = 1) -> ev.Event:
        return ev.new_event(self._p.service, ev.event_type(entity_verb, version), subject,
                            data, self.correlation_id)

    def insert_together(self, rows: list[tuple[sa.Table, dict]],
                        events: list[ev.Event]) -> None:
        """Insert rows and their events atomically, group-committed with concurrent
        requests (see GroupWriter). Returns once committed; raises if it was not."""
        try:
            self._p.writer.write(rows, events)
        except sa.exc.OperationalError as exc:
            raise database_unavailable(exc) from exc

    @contextmanager
    def handling(self, consumer: str,
                 events: list[ev.Event]) -> Iterator[tuple[UnitOfWork, list[ev.Event]]]:
        """One unit of work for a batch of events, and those not handled before."""
        first = next((e.correlation_id for e in events if e.correlation_id), None)
        self.correlation_id = first or self.correlation_id
        faults.poison(consumer, events)
        with self.unit_of_work() as uow:
            yield uow, uow.first_time(consumer, events)
