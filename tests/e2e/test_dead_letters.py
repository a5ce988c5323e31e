"""A malformed message on a queue lands in the dead-letter queue with its reason, and the
consumer keeps going.

Messages are published straight onto intake's internal exchange, as a buggy producer
could, with the routing key dispatch.open_case is bound to.
"""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from kombu import Connection, Queue

from tests.fixtures import IN_SHIBANQIAO, wait_for

pytestmark = pytest.mark.integration

EXCHANGE = "intake.internal"
SUBMITTED = "cn.minqing.report.received.v1"
CLOUDEVENTS_JSON = "application/cloudevents+json"
DLQ = "dispatch.dead-letter"
CONSUMER = "dispatch.open_case"
REASONS = ("not-json", "wrong-content-type", "schema-violation", "unknown-type",
           "bad-envelope", "unexpected-type", "delivery_limit")
MB = 1024 * 1024


def report_data(marker: str, **override) -> dict:
    data = {"report_id": str(uuid.uuid4()), "reporter_id": "resident-test", "channel": "app",
            "category": "dispute-noise", "description": f"噪音扰民 {marker}",
            "address": None, "location": IN_SHIBANQIAO, "attachments": [],
            "submitted_at": datetime.now(UTC).isoformat()}
    data.update(override)
    return data


def cloudevent(data: dict, type_: str = SUBMITTED, **envelope) -> bytes:
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/minqing/intake",
             "type": type_, "subject": data.get("report_id"),
             "time": datetime.now(UTC).isoformat(), "datacontenttype": "application/json",
             "data": data}
    event.update(envelope)
    return json.dumps({k: v for k, v in event.items() if v is not None},
                      ensure_ascii=False).encode()


def not_json(marker):
    return f"not json {marker}".encode(), CLOUDEVENTS_JSON


def plain_text(marker):
    return cloudevent(report_data(marker)), "text/plain"


def schema_violation(marker):
    data = report_data(marker)
    del data["report_id"]
    return cloudevent(data), CLOUDEVENTS_JSON


def unknown_type(marker):
    return cloudevent(report_data(marker), type_="cn.minqing.report.exploded.v1"), \
        CLOUDEVENTS_JSON


def unknown_version(marker):
    return cloudevent(report_data(marker), type_="cn.minqing.report.received.v2"), \
        CLOUDEVENTS_JSON


def bad_envelope(marker):
    return cloudevent(report_data(marker), specversion=None, id=None), CLOUDEVENTS_JSON


def huge(marker):
    return cloudevent(report_data(marker, description=marker + "扰" * (2 * MB // 3))), \
        CLOUDEVENTS_JSON


BAD_MESSAGES = [(not_json, "not-json"), (plain_text, "wrong-content-type"),
                (schema_violation, "schema-violation"), (unknown_type, "unknown-type"),
                (unknown_version, "unknown-type"), (bad_envelope, "bad-envelope"),
                (huge, "too-large")]
BAD_IDS = ["not-json", "wrong-content-type", "schema-violation", "unknown-type",
           "unknown-version", "bad-envelope", "huge"]


@pytest.fixture
def broker(stack):
    with Connection(stack.st.env["AMQP_URI"],
                    transport_options={"confirm_publish": True}) as conn:
        yield conn


def publish(conn: Connection, body: bytes, content_type: str) -> None:
    conn.Producer().publish(body, exchange=EXCHANGE, routing_key=SUBMITTED,
                            content_type=content_type, content_encoding="utf-8",
                            delivery_mode=2, retry=True)


class DeadLetters:
    """dispatch's dead-letter queue, read with basic_get. Messages that are not ours are
    held unacked while we look, then handed back to the queue: nothing is lost."""

    def __init__(self, conn: Connection):
        self.channel = conn.channel()
        self.queue = Queue(DLQ, no_declare=True)(self.channel)
        self.taken: list = []
        self.held: list = []

    def take(self, marker: str, timeout: float = 20.0):
        """The dead-lettered message whose body carries `marker`."""
        def arrived():
            while True:
                mine = next((m for m in self.held if marker.encode() in m.body), None)
                if mine is not None:
                    self.held.remove(mine)
                    self.taken.append(mine)
                    return mine
                message = self.queue.get(no_ack=False)
                if message is None:
                    return None
                self.held.append(message)
        return wait_for(arrived, timeout, what=f"message {marker} in {DLQ}", interval=0.1)

    def close(self) -> None:
        for message in self.taken:
            message.ack()
        for message in self.held:
            message.requeue()
        self.channel.close()


@pytest.fixture
def dead_letters(broker):
    dlq = DeadLetters(broker)
    yield dlq
    dlq.close()


def dead_lettered(stack) -> dict[str, float]:
    return {reason: stack.metric("dispatch", "minqing_dead_lettered_total",
                                 consumer=CONSUMER, reason=reason) for reason in REASONS}


@pytest.mark.parametrize("make, reason", BAD_MESSAGES, ids=BAD_IDS)
def test_a_malformed_message_is_dead_lettered_with_its_reason(stack, broker, dead_letters,
                                                              make, reason):
    # Given a message dispatch.open_case cannot handle
    marker = f"marker-{uuid.uuid4().hex}"
    body, content_type = make(marker)
    before = dead_lettered(stack)
    # When it is published where the consumer listens
    publish(broker, body, content_type)
    # Then it arrives in the dead-letter queue, saying why and who refused it
    message = dead_letters.take(marker)
    headers = message.headers
    assert headers["x-minqing-consumer"] == CONSUMER, headers
    if reason is None:
        reason = headers["x-minqing-reason"]
        assert reason, headers
    else:
        assert headers["x-minqing-reason"] == reason, headers
    assert message.body == body
    # And it is counted under its reason
    wait_for(lambda: stack.metric("dispatch", "minqing_dead_lettered_total",
                                  consumer=CONSUMER, reason=reason)
             >= before.get(reason, 0.0) + 1, what=f"the {reason} dead-letter count to move")


def test_the_consumer_keeps_going_after_malformed_messages(stack, broker):
    # Given every kind of malformed message was published ahead of a good one
    for make, _ in BAD_MESSAGES:
        publish(broker, *make(f"marker-{uuid.uuid4().hex}"))
    dispatch_process = stack.procs["dispatch"]
    # When a resident submits a report through the gateway
    r = stack.client("resident-zhang").report(description="小区垃圾桶满溢无人清运")
    assert r.status_code == 201, r.text
    # Then it gets its case, from the same dispatch process: nothing crashed or blocked
    wait_for(lambda: stack.case_for(r.json()["id"]), what="the case of the good report")
    assert dispatch_process.poll() is None
