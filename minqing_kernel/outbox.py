"""The outbox relay: publishes committed events in batches, with publisher confirms.

Rows are claimed with FOR UPDATE SKIP LOCKED, published to the emitting service's
exchange for their type (`<service>.events`, or `<service>.internal` for an internal
type: see events.py; topic, routing key = the CloudEvents type) and
marked published in the same transaction that claimed them. A crash before the mark
leaves the rows to be published again: consumers are idempotent, so a repeat is
harmless, and nothing committed is ever lost.

Publishing a batch and then waiting for the broker's confirms, rather than confirming
one message at a time as nameko's EventDispatcher does, is where the throughput comes
from (STACK-NOTES: 4-6x).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import amqp
import eventlet
import sqlalchemy as sa
from eventlet.queue import Empty, Full, LightQueue
from eventlet.semaphore import Semaphore
from kombu import Connection

from minqing_kernel import faults
from minqing_kernel import metrics as m
from minqing_kernel.events import CONTENT_TYPE, exchange_for

log = logging.getLogger(__name__)

BATCH_SIZE = 500
IDLE_WAIT_S = 0.5      # the relay is woken at once by local commits; this bounds other lag
GATHER_S = 0.005
RETENTION_S = 24 * 3600  # published rows are kept a day for inspection, then purged
DEAD_LETTER_EXCHANGE = "minqing.dead-letter"


class PublishFailed(Exception):
    pass


class ConfirmingPublisher:
    """Publishes a batch and returns only when the broker has confirmed every message."""

    def __init__(self, amqp_uri: str, confirm_timeout: float = 10.0):
        self.amqp_uri = amqp_uri
        self.confirm_timeout = confirm_timeout
        self._conn: Connection | None = None
        self._channel = None
        self._declared: set[str] = set()
        self._lock = Semaphore()

    def _open(self):
        if self._channel is not None and self._conn.connected:
            return self._channel
        self.close()  # a connection the broker or the network closed is not reused
        conn = Connection(self.amqp_uri, heartbeat=0)
        conn.ensure_connection(max_retries=1)
        channel = conn.channel()
        channel.confirm_select()
        self._pending: set[int] = set()
        self._nacked: set[int] = set()
        self._next_tag = 1
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._conn, self._channel, self._declared = conn, channel, set()
        return channel

    def _settle(self, tag: int, multiple: bool, into: set[int] | None) -> None:
        done = {t for t in self._pending if t <= tag} if multiple else {tag}
        self._pending -= done
        if into is not None:
            into |= done

    def _on_ack(self, tag, multiple):
        self._settle(tag, multiple, None)

    def _on_nack(self, tag, multiple):
        self._settle(tag, multiple, self._nacked)

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # closing a broken connection may fail too; it is gone either way
                pass

    def declare_exchange(self, name: str, type_: str = "topic") -> None:
        if name not in self._declared:
            self._open().exchange_declare(name, type_, durable=True, auto_delete=False)
            self._declared.add(name)

    def publish(self, messages: Iterable[tuple[str, str, bytes, dict]]) -> None:
        """messages: (exchange, routing_key, body, headers). Raises PublishFailed."""
        with self._lock:
            try:
                self._publish(list(messages))
            except PublishFailed:
                self.close()
                raise
            except Exception as exc:
                self.close()
                raise PublishFailed(f"broker connection failed: {exc!r}") from exc

    def _publish(self, messages: list[tuple[str, str, bytes, dict]]) -> None:
        channel = self._open()
        self._nacked.clear()
        for exchange, routing_key, body, headers in messages:
            if exchange:
                self.declare_exchange(exchange)
            msg = amqp.Message(body, content_type=CONTENT_TYPE, delivery_mode=2,
                               application_headers=headers or {})
            channel.basic_publish(msg, exchange=exchange, routing_key=routing_key)
            self._pending.add(self._next_tag)
            self._next_tag += 1
        deadline = time.monotonic() + self.confirm_timeout
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishFailed(f"{len(self._pending)} messages unconfirmed after "
                                    f"{self.confirm_timeout}s")
            self._conn.drain_events(timeout=remaining)
        if self._nacked:
            raise PublishFailed(f"broker refused {len(self._nacked)} messages")


class OutboxRelay:
    def __init__(self, engine: sa.Engine, outbox: sa.Table, service: str, config: dict):
        self.engine = engine
        self.outbox = outbox
        self.service = service
        self.publisher = ConfirmingPublisher(config["AMQP_URI"])
        self.batch_size = int(config.get("OUTBOX_BATCH_SIZE", BATCH_SIZE))
        self._wakeups: LightQueue = LightQueue(maxsize=1)
        self._running = False
        self._last_purge = 0.0

    def wake(self) -> None:
        try:
            self._wakeups.put_nowait(True)
        except Full:
            pass  # a wake-up is already pending; one is enough

    def stop(self) -> None:
        self._running = False
        self.wake()

    def run(self) -> None:
        self._running = True
        failures = 0
        while self._running:
            try:
                published = self.publish_batch()
                failures = 0
            except Exception as exc:
                failures += 1
                delay = min(30.0, 0.2 * 2 ** min(failures, 8))
                m.OUTBOX_FAILURES.labels(self.service).inc()
                log.warning("outbox relay of %s could not publish (attempt %d): %s; "
                            "retrying in %.1fs, events stay in the outbox",
                            self.service, failures, exc, delay)
                eventlet.sleep(delay)
                continue
            if published < self.batch_size:
                self._wait(IDLE_WAIT_S)
                # Woken by a commit: let the commits racing it land too, so one claim,
                # one confirm round and one COMMIT serve them all.
                eventlet.sleep(GATHER_S)
            self._maybe_purge()
        self.publisher.close()

    def _wait(self, seconds: float) -> None:
        try:
            self._wakeups.get(timeout=seconds)
        except Empty:
            pass

    def publish_batch(self) -> int:
        o = self.outbox
        with self.engine.begin() as conn:
            # Claim and mark in one statement; if publishing fails, the transaction rolls
            # back and the rows are unclaimed and unmarked again.
            claim = (sa.select(o.c.id).where(o.c.published_at.is_(None)).order_by(o.c.id)
                     .limit(self.batch_size).with_for_update(skip_locked=True))
            rows = sorted(conn.execute(
                sa.update(o).where(o.c.id.in_(claim.scalar_subquery()))
                .values(published_at=sa.func.now())
                .returning(o.c.id, o.c.type, o.c.body, o.c.created_at)).all())
            if not rows:
                m.OUTBOX_BACKLOG.labels(self.service).set(0)
                return 0
            faults.point(f"{self.service}.relay.before_publish")
            started = time.perf_counter()
            self.publisher.publish((exchange_for(self.service, r.type), r.type, r.body, {})
                                   for r in rows)
            m.OUTBOX_PUBLISH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        m.OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        m.OUTBOX_LAG_SECONDS.labels(self.service).observe(
            max(0.0, (datetime.now(UTC) - rows[0].created_at).total_seconds()))
        m.OUTBOX_BACKLOG.labels(self.service).set(len(rows) if len(rows) == self.batch_size
                                                  else 0)
        return len(rows)

    def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge < 60:
            return
        self._last_purge = time.monotonic()
        o = self.outbox
        with self.engine.begin() as conn:
            conn.execute(sa.delete(o).where(
                o.c.published_at < sa.func.now() - sa.text(f"interval '{RETENTION_S} seconds'")))
