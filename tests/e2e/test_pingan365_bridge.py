"""外部联动 end to end: a case handed to 平安365 through the bridge (services/integration365).

The partner is the simulator (services/integration365/simulator.py), run by the test
stack exactly as `make run` runs it. `escalate` files a resident's report through the
gateway and has an operator hand its case to 平安365 (`escalate_external`), so dispatch
emits case.escalated_external; dispatch then turns the partner's external.* events into
the case's next state, which every journey checks at the end.

Each test checks (a) the simulator's records: exactly one work order per case, (b) the
external.* events on a queue of our own bound to `integration365.events`: each expected
type exactly once, in a sensible order, and never again afterwards, and (c) the case in
dispatch: resolved with the partner's result, or returned to the operator.
"""
from __future__ import annotations

import signal
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from kombu import Connection, Consumer, Exchange, Queue

from minqing_kernel import events as ev
from minqing_kernel.outbox import ConfirmingPublisher
from tests.fixtures import IN_SHIBANQIAO, wait_for
from tools import stack as stk

pytestmark = pytest.mark.integration

PARTNER = "ping_an_365"
ACCEPTED, PROGRESS, RESOLVED, REJECTED = (ev.event_type(f"external.{v}") for v in
                                          ("accepted", "progress", "resolved", "rejected"))
FULL_JOURNEY = [ACCEPTED, PROGRESS, RESOLVED]
TIMEOUT = 60.0


# --- the three parties the tests talk to ----------------------------------------------

class Simulator:
    """The 平安365 simulator's admin side: knobs and inspection."""

    def __init__(self, stack):
        self.stack = stack
        self.base = f"http://{stack.st.env['PINGAN365_SIM_ADDRESS']}"
        self.admin = stack.sim_admin_headers

    def configure(self, **knobs) -> dict:
        r = requests.post(f"{self.base}/_sim/config", json=knobs, headers=self.admin,
                          timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def work_orders(self, case_id: str) -> list[dict]:
        r = requests.get(f"{self.base}/_sim/requests", headers=self.admin, timeout=5)
        return [w for w in r.json()["requests"]
                if w["attributes"].get("minqing_case_id") == case_id]

    def command(self, remote_id: str, command: str, **body) -> None:
        r = requests.post(f"{self.base}/_sim/requests/{remote_id}/{command}", json=body,
                          headers=self.admin, timeout=5)
        assert r.status_code == 200, r.text

    def forget(self, remote_id: str) -> None:
        assert requests.delete(f"{self.base}/_sim/requests/{remote_id}",
                               headers=self.admin, timeout=5).status_code == 200

    def kill(self) -> None:
        """SIGKILL: the partner's port refuses connections until `start`."""
        stk.stop_pid(self.stack.st.run_dir / f"{stk.PARTNER_SIM}.pid", signal.SIGKILL)

    def start(self) -> None:
        stk.start_simulator(self.stack.st)


class PartnerEvents:
    """What dispatch will hear: external.* on our own queue bound to integration365.events."""

    def __init__(self, amqp_uri: str):
        self.conn = Connection(amqp_uri, heartbeat=0)
        self.received: list[ev.Event] = []
        queue = Queue(f"test-external.{uuid.uuid4().hex}", exclusive=True, auto_delete=True,
                      exchange=Exchange("integration365.events", type="topic", durable=True),
                      routing_key="cn.minqing.external.#")
        self.consumer = Consumer(self.conn.channel(), queues=[queue], accept=[],
                                 on_message=self._on_message)
        self.consumer.consume()

    def _on_message(self, message) -> None:
        # Read as dispatch will: the kernel's envelope, validated against the contract.
        self.received.append(ev.from_message(message.content_type, message.headers,
                                             message.body))
        message.ack()

    def drain(self) -> None:
        try:
            while True:
                self.conn.drain_events(timeout=0.2)
        except TimeoutError:
            pass

    def about(self, case_id: str) -> list[ev.Event]:
        self.drain()
        return [e for e in self.received if e.subject == case_id]

    def types(self, case_id: str) -> list[str]:
        return [e.type for e in self.about(case_id)]

    def wait_for_type(self, case_id: str, type_: str, timeout: float = TIMEOUT) -> ev.Event:
        wait_for(lambda: type_ in self.types(case_id), timeout,
                 f"{type_} for case {case_id}")
        return next(e for e in self.about(case_id) if e.type == type_)

    def close(self) -> None:
        self.consumer.cancel()
        self.conn.release()


def escalate(stack, description: str = "小区东门外人行道塌陷，需区里协调抢修",
             case_id: str | None = None) -> str:
    """A resident's report whose case the command center hands to 平安365; returns the
    case id. With `case_id`, a second case.escalated_external for that case, published
    as dispatch would (valid against its contract): a repeat the bridge must recognise."""
    if case_id is None:
        r = stack.client("resident-zhang").report(category="hazard-facility",
                                                  description=description,
                                                  location=IN_SHIBANQIAO)
        assert r.status_code == 201, r.text
        report_id = r.json()["id"]
        case_id = wait_for(lambda: stack.case_for(report_id), what="the case")
        r = stack.client("operator-chen").post(
            f"/v1/cases/{case_id}/actions", headers={"X-Request-Id": f"escalation-{case_id}"},
            json={"action": "escalate_external", "partner": PARTNER, "note": "超出街道处置能力"})
        assert r.status_code == 200, r.text
        return case_id
    now = datetime.now(UTC)
    data = {
        "case_id": case_id, "status": "escalated_external", "previous_status": "screening",
        "action": "escalate_external", "category": "hazard-facility",
        "report_ids": [str(uuid.uuid4())], "community_id": "shibanqiao", "unit_id": None,
        "actor": {"id": "operator-chen", "role": "operator"}, "note": "超出街道处置能力",
        "at": now.isoformat(), "partner": PARTNER, "description": description,
        "address": "望江街道石板巷社区", "location": IN_SHIBANQIAO, "attachments": [],
        "resolve_due_at": (now + timedelta(hours=72)).isoformat(),
    }
    event = ev.new_event("dispatch", ev.event_type("case.escalated_external"), case_id, data,
                         correlation_id=f"escalation-{case_id}")
    publisher = ConfirmingPublisher(stack.st.env["AMQP_URI"])
    try:
        publisher.publish([("dispatch.events", event.type, ev.to_body(event), {})])
    finally:
        publisher.close()
    return case_id


@pytest.fixture
def sim(stack):
    simulator = Simulator(stack)
    simulator.configure(fail_rate=0.0, delay_s=0.0, down=False, lose_responses=0,
                        auto_progress=True, step_s=0.3, reject_when="",
                        answer_with_token=False)
    yield simulator
    simulator.start()  # if a test killed it
    simulator.configure(fail_rate=0.0, delay_s=0.0, down=False, lose_responses=0,
                        auto_progress=True)


@pytest.fixture
def partner_events(stack):
    listener = PartnerEvents(stack.st.env["AMQP_URI"])
    yield listener
    listener.close()


# --- what every journey must show -----------------------------------------------------

def polls(stack) -> float:
    return stack.metric("integration365", "minqing_entrypoint_seconds_count",
                        entrypoint="follow_partner_updates")


def settle(stack, partner_events) -> None:
    """Wait for two more polls and the relay, so a duplicate would have shown up."""
    start = polls(stack)
    wait_for(lambda: polls(stack) >= start + 2, 30, "two more polls of 平安365")
    partner_events.drain()


def assert_one_work_order_and_events(stack, sim, partner_events, case_id: str,
                                     expected: list[str]) -> dict:
    settle(stack, partner_events)
    orders = sim.work_orders(case_id)
    assert len(orders) == 1, f"expected one work order for {case_id}, got {orders}"
    events = partner_events.about(case_id)
    assert [e.type for e in events] == expected, [e.type for e in events]
    assert len({e.id for e in events}) == len(events)
    assert all(e.source == "/minqing/integration365" for e in events)
    assert all(e.data["case_id"] == case_id and e.data["partner"] == PARTNER for e in events)
    assert all(e.data["remote_id"] == orders[0]["service_request_id"] for e in events)
    # and exactly those left through the outbox: nothing was emitted twice
    assert stack.scalar("SELECT count(*) FROM integration365.outbox WHERE subject = :c",
                        c=case_id) == len(expected)
    # and dispatch moved the case on: resolved with the partner's result, or sent back
    final = {RESOLVED: "resolved", REJECTED: "returned"}[expected[-1]]
    wait_for(lambda: stack.scalar("SELECT status FROM dispatch.cases WHERE id = :c",
                                  c=case_id) == final, 20, f"the case to be {final}")
    if final == "resolved":
        assert stack.scalar("SELECT result FROM dispatch.cases WHERE id = :c",
                            c=case_id) == events[-1].data["result"]
    return orders[0]


# --- the journeys ----------------------------------------------------------------------

def test_an_escalated_case_reaches_the_partner_once_and_its_updates_resolve_it(
        stack, sim, partner_events):
    # Given 平安365 is healthy and works through its orders
    # When the command center hands a case over
    case_id = escalate(stack)

    # Then the partner's acceptance, progress and result come back, once each, in order
    resolved = partner_events.wait_for_type(case_id, RESOLVED)
    order = assert_one_work_order_and_events(stack, sim, partner_events, case_id,
                                             FULL_JOURNEY)
    assert resolved.data["result"] == order["status_notes"]
    # And each carries the escalation's correlation id, for one thread through the logs
    assert {e.correlation_id for e in partner_events.about(case_id)} == {
        f"escalation-{case_id}"}
    # And the work order carries what the partner needs and our reference
    assert order["attributes"]["minqing_ref"]
    assert order["description"] == "小区东门外人行道塌陷，需区里协调抢修"
    assert float(order["lat"]) == IN_SHIBANQIAO["lat"]
    assert stack.scalar("SELECT state FROM integration365.handovers WHERE case_id = :c",
                        c=case_id) == "resolved"


OUTAGES = {
    "5xx": ({"fail_rate": 1.0, "error_status": 503}, {"fail_rate": 0.0}),
    "connection-reset": ({"down": True}, {"down": False}),
    "slow-beyond-the-timeout": ({"delay_s": 1.5}, {"delay_s": 0.0}),
    "connection-refused": ("kill", "start"),
}


@pytest.mark.parametrize("outage", OUTAGES)
def test_a_partner_outage_delays_hand_overs_but_loses_and_duplicates_none(
        stack, sim, partner_events, outage):
    break_it, mend_it = OUTAGES[outage]
    failures = stack.metric("integration365", "minqing_partner_call_failures_total",
                            partner=PARTNER)
    # Given 平安365 is failing
    sim.kill() if break_it == "kill" else sim.configure(**break_it)

    # When three cases are handed over during the outage
    cases = [escalate(stack, f"第 {i} 件：需区级联动处置的占道经营") for i in range(3)]

    # Then the bridge keeps failing, opens its circuit and shows the backlog
    wait_for(lambda: stack.metric("integration365", "minqing_partner_circuit_open",
                                  partner=PARTNER) == 1, 30, "the circuit to open")
    assert stack.metric("integration365", "minqing_partner_call_failures_total",
                        partner=PARTNER) > failures
    wait_for(lambda: stack.metric("integration365", "minqing_partner_backlog",
                                  partner=PARTNER) >= 3, 10, "the backlog to show")

    # When 平安365 recovers
    sim.start() if mend_it == "start" else sim.configure(**mend_it)

    # Then every case reaches it exactly once and comes back resolved, once
    for case_id in cases:
        partner_events.wait_for_type(case_id, RESOLVED, timeout=90)
    for case_id in cases:
        assert_one_work_order_and_events(stack, sim, partner_events, case_id, FULL_JOURNEY)
    wait_for(lambda: stack.metric("integration365", "minqing_partner_circuit_open",
                                  partner=PARTNER) == 0, 10, "the circuit to close")


def test_the_bridge_killed_during_an_outage_sends_its_backlog_once_restarted(
        stack, sim, partner_events):
    # Given 平安365 is failing and the bridge holds hand-overs it could not send. (Not
    # every one need have been tried: once the circuit is open, the bridge's polls may
    # take its half-open probes, and the hand-overs wait behind it; all three pending
    # while calls fail is the backlog this test is about.)
    failures = stack.metric("integration365", "minqing_partner_call_failures_total",
                            partner=PARTNER)
    sim.configure(fail_rate=1.0, error_status=502)
    cases = [escalate(stack, f"第 {i} 件：停电后的联动") for i in range(3)]
    wait_for(lambda: stack.scalar(
        "SELECT count(*) FROM integration365.handovers WHERE case_id = ANY(:c) "
        "AND state = 'pending'", c=cases) == 3 and stack.metric(
        "integration365", "minqing_partner_call_failures_total", partner=PARTNER) > failures,
        30, "the hand-overs held pending while the partner fails")

    # When the bridge is SIGKILLed, and started again after the partner recovers
    stack.kill("integration365")
    sim.configure(fail_rate=0.0)
    stack.start("integration365")

    # Then every case reaches the partner once and completes once
    for case_id in cases:
        partner_events.wait_for_type(case_id, RESOLVED)
    for case_id in cases:
        assert_one_work_order_and_events(stack, sim, partner_events, case_id, FULL_JOURNEY)


def test_a_lost_answer_to_the_post_does_not_make_a_second_work_order(
        stack, sim, partner_events):
    found = stack.metric("integration365", "minqing_handovers_sent_total", how="found")
    # Given 平安365 will create the next work order but its answer will be lost
    sim.configure(lose_responses=1)

    # When a case is handed over
    case_id = escalate(stack)

    # Then the retry finds the work order the lost answer made, and makes no second one
    partner_events.wait_for_type(case_id, RESOLVED)
    assert_one_work_order_and_events(stack, sim, partner_events, case_id, FULL_JOURNEY)
    assert stack.metric("integration365", "minqing_handovers_sent_total",
                        how="found") == found + 1


def test_the_bridge_killed_between_the_partners_answer_and_its_commit_sends_once(
        stack, sim, partner_events):
    # Given the bridge will freeze after 平安365 created the work order, before it
    # stored the work order's id
    with stack.frozen_at("integration365", "integration365.send.after_create") as kill_there:
        # When a case is handed over and the bridge is SIGKILLed there
        case_id = escalate(stack)
        kill_there()
        assert len(sim.work_orders(case_id)) == 1
        assert stack.scalar("SELECT remote_id FROM integration365.handovers "
                            "WHERE case_id = :c", c=case_id) is None
    # Then, restarted, it finds that work order rather than making another
    partner_events.wait_for_type(case_id, RESOLVED)
    assert_one_work_order_and_events(stack, sim, partner_events, case_id, FULL_JOURNEY)


def test_the_bridge_killed_before_publishing_an_update_publishes_it_after_restart(
        stack, sim, partner_events):
    # Given 平安365 holds its work orders, and the bridge's relay will freeze after
    # claiming events, before publishing them
    sim.configure(auto_progress=False)
    case_id = escalate(stack)
    wait_for(lambda: stack.scalar("SELECT state FROM integration365.handovers "
                                  "WHERE case_id = :c", c=case_id) == "sent",
             30, "the hand-over to be sent")
    remote_id = sim.work_orders(case_id)[0]["service_request_id"]
    with stack.frozen_at("integration365", "integration365.relay.before_publish") as kill_there:
        # When the partner accepts, and the bridge is SIGKILLed while publishing that
        sim.command(remote_id, "advance")
        kill_there()
        assert partner_events.types(case_id) == []
    # Then, restarted, it publishes the acceptance, once; the rest follows
    sim.configure(auto_progress=True)
    partner_events.wait_for_type(case_id, RESOLVED)
    assert_one_work_order_and_events(stack, sim, partner_events, case_id, FULL_JOURNEY)


def test_a_partner_rejection_comes_back_as_external_rejected_with_its_reason(
        stack, sim, partner_events):
    # Given 平安365 refuses work outside its remit
    sim.configure(reject_when="【非区级事项】")

    # When such a case is handed over
    case_id = escalate(stack, "【非区级事项】小区内部绿化修剪纠纷")

    # Then it comes back rejected, with the partner's reason, and nothing else
    rejected = partner_events.wait_for_type(case_id, REJECTED)
    assert rejected.data["reason"] == "不属于平安365处置范围，退回街道"
    assert_one_work_order_and_events(stack, sim, partner_events, case_id, [REJECTED])
    assert stack.scalar("SELECT state FROM integration365.handovers WHERE case_id = :c",
                        c=case_id) == "rejected"


def test_a_work_order_the_partner_refuses_outright_sends_the_case_back(
        stack, sim, partner_events):
    # Given 平安365 answers every request with 400 (it read it and will not take it)
    sim.configure(fail_rate=1.0, error_status=400)

    # When a case is handed over
    case_id = escalate(stack)

    # Then it comes back rejected with the partner's words, and no work order exists
    rejected = partner_events.wait_for_type(case_id, REJECTED)
    sim.configure(fail_rate=0.0)
    assert "平安365" in rejected.data["reason"]
    assert rejected.data["remote_id"] is None
    settle(stack, partner_events)
    assert sim.work_orders(case_id) == []
    assert partner_events.types(case_id) == [REJECTED]
    assert stack.scalar("SELECT state FROM integration365.handovers WHERE case_id = :c",
                        c=case_id) == "rejected"
    # and the case is back with the command center, the partner's reason on it
    wait_for(lambda: stack.scalar("SELECT status FROM dispatch.cases WHERE id = :c",
                                  c=case_id) == "returned", 20, "the case to come back")
    assert stack.scalar("SELECT return_reason FROM dispatch.cases WHERE id = :c",
                        c=case_id) == rejected.data["reason"]


def test_reconciliation_resolves_a_work_order_the_partner_closed_silently(
        stack, sim, partner_events):
    repairs = stack.metric("integration365", "minqing_reconciliation_repairs_total",
                           repair="closed")
    # Given a case with 平安365, which then closes it without publishing an update
    sim.configure(auto_progress=False)
    case_id = escalate(stack)
    wait_for(lambda: sim.work_orders(case_id), 30, "the work order")
    remote_id = sim.work_orders(case_id)[0]["service_request_id"]
    wait_for(lambda: stack.scalar("SELECT state FROM integration365.handovers "
                                  "WHERE case_id = :c", c=case_id) == "sent", 30, "sent")
    sim.command(remote_id, "close_silently", result="已由区城管局处置")

    # Then reconciliation notices and resolves the case with the partner's result
    resolved = partner_events.wait_for_type(case_id, RESOLVED)
    assert resolved.data["result"] == "已由区城管局处置"
    assert_one_work_order_and_events(stack, sim, partner_events, case_id,
                                     [ACCEPTED, RESOLVED])
    assert stack.metric("integration365", "minqing_reconciliation_repairs_total",
                        repair="closed") == repairs + 1


def test_reconciliation_sends_again_a_work_order_the_partner_lost(
        stack, sim, partner_events):
    # Given a case with 平安365, which then loses the work order
    sim.configure(auto_progress=False)
    case_id = escalate(stack)
    wait_for(lambda: stack.scalar("SELECT state FROM integration365.handovers "
                                  "WHERE case_id = :c", c=case_id) == "sent", 30, "sent")
    lost = sim.work_orders(case_id)[0]["service_request_id"]
    sim.forget(lost)

    # Then reconciliation sends it again, and the new work order carries the case through
    wait_for(lambda: sim.work_orders(case_id), 30, "the work order sent again")
    sim.configure(auto_progress=True)
    partner_events.wait_for_type(case_id, RESOLVED)
    order = assert_one_work_order_and_events(stack, sim, partner_events, case_id,
                                             FULL_JOURNEY)
    assert order["service_request_id"] != lost
    assert stack.metric("integration365", "minqing_reconciliation_repairs_total",
                        repair="resent") >= 1


def test_two_bridges_share_the_hand_overs_without_sending_one_twice(
        stack, sim, partner_events):
    # Given a second bridge process beside the first (as two replicas run)
    st = stack.st
    port = int(st.env["INTEGRATION365_WEB_ADDRESS"].rsplit(":", 1)[1]) + 100
    second = stk._spawn("integration365-second", [
        stk.PYTHON, "-m", "nameko", "run", "--config", "services/integration365/config.yaml",
        "services.integration365.service:Integration365Service"], st,
        dict(st.env, INTEGRATION365_WEB_ADDRESS=f"127.0.0.1:{port}"))
    try:
        wait_for(lambda: stk.http_ok(f"http://127.0.0.1:{port}/health/ready"), 60,
                 "the second bridge")
        # When a burst of cases is handed over
        cases = [escalate(stack, f"第 {i} 件：区级联动") for i in range(20)]

        # Then each reaches 平安365 exactly once and completes once
        for case_id in cases:
            partner_events.wait_for_type(case_id, RESOLVED)
        for case_id in cases:
            assert_one_work_order_and_events(stack, sim, partner_events, case_id,
                                             FULL_JOURNEY)
    finally:
        second.kill()
        second.wait(10)


def test_a_repeated_escalation_of_a_live_case_makes_no_second_work_order(
        stack, sim, partner_events):
    # Given a case already with 平安365
    sim.configure(auto_progress=False)
    case_id = escalate(stack)
    wait_for(lambda: stack.scalar("SELECT state FROM integration365.handovers "
                                  "WHERE case_id = :c", c=case_id) == "sent", 30, "sent")
    ignored = stack.metric("integration365", "minqing_escalations_ignored_total",
                           reason="already-live")

    # When the same case is escalated again (a second event, not a redelivery)
    escalate(stack, "重复联动", case_id=case_id)
    wait_for(lambda: stack.metric("integration365", "minqing_escalations_ignored_total",
                                  reason="already-live") == ignored + 1, 30,
             "the repeat to be recognised")

    # Then the partner still has one work order, and the journey completes once
    sim.configure(auto_progress=True)
    partner_events.wait_for_type(case_id, RESOLVED)
    assert_one_work_order_and_events(stack, sim, partner_events, case_id, FULL_JOURNEY)



def test_a_partner_that_restarts_its_numbering_leaves_a_hand_over_for_a_person_not_a_hang(
        stack, sim, partner_events):
    # Given a case 平安365 took as one of its work orders and resolved
    first = escalate(stack)
    partner_events.wait_for_type(first, RESOLVED)
    # And then 平安365 lost its state and numbers from 1 again (as the local simulator
    # does after `make clean` or on a fresh clone, against a database that kept its ids)
    saved = stack.st.run_dir / f"{stk.PARTNER_SIM}.json"
    kept = saved.with_name("pingan365-sim.kept.json")
    sim.kill()
    saved.rename(kept)
    try:
        sim.start()
        sim.configure(auto_progress=False)
        conflicts = stack.metric("integration365", "minqing_partner_id_conflicts_total")
        log = stack.st.run_dir / "logs" / "integration365.log"
        log_before = log.stat().st_size

        # When the command center hands another case over, and the partner answers with
        # an id that an earlier hand-over holds
        case_id = escalate(stack, "小区西门外窨井盖缺失，需区里协调")
        order = wait_for(lambda: sim.work_orders(case_id), 30, "the new work order")[0]
        holder = stack.scalar("SELECT case_id::text FROM integration365.handovers "
                              "WHERE remote_id = :r", r=order["service_request_id"])
        assert holder and holder != case_id

        # Then the hand-over waits for a person, saying which id clashed with which case
        wait_for(lambda: stack.scalar("SELECT state FROM integration365.handovers "
                                      "WHERE case_id = :c", c=case_id) == "needs_person",
                 30, "the hand-over to need a person")
        error = stack.scalar("SELECT last_error FROM integration365.handovers "
                             "WHERE case_id = :c", c=case_id)
        assert order["service_request_id"] in error and holder in error
        # And the case is back with the command center with that reason, not left escalated
        rejected = partner_events.wait_for_type(case_id, REJECTED)
        assert order["service_request_id"] in rejected.data["reason"]
        wait_for(lambda: stack.scalar("SELECT status FROM dispatch.cases WHERE id = :c",
                                      c=case_id) == "returned", 20, "the case to come back")
        # And the metric the alert watches counts it, once
        assert stack.metric("integration365", "minqing_partner_id_conflicts_total") == \
            conflicts + 1
        wait_for(lambda: stack.metric("integration365", "minqing_handovers",
                                      state="needs_person") >= 1, 10, "the gauge")
        # And the bridge goes on: several send ticks later, one log line, no retry loop
        settle(stack, partner_events)
        settle(stack, partner_events)
        logged = log.read_bytes()[log_before:].decode("utf-8", "replace")
        assert logged.count(f"{order['service_request_id']}, which case") == 1, logged[-3000:]
        assert "Traceback" not in logged and "IntegrityError" not in logged
        assert partner_events.types(case_id) == [REJECTED]
        assert stack.scalar("SELECT attempts FROM integration365.handovers "
                            "WHERE case_id = :c", c=case_id) == 1
    finally:
        # The partner's numbering comes back, for the tests that follow
        sim.kill()
        kept.replace(saved)
        sim.start()
