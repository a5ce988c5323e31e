"""A partner platform hands us reports and follows them, with kombu and the CloudEvents SDK.

This module plays two district platforms. Beyond the fixtures that start the stack and
make each one's RabbitMQ user (as `make partner NAME=...` does), it uses only kombu, the
CloudEvents SDK and what contracts/asyncapi.yaml tells a partner: the exchanges, the
routing keys, the queue names it may use, the user_id rule and how report ids are made.
The broker, not our code, stops a partner from doing more (ACCESS_REFUSED).
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_rabbitmq, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from kombu import Connection, Producer

from tests.fixtures import IN_SHIBANQIAO, wait_for

pytestmark = pytest.mark.integration

INBOUND = "partners.inbound"
REPORT = "cn.minqing.partner_report.submitted.v1"
CE_JSON = "application/cloudevents+json"
# From contracts/asyncapi.yaml: the report made of an event is uuid5(this, "<user>:<id>").
REPORTS_NAMESPACE = uuid.UUID("55441305-8d63-59e2-b399-fdf46188ca28")
FORMAT = JSONFormat()


class Partner:
    """A partner platform's connection to our broker, as its own RabbitMQ user."""

    def __init__(self, user: str, amqp_uri: str):
        self.user = user
        self.name = user.removeprefix("partner-")
        self.conn = Connection(amqp_uri, heartbeat=0,
                               transport_options={"confirm_publish": True})
        self.conn.connect()

    def queue(self, suffix: str) -> str:
        return f"partner.{self.name}.{suffix}"

    def follow(self, suffix: str, bindings: list[tuple[str, str]]) -> str:
        """Declare its own queue and bind it to our exchanges (never declaring those)."""
        channel = self.conn.channel()
        name = self.queue(suffix)
        channel.queue_declare(name, durable=True, auto_delete=False,
                              arguments={"x-queue-type": "quorum"})
        for exchange, routing_key in bindings:
            channel.queue_bind(name, exchange, routing_key)
        channel.close()
        return name

    def report(self, data: dict, event_id: str | None = None, user_id: str | None = "self",
               body: bytes | None = None) -> str:
        """Publish a report event to the inbound exchange; returns the event id."""
        event_id = event_id or str(uuid.uuid4())
        message = to_structured(CloudEvent(attributes={
            "id": event_id, "type": REPORT, "source": f"//platform.example/{self.name}",
            "specversion": "1.0", "datacontenttype": "application/json"}, data=data), FORMAT)
        properties = {} if user_id is None else {
            "user_id": self.user if user_id == "self" else user_id}
        self.publish(INBOUND, REPORT, body if body is not None else message.body,
                     message.content_type, **properties)
        return event_id

    def publish(self, exchange: str, routing_key: str, body: bytes,
                content_type: str = CE_JSON, channel=None, **properties) -> None:
        Producer(channel or self.conn.channel()).publish(
            body, exchange=exchange, routing_key=routing_key, content_type=content_type,
            content_encoding="utf-8", delivery_mode=2, mandatory=True, **properties)

    def take(self, queue: str, match, timeout: float = 30.0):
        """The first message on its queue for which match(message, CloudEvent or None)."""
        channel = self.conn.channel()
        seen = []

        def arrived():
            while (message := channel.basic_get(queue, no_ack=False)) is not None:
                seen.append(message)
                channel.basic_ack(message.delivery_tag)
                try:
                    ce = from_rabbitmq(RabbitMQMessage(
                        headers={k: str(v) for k, v in (message.headers or {}).items()},
                        content_type=message.content_type, body=message.body), FORMAT)
                except Exception:  # a rejection carries the bad body back: not always a CE
                    ce = None
                if match(message, ce):
                    return message, ce
            return None
        try:
            return wait_for(arrived, timeout, what=f"a matching message on {queue}",
                            interval=0.1)
        finally:
            channel.close()

    def close(self) -> None:
        self.conn.release()


def refused(attempt) -> str:
    """What the broker said when it refused `attempt` (which must be refused)."""
    with pytest.raises(Exception) as caught:  # amqp's AccessRefused, via kombu
        attempt()
    assert getattr(caught.value, "reply_code", None) == 403 or \
        "ACCESS_REFUSED" in str(caught.value), repr(caught.value)
    return str(caught.value)


def report_data(marker: str, **override) -> dict:
    data = {"category": "dispute-noise", "description": f"小区夜间施工噪音扰民 {marker}",
            "location": IN_SHIBANQIAO, "address": "始版桥直街 8 号"}
    data.update(override)
    return data


def report_id_of(user: str, event_id: str) -> str:
    return str(uuid.uuid5(REPORTS_NAMESPACE, f"{user}:{event_id}"))


@pytest.fixture(scope="module")
def district_a(partner_user):
    partner = Partner(*partner_user("district_a"))
    yield partner
    partner.close()


@pytest.fixture(scope="module")
def district_b(partner_user):
    partner = Partner(*partner_user("district_b"))
    yield partner
    partner.close()


def test_a_partner_report_becomes_a_case_and_the_partner_follows_it_on_its_own_queue(
        stack, district_a):
    # Given partner A follows report and case events on a queue of its own
    events = district_a.follow("events", [("intake.events", "cn.minqing.report.submitted.v1"),
                                          ("dispatch.events", "cn.minqing.case.#")])
    # When it publishes a report into the inbound exchange as itself
    marker = uuid.uuid4().hex
    event_id = district_a.report(report_data(marker))
    report_id = report_id_of(district_a.user, event_id)
    # Then its report.submitted comes back on its queue, the report's id made from its
    # user and event id, submitted on the partner channel by the partner itself
    _, submitted = district_a.take(events, lambda m, ce: ce and ce.get_subject() == report_id)
    assert submitted.get_type() == "cn.minqing.report.submitted.v1"
    data = submitted.get_data()
    assert data["channel"] == "partner" and "reporter_id" not in data
    assert marker in data["description"]
    # And the case dispatch opened for it, waiting for the command center's screening
    _, opened = district_a.take(events, lambda m, ce: ce and report_id in (
        ce.get_data() or {}).get("report_ids", []))
    assert opened.get_type() == "cn.minqing.case.opened.v1"
    assert opened.get_data()["status"] == "screening"


def test_the_same_event_twice_makes_one_report(stack, district_a):
    # Given a report event partner A has published
    marker = uuid.uuid4().hex
    event_id = district_a.report(report_data(marker))
    accepted = stack.metric("intake", "minqing_partner_reports_total",
                            partner=district_a.name, outcome="accepted")
    # When it publishes the same event again (a retry after a lost confirm)
    district_a.report(report_data(marker), event_id=event_id)
    wait_for(lambda: stack.metric("intake", "minqing_partner_reports_total",
                                  partner=district_a.name, outcome="accepted") >= accepted + 1,
             what="intake to handle the repeat")
    # Then there is one report, with the id made of its user and event id
    assert stack.scalar("SELECT count(*) FROM intake.reports WHERE description LIKE :m",
                        m=f"%{marker}") == 1
    assert stack.scalar("SELECT id::text FROM intake.reports WHERE description LIKE :m",
                        m=f"%{marker}") == report_id_of(district_a.user, event_id)


def test_two_partners_may_use_the_same_event_id(stack, district_a, district_b):
    # Given both partners publish a report under the same event id
    event_id = str(uuid.uuid4())
    markers = {p.user: uuid.uuid4().hex for p in (district_a, district_b)}
    for partner in (district_a, district_b):
        partner.report(report_data(markers[partner.user]), event_id=event_id)
    # Then each gets its own report
    for user, marker in markers.items():
        row = wait_for(lambda u=user: stack.scalar(
            "SELECT reporter_id || ' ' || description FROM intake.reports WHERE id = :i",
            i=report_id_of(u, event_id)), what=f"the report of {user}")
        assert row.startswith(f"{user} ") and row.endswith(marker)


REFUSALS = {  # reason -> (data, raw body) of a message intake cannot accept
    "not-json": lambda m: (None, f"{{not json {m}".encode()),
    "schema-violation": lambda m: ({**report_data(m), "reporter": "not in the schema"}, None),
    "unknown-category": lambda m: ({**report_data(m), "category": "alien-invasion"}, None),
    "out-of-area": lambda m: ({**report_data(m), "location": {"lat": 39.9042,
                                                              "lon": 116.4074}}, None),
}


@pytest.mark.parametrize("reason", list(REFUSALS))
def test_what_cannot_be_accepted_comes_back_to_the_partner_with_a_reason(
        stack, district_a, reason):
    # Given a report intake cannot accept, published by partner A
    marker = uuid.uuid4().hex
    data, body = REFUSALS[reason](marker)
    sent_back = stack.metric("intake", "minqing_sent_back_total",
                             consumer="intake.accept_partner_report", reason=reason)
    district_a.report(data or {}, body=body)
    # Then it comes back unchanged on A's own rejection queue, saying why in both languages
    message, _ = district_a.take(district_a.queue("rejected"),
                                 lambda m, ce: marker.encode() in m.body)
    headers = message.headers
    assert headers["x-minqing-reason"] == reason, headers
    assert headers["x-minqing-detail"], headers
    assert headers["x-minqing-consumer"] == "intake.accept_partner_report"
    if reason not in ("not-json", "schema-violation"):
        assert headers["x-minqing-detail-zh"], headers
    # And it is counted as sent back, by reason; and no report was made of it
    wait_for(lambda: stack.metric("intake", "minqing_sent_back_total",
                                  consumer="intake.accept_partner_report", reason=reason)
             >= sent_back + 1, what=f"the {reason} count to move")
    assert stack.scalar("SELECT count(*) FROM intake.reports WHERE description LIKE :m",
                        m=f"%{marker}%") == 0


def test_a_report_without_the_partners_user_id_is_not_accepted(stack, district_a):
    # Given a report published without the user_id property
    marker = uuid.uuid4().hex
    before = stack.metric("intake", "minqing_dead_lettered_total",
                          consumer="intake.accept_partner_report", reason="unknown-partner")
    district_a.report(report_data(marker), user_id=None)
    # Then intake refuses it (to its own dead-letter queue: it cannot know whose it is)
    wait_for(lambda: stack.metric("intake", "minqing_dead_lettered_total",
                                  consumer="intake.accept_partner_report",
                                  reason="unknown-partner") >= before + 1,
             what="the refusal to be counted")
    assert stack.scalar("SELECT count(*) FROM intake.reports WHERE description LIKE :m",
                        m=f"%{marker}") == 0


def test_a_partner_cannot_speak_as_another(district_a, district_b):
    # When partner A sets partner B's user as the message's user_id, the broker refuses it
    with pytest.raises(Exception) as caught:
        district_a.report(report_data("impostor"), user_id=district_b.user)
    assert "user_id" in str(caught.value), repr(caught.value)


def test_a_partner_cannot_read_another_partners_queues(district_a, district_b):
    # Given partner A's own queues (its events and its rejections)
    events = district_a.follow("private", [("dispatch.events", "cn.minqing.case.#")])
    for queue in (events, district_a.queue("rejected")):
        # Then partner B can neither take a message from them nor consume them
        refused(lambda q=queue: district_b.conn.channel().basic_get(q))
        refused(lambda q=queue: district_b.conn.channel().basic_consume(q, callback=print))


def test_a_partner_cannot_publish_to_our_internal_exchanges(district_a):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    forged = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "type":
                         "cn.minqing.report.submitted.v1", "source": "/minqing/intake",
                         "time": now, "datacontenttype": "application/json",
                         "data": {}}).encode()
    # Then the broker refuses its messages to our event exchanges, to the dead letters,
    # and into our consumers' queues through the default exchange
    for exchange, key in (("intake.events", "cn.minqing.report.submitted.v1"),
                          ("intake.internal", "cn.minqing.report.received.v1"),
                          ("dispatch.events", "cn.minqing.case.closed.v1"),
                          ("minqing.dead-letter", "dispatch"),
                          ("partners.rejections", district_a.name),
                          ("", "dispatch.open_case")):
        refused(lambda e=exchange, k=key: district_a.publish(e, k, forged))


def test_a_partner_cannot_declare_or_bind_what_is_not_its_own(district_a, district_b):
    channel = district_a.conn.channel
    b_queue = district_b.queue("events")
    # Then it cannot declare a queue of another partner's or of ours
    refused(lambda: channel().queue_declare(b_queue, durable=True))
    refused(lambda: channel().queue_declare("dispatch.open_case", passive=False, durable=True,
                                            arguments={"x-queue-type": "quorum"}))
    # nor declare (create or change) an exchange outside its own names
    refused(lambda: channel().exchange_declare("dispatch.events", "topic", durable=True))
    refused(lambda: channel().exchange_declare("partners.inbound", "fanout", durable=True))
    refused(lambda: channel().exchange_declare("minqing.anything", "topic"))
    # nor bind its own queue to the inbound exchange, where the other partners' reports go,
    # or to the rejections exchange, where theirs come back
    own = district_a.follow("spy", [])
    refused(lambda: channel().queue_bind(own, "partners.inbound", "#"))
    refused(lambda: channel().queue_bind(own, "partners.rejections", "#"))


def test_a_partner_cannot_bind_to_our_internal_exchanges_where_reporters_are_named(
        stack, district_a):
    # Given intake's internal exchange, which carries who reported each report (dispatch
    # consumes it, so it exists while the stack runs)
    channel = district_a.conn.channel
    own = district_a.follow("internal-spy", [])
    # Then the partner can bind its own queue neither to it nor to dispatch's, with any key
    for exchange in ("intake.internal", "dispatch.internal"):
        for key in ("cn.minqing.report.received.v1", "#"):
            refused(lambda e=exchange, k=key: channel().queue_bind(own, e, k))
    # nor declare it (even passively, to learn that it is there, is fine; creating is not)
    refused(lambda: channel().exchange_declare("intake.internal", "topic", durable=True))
    # nor read the queue that consumes it
    refused(lambda: channel().basic_get("dispatch.open_case"))
