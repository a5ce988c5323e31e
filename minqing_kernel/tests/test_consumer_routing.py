"""The event consumer's extension points for events that do not come from one of our
services (partner platforms publish into `partners.inbound`): another exchange, the
sender's broker-validated user_id, refusals a handler decides, sent where the sender
reads them. Unit tests: the consumer's collaborators are recorded, no broker.
"""
from __future__ import annotations

import json
import sys
import uuid
from types import SimpleNamespace

from minqing_kernel import events as ev
from minqing_kernel import metrics as m
from minqing_kernel.consumer import EventConsumer, consumer_queue

SUBMITTED = ev.event_type("report.submitted")


def body() -> bytes:
    return json.dumps({
        "specversion": "1.0", "id": str(uuid.uuid4()), "type": SUBMITTED,
        "source": "/minqing/intake", "time": "2026-01-01T00:00:00Z",
        "datacontenttype": "application/json",
        "data": {"report_id": str(uuid.uuid4()), "channel": "app",
                 "category": "dispute-noise", "description": "噪音扰民", "address": None,
                 "location": {"lat": 30.2, "lon": 120.1}, "attachments": [],
                 "submitted_at": "2026-01-01T00:00:00+00:00"}}).encode()


class Recorder:
    """Stands in for the queue consumer, the container and the dead-letter publisher."""

    def __init__(self):
        self.acked, self.requeued, self.published, self.workers = [], [], [], []
        self.service_name = "intake"

    def ack_message(self, message):
        self.acked.append(message)

    def requeue_message(self, message):
        self.requeued.append(message)

    def publish(self, messages):
        self.published += list(messages)

    def spawn_worker(self, entrypoint, args, kwargs, context_data, handle_result):
        self.workers.append(args[0])


def consumer(dead_letter_to=None) -> tuple[EventConsumer, Recorder]:
    entrypoint = EventConsumer("partners", SUBMITTED, exchange="partners.inbound",
                               dead_letter_to=dead_letter_to)
    recorder = Recorder()
    entrypoint.container = recorder
    entrypoint.queue_consumer = recorder
    entrypoint.dead_letters = recorder
    entrypoint.consumer_name = "intake.accept"
    entrypoint._pending, entrypoint._flush_timer = [], None
    return entrypoint, recorder


def message(user_id: str | None = None):
    return SimpleNamespace(body=body(), headers={}, content_type=ev.CONTENT_TYPE,
                           properties={"user_id": user_id} if user_id else {},
                           delivery_info={"exchange": "partners.inbound",
                                          "routing_key": SUBMITTED})


def test_a_consumer_may_listen_on_another_exchange_than_its_sources_events():
    queue = consumer_queue("intake", "partners", SUBMITTED, "accept", "partners.inbound")
    assert (queue.exchange.name, queue.routing_key) == ("partners.inbound", SUBMITTED)
    assert consumer_queue("dispatch", "intake", SUBMITTED, "open").exchange.name == \
        "intake.events"


def test_the_handler_sees_the_messages_user_id():
    entrypoint, recorder = consumer()
    # When a message published by broker user "partner-a" arrives
    entrypoint.handle_raw(message(user_id="partner-a"))
    # Then the event handed to the handler carries that user
    assert [e.user_id for e in recorder.workers[0]] == ["partner-a"]


def test_an_event_the_handler_refuses_is_dead_lettered_where_the_route_says():
    entrypoint, recorder = consumer(
        dead_letter_to=lambda m: ("partners.rejections", m.properties["user_id"]))
    msg = message(user_id="partner-a")
    entrypoint.handle_raw(msg)
    event = recorder.workers[0][0]
    sent_back = m.SENT_BACK.labels("intake.accept", "out-of-area")._value.get()
    dead = m.DEAD_LETTERED.labels("intake.accept", "out-of-area")._value.get()
    # When the handler raises EventRejected for it
    try:
        raise ev.EventRejected("out-of-area", "outside", "不在范围内")
    except ev.EventRejected:
        entrypoint.handle_result([(msg, event)], 0.0, 0, None, exc_info=sys.exc_info())
    # Then it is published to the route with the reason in both languages, and acked
    [(exchange, key, sent, headers)] = recorder.published
    assert (exchange, key, sent) == ("partners.rejections", "partner-a", msg.body)
    assert headers["x-minqing-reason"] == "out-of-area"
    assert (headers["x-minqing-detail"], headers["x-minqing-detail-zh"]) == \
        ("outside", "不在范围内")
    assert recorder.acked == [msg] and recorder.requeued == []
    # And it is counted as sent back to its sender, not as one of our dead letters
    assert m.SENT_BACK.labels("intake.accept", "out-of-area")._value.get() == sent_back + 1
    assert m.DEAD_LETTERED.labels("intake.accept", "out-of-area")._value.get() == dead


def test_without_a_route_refusals_go_to_the_services_dead_letter_queue():
    entrypoint, recorder = consumer(dead_letter_to=lambda m: None)
    # When a message that is not an event arrives
    msg = SimpleNamespace(body=b"not json", headers={}, content_type=ev.CONTENT_TYPE,
                          properties={}, delivery_info={})
    entrypoint.handle_raw(msg)
    # Then it goes to the service's dead-letter queue, not to a handler
    [(exchange, key, _, headers)] = recorder.published
    assert (exchange, key, headers["x-minqing-reason"]) == (
        "minqing.dead-letter", "intake", "not-json")
    assert recorder.workers == []


def test_any_other_failure_of_the_handler_is_retried_not_dead_lettered():
    entrypoint, recorder = consumer()
    msg = message()
    entrypoint.handle_raw(msg)
    try:
        raise ValueError("a bug")
    except ValueError:
        entrypoint.handle_result([(msg, recorder.workers[0][0])], 0.0, 0, None,
                                 exc_info=sys.exc_info())
    assert recorder.requeued == [msg] and recorder.published == []
