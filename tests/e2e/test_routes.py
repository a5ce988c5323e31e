"""Every route out of the command center, end to end (issue 3, part A).

gateway, identity, intake and dispatch run as real processes against the real RabbitMQ,
PostgreSQL (with PostGIS) and S3 server (tests/fixtures.py). Each test opens its own
cases from real reports and follows them through the gateway as the people who would.
"""
from __future__ import annotations

import json
import uuid

import pytest
from kombu import Connection, Consumer, Exchange, Queue, binding

from minqing_kernel import events as ev
from tests.fixtures import wait_for

pytestmark = pytest.mark.integration

# Places inside communities of the reference data (lat, lon); ~0.0009° of latitude is 100 m.
IN_WUJIANG = {"lat": 30.2420, "lon": 120.1805}
IN_SHIBANQIAO = {"lat": 30.24115, "lon": 120.18708}
IN_JINJIANG = {"lat": 30.2420, "lon": 120.1930}
IN_JINLONG = {"lat": 30.2500, "lon": 120.1870}


def north(point: dict, metres: float) -> dict:
    return {"lat": point["lat"] + metres / 111_195, "lon": point["lon"]}


@pytest.fixture
def operator(stack):
    return stack.client("operator-chen")


def open_case(stack, reporter, **fields) -> tuple[str, str]:
    """A report by `reporter` and the id of the case it opened: (report_id, case_id)."""
    r = reporter.report(**fields)
    assert r.status_code == 201, r.text
    report_id = r.json()["id"]
    return report_id, wait_for(lambda: stack.case_for(report_id), what="the case")


def act(client, case_id: str, expect: int = 200, **action) -> dict:
    r = client.post(f"/v1/cases/{case_id}/actions", json=action)
    assert r.status_code == expect, r.text
    return r.json()


def put(client, path: str, **kw):
    return client.http.put(client.base + path, **kw)


def delete(client, path: str):
    return client.http.delete(client.base + path)


def trail(client, case_id: str) -> list[dict]:
    r = client.get(f"/v1/cases/{case_id}/timeline")
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def assert_problem(r, status: int, type_: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"] == f"/problems/{type_}"
    assert problem["detail"] and problem["detail_zh"]
    return problem


def snapshot(stack, case_id: str) -> tuple:
    """Everything an action could change about a case, to show a refusal changed nothing."""
    with stack.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT status, unit_id, priority, trail_length, trail_head, reporter_ids, "
            "report_ids, merged_into, return_count, partner FROM dispatch.cases "
            "WHERE id = %(c)s", {"c": case_id}).first()
    return tuple(row)


# --- screening: priority, reject, close directly ----------------------------------------

def test_screening_sets_a_priority_and_refuses_a_report_with_a_reason(stack, operator):
    # Given a new case in screening
    resident = stack.client("resident-wang")
    _, case_id = open_case(stack, resident, description="小区门口广告牌松动", location=IN_JINLONG,
                           category="hazard-facility")
    # When the operator marks it urgent
    assert act(operator, case_id, action="set_priority", priority="urgent")["priority"] == \
        "urgent"
    # Then it is still in screening, and the trail says who set what
    case = operator.get(f"/v1/cases/{case_id}").json()
    assert (case["status"], case["priority"]) == ("screening", "urgent")
    assert trail(operator, case_id)[-1]["action"] == "set_priority"
    # When it is refused (不予受理) with a reason, the reporter reads the reason
    act(operator, case_id, action="reject", note="不属于街道管辖范围，已告知向物业反映")
    entries = trail(resident, case_id)
    assert (entries[-1]["action"], entries[-1]["to_status"]) == ("reject", "rejected")
    assert entries[-1]["note"] == "不属于街道管辖范围，已告知向物业反映"


def test_closing_directly_answers_the_reporter(stack, operator):
    resident = stack.client("resident-wang")
    _, case_id = open_case(stack, resident, category="suggestion-general",
                           description="建议周末延长图书室开放时间", location=IN_JINLONG)
    case = act(operator, case_id, action="close_directly", note="已电话答复：周六开放至 20 点")
    assert case["status"] == "closed"
    assert trail(resident, case_id)[-1]["note"] == "已电话答复：周六开放至 20 点"


# --- duplicates and merging ------------------------------------------------------------

def test_a_duplicate_is_found_by_place_time_and_category_and_follows_its_case(stack, operator):
    zhang, li = stack.client("resident-zhang"), stack.client("resident-li")
    base = north(IN_WUJIANG, 37 * (uuid.uuid4().int % 5))  # apart from other runs' cases
    # Given a case about rubbish, and nearby a second report of the same rubbish
    _, first = open_case(stack, zhang, category="hazard-rubbish", location=base,
                         description="婺江路口垃圾堆放多日无人清理")
    li_report, second = open_case(stack, li, category="hazard-rubbish",
                                  location=north(base, 30), description="路口垃圾又臭又脏")
    # and reports that are not duplicates: the same category 500 m away, another category
    # at the same spot
    _, far = open_case(stack, zhang, category="hazard-rubbish", location=north(base, 500),
                       description="另一处垃圾堆放")
    _, other = open_case(stack, zhang, category="dispute-noise", location=north(base, 30),
                         description="路口夜间噪音")

    # When the operator asks for duplicates of the second (defaults: 100 m, 7 days)
    r = operator.get(f"/v1/cases/{second}/duplicates")
    assert r.status_code == 200, r.text
    found = {c["id"]: c for c in r.json()["items"]}
    # Then the first is suggested, with its distance, and neither the far one nor the
    # other category
    assert first in found and far not in found and other not in found
    assert 25 < found[first]["distance_m"] < 35
    # And a wider radius finds the far one too, nearest first
    wide = [c["id"] for c in operator.get(f"/v1/cases/{second}/duplicates",
                                          params={"radius_m": 1000}).json()["items"]]
    assert wide.index(first) < wide.index(far) and other not in wide

    # When the operator merges the second into the first
    merged = act(operator, second, action="merge", target_case_id=first,
                 note="同一处垃圾堆放")
    assert (merged["status"], merged["merged_into"]) == ("merged", first)

    # Then Li's report now shows the first case, and Li may follow it
    shown = li.get(f"/v1/reports/{li_report}").json()["case"]
    assert shown["id"] == first
    target = li.get(f"/v1/cases/{first}")
    assert target.status_code == 200, target.text
    assert target.json()["reporter_ids"] == [li.user["id"]]  # herself, not Zhang
    assert li_report in target.json()["report_ids"]
    assert trail(operator, first)[-1]["action"] == "absorb_duplicate"

    # And as the first case moves on, Li sees its progress and may rate it
    act(operator, first, action="assign")
    handler = stack.client("handler-chengguan")  # rubbish goes to City Management
    act(handler, first, action="accept")
    act(handler, first, action="resolve", result="已清运并设置禁止倾倒提示牌")
    assert li.get(f"/v1/reports/{li_report}").json()["case"]["status"] == "resolved"
    rated = li.post(f"/v1/cases/{first}/feedback", json={"rating": 5})
    assert rated.status_code == 200 and rated.json()["status"] == "closed", rated.text


def test_a_merge_that_cannot_be_is_refused_and_changes_nothing(stack, operator):
    resident = stack.client("resident-li")
    _, case_id = open_case(stack, resident, category="hazard-vending", location=IN_JINJIANG,
                           description="人行道上占道经营")
    _, noise = open_case(stack, resident, category="dispute-noise", location=IN_JINJIANG,
                         description="楼下夜间噪音扰民")
    _, closed = open_case(stack, resident, category="hazard-vending", location=IN_JINJIANG,
                          description="占道经营（已处理）")
    act(operator, closed, action="close_directly", note="已处理")
    before = [snapshot(stack, c) for c in (case_id, noise, closed)]
    cases = [
        ({"action": "merge", "target_case_id": case_id}, 422, "bad-merge-target"),
        ({"action": "merge", "target_case_id": noise}, 422, "category-mismatch"),
        ({"action": "merge", "target_case_id": closed}, 409, "action-not-allowed"),
        ({"action": "merge"}, 422, "target-case-id-required"),
        ({"action": "merge", "target_case_id": str(uuid.uuid4())}, 404, "not-found"),
    ]
    for body, status, type_ in cases:
        assert_problem(operator.post(f"/v1/cases/{case_id}/actions", json=body), status,
                       type_)
    assert [snapshot(stack, c) for c in (case_id, noise, closed)] == before


# --- assignment, 退单 and 内部流转 -----------------------------------------------------

def test_repeated_returns_go_back_to_the_operator_who_decides(stack, operator):
    resident = stack.client("resident-zhang")
    handler = stack.client("handler-shibanqiao")
    _, case_id = open_case(stack, resident, category="dispute-parking",
                           location=IN_SHIBANQIAO, description="小区消防通道被私家车占用")
    act(operator, case_id, action="assign", unit_id="comm-shibanqiao")
    repeated_before = stack.metric("dispatch", "minqing_case_repeated_returns_total")
    # A return needs a reason; without one nothing changes
    before = snapshot(stack, case_id)
    assert_problem(handler.post(f"/v1/cases/{case_id}/actions", json={"action": "return"}),
                   422, "note-required")
    assert snapshot(stack, case_id) == before
    # When the handler returns it (退单) with a reason
    case = act(handler, case_id, action="return", note="该小区不在本社区物业管理范围")
    # Then it is back with the operator, the reason kept
    assert (case["status"], case["return_count"], case["return_reason"]) == (
        "returned", 1, "该小区不在本社区物业管理范围")
    assert case["needs_operator_decision"] is False
    # When it is assigned again and returned a second time
    act(operator, case_id, action="assign", unit_id="comm-shibanqiao")
    act(handler, case_id, action="accept")
    case = act(handler, case_id, action="return", note="仍不属于本社区")
    # Then the operator is asked to decide, and an operator can see that in a metric
    assert (case["status"], case["return_count"]) == ("returned", 2)
    case = operator.get(f"/v1/cases/{case_id}").json()
    assert case["needs_operator_decision"] is True
    assert stack.metric("dispatch", "minqing_case_repeated_returns_total") == \
        repeated_before + 1
    # And the operator decides: transfer is for a unit holding it; here, assign elsewhere
    assert act(operator, case_id, action="assign", unit_id="dept-chengguan")["unit_id"] == \
        "dept-chengguan"
    assert [e["action"] for e in trail(operator, case_id)].count("return") == 2


def test_an_internal_transfer_moves_the_case_to_another_unit_on_the_trail(stack, operator):
    resident = stack.client("resident-zhang")
    community, department = stack.client("handler-shibanqiao"), \
        stack.client("handler-chengguan")
    _, case_id = open_case(stack, resident, category="hazard-facility",
                           location=IN_SHIBANQIAO, description="人行道井盖缺失")
    act(operator, case_id, action="assign", unit_id="comm-shibanqiao")
    act(community, case_id, action="accept")
    # A transfer to the unit that holds it, or without a reason, is refused
    before = snapshot(stack, case_id)
    assert_problem(community.post(f"/v1/cases/{case_id}/actions", json={
        "action": "transfer", "unit_id": "comm-shibanqiao", "note": "x"}), 422, "same-unit")
    assert_problem(community.post(f"/v1/cases/{case_id}/actions", json={
        "action": "transfer", "unit_id": "dept-chengguan"}), 422, "note-required")
    assert_problem(community.post(f"/v1/cases/{case_id}/actions", json={
        "action": "transfer", "unit_id": "nowhere", "note": "x"}), 422, "unknown-unit")
    assert snapshot(stack, case_id) == before
    # When the community hands it to City Management with a reason (内部流转)
    case = act(community, case_id, action="transfer", unit_id="dept-chengguan",
               note="井盖属市政设施，需城管科协调")
    # Then City Management holds it, with a fresh accept deadline
    assert (case["status"], case["unit_id"]) == ("assigned", "dept-chengguan")
    assert case["accept_due_at"] and case["resolve_due_at"] is None
    # And the trail keeps the move and its reason; the community no longer sees it
    entry = trail(operator, case_id)[-1]
    assert (entry["action"], entry["unit_id"], entry["note"]) == (
        "transfer", "dept-chengguan", "井盖属市政设施，需城管科协调")
    assert community.get(f"/v1/cases/{case_id}").status_code == 403
    assert act(department, case_id, action="accept")["status"] == "accepted"


# --- 外部联动 -----------------------------------------------------------------------------

class EventTap:
    """An exclusive queue on an exchange, to see what dispatch publishes."""

    def __init__(self, amqp_uri: str, exchange: str, routing_key: str):
        self.conn = Connection(amqp_uri, heartbeat=0)
        self.received: list = []
        queue = Queue(f"test-tap.{uuid.uuid4().hex}", exclusive=True, auto_delete=True,
                      bindings=[binding(Exchange(exchange, type="topic", durable=True),
                                        routing_key=routing_key)])
        self.consumer = Consumer(self.conn.channel(), queues=[queue], accept=[],
                                 on_message=self._on_message)
        self.consumer.consume()

    def _on_message(self, message) -> None:
        self.received.append(json.loads(message.body))
        message.ack()

    def first(self, subject: str) -> dict:
        def drained():
            try:
                self.conn.drain_events(timeout=0.5)
            except TimeoutError:
                pass
            return next((e for e in self.received if e.get("subject") == subject), None)
        return wait_for(drained, what=f"an event about {subject}")

    def close(self) -> None:
        self.conn.release()


def partner_says(stack, verb: str, case_id: str, **data) -> None:
    """Publish what integration365 would, exactly as it would (the kernel's envelope)."""
    type_ = ev.event_type(f"external.{verb}")
    event = ev.new_event("integration365", type_, case_id, {
        "case_id": case_id, "partner": "ping_an_365", "at": "2026-11-30T08:00:00+00:00",
        "remote_id": "PA365-0001", **data})
    with Connection(stack.st.env["AMQP_URI"]) as conn:
        conn.Producer().publish(ev.to_body(event), exchange=Exchange(
            "integration365.events", type="topic", durable=True), routing_key=type_,
            content_type=ev.CONTENT_TYPE, delivery_mode=2)


def test_external_linkage_hands_the_case_over_and_follows_the_partner(stack, operator):
    resident = stack.client("resident-wang")
    report_id, case_id = open_case(stack, resident, category="hazard-security",
                                   location=IN_JINJIANG, address="近江东园 3 幢",
                                   description="楼道内有人长期堆放易燃物并私拉电线")
    tap = EventTap(stack.st.env["AMQP_URI"], "dispatch.events",
                   "cn.minqing.case.escalated_external.v1")
    try:
        # When the operator hands it to 平安365 (外部联动)
        case = act(operator, case_id, action="escalate_external", note="需区平台联动消防")
        assert (case["status"], case["partner"], case["unit_id"]) == (
            "escalated_external", "ping_an_365", "ext-pingan365")
        # Then case.escalated_external carries what the partner needs, never the reporter
        event = tap.first(case_id)
    finally:
        tap.close()
    data = event["data"]
    assert (data["partner"], data["address"], data["category"]) == (
        "ping_an_365", "近江东园 3 幢", "hazard-security")
    assert data["location"] == IN_JINJIANG and data["resolve_due_at"]
    assert resident.user["id"] not in json.dumps(event)

    # When the partner accepts and reports progress, the trail says so; the status stays
    partner_says(stack, "accepted", case_id, note="已受理")
    partner_says(stack, "progress", case_id, remote_status="dispatched", note="已派消防员")
    wait_for(lambda: [e["action"] for e in trail(operator, case_id)][-2:] == [
        "external_accepted", "external_progress"], what="the partner's steps on the trail")
    assert operator.get(f"/v1/cases/{case_id}").json()["status"] == "escalated_external"
    # When the partner resolves it, the case is resolved with its result
    partner_says(stack, "resolved", case_id, result="已清理易燃物，拆除私拉电线")
    wait_for(lambda: operator.get(f"/v1/cases/{case_id}").json()["status"] == "resolved",
             what="the case resolved by the partner")
    assert resident.get(f"/v1/reports/{report_id}").json()["case"]["status"] == "resolved"
    assert operator.get(f"/v1/cases/{case_id}").json()["result"] == "已清理易燃物，拆除私拉电线"
    # And the reporter rates it as usual
    rated = resident.post(f"/v1/cases/{case_id}/feedback", json={"rating": 4})
    assert rated.json()["status"] == "closed", rated.text

    # A late word from the partner on the closed case is counted and dropped
    ignored = stack.metric("dispatch", "minqing_external_events_ignored_total")
    partner_says(stack, "progress", case_id, remote_status="closed")
    wait_for(lambda: stack.metric("dispatch", "minqing_external_events_ignored_total")
             == ignored + 1, what="the stale event counted")
    assert operator.get(f"/v1/cases/{case_id}").json()["status"] == "closed"


def test_the_partners_acceptance_arriving_after_its_result_still_reaches_the_trail(
        stack, operator):
    # Given a case with 平安365 that the partner has already resolved
    resident = stack.client("resident-wang")
    _, case_id = open_case(stack, resident, category="hazard-security", location=IN_JINJIANG,
                           description="地下车库消防栓无水")
    act(operator, case_id, action="escalate_external", note="需区平台联动")
    partner_says(stack, "resolved", case_id, result="已修复消防栓供水（迟到回执测试）")
    wait_for(lambda: operator.get(f"/v1/cases/{case_id}").json()["status"] == "resolved",
             what="the case resolved by the partner")
    # When its acceptance, sent before the result but on another queue, arrives now
    partner_says(stack, "accepted", case_id, note="迟到的受理回执")
    # Then it is kept on the trail after the result, and the case stays resolved
    wait_for(lambda: "迟到的受理回执" in [e["note"] for e in trail(operator, case_id)],
             what="the late acceptance on the trail")
    steps = [(e["action"], e["note"]) for e in trail(operator, case_id)]
    assert steps.index(("external_accepted", "迟到的受理回执")) > steps.index(
        ("external_resolved", "已修复消防栓供水（迟到回执测试）"))
    assert operator.get(f"/v1/cases/{case_id}").json()["status"] == "resolved"
    assert operator.get(f"/v1/cases/{case_id}/trail/verify").json()["valid"]


def test_a_partner_rejection_returns_the_case_with_its_reason(stack, operator):
    resident = stack.client("resident-wang")
    _, case_id = open_case(stack, resident, category="hazard-security",
                           location=IN_JINJIANG, description="小区门禁损坏")
    act(operator, case_id, action="escalate_external")
    partner_says(stack, "rejected", case_id, reason="属物业维修范围，不属于平安365受理范围")
    case = wait_for(lambda: (c := operator.get(f"/v1/cases/{case_id}").json())["status"]
                    == "returned" and c, what="the case returned")
    assert case["return_reason"] == "属物业维修范围，不属于平安365受理范围"
    assert trail(operator, case_id)[-1]["action"] == "external_rejected"


# --- 班子会 and 民生实事项目 ---------------------------------------------------------------

def test_a_major_issue_goes_to_the_meeting_which_creates_a_project(stack, operator):
    zhang, li = stack.client("resident-zhang"), stack.client("resident-li")
    _, first = open_case(stack, zhang, category="suggestion-governance", location=IN_JINJIANG,
                         description="老旧小区没有电梯，老人上下楼困难")
    _, second = open_case(stack, li, category="suggestion-governance", location=IN_JINJIANG,
                          description="希望加装电梯")
    # An escalation needs a reason
    assert_problem(operator.post(f"/v1/cases/{first}/actions", json={
        "action": "escalate_leadership"}), 422, "note-required")
    for case_id in (first, second):
        act(operator, case_id, action="escalate_leadership", note="涉及多部门与资金，提交班子会")
    # Then both are on the agenda
    agenda = {c["id"] for c in operator.get("/v1/agenda", params={"limit": 100})
              .json()["items"]}
    assert {first, second} <= agenda

    # A project without a budget is refused and nothing changes
    projects_before = stack.scalar("SELECT count(*) FROM dispatch.livelihood_projects")
    before = snapshot(stack, first)
    assert_problem(operator.post(f"/v1/agenda/{first}/decision", json={
        "decision": "create_project", "title": "加装电梯", "answer": "列入项目"}), 422,
        "project-incomplete")
    assert snapshot(stack, first) == before
    assert stack.scalar("SELECT count(*) FROM dispatch.livelihood_projects") == \
        projects_before

    # When the meeting decides on a project for both
    r = operator.post(f"/v1/agenda/{first}/decision", json={
        "decision": "create_project", "title": "近江社区老旧小区加装电梯", "budget": 1200000,
        "answer": "班子会研究决定列入年度民生实事项目", "also_case_ids": [second]})
    assert r.status_code == 200, r.text
    project = r.json()["project"]
    # Then the project links its source cases, and each reporter reads the answer
    assert (project["status"], project["budget"]) == ("planned", 1200000)
    assert sorted(project["case_ids"]) == sorted([first, second])
    for client, case_id in ((zhang, first), (li, second)):
        case = client.get(f"/v1/cases/{case_id}").json()
        assert (case["status"], case["project_id"]) == ("resolved", project["id"])
        assert "近江社区老旧小区加装电梯" in case["result"]
    assert operator.get(f"/v1/projects/{project['id']}").json()["case_ids"] == \
        project["case_ids"]
    assert project["id"] in {p["id"] for p in operator.get(
        "/v1/projects", params={"status": "planned", "limit": 100}).json()["items"]}
    # And the project moves on, but not backwards
    r = operator.http.patch(f"{operator.base}/v1/projects/{project['id']}",
                            json={"status": "in_progress"})
    assert r.status_code == 200 and r.json()["status"] == "in_progress", r.text
    assert_problem(operator.http.patch(f"{operator.base}/v1/projects/{project['id']}",
                                       json={"status": "planned"}), 409,
                   "project-status-not-allowed")
    # A decision on a case that is not on the agenda is not possible
    assert_problem(operator.post(f"/v1/agenda/{first}/decision", json={
        "decision": "no_project", "answer": "x"}), 409, "action-not-allowed")


def test_the_meeting_may_answer_without_a_project(stack, operator):
    resident = stack.client("resident-li")
    _, case_id = open_case(stack, resident, category="suggestion-governance",
                           location=IN_JINLONG, description="建议在社区设立共享工具屋")
    act(operator, case_id, action="escalate_leadership", note="需班子会研究")
    r = operator.post(f"/v1/agenda/{case_id}/decision", json={
        "decision": "no_project", "answer": "由社区自筹设立，无需立项"})
    assert r.status_code == 200 and r.json()["project"] is None, r.text
    case = resident.get(f"/v1/cases/{case_id}").json()
    assert (case["status"], case["result"], case["project_id"]) == (
        "resolved", "由社区自筹设立，无需立项", None)


# --- 微心愿 ---------------------------------------------------------------------------------

def test_a_micro_wish_is_claimed_and_fulfilled_by_a_volunteer(stack, operator):
    resident = stack.client("resident-li")
    volunteer = stack.client("patroller-zhao")  # 红袖章: the patroller role
    report_id, case_id = open_case(stack, resident, category="help-wish", location=IN_JINJIANG,
                                   description="独居，厨房灯泡坏了够不着，想请人帮忙换一下")
    # When the operator publishes it to the volunteer board
    assert act(operator, case_id, action="publish_wish")["status"] == "wish"
    # Then a volunteer finds it there, without who asked
    board = volunteer.get("/v1/wishes", params={"claimed": "false", "limit": 100})
    assert board.status_code == 200, board.text
    wish = next(w for w in board.json()["items"] if w["id"] == case_id)
    assert "reporter_ids" not in wish and resident.user["id"] not in json.dumps(wish)
    # Fulfilling before claiming is not theirs to do; a handler may not claim
    assert_problem(volunteer.post(f"/v1/wishes/{case_id}/fulfil", json={"note": "x"}), 403,
                   "not-your-wish")
    assert_problem(stack.client("handler-jinjiang").post(f"/v1/wishes/{case_id}/claim"), 403,
                   "role-required")
    # When the volunteer claims it, nobody can claim it again
    claimed = volunteer.post(f"/v1/wishes/{case_id}/claim")
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == volunteer.user["id"]
    assert_problem(volunteer.post(f"/v1/wishes/{case_id}/claim"), 409, "wish-claimed")
    # And fulfils it with a note: the case is resolved and the reporter sees it
    done = volunteer.post(f"/v1/wishes/{case_id}/fulfil", json={"note": "已上门更换灯泡"})
    assert done.status_code == 200 and done.json()["status"] == "resolved", done.text
    assert resident.get(f"/v1/reports/{report_id}").json()["case"]["status"] == "resolved"
    assert [e["action"] for e in trail(operator, case_id)][-3:] == [
        "publish_wish", "claim_wish", "fulfil_wish"]
    rated = resident.post(f"/v1/cases/{case_id}/feedback", json={"rating": 5})
    assert rated.json()["status"] == "closed", rated.text


# --- routing rules as data ---------------------------------------------------------------

def test_an_admin_edits_a_routing_rule_and_new_cases_follow_it(stack, operator):
    admin = stack.client("admin")
    resident = stack.client("resident-zhang")
    rule = {"category": "suggestion-governance", "community": "comm-jinlong",
            "unit_id": "dept-minzheng", "reason_zh": "金隆社区治理建议由民政科统筹",
            "reason_en": "Governance suggestions in Jinlong go to Civil Affairs"}
    # Bad rules are refused, and an operator may read the rules but not change them
    rules_before = admin.get("/v1/routing-rules").json()["items"]
    problem = assert_problem(put(admin, "/v1/routing-rules", json={
        **rule, "unit_id": "nowhere", "community": "atlantis"}), 422, "invalid-rule")
    assert {e["field"] for e in problem["errors"]} == {"unit_id", "community"}
    assert_problem(put(operator, "/v1/routing-rules", json=rule), 403, "role-required")
    assert admin.get("/v1/routing-rules").json()["items"] == rules_before
    # When the admin adds the rule
    r = put(admin, "/v1/routing-rules", json=rule)
    assert r.status_code == 200, r.text
    saved = r.json()
    try:
        # Then a new case there is suggested to that unit, and the case says why
        _, case_id = open_case(stack, resident, category="suggestion-governance",
                               location=IN_JINLONG, description="建议增设社区议事厅")
        case = operator.get(f"/v1/cases/{case_id}").json()
        assert case["suggested_unit_id"] == "dept-minzheng"
        explained = case["suggestion_explanation"]
        assert (explained["id"], explained["community"]) == (saved["id"], "comm-jinlong")
        assert "both the category and the community" in explained["why_en"]
        # and the operator can always override
        assert act(operator, case_id, action="assign",
                   unit_id="comm-jinlong")["unit_id"] == "comm-jinlong"
    finally:
        assert delete(admin, f"/v1/routing-rules/{saved['id']}").status_code == 200
    # After deleting it the community default applies again
    _, case_id = open_case(stack, resident, category="suggestion-governance",
                           location=IN_JINLONG, description="建议增设快递柜")
    assert operator.get(f"/v1/cases/{case_id}").json()["suggested_unit_id"] == "comm-jinlong"
    assert_problem(delete(admin, f"/v1/routing-rules/{saved['id']}"), 404, "not-found")


# --- who sees what ---------------------------------------------------------------------------

def test_a_leader_sees_the_cases_of_the_units_they_lead_only(stack, operator):
    resident = stack.client("resident-zhang")
    _, case_id = open_case(stack, resident, category="hazard-facility",
                           location=IN_SHIBANQIAO, description="健身器材损坏")
    act(operator, case_id, action="assign", unit_id="comm-shibanqiao")
    mine, theirs = stack.client("leader-shibanqiao"), stack.client("leader-qiutao")
    assert mine.get(f"/v1/cases/{case_id}").status_code == 200
    assert theirs.get(f"/v1/cases/{case_id}").status_code == 403
    listed = {c["id"] for c in theirs.get("/v1/cases", params={"limit": 100}).json()["items"]}
    assert case_id not in listed


# --- bad input changes nothing -------------------------------------------------------------

BAD_ACTIONS = [
    ({"action": "set_priority"}, 422, "priority-required"),
    ({"action": "set_priority", "priority": "asap"}, 422, "invalid"),
    ({"action": "escalate_external", "partner": "nowhere"}, 422, "unknown-partner"),
    ({"action": "transfer", "note": "转给城管"}, 422, "unit-id-required"),
    ({"action": "transfer", "unit_id": "dept-chengguan", "note": "x"}, 409,
     "action-not-allowed"),                      # nobody holds a case in screening
    ({"action": "return", "note": "不归我们管"}, 403, "forbidden"),  # a handler's action
    ({"action": "escalate_leadership", "note": "  "}, 422, "note-required"),
    ({"action": "publish_wish", "colour": "red"}, 422, "invalid"),
    ({"action": "fulfil_wish", "note": "x"}, 422, "invalid"),  # not through /actions
]


@pytest.mark.parametrize(("body", "status", "type_"), BAD_ACTIONS,
                         ids=[f"{b['action']}->{t}" for b, _, t in BAD_ACTIONS])
def test_a_bad_action_is_a_clear_problem_and_changes_nothing(stack, operator, body, status,
                                                            type_):
    resident = stack.client("resident-li")
    _, case_id = open_case(stack, resident, category="hazard-facility", location=IN_JINLONG,
                           description="小区围墙有裂缝，担心倒塌")
    before = snapshot(stack, case_id)
    assert_problem(operator.post(f"/v1/cases/{case_id}/actions", json=body), status, type_)
    assert snapshot(stack, case_id) == before
