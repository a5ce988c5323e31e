"""An outside district platform reads our events with kombu and the CloudEvents SDK alone.

This module plays that platform: it imports nothing of minqing_kernel or the services,
only kombu, the CloudEvents SDK, jsonschema and the published contracts
(contracts/events/<type>.json). It binds its own queue to the exchanges documented in
contracts/asyncapi.yaml, then watches one report travel the core loop.
"""
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_rabbitmq
from cloudevents.core.formats.json import JSONFormat
from jsonschema import Draft202012Validator
from kombu import Connection, Consumer, Exchange, Queue, binding

from tests.fixtures import JPEG

pytestmark = pytest.mark.integration

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "events"
LIFECYCLE = ["screening", "assigned", "accepted", "resolved", "closed"]
CASE_VERBS = ["opened", "assigned", "accepted", "resolved", "closed"]
WANTED = ["cn.minqing.report.submitted.v1"] + [f"cn.minqing.case.{v}.v1" for v in CASE_VERBS]


def schema_validator(type_: str) -> Draft202012Validator:
    schema = json.loads((CONTRACTS / f"{type_}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


class DistrictPlatform:
    """A consumer with its own exclusive, auto-delete queue on our event exchanges."""

    def __init__(self, amqp_uri: str):
        self.conn = Connection(amqp_uri, heartbeat=0)
        self.received: list = []  # (kombu message, CloudEvent)
        queue = Queue(
            f"district-platform.{uuid.uuid4().hex}", exclusive=True, auto_delete=True,
            bindings=[
                binding(Exchange("intake.events", type="topic", durable=True),
                        routing_key="cn.minqing.report.#"),
                binding(Exchange("dispatch.events", type="topic", durable=True),
                        routing_key="cn.minqing.case.#"),
            ])
        self.consumer = Consumer(self.conn.channel(), queues=[queue],
                                 on_message=self._on_message, accept=[])
        self.consumer.consume()  # declares the exchanges, the queue and its bindings

    def _on_message(self, message) -> None:
        ce = from_rabbitmq(RabbitMQMessage(
            headers={k: str(v) for k, v in (message.headers or {}).items()},
            content_type=message.content_type, body=message.body), JSONFormat())
        self.received.append((message, ce))
        message.ack()

    def wait_for(self, done, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [(ce.get_type(), ce.get_subject()) for _, ce in self.received]
                raise AssertionError(f"timed out after {timeout}s; received {seen}")
            try:
                self.conn.drain_events(timeout=min(1.0, remaining))
            except TimeoutError:
                pass

    def about(self, *subjects: str) -> dict:
        """The events received about these subjects, by type (each type at most once)."""
        out: dict = {}
        for message, ce in self.received:
            if ce.get_subject() in subjects:
                assert ce.get_type() not in out, f"{ce.get_type()} received twice"
                out[ce.get_type()] = (message, ce)
        return out

    def close(self) -> None:
        self.consumer.cancel()
        self.conn.release()


@pytest.fixture
def district(stack):
    platform = DistrictPlatform(stack.st.env["AMQP_URI"])
    yield platform
    platform.close()


def test_a_consumer_with_only_kombu_and_the_cloudevents_sdk_reads_every_step_of_a_case(
        stack, district):
    resident = stack.client("resident-zhang")
    operator = stack.client("operator-chen")
    handler = stack.client("handler-shibanqiao")

    # Given a district platform bound to our exchanges before anything happens (above),
    # when a report travels the whole loop: submitted with a photo, assigned, accepted,
    # resolved and rated
    photo = resident.upload(JPEG)
    r = resident.report(description="小区门口深夜烧烤摊油烟噪音扰民", attachments=[photo])
    assert r.status_code == 201, r.text
    report_id = r.json()["id"]
    district.wait_for(lambda: stack.case_for(report_id))
    case_id = stack.case_for(report_id)
    for who, action in ((operator, "assign"), (handler, "accept")):
        r = who.post(f"/v1/cases/{case_id}/actions", json={"action": action})
        assert r.status_code == 200, r.text
    r = handler.post(f"/v1/cases/{case_id}/actions",
                     json={"action": "resolve", "result": "已联系摊主，改为 21 点前收摊"})
    assert r.status_code == 200, r.text
    r = resident.post(f"/v1/cases/{case_id}/feedback", json={"rating": 5})
    assert r.status_code == 200, r.text

    # Then it receives report.submitted and every case.* event of the journey
    district.wait_for(lambda: set(WANTED) <= set(district.about(report_id, case_id)))
    events = district.about(report_id, case_id)
    assert set(events) == set(WANTED)

    ids = []
    for type_, (message, ce) in events.items():
        is_report = type_.startswith("cn.minqing.report.")
        # each is a persistent, structured-mode CloudEvents 1.0 message
        assert message.content_type == "application/cloudevents+json", type_
        assert message.properties["delivery_mode"] == 2, type_
        assert ce.get_specversion() == "1.0", type_
        assert ce.get_source() == ("/minqing/intake" if is_report else "/minqing/dispatch")
        assert ce.get_subject() == (report_id if is_report else case_id), type_
        assert ce.get_time().utcoffset() == timedelta(0), (type_, ce.get_time())
        assert ce.get_datacontenttype() == "application/json", type_
        ids.append(ce.get_id())
        # and its data is valid against the published contract
        errors = [e.message for e in schema_validator(type_).iter_errors(ce.get_data())]
        assert errors == [], (type_, errors)
    assert len(set(ids)) == len(ids) == len(WANTED)
    assert all(str(uuid.UUID(i)) == i for i in ids)

    # And the report event is the report the resident submitted, with her photo
    submitted = events["cn.minqing.report.submitted.v1"][1].get_data()
    assert submitted["report_id"] == report_id
    assert [a["key"] for a in submitted["attachments"]] == [
        a["key"] for a in resident.get(f"/v1/reports/{report_id}").json()["attachments"]]
    assert len(submitted["attachments"]) == 1 and photo not in str(submitted)

    # And the case events arrive in lifecycle order, each following the one before
    case_events = [ce for _, ce in district.received
                   if ce.get_subject() == case_id and ce.get_type() in WANTED]
    assert [ce.get_data()["status"] for ce in case_events] == LIFECYCLE
    assert [ce.get_data()["previous_status"] for ce in case_events][1:] == LIFECYCLE[:-1]
    assert all(ce.get_data()["case_id"] == case_id for ce in case_events)
    assert all(report_id in ce.get_data()["report_ids"] for ce in case_events)
    assert case_events[-1].get_data()["rating"] == 5
