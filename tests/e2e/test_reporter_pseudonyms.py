"""Who reported stays hidden (issue #10, findings 2, 3, 4 and the rating comment of 10).

- A partner bound to the public exchanges (kombu and the CloudEvents SDK, nothing of
  ours) follows a report through its whole life, ending in a rating with a comment, and
  learns nothing of who reported it: no reporter id, no caller id, no phone, no comment.
- A phone caller's id is the keyed HMAC of her number under the installation's key.
- A leader reads the reports of cases in the units they lead, and no others.
- The handler whose work is rated never reads the reporter's comment.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_rabbitmq
from cloudevents.core.formats.json import JSONFormat
from kombu import Connection, Consumer, Exchange, Queue, binding

from minqing_kernel.consumer import declare_topology
from services.dispatch.service import DispatchService
from tests.fixtures import wait_for
from tools import rekey_callers
from tools.partners import Broker

pytestmark = pytest.mark.integration

RESIDENT = "resident-zhang"
CALLER_PHONE = "13912345678"
COMMENT = "我是三楼的王阿姨，处理得太慢了"
UNIT = "comm-shibanqiao"        # where a report in Shibanqiao is routed
HANDLER = "handler-shibanqiao"
LEADER_OF_UNIT = "leader-shibanqiao"
LEADER_ELSEWHERE = "leader-wujiang"
SUBMITTED = "cn.minqing.report.submitted.v1"


class PublicListener:
    """A partner's view: its own queue bound to everything on the public exchanges."""

    def __init__(self, amqp_uri: str):
        self.conn = Connection(amqp_uri, heartbeat=0)
        self.received: list = []  # (raw body, CloudEvent)
        queue = Queue(f"outsider.{uuid.uuid4().hex}", exclusive=True, auto_delete=True,
                      bindings=[binding(Exchange(name, type="topic", durable=True),
                                        routing_key="#")
                                for name in ("intake.events", "dispatch.events")])
        self.consumer = Consumer(self.conn.channel(), queues=[queue],
                                 on_message=self._on_message, accept=[])
        self.consumer.consume()

    def _on_message(self, message) -> None:
        ce = from_rabbitmq(RabbitMQMessage(
            headers={k: str(v) for k, v in (message.headers or {}).items()},
            content_type=message.content_type, body=message.body), JSONFormat())
        self.received.append((message.body.decode("utf-8"), ce))
        message.ack()

    def drain_until(self, done, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                seen = [ce.get_type() for _, ce in self.received]
                raise AssertionError(f"timed out; received {seen}")
            try:
                self.conn.drain_events(timeout=0.5)
            except TimeoutError:
                pass

    def about(self, *subjects: str) -> list:
        return [(body, ce) for body, ce in self.received if ce.get_subject() in subjects]

    def close(self) -> None:
        self.consumer.cancel()
        self.conn.release()


@pytest.fixture
def outsider(stack):
    listener = PublicListener(stack.st.env["AMQP_URI"])
    yield listener
    listener.close()


def act(client, case_id: str, action: str, **fields) -> dict:
    r = client.post(f"/v1/cases/{case_id}/actions", json={"action": action, **fields})
    assert r.status_code == 200, r.text
    return r.json()


def submitted(stack, client, **fields) -> tuple[str, str]:
    """(report id, case id) of a report `client` submits."""
    r = client.report(**fields)
    assert r.status_code == 201, r.text
    report_id = r.json()["id"]
    case_id = wait_for(lambda: stack.case_for(report_id), what="the case")
    return report_id, case_id


def rated_case(stack, reporter, rating: int, comment: str, **report) -> tuple[str, str]:
    """A report by `reporter`, assigned to UNIT, accepted, resolved and rated."""
    operator, handler = stack.client("operator-chen"), stack.client(HANDLER)
    report_id, case_id = submitted(stack, reporter, **report)
    act(operator, case_id, "assign", unit_id=UNIT)
    act(handler, case_id, "accept")
    act(handler, case_id, "resolve", result="已协调施工单位，夜间停工")
    r = reporter.post(f"/v1/cases/{case_id}/feedback",
                      json={"rating": rating, "comment": comment})
    assert r.status_code == 200, r.text
    return report_id, case_id


def caller_id(key: str, phone: str) -> str:
    digest = hmac.new(key.encode(), f"minqing-caller:{phone}".encode(), hashlib.sha256)
    return "caller-" + digest.hexdigest()[:32]


def test_a_partner_on_the_public_exchanges_learns_nobodys_identity_from_a_whole_case(
        stack, outsider):
    # Given a partner listening to everything on intake.events and dispatch.events
    resident = stack.client(RESIDENT)
    operator = stack.client("operator-chen")
    # When a resident's report lives through to a rating with a comment, and a caller's
    # report is taken on the phone
    report_id, case_id = rated_case(stack, resident, 5, COMMENT,
                                    description=f"深夜施工噪音 {uuid.uuid4().hex[:6]}")
    phone_report, phone_case = submitted(stack, operator, channel="phone",
                                         caller_phone=CALLER_PHONE,
                                         description="来电反映：楼道堆放杂物")
    caller = stack.scalar("SELECT reporter_id FROM intake.reports WHERE id = :i",
                          i=phone_report)
    outsider.drain_until(lambda: {"cn.minqing.case.closed.v1", "cn.minqing.report.submitted.v1"}
                         <= {ce.get_type() for _, ce in outsider.about(case_id, report_id)}
                         and len(outsider.about(phone_report, phone_case)) >= 2)
    events = outsider.about(report_id, case_id, phone_report, phone_case)
    # Then no event names the reporter, the caller, her number or her words
    for body, ce in events:
        for secret in (RESIDENT, resident.user["id"], caller, CALLER_PHONE, COMMENT):
            assert secret not in body, (ce.get_type(), secret)
        assert "reporter_id" not in body, ce.get_type()
    # And the rating is there, by the role `reporter` alone
    closed = [ce.get_data() for _, ce in events if ce.get_type() == "cn.minqing.case.closed.v1"]
    assert len(closed) == 1
    assert closed[0]["actor"] == {"id": None, "role": "reporter"}
    assert closed[0]["rating"] == 5 and closed[0]["note"] is None
    # While dispatch, on the internal channel, still knows who may follow and rate it
    assert resident.get(f"/v1/cases/{case_id}").json()["reporter_ids"] == [resident.user["id"]]


def test_a_phone_callers_id_is_the_keyed_hmac_of_the_installation(stack):
    # Given an operator taking a call
    operator = stack.client("operator-chen")
    report_id, _ = submitted(stack, operator, channel="phone", caller_phone=CALLER_PHONE,
                             description="来电反映：路灯不亮")
    # Then the caller's id is the HMAC of her number under this installation's key
    shown = operator.get(f"/v1/reports/{report_id}").json()["reporter_id"]
    assert shown == caller_id(stack.st.env.get("CALLER_ID_KEY", ""), CALLER_PHONE)
    # and not what anyone can compute from the number alone
    unkeyed = hashlib.sha256(f"minqing-caller:{CALLER_PHONE}".encode()).hexdigest()
    assert shown.removeprefix("caller-") not in (unkeyed[:16], unkeyed[:32])
    assert shown != caller_id("another installation's key, just as long", CALLER_PHONE)


def test_a_leader_reads_and_lists_only_reports_whose_case_is_in_a_unit_they_lead(stack):
    # Given a report whose case is assigned to the Shibanqiao community
    resident, operator = stack.client("resident-li"), stack.client("operator-chen")
    report_id, case_id = submitted(stack, resident,
                                   description=f"占道经营 {uuid.uuid4().hex[:6]}")
    act(operator, case_id, "assign", unit_id=UNIT)
    # When the leader of another community asks for it, or lists reports
    elsewhere = stack.client(LEADER_ELSEWHERE)
    r = elsewhere.get(f"/v1/reports/{report_id}")
    assert r.status_code in (403, 404), r.text
    assert resident.user["id"] not in r.text
    listed = elsewhere.get("/v1/reports", params={"limit": 100}).json()
    # Then it is refused, and not listed
    assert report_id not in {i["id"] for i in listed["items"]}
    # While the leader of the unit that handles it reads it and lists it
    own = stack.client(LEADER_OF_UNIT)
    assert own.get(f"/v1/reports/{report_id}").status_code == 200
    assert report_id in {i["id"] for i in own.get(
        "/v1/reports", params={"limit": 100}).json()["items"]}


def test_the_handler_reads_the_rating_but_not_the_reporters_comment(stack):
    # Given a case its reporter rated with a comment
    resident = stack.client("resident-wang")
    _, case_id = rated_case(stack, resident, 2, COMMENT,
                            description=f"垃圾清运不及时 {uuid.uuid4().hex[:6]}")
    # When the handler of the unit reads the case and its timeline
    handler = stack.client(HANDLER)
    case = handler.get(f"/v1/cases/{case_id}")
    timeline = handler.get(f"/v1/cases/{case_id}/timeline")
    # Then the rating is there, the comment is not
    assert case.status_code == timeline.status_code == 200, (case.text, timeline.text)
    assert case.json()["rating"] == 2 and case.json()["feedback"] is None
    assert COMMENT not in case.text and COMMENT not in timeline.text
    assert COMMENT not in json.dumps(handler.get("/v1/inbox").json(), ensure_ascii=False)
    # While the reporter and the command center read it
    for reader in (resident, stack.client("operator-chen")):
        assert reader.get(f"/v1/cases/{case_id}").json()["feedback"] == COMMENT
        assert COMMENT in reader.get(f"/v1/cases/{case_id}/timeline").text


def test_provisioning_unbinds_dispatch_from_the_public_report_event_it_used_to_consume(stack):
    # Given a broker provisioned before the reporter moved to the internal event:
    # dispatch.open_case bound to report.submitted on intake.events too
    amqp_uri = stack.st.env["AMQP_URI"]
    broker = Broker.from_uri(amqp_uri)
    path = (f"bindings/{quote(broker.vhost, safe='')}/e/intake.events/q/dispatch.open_case")
    with Connection(amqp_uri) as conn:
        channel = conn.default_channel
        channel.exchange_declare("intake.events", "topic", durable=True, auto_delete=False)
        channel.queue_bind("dispatch.open_case", "intake.events", SUBMITTED)
    assert [b["routing_key"] for b in broker.call("GET", path).json()] == [SUBMITTED]
    # When provisioning declares dispatch's queues again
    declare_topology(DispatchService, amqp_uri)
    # Then the public binding is gone (its events would only be dead-lettered there),
    # and the queue is bound to the internal event
    assert broker.call("GET", path).json() == []
    internal = broker.call("GET", path.replace("intake.events", "intake.internal")).json()
    assert [b["routing_key"] for b in internal] == ["cn.minqing.report.received.v1"]


def test_a_caller_with_an_unkeyed_id_from_before_gets_the_keyed_one_in_intake_and_dispatch(
        stack):
    # Given a phone report whose caller still has the old, unkeyed id (in intake, and in
    # dispatch's copy on her case), as reports made before the key have
    operator = stack.client("operator-chen")
    phone = "13700001234"
    report_id, case_id = submitted(stack, operator, channel="phone", caller_phone=phone,
                                   description="来电反映：电梯故障")
    legacy = "caller-" + hashlib.sha256(f"minqing-caller:{phone}".encode()).hexdigest()[:16]
    keyed = caller_id(stack.st.env["CALLER_ID_KEY"], phone)
    with stack.engine.begin() as conn:
        conn.execute(sa.text("UPDATE intake.reports SET reporter_id = :l WHERE id = :i"),
                     {"l": legacy, "i": report_id})
        conn.execute(sa.text("UPDATE dispatch.cases SET reporter_ids = ARRAY[:l]::varchar[] "
                             "WHERE id = :c"), {"l": legacy, "c": case_id})
    # When the caller ids are rekeyed under the installation's key
    assert rekey_callers.rekey(stack.engine, stack.st.env["CALLER_ID_KEY"].encode()) >= 1
    # Then both places hold the keyed id, and nothing holds the old one
    assert operator.get(f"/v1/reports/{report_id}").json()["reporter_id"] == keyed
    assert operator.get(f"/v1/cases/{case_id}").json()["reporter_ids"] == [keyed]
    assert stack.scalar("SELECT count(*) FROM intake.reports WHERE reporter_id = :l",
                        l=legacy) == 0
    # And a second run finds nothing left to do
    assert rekey_callers.rekey(stack.engine, stack.st.env["CALLER_ID_KEY"].encode()) == 0
