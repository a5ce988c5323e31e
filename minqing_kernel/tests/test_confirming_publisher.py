"""The confirming publisher: a batch returns only when the broker has confirmed every
message, and a dead connection is replaced rather than fatal. Against the real broker.
"""
import time
import uuid

import pytest
from kombu import Connection

from minqing_kernel.outbox import ConfirmingPublisher

pytestmark = pytest.mark.integration

BROKER = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def channel():
    with Connection(BROKER) as conn:
        yield conn.default_channel


@pytest.fixture
def queue(channel):
    """A uniquely named queue on the default exchange, gone when the test ends."""
    name = f"test.confirming-publisher.{uuid.uuid4().hex}"
    channel.queue_declare(name, durable=False, exclusive=True, auto_delete=False)
    yield name
    channel.queue_delete(name)


@pytest.fixture
def publisher():
    publisher = ConfirmingPublisher(BROKER, confirm_timeout=30)
    yield publisher
    publisher.close()


def depth(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).message_count


def wait_for_depth(channel, queue: str, expected: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := depth(channel, queue)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def messages(queue: str, n: int, tag: str = "m"):
    return [("", queue, f'{{"n": {i}, "tag": "{tag}"}}'.encode(), {"x-n": i}) for i in range(n)]


def test_a_batch_of_a_thousand_returns_only_when_all_are_confirmed_and_all_arrive(
        publisher, channel, queue):
    # When a batch of 1,000 is published
    publisher.publish(messages(queue, 1000))

    # Then on return nothing is waiting for a confirm
    assert publisher._pending == set()
    # And all 1,000 are in the queue
    assert wait_for_depth(channel, queue, 1000) == 1000


def test_messages_go_out_persistent_in_structured_cloudevents_mode(publisher, channel, queue):
    publisher.publish(messages(queue, 1))
    wait_for_depth(channel, queue, 1)
    message = channel.basic_get(queue, no_ack=True)
    assert message.properties["content_type"] == "application/cloudevents+json"
    assert message.properties["delivery_mode"] == 2
    assert message.headers["x-n"] == 0


def test_after_its_connection_breaks_the_next_publish_reconnects_and_succeeds(
        publisher, channel, queue):
    # Given a publisher that has published once, whose connection then breaks
    publisher.publish(messages(queue, 10, "before"))
    publisher._conn.close()

    # When it publishes the next batch
    publisher.publish(messages(queue, 10, "after"))

    # Then that batch went out on a new connection, and everything arrived
    assert publisher._conn is not None and publisher._conn.connected
    assert wait_for_depth(channel, queue, 20) == 20
