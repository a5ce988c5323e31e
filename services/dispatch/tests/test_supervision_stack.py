"""Supervision against the real servers: two dispatch processes scanning the same
database, one restarted mid-ladder; SLA hours set in seconds through the admin API.

The stack's dispatch is restarted for this module with a short scan interval, a short
satisfaction wait and every closed case sampled for a callback, and a second dispatch
process runs beside it; both go back to normal at the end.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from minqing_kernel import messages
from tests.fixtures import PORT_OFFSET, ROOT, wait_for
from tools import stack as stk

pytestmark = pytest.mark.integration

SUPERVISED = {"SLA_SCAN_INTERVAL_S": "0.3", "SATISFACTION_WAIT_H": str(6 / 3600),
              "CALLBACK_SAMPLE_RATE": "1", "SLA_REMINDERS": "0.25"}
SECOND = {**SUPERVISED, "DISPATCH_WEB_ADDRESS": f"127.0.0.1:{8009 + PORT_OFFSET}"}
IN_JINJIANG = {"lat": 30.2420, "lon": 120.1930}


@pytest.fixture(scope="module")
def supervised(stack):
    stack.restart("dispatch", **SUPERVISED)
    second = stk.start_service(stack.st, "dispatch", SECOND, instance="-2")
    stack.procs["dispatch-2"] = second
    try:
        yield stack
    finally:
        stk.stop_pid(stack.st.run_dir / "dispatch-2.pid")
        del stack.procs["dispatch-2"]  # stopped on purpose: later tests watch the rest
        stack.restart("dispatch")


def set_policy(admin, category: str, accept_s: float, resolve_s: float,
               yellow_at: float = 0.75, priority: str = "normal") -> None:
    r = admin.http.put(f"{admin.base}/v1/sla/policies/{category}/{priority}",
                       json={"accept_hours": accept_s / 3600, "resolve_hours": resolve_s / 3600,
                             "yellow_at": yellow_at})
    assert r.status_code == 200, r.text


def new_case(stack, resident, operator, category: str, location=None) -> str:
    fields = {"category": category, "description": f"{category} 测试"}
    if location:
        fields["location"] = location
    r = resident.report(**fields)
    assert r.status_code == 201, r.text
    case_id = wait_for(lambda: stack.case_for(r.json()["id"]), what="the case")
    r = operator.post(f"/v1/cases/{case_id}/actions", json={"action": "assign"})
    assert r.status_code == 200, r.text
    return case_id


def act(client, case_id: str, action: str, **fields) -> dict:
    r = client.post(f"/v1/cases/{case_id}/actions", json={"action": action, **fields})
    assert r.status_code == 200, r.text
    return r.json()


def warnings_of(stack, case_id: str) -> list[tuple]:
    with stack.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT kind, rung, level FROM dispatch.sla_warnings WHERE case_id = :c "
            "ORDER BY kind, rung"), {"c": case_id}).all()


def inbox_kinds(client, case_id: str) -> list[str]:
    items, cursor = [], None
    while True:
        r = client.get("/v1/inbox", params={"limit": 100, **({"cursor": cursor} if cursor
                                                            else {})})
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    return sorted(i["kind"] for i in items if i["case_id"] == case_id)


def db_now(stack) -> datetime:
    return stack.scalar("SELECT now()")


# --- yellow and red lines, exactly once -------------------------------------------------------

def test_each_warning_fires_once_with_two_instances_and_a_restart_between(supervised):
    stack = supervised
    admin, operator = stack.client("admin"), stack.client("operator-chen")
    resident = stack.client("resident-zhang")
    # Given street vending (城管科) due to be accepted 8 s after assignment, yellow at 50%
    set_policy(admin, "hazard-vending", accept_s=8, resolve_s=3600, yellow_at=0.5)
    case_id = new_case(stack, resident, operator, "hazard-vending")

    # When the yellow line passes, one dispatch is killed (SIGKILL, mid-scan or not) and
    # started again while the other keeps scanning
    wait_for(lambda: ("accept", 0, "yellow") in warnings_of(stack, case_id), timeout=30,
             what="the yellow line")
    stack.kill("dispatch")
    stack.start("dispatch", **SUPERVISED)
    # and the ladder runs to its end (red at 8 s, the one reminder at 10 s)
    wait_for(lambda: len(warnings_of(stack, case_id)) >= 3, timeout=30, what="the ladder")
    wait_for(lambda: stack.scalar(
        "SELECT count(*) FROM dispatch.sla_clocks WHERE case_id = :c AND stopped_at IS NULL "
        "AND next_warning_at IS NULL", c=case_id) == 1, what="the ladder to be done")

    # Then each rung was sent exactly once, as one event each
    assert warnings_of(stack, case_id) == [("accept", 0, "yellow"), ("accept", 1, "red"),
                                           ("accept", 2, "reminder")]
    assert stack.scalar("SELECT count(*) FROM dispatch.outbox WHERE subject = :c AND type = "
                        "'cn.minqing.case.sla_warning.v1'", c=case_id) == 3
    wait_for(lambda: stack.scalar(
        "SELECT count(*) FROM dispatch.outbox WHERE subject = :c AND type = "
        "'cn.minqing.case.sla_warning.v1' AND published_at IS NOT NULL", c=case_id) == 3,
        what="the warnings to be published to the broker")
    # And each recipient's inbox holds what it should, once
    assert inbox_kinds(stack.client("handler-chengguan"), case_id) == [
        "red_line", "reminder", "yellow_line"]
    assert inbox_kinds(stack.client("leader-chengguan"), case_id) == ["red_line", "reminder"]
    assert inbox_kinds(stack.client("discipline-lu"), case_id) == ["red_line"]
    assert inbox_kinds(stack.client("handler-jinjiang"), case_id) == []
    assert inbox_kinds(stack.client("leader-jinjiang"), case_id) == []
    # And the open red line is counted for the unit on both instances
    assert stack.metric("dispatch", "minqing_sla_open_red_lines", unit="dept-chengguan") >= 1


def simulate_partner(stack, **knobs) -> None:
    r = requests.post(f"http://{stack.st.env['PINGAN365_SIM_ADDRESS']}/_sim/config",
                      json=knobs, headers=stack.sim_admin_headers, timeout=5)
    assert r.status_code == 200, r.text


def test_a_partner_late_with_an_external_case_gets_the_command_center_a_red_line(supervised):
    stack = supervised
    admin, operator = stack.client("admin"), stack.client("operator-chen")
    # Given 平安365 takes the work order but does nothing with it
    simulate_partner(stack, auto_progress=False)
    [kept] = [p for p in admin.get("/v1/sla/policies", params={"category": "hazard-facility"})
              .json()["items"] if p["priority"] == "normal"]
    try:
        # and a case handed to it with 6 s to resolve (yellow at 3 s)
        set_policy(admin, "hazard-facility", accept_s=3600, resolve_s=6, yellow_at=0.5)
        r = stack.client("resident-li").report(category="hazard-facility",
                                               description="主干道井盖缺失，需区里处置")
        assert r.status_code == 201, r.text
        case_id = wait_for(lambda: stack.case_for(r.json()["id"]), what="the case")
        act(operator, case_id, "escalate_external", note="市政道路归区里管")

        # When the deadline passes with the partner silent
        wait_for(lambda: ("resolve", 1, "red") in warnings_of(stack, case_id), timeout=30,
                 what="the partner's red line")

        # Then the command center got the yellow and the red line, and discipline the red
        assert warnings_of(stack, case_id)[:2] == [("resolve", 0, "yellow"),
                                                   ("resolve", 1, "red")]
        assert set(inbox_kinds(operator, case_id)) >= {"yellow_line", "red_line"}
        assert inbox_kinds(stack.client("discipline-lu"), case_id) == ["red_line"]

        # When the partner finally resolves it, the clock stops
        simulate_partner(stack, auto_progress=True)
        wait_for(lambda: stack.scalar("SELECT status FROM dispatch.cases WHERE id = :c",
                                      c=case_id) == "resolved", 60, "the partner's result")
        assert stack.scalar("SELECT stopped_by FROM dispatch.sla_clocks WHERE case_id = :c "
                            "AND kind = 'resolve'", c=case_id) == "external_resolved"
    finally:
        simulate_partner(stack, auto_progress=True)
        set_policy(admin, "hazard-facility", accept_s=kept["accept_hours"] * 3600,
                   resolve_s=kept["resolve_hours"] * 3600, yellow_at=kept["yellow_at"])


def test_the_deadline_follows_the_cases_priority(supervised):
    stack = supervised
    admin, operator = stack.client("admin"), stack.client("operator-chen")
    # Given urgent governance suggestions due to be accepted in 2 hours, normal ones in 24
    set_policy(admin, "suggestion-governance", accept_s=2 * 3600, resolve_s=24 * 3600,
               priority="urgent")
    set_policy(admin, "suggestion-governance", accept_s=24 * 3600, resolve_s=240 * 3600)
    r = stack.client("resident-li").report(category="suggestion-governance",
                                           description="建议小区增设电动车充电桩")
    case_id = wait_for(lambda: stack.case_for(r.json()["id"]), what="the case")
    # and the case marked urgent at screening
    with stack.engine.begin() as conn:
        conn.execute(sa.text("UPDATE dispatch.cases SET priority = 'urgent' WHERE id = :c"),
                     {"c": case_id})
    # When it is assigned and accepted
    assigned = act(operator, case_id, "assign")
    accepted = act(stack.client("handler-shibanqiao"), case_id, "accept")
    # Then its deadlines are the urgent ones
    def hours(due, start):
        return (datetime.fromisoformat(due) - datetime.fromisoformat(start)) / timedelta(hours=1)
    assert hours(assigned["accept_due_at"], assigned["updated_at"]) == 2
    assert hours(accepted["resolve_due_at"], accepted["updated_at"]) == 24


def test_a_handler_marks_an_inbox_item_read_and_others_cannot(supervised):
    stack = supervised
    admin, operator = stack.client("admin"), stack.client("operator-chen")
    set_policy(admin, "hazard-security", accept_s=1, resolve_s=3600, yellow_at=0.5)
    case_id = new_case(stack, stack.client("resident-li"), operator, "hazard-security")
    handler = stack.client("handler-pingan")
    wait_for(lambda: "red_line" in inbox_kinds(handler, case_id), what="the red line")
    item = next(i for i in handler.get("/v1/inbox", params={"unread": "true"}).json()["items"]
                if i["case_id"] == case_id)
    assert item["read"] is False and item["message"]["zh"] and item["message"]["en"]
    # worded for people in Hangzhou: the category's name and Beijing time, no code, no UTC
    assert item["message"]["zh"].startswith("【红线示警】"), item
    assert "（北京时间）" in item["message"]["zh"] and "UTC" not in item["message"]["zh"]
    assert "hazard-security" not in item["message"]["zh"]

    # When a handler of another unit tries to mark it read, it is not theirs
    other = stack.client("handler-jinjiang").post(f"/v1/inbox/{item['id']}/read")
    assert other.status_code == 404, other.text
    # When the unit's handler marks it read, it leaves the unread list
    r = handler.post(f"/v1/inbox/{item['id']}/read")
    assert r.status_code == 200 and r.json()["read"] is True, r.text
    unread = handler.get("/v1/inbox", params={"unread": "true", "limit": 100}).json()["items"]
    assert item["id"] not in [i["id"] for i in unread]


def test_an_approved_extension_moves_the_deadline_and_the_old_one_stops_warning(supervised):
    stack = supervised
    admin, operator = stack.client("admin"), stack.client("operator-chen")
    set_policy(admin, "dispute-parking", accept_s=3600, resolve_s=3600)
    case_id = new_case(stack, stack.client("resident-wang"), operator, "dispute-parking",
                       location=IN_JINJIANG)
    handler = stack.client("handler-jinjiang")
    due = datetime.fromisoformat(stack.client("admin").get(f"/v1/cases/{case_id}")
                                 .json()["accept_due_at"])
    # Given a handler's request for 2 more hours
    r = handler.post(f"/v1/cases/{case_id}/extensions", json={"hours": 2, "reason": "等待物业"})
    assert r.status_code == 201, r.text
    ext = r.json()
    assert "extension_requested" in inbox_kinds(operator, case_id)
    # a second request while one waits is refused, and bad input changes nothing
    again = handler.post(f"/v1/cases/{case_id}/extensions", json={"hours": 1, "reason": "x"})
    assert again.status_code == 409 and again.json()["type"] == "/problems/extension-pending"
    bad = operator.post(f"/v1/cases/{case_id}/extensions/{ext['id']}/decision",
                        json={"approve": "yes"})
    assert bad.status_code == 422 and bad.json()["detail_zh"], bad.text
    # When the operator approves it
    r = operator.post(f"/v1/cases/{case_id}/extensions/{ext['id']}/decision",
                      json={"approve": True, "note": "同意"})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    # Then the deadline is 2 hours later, on the case and its running clock, and on the trail
    case = admin.get(f"/v1/cases/{case_id}").json()
    assert datetime.fromisoformat(case["accept_due_at"]) == due + timedelta(hours=2)
    assert stack.scalar("SELECT due_at FROM dispatch.sla_clocks WHERE case_id = :c AND "
                        "stopped_at IS NULL", c=case_id) == due + timedelta(hours=2)
    actions = [e["action"] for e in admin.get(f"/v1/cases/{case_id}/timeline").json()["entries"]]
    assert actions[-1] == "extend_deadline"
    assert "extension_approved" in inbox_kinds(handler, case_id)


# --- satisfaction and callbacks ----------------------------------------------------------

@pytest.fixture(scope="module")
def unanswered(supervised):
    """A case resolved and never rated."""
    stack = supervised
    admin, operator = stack.client("admin"), stack.client("operator-chen")
    set_policy(admin, "hazard-facility", accept_s=3600, resolve_s=3600)
    case_id = new_case(stack, stack.client("resident-zhang"), operator, "hazard-facility")
    handler = stack.client("handler-chengjian")
    act(handler, case_id, "accept")
    act(handler, case_id, "resolve", result="已更换破损井盖")
    return case_id


def test_a_resolved_case_nobody_rates_closes_as_unanswered(supervised, unanswered):
    stack = supervised
    # Given a resolved case; when its reporter does not rate it within the wait (6 s here)
    status = wait_for(lambda: stack.scalar("SELECT status FROM dispatch.cases WHERE id = :c",
                                           c=unanswered) == "closed" or None, timeout=30,
                      what="the case to close")
    assert status
    # Then it is closed by the system, unrated, with the reason on the trail and an event
    entries = stack.client("admin").get(f"/v1/cases/{unanswered}/timeline").json()["entries"]
    assert (entries[-1]["action"], entries[-1]["actor_role"]) == ("close_unanswered", "system")
    assert stack.client("admin").get(f"/v1/cases/{unanswered}").json()["rating"] is None
    assert stack.scalar("SELECT count(*) FROM dispatch.outbox WHERE subject = :c AND type = "
                        "'cn.minqing.case.closed.v1'", c=unanswered) == 1


def test_an_unsatisfied_callback_reopens_the_case_with_the_reason(supervised, unanswered):
    stack = supervised
    operator = stack.client("operator-zhou")
    wait_for(lambda: stack.scalar("SELECT status FROM dispatch.cases WHERE id = :c",
                                  c=unanswered) == "closed", timeout=30, what="the close")
    # Given the closed case in the callback queue (every case is sampled here; the queue
    # is oldest first, and a whole session's closed cases may be ahead of it)
    callback, params = None, {"limit": 100}
    while callback is None:
        page = operator.get("/v1/callbacks", params=params).json()
        callback = next((c for c in page["items"] if c["case_id"] == unanswered), None)
        assert callback or page["next_cursor"], "the case is not in the callback queue"
        params["cursor"] = page["next_cursor"]
    assert callback["status"] == "pending" and callback["reporter_ids"]
    # When staff record "unsatisfied" without a reason, it is refused and nothing changes
    r = operator.post(f"/v1/callbacks/{callback['id']}", json={"satisfied": False})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "note", r.text
    assert stack.scalar("SELECT status FROM dispatch.callbacks WHERE id = :i",
                        i=callback["id"]) == "pending"
    # When they record it with the reason
    r = operator.post(f"/v1/callbacks/{callback['id']}",
                      json={"satisfied": False, "note": "井盖仍然松动"})
    assert r.status_code == 200, r.text
    # Then the case is reopened with the reason on the trail, and the callback is recorded
    assert r.json()["case_status"] == "reopened"
    last = stack.client("admin").get(f"/v1/cases/{unanswered}/timeline").json()["entries"][-1]
    assert (last["action"], last["to_status"], last["note"]) == (
        "callback_unsatisfied", "reopened", "井盖仍然松动")
    again = operator.post(f"/v1/callbacks/{callback['id']}", json={"satisfied": True})
    assert again.status_code == 409, again.text


# --- the supervision report --------------------------------------------------------------

def test_the_supervision_report_counts_a_known_set_of_cases(supervised):
    stack = supervised
    admin, operator = stack.client("admin"), stack.client("operator-chen")
    resident, handler = stack.client("resident-li"), stack.client("handler-minzheng")
    start = db_now(stack)
    # Given case A, handled well: accepted and resolved in time, rated 5
    set_policy(admin, "help-elderly", accept_s=3600, resolve_s=3600)
    a = new_case(stack, resident, operator, "help-elderly")
    # and cases B and C, with 4 s to be accepted (yellow line at 1 s)
    set_policy(admin, "help-elderly", accept_s=4, resolve_s=3600, yellow_at=0.25)
    b = new_case(stack, resident, operator, "help-elderly")
    c = new_case(stack, resident, operator, "help-elderly")
    act(handler, a, "accept")
    act(handler, a, "resolve", result="已上门探望")
    assert resident.post(f"/v1/cases/{a}/feedback", json={"rating": 5}).status_code == 200
    # B accepted only after its red line, resolved in time, rated 1 (reopened)
    for case in (b, c):
        wait_for(lambda case=case: ("accept", 1, "red") in warnings_of(stack, case),
                 timeout=30, what="the red line")
    act(handler, b, "accept")
    act(handler, b, "resolve", result="已联系家属")
    assert resident.post(f"/v1/cases/{b}/feedback", json={"rating": 1}).status_code == 200
    # C never accepted
    set_policy(admin, "help-elderly", accept_s=2 * 3600, resolve_s=48 * 3600)
    yellow = sum(("accept", 0, "yellow") in warnings_of(stack, x) for x in (b, c))

    # When discipline asks for the report of 民政科 over the period
    period = {"unit_id": "dept-minzheng", "from": start.isoformat(),
              "to": (db_now(stack) + timedelta(minutes=1)).isoformat()}
    r = stack.client("discipline-lu").get("/v1/supervision/report", params=period)
    assert r.status_code == 200, r.text
    [row] = r.json()["items"]
    # Then
    assert {k: v for k, v in row.items() if k != "average_handling_hours"} == {
        "unit_id": "dept-minzheng", "received": 3, "accepted_on_time": 1, "resolved": 2,
        "resolved_on_time": 2, "yellow_lines": yellow, "red_lines": 2,
        "resolution_rate": 0.6667, "satisfaction_rate": 0.5, "reopen_rate": 0.5}
    handled = stack.scalar(
        "SELECT avg(extract(epoch FROM stopped_at - assigned_at)) / 3600 FROM "
        "dispatch.sla_clocks WHERE case_id IN (:a, :b) AND kind = 'resolve'", a=a, b=b)
    assert row["average_handling_hours"] == pytest.approx(float(handled), abs=1e-4)
    # And the same figures as CSV
    csv = stack.client("discipline-lu").get("/v1/supervision/report",
                                            params={**period, "format": "csv"})
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    header, line = csv.text.splitlines()
    assert header.split(",")[:6] == ["unit_id", "unit_name", "period_from", "period_to",
                                     "received", "accepted_on_time"]
    # (for people: the unit by its name, the period in Beijing time)
    assert line.split(",")[:10] == [
        "dept-minzheng", "民政科", messages.beijing(start),
        messages.beijing(datetime.fromisoformat(period["to"])), "3", "1", "2", "2", str(yellow),
        "2"]
    assert "UTC" not in csv.text
    # And a leader sees their own unit's report, not another's
    assert stack.client("leader-minzheng").get("/v1/supervision/report", params={
        "from": period["from"], "to": period["to"]}).json()["items"][0]["received"] == 3
    other = stack.client("leader-jinjiang").get("/v1/supervision/report", params=period)
    assert other.status_code == 403 and other.json()["type"] == "/problems/not-your-unit"
    bad = stack.client("discipline-lu").get("/v1/supervision/report", params={
        "from": period["to"], "to": period["from"]})
    assert bad.status_code == 400 and bad.json()["type"] == "/problems/bad-period"


# --- the audit trail: append-only, and a forged chain is found -----------------------------

@pytest.fixture
def traced(supervised):
    stack = supervised
    operator = stack.client("operator-chen")
    case_id = new_case(stack, stack.client("resident-wang"), operator, "dispute-noise")
    act(stack.client("handler-shibanqiao"), case_id, "accept")
    return case_id


def verify_cli(stack, case_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "services.dispatch.verify",
                           case_id], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DB_URI": stack.st.env["DB_URI"]})


@pytest.mark.parametrize("statement", [
    "UPDATE dispatch.case_trail SET note = 'edited' WHERE case_id = :c AND seq = 2",
    "DELETE FROM dispatch.case_trail WHERE case_id = :c AND seq = 2"])
def test_the_database_refuses_to_edit_or_delete_a_trail_entry(supervised, traced, statement):
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), \
            supervised.engine.begin() as conn:
        conn.execute(sa.text(statement), {"c": traced})
    assert supervised.scalar("SELECT count(*) FROM dispatch.case_trail WHERE case_id = :c",
                             c=traced) == 3


def test_an_intact_trail_verifies_by_endpoint_and_command(supervised, traced):
    r = supervised.client("discipline-lu").get(f"/v1/cases/{traced}/trail/verify")
    assert r.status_code == 200 and r.json()["valid"] is True, r.text
    assert verify_cli(supervised, traced).returncode == 0


def test_who_may_verify_and_an_unknown_case(supervised, traced):
    assert supervised.client("handler-shibanqiao").get(
        f"/v1/cases/{traced}/trail/verify").status_code == 403
    r = supervised.client("admin").get(
        "/v1/cases/00000000-0000-4000-8000-000000000000/trail/verify")
    assert r.status_code == 404 and r.json()["detail_zh"], r.text
    assert verify_cli(supervised, "00000000-0000-4000-8000-000000000000").returncode == 2


def forge(stack, sql: str, **params) -> None:
    """As a superuser, with the trail's triggers switched off for this transaction."""
    with stack.engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text(sql), params)


def test_a_rewritten_entry_is_found_by_endpoint_and_command(supervised, traced):
    # Given entry 2 rewritten directly in the database, its hash left as it was
    forge(supervised, "UPDATE dispatch.case_trail SET note = '伪造' WHERE case_id = :c "
                      "AND seq = 2", c=traced)
    # When the chain is checked, then entry 2 is named as the first bad one
    r = supervised.client("admin").get(f"/v1/cases/{traced}/trail/verify")
    assert r.status_code == 200, r.text
    assert (r.json()["valid"], r.json()["first_bad_seq"]) == (False, 2)
    cli = verify_cli(supervised, traced)
    assert cli.returncode == 1 and "entry 2" in cli.stderr, cli.stderr


def test_a_chain_rewritten_with_recomputed_hashes_is_found_by_its_head(supervised, traced):
    # Given the last entry's note rewritten and its hash recomputed to fit the chain
    from services.dispatch import domain
    with supervised.engine.connect() as conn:
        e = conn.execute(sa.text("SELECT * FROM dispatch.case_trail WHERE case_id = :c "
                                 "ORDER BY seq DESC LIMIT 1"), {"c": traced}).mappings().one()
    entry = {k: e[k] for k in ("case_id", "seq", "actor_id", "actor_role", "action",
                               "from_status", "to_status", "unit_id", "attachments")}
    entry.update(case_id=str(e["case_id"]), note="伪造", at=e["at"].astimezone(UTC).isoformat())
    forge(supervised, "UPDATE dispatch.case_trail SET note = '伪造', hash = :h "
                      "WHERE case_id = :c AND seq = :s",
          h=domain.chain_hash(e["prev_hash"], entry), c=traced, s=e["seq"])
    # Then the chain no longer ends at the head the case recorded
    body = supervised.client("discipline-lu").get(f"/v1/cases/{traced}/trail/verify").json()
    assert (body["valid"], body["reason"], body["first_bad_seq"]) == (False, "head", e["seq"])
