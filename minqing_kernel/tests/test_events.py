"""The event envelope: what we write is what an outside consumer reads, and nothing else
gets in.

Unit tests: no broker, no database.
"""
import json
import uuid

import pytest
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_rabbitmq
from cloudevents.core.formats.json import JSONFormat

from minqing_kernel import events as ev

SUBMITTED = ev.event_type("report.submitted")
REPORT_ID = "0b9a1f0e-5f1c-4a55-9d4e-2b8f0f6c1a11"


def submitted_data(**overrides) -> dict:
    data = {
        "report_id": REPORT_ID, "channel": "app",
        "category": "dispute-noise", "description": "楼上深夜装修，噪音扰民",
        "address": "始版桥直街 12 号", "location": {"lat": 30.24115, "lon": 120.18708},
        "attachments": [{"key": "uploads/a.jpg", "content_type": "image/jpeg", "size": 2059}],
        "submitted_at": "2025-03-01T08:00:00+00:00",
    }
    data.update(overrides)
    return data


def envelope(**overrides) -> dict:
    body = {"specversion": "1.0", "id": str(uuid.uuid4()), "type": SUBMITTED,
            "source": "/minqing/intake", "subject": REPORT_ID,
            "time": "2025-03-01T08:00:00Z", "datacontenttype": "application/json",
            "data": submitted_data()}
    body.update(overrides)
    return body


def rejection(content_type, body) -> ev.EventRejected:
    with pytest.raises(ev.EventRejected) as caught:
        ev.from_message(content_type, {}, body)
    return caught.value


def test_an_event_written_with_to_body_reads_back_the_same_with_from_message():
    # Given an event built by a service
    event = ev.new_event("intake", SUBMITTED, REPORT_ID, submitted_data(),
                         correlation_id="req-42")

    # When it is written to the wire and read back
    read = ev.from_message(ev.CONTENT_TYPE, {}, ev.to_body(event))

    # Then every attribute survives
    assert (read.id, read.type, read.source, read.subject, read.data, read.correlation_id) == (
        event.id, SUBMITTED, "/minqing/intake", REPORT_ID, event.data, "req-42")
    assert read.time == event.time
    assert read.service == "intake"


def test_the_cloudevents_sdk_alone_reads_a_body_we_write():
    # Given the wire body of an event
    event = ev.new_event("intake", SUBMITTED, REPORT_ID, submitted_data())
    body = ev.to_body(event)

    # When an outside consumer reads it with nothing but the SDK
    ce = from_rabbitmq(RabbitMQMessage(headers={}, content_type="application/cloudevents+json",
                                       body=body), JSONFormat())

    # Then it sees a CloudEvents 1.0 event with our attributes and data
    assert ce.get_specversion() == "1.0"
    assert ce.get_id() == event.id
    assert ce.get_type() == SUBMITTED
    assert ce.get_source() == "/minqing/intake"
    assert ce.get_subject() == REPORT_ID
    assert ce.get_datacontenttype() == "application/json"
    assert ce.get_time().utcoffset() is not None
    assert ce.get_data() == event.data


def test_new_event_ids_are_unique_uuids():
    ids = {ev.new_event("intake", SUBMITTED, REPORT_ID, submitted_data()).id for _ in range(50)}
    assert len(ids) == 50
    assert all(str(uuid.UUID(i)) == i for i in ids)


def test_new_event_refuses_data_that_violates_the_schema():
    # Given data with a latitude outside the globe
    data = submitted_data(location={"lat": 91, "lon": 120.1})

    # When a service tries to emit it, then it is refused before reaching any outbox
    with pytest.raises(ev.EventRejected) as caught:
        ev.new_event("intake", SUBMITTED, REPORT_ID, data)
    assert caught.value.reason == "schema-violation"
    assert "location/lat" in caught.value.detail


def test_new_event_refuses_a_type_without_a_schema():
    with pytest.raises(ev.EventRejected) as caught:
        ev.new_event("intake", ev.event_type("report.teleported"), REPORT_ID, {})
    assert caught.value.reason == "unknown-type"


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_from_message_rejects_a_wrong_content_type(content_type):
    body = json.dumps(envelope()).encode()
    assert rejection(content_type, body).reason == "wrong-content-type"


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00garbage", b""])
def test_from_message_rejects_a_body_that_is_not_json(body):
    assert rejection(ev.CONTENT_TYPE, body).reason == "not-json"


@pytest.mark.parametrize("attribute", ["id", "source", "type", "specversion"])
def test_from_message_rejects_an_envelope_missing_a_required_attribute(attribute):
    # Given a structured-mode body without one of the attributes CloudEvents 1.0 requires
    # (an event without its own id could not be de-duplicated by consumers)
    body = envelope()
    del body[attribute]

    # Then it is not an event
    assert rejection(ev.CONTENT_TYPE, json.dumps(body).encode()).reason == "bad-envelope"


def test_from_message_rejects_json_that_is_not_an_object():
    assert rejection(ev.CONTENT_TYPE, b"[1, 2, 3]").reason == "bad-envelope"


@pytest.mark.parametrize("type_", ["cn.minqing.report.teleported.v1",
                                   "cn.minqing.report.submitted.v9", "com.example.thing"])
def test_from_message_rejects_an_unknown_event_type(type_):
    body = json.dumps(envelope(type=type_)).encode()
    assert rejection(ev.CONTENT_TYPE, body).reason == "unknown-type"


def test_from_message_rejects_data_that_violates_the_schema():
    body = json.dumps(envelope(data=submitted_data(channel="carrier-pigeon"))).encode()
    rejected = rejection(ev.CONTENT_TYPE, body)
    assert rejected.reason == "schema-violation"
    assert "channel" in rejected.detail


# --- audiences: public events for partners, internal ones for our services only -----------

RECEIVED = ev.event_type("report.received")


def test_a_type_whose_schema_is_under_internal_goes_to_the_services_internal_exchange():
    assert ev.audience(RECEIVED) == ev.INTERNAL
    assert ev.exchange_for("intake", RECEIVED) == "intake.internal"


def test_a_type_whose_schema_is_public_goes_to_the_services_events_exchange():
    assert ev.audience(SUBMITTED) == ev.PUBLIC
    assert ev.exchange_for("intake", SUBMITTED) == "intake.events"


def test_a_consumer_of_an_internal_type_binds_to_the_internal_exchange():
    from minqing_kernel.consumer import consumer_queue

    queue = consumer_queue("dispatch", "intake", RECEIVED, "open_case")
    assert (queue.exchange.name, queue.routing_key) == ("intake.internal", RECEIVED)


def test_an_internal_event_is_validated_like_a_public_one():
    with pytest.raises(ev.EventRejected) as raised:
        ev.new_event("intake", RECEIVED, REPORT_ID, submitted_data())  # no reporter_id
    assert raised.value.reason == "schema-violation"
    event = ev.new_event("intake", RECEIVED, REPORT_ID,
                         submitted_data(reporter_id="resident-zhang"))
    assert ev.from_message(ev.CONTENT_TYPE, {}, ev.to_body(event)).data["reporter_id"] == \
        "resident-zhang"


def test_the_public_report_event_refuses_a_reporter():
    with pytest.raises(ev.EventRejected) as raised:
        ev.new_event("intake", SUBMITTED, REPORT_ID, submitted_data(reporter_id="resident-zhang"))
    assert raised.value.reason == "schema-violation"
