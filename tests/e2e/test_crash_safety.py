"""Crash safety: SIGKILL at the worst moments loses nothing and duplicates nothing.

Each test freezes a service at a named fault point (minqing_kernel.faults), SIGKILLs it
there, restarts it normally and checks the outcome in the database.
"""
import pytest

from tests.fixtures import wait_for

pytestmark = pytest.mark.integration


def cases_for(stack, report_id: str) -> int:
    return stack.scalar("SELECT count(*) FROM dispatch.cases WHERE :r = ANY(report_ids)",
                        r=report_id)


@pytest.fixture
def resident(stack):
    return stack.client("resident-wang")


def test_dispatch_killed_after_receiving_before_committing_opens_exactly_one_case(stack,
                                                                                 resident):
    # Given dispatch will freeze inside the transaction that opens a case
    with stack.frozen_at("dispatch", "dispatch.before_commit") as kill_there:
        # When a report arrives and dispatch is SIGKILLed at that point
        report = resident.report(description="消防通道被电动车堵塞").json()
        kill_there()
        assert cases_for(stack, report["id"]) == 0  # nothing was committed
    # Then, restarted, it handles the redelivered event once
    wait_for(lambda: stack.case_for(report["id"]), what="the case after restart")
    assert cases_for(stack, report["id"]) == 1


def test_dispatch_killed_after_committing_before_acking_keeps_one_case(stack, resident):
    # Given dispatch will freeze after committing the case but before acking the message
    with stack.frozen_at("dispatch", "dispatch.open_case.before_ack") as kill_there:
        report = resident.report(description="小区东门路灯不亮").json()
        kill_there()
        case_id = stack.case_for(report["id"])
        assert case_id is not None
    # When the broker redelivers the unacked event, it is recognised as handled
    wait_for(lambda: stack.scalar(
        "SELECT count(*) FROM dispatch.outbox WHERE subject = :c", c=case_id) >= 1,
        what="the case.opened event in the outbox")
    wait_for(lambda: stack.metric("dispatch", "minqing_events_handled_total",
                                  consumer="dispatch.open_case", outcome="ok") >= 1,
             what="the restarted dispatch to handle the redelivered event")
    # Then there is still exactly one case and one case.opened event for the report
    assert cases_for(stack, report["id"]) == 1
    assert stack.scalar("SELECT count(*) FROM dispatch.outbox WHERE subject = :c "
                        "AND type = 'cn.minqing.case.opened.v1'", c=case_id) == 1


def test_outbox_row_committed_before_a_relay_crash_is_published_after_restart(stack,
                                                                            resident):
    # Given intake's relay will freeze after claiming events but before publishing them
    with stack.frozen_at("intake", "intake.relay.before_publish") as kill_there:
        # When a report is accepted (committed with its outbox row) and intake is killed
        r = resident.report(description="河边护栏松动，有安全隐患", category="hazard-facility")
        assert r.status_code == 201
        report = r.json()
        kill_there()
        # (two rows: the public report.submitted and the internal report.received)
        assert stack.scalar("SELECT count(*) FROM intake.outbox WHERE subject = :r "
                            "AND published_at IS NULL", r=report["id"]) == 2
        assert stack.case_for(report["id"]) is None
    # Then the restarted relay publishes it and dispatch opens the case
    wait_for(lambda: stack.case_for(report["id"]), what="the case after intake restarts")
    assert stack.scalar("SELECT count(*) FROM intake.outbox WHERE subject = :r "
                        "AND published_at IS NOT NULL", r=report["id"]) == 2
    assert cases_for(stack, report["id"]) == 1
