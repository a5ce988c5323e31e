"""Consuming events: one entrypoint, `@consume_event`, for every event handler.

Why not nameko's `@event_handler`: it decodes the body before our code sees it, so a
malformed message raises inside kombu and the consumer reconnects and receives it
again, forever; and it acks a message whose handler failed, which loses it. Here:

- the raw message is read with the CloudEvents SDK and validated against its schema; a
  message that is not a valid event of a known type is published to the dead-letter
  exchange with the reason in its headers, and only then acked;
- a handler that raises gets the message back (requeued). Queues are quorum queues with
  a delivery limit, so a message that keeps failing is dead-lettered by the broker after
  that many attempts (reason `delivery_limit`) instead of blocking the queue;
- handlers take a list of events (a batch, see EventConsumer) and use
  `self.db.handling(consumer, events)`, so their effects and the record of the event
  ids commit together (exactly-once effect);
- a handler that raises EventRejected says the event can never be handled (a partner's
  report of an unknown category): it is dead-lettered with that reason, not retried.

Events usually come from `<source>.events`, or `<source>.internal` for an internal type
(events.exchange_for); a consumer of another exchange (partner
platforms publish into `partners.inbound`) names it, and may send what it refuses
somewhere its sender can read (`dead_letter_to`) instead of the service's own DLQ.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from functools import partial

import amqp
import eventlet
from kombu import Exchange, Queue
from nameko.containers import ContainerBeingKilled
from nameko.extensions import Entrypoint
from nameko.messaging import QueueConsumer
from sqlalchemy.exc import DBAPIError, OperationalError

from minqing_kernel import (
    _nameko,  # noqa: F401  (fixes applied on import)
    faults,
)
from minqing_kernel import events as ev
from minqing_kernel import metrics as m
from minqing_kernel.errors import Unavailable
from minqing_kernel.outbox import (
    DEAD_LETTER_EXCHANGE,
    ConfirmingPublisher,
    PublishFailed,
)

log = logging.getLogger(__name__)

DELIVERY_LIMIT = 10
TRANSIENT_BACKOFF_S = 1.0
OUTAGE_RETRIES = 120  # two minutes of outage before the events go back to the queue

def consumer_queue(service: str, source_service: str, event_type: str, method: str,
                   exchange: str | None = None) -> Queue:
    return Queue(
        f"{service}.{method}",
        exchange=Exchange(exchange or ev.exchange_for(source_service, event_type), type="topic",
                          durable=True),
        routing_key=event_type,
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": service,
        },
    )


def dead_letter_queue(service: str) -> Queue:
    return Queue(f"{service}.dead-letter",
                 exchange=Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True),
                 routing_key=service, durable=True)


class RawQueueConsumer(QueueConsumer):
    """nameko's queue consumer, but handing the undecoded message to the entrypoint."""

    @property
    def prefetch_count(self):
        # A batching consumer must be able to hold a whole batch unacked.
        return max([self.container.max_workers] +
                   [2 * p.batch_size for p in self._providers])

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            consumer = consumer_cls(queues=[provider.queue],
                                    on_message=partial(self.handle_raw, provider))
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def handle_raw(self, provider, message):
        self.container.spawn_managed_thread(partial(provider.handle_raw, message),
                                            identifier=f"consume[{provider.queue.name}]")


class EventConsumer(Entrypoint):
    """Calls the decorated method with a list of events, at most `batch_size` at a time.

    Batches amortise a transaction (BEGIN, the processed-events record, the outbox,
    COMMIT) over many events: under load most round trips to the database disappear.
    A batch waits at most `linger_s` for company, so a lone event is not held back. If
    a batch fails, its events are retried one by one, so one bad event cannot sink its
    neighbours; a single event that fails is requeued (and dead-lettered by the broker
    after DELIVERY_LIMIT attempts).
    """

    queue_consumer = RawQueueConsumer()

    def __init__(self, source_service: str, event_type: str, batch_size: int = 1,
                 linger_s: float = 0.005, exchange: str | None = None,
                 dead_letter_to: Callable[[object], tuple[str, str] | None] | None = None,
                 retired_bindings: tuple[tuple[str, str], ...] = (),
                 **kwargs):
        """exchange: where the events come from, if not the source's exchange for the
        type (`<source_service>.events`, or `.internal` for an internal type).
        dead_letter_to(message): (exchange, routing key) for a message this consumer
        refuses, or None for the service's dead-letter queue.
        retired_bindings: (exchange, routing key) this consumer's queue was bound to by an
        earlier version (a consumer moved to an internal event); provisioning removes
        them, or every such event would now reach the queue and be dead-lettered."""
        self.source_service = source_service
        self.event_type = event_type
        self.exchange = exchange
        self.retired_bindings = tuple(retired_bindings)
        self.dead_letter_to = dead_letter_to
        self.batch_size = batch_size
        self.linger_s = linger_s
        super().__init__(**kwargs)

    def setup(self):
        service = self.container.service_name
        self.consumer_name = f"{service}.{self.method_name}"
        self.queue = consumer_queue(service, self.source_service, self.event_type,
                                    self.method_name, self.exchange)
        self.dlq = dead_letter_queue(service)
        self.dead_letters = ConfirmingPublisher(self.container.config["AMQP_URI"])
        self._pending: list = []
        self._flush_timer = None
        self.queue_consumer.register_provider(self)

    def start(self):
        with self.queue_consumer.connection as conn:
            self.dlq(conn.default_channel).declare()

    def stop(self):
        self.queue_consumer.unregister_provider(self)
        self.dead_letters.close()

    def handle_raw(self, message):
        try:
            event = ev.from_message(message.content_type, message.headers, message.body)
            if event.type != self.event_type:
                raise ev.EventRejected("unexpected-type",
                                       f"{event.type} on a queue bound to {self.event_type}")
        except ev.EventRejected as rejected:
            self.dead_letter(message, rejected)
            return
        user_id = (message.properties or {}).get("user_id")
        if user_id:
            event = dataclasses.replace(event, user_id=user_id)
        self._pending.append((message, event))
        if len(self._pending) >= self.batch_size:
            self._flush()
        elif self._flush_timer is None:
            self._flush_timer = eventlet.spawn_after(self.linger_s, self._flush)

    def _flush(self):
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        batch, self._pending = self._pending, []
        if batch:
            self._spawn(batch)

    def _spawn(self, batch: list, outage_retries: int = 0) -> None:
        events = [event for _, event in batch]
        correlation = next((e.correlation_id for e in events if e.correlation_id), None)
        context = {"correlation_id": correlation} if correlation else {}
        try:
            self.container.spawn_worker(
                self, (events,), {}, context_data=context,
                handle_result=partial(self.handle_result, batch, time.perf_counter(),
                                      outage_retries))
        except ContainerBeingKilled:
            for message, _ in batch:
                self.queue_consumer.requeue_message(message)

    def handle_result(self, batch, started, outage_retries, worker_ctx, result=None,
                      exc_info=None):
        m.EVENT_HANDLE_SECONDS.labels(self.consumer_name).observe(time.perf_counter() - started)
        if exc_info is None:
            for _, event in batch:
                m.EVENTS_HANDLED.labels(self.consumer_name, event.type, "ok").inc()
            faults.point(f"{self.consumer_name}.before_ack")
            for message, _ in batch:
                self.queue_consumer.ack_message(message)
            return result, exc_info
        exc = exc_info[1]
        if isinstance(exc, ev.EventRejected) and len(batch) == 1:
            m.EVENTS_HANDLED.labels(self.consumer_name, batch[0][1].type, "rejected").inc()
            self.dead_letter(batch[0][0], exc)
            return result, exc_info
        if _is_transient(exc) and outage_retries < OUTAGE_RETRIES:
            # The database is away (restarting, failing over): keep the messages and try
            # again shortly, rather than requeue them and spend their delivery limit,
            # which is for events that fail on their own account.
            if outage_retries == 0:
                log.warning("%s: database unavailable; holding %d events and retrying "
                            "every %.0fs", self.consumer_name, len(batch), TRANSIENT_BACKOFF_S)
            eventlet.spawn_after(TRANSIENT_BACKOFF_S, self._spawn, batch, outage_retries + 1)
            return result, exc_info
        if len(batch) > 1:
            log.warning("%s failed on a batch of %d (%r); retrying them one by one",
                        self.consumer_name, len(batch), exc)
            for item in batch:
                self._spawn([item])
            return result, exc_info
        message, event = batch[0]
        m.EVENTS_HANDLED.labels(self.consumer_name, event.type, "error").inc()
        log.error("%s failed on event %s (%s); requeued, attempt limit %d: %r",
                  self.consumer_name, event.id, event.type, DELIVERY_LIMIT, exc)
        self.queue_consumer.requeue_message(message)
        return result, exc_info

    def dead_letter(self, message, rejected: ev.EventRejected) -> None:
        reason, detail = rejected.reason, rejected.detail
        route = self.dead_letter_to and self.dead_letter_to(message)
        exchange, routing_key = route or (DEAD_LETTER_EXCHANGE, self.container.service_name)
        headers = dict(message.headers or {})
        headers.update({
            "x-minqing-reason": reason,
            "x-minqing-detail": detail[:1000],
            "x-minqing-consumer": self.consumer_name,
            "x-minqing-original-exchange": message.delivery_info.get("exchange", ""),
            "x-minqing-original-routing-key": message.delivery_info.get("routing_key", ""),
            "x-minqing-original-content-type": message.content_type or "",
        })
        if rejected.detail_zh:
            headers["x-minqing-detail-zh"] = rejected.detail_zh[:1000]
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        try:
            self.dead_letters.publish([(exchange, routing_key, body, headers)])
        except PublishFailed as exc:
            log.error("could not dead-letter a message on %s (%s); requeued: %s",
                      self.consumer_name, reason, exc)
            eventlet.sleep(TRANSIENT_BACKOFF_S)
            self.queue_consumer.requeue_message(message)
            return
        (m.SENT_BACK if route else m.DEAD_LETTERED).labels(self.consumer_name, reason).inc()
        log.warning("%s a message on %s (to %s / %s): %s: %s",
                    "sent back" if route else "dead-lettered", self.consumer_name,
                    exchange, routing_key, reason, detail)
        self.queue_consumer.ack_message(message)


def _is_transient(exc: BaseException) -> bool:
    """A failure of the infrastructure, not of the event: worth retrying as it is."""
    return isinstance(exc, OperationalError | Unavailable) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


consume_event = EventConsumer.decorator


def declare_topology(service_cls: type, amqp_uri: str) -> list[str]:
    """Declare the queues of every @consume_event of a service, and its dead-letter queue.

    Provisioning calls this before any service starts: an event published before its
    consumer's queue exists would be dropped by the broker.
    """
    import inspect

    from kombu import Connection

    declared = []
    with Connection(amqp_uri) as conn:
        channel = conn.default_channel
        dead_letter_queue(service_cls.name)(channel).declare()
        for name, member in inspect.getmembers(service_cls, inspect.isfunction):
            for entrypoint in getattr(member, "nameko_entrypoints", ()):
                if isinstance(entrypoint, EventConsumer):
                    queue = consumer_queue(service_cls.name, entrypoint.source_service,
                                           entrypoint.event_type, name, entrypoint.exchange)
                    queue(channel).declare()
                    declared.append(queue.name)
                    for exchange, routing_key in entrypoint.retired_bindings:
                        _unbind(conn, queue.name, exchange, routing_key)
    return declared


def _unbind(conn, queue: str, exchange: str, routing_key: str) -> None:
    """Remove a binding if it is there (unbinding is idempotent); an exchange that was
    never declared (a new installation) closes the channel with NOT_FOUND: nothing to do."""
    channel = conn.channel()
    try:
        channel.queue_unbind(queue, exchange, routing_key)
        log.info("removed the retired binding %s -> %s (%s)", exchange, queue, routing_key)
    except amqp.exceptions.NotFound:
        pass
    finally:
        try:
            channel.close()
        except Exception:  # closed by the broker already
            pass
