"""A day at the command center (指挥中心), end to end through the gateway.

Six reports, each taking a different road: one refused, one merged into its duplicate,
one closed on the spot, one transferred twice and then resolved, one left to run past its
accept deadline (yellow line, then red line), one taken to the leadership meeting that
makes it a livelihood project. At the end the supervision report (督办报告) for the
period must count exactly what happened, unit by unit.

Every process is real (tests/fixtures.py); dispatch scans its SLA clocks every 0.3 s here
so that a deadline of seconds can pass during the test.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.fixtures import wait_for

pytestmark = pytest.mark.integration

SCANNING = {"SLA_SCAN_INTERVAL_S": "0.3"}
# Places inside communities of the reference data; ~0.0009° of latitude is 100 m.
IN_QIUTAO = {"lat": 30.2495, "lon": 120.1935}
IN_JINLONG = {"lat": 30.2500, "lon": 120.1870}
# The units of this journey: none of the other tests' cases reach them in its period.
FIRST, SECOND, THIRD = "comm-qiutao", "dept-chengjian", "dept-sifa"
LATE_UNIT, LATE_CATEGORY = "org-heshilao", "dispute-neighbor"


@pytest.fixture(scope="module")
def center(stack):
    stack.restart("dispatch", **SCANNING)
    try:
        yield stack
    finally:
        stack.restart("dispatch")


def report(stack, client, **fields) -> tuple[str, str]:
    r = client.report(**fields)
    assert r.status_code == 201, r.text
    report_id = r.json()["id"]
    return report_id, wait_for(lambda: stack.case_for(report_id), what="the case")


def act(client, case_id: str, **action) -> dict:
    r = client.post(f"/v1/cases/{case_id}/actions", json=action)
    assert r.status_code == 200, r.text
    return r.json()


def inbox(client, case_id: str) -> list[str]:
    r = client.get("/v1/inbox", params={"limit": 100})
    assert r.status_code == 200, r.text
    return [i["kind"] for i in reversed(r.json()["items"]) if i["case_id"] == case_id]


def test_a_day_at_the_command_center_and_its_supervision_report(center):
    stack = center
    operator, admin = stack.client("operator-chen"), stack.client("admin")
    zhang, li, wang = (stack.client(f"resident-{n}") for n in ("zhang", "li", "wang"))
    start = stack.scalar("SELECT now()")
    spot = {"lat": IN_QIUTAO["lat"] + (uuid.uuid4().int % 50) / 111_195 * 3,
            "lon": IN_QIUTAO["lon"]}

    # 1. A report that is not for the subdistrict is refused (不予受理), with the reason
    _, refused = report(stack, zhang, category="suggestion-general", location=IN_JINLONG,
                        description="希望市里多开几条地铁线路")
    act(operator, refused, action="reject", note="属市级规划事项，已告知拨打 12345")

    # 2. Two neighbours report the same blocked fire lane: the second joins the first
    _, original = report(stack, zhang, category="hazard-fire", location=spot,
                         description="消防通道被电动车堵死")
    dup_report, duplicate = report(stack, li, category="hazard-fire",
                                   location={**spot, "lat": spot["lat"] + 30 / 111_195},
                                   description="楼下消防通道堆满电动车")
    candidates = operator.get(f"/v1/cases/{duplicate}/duplicates").json()["items"]
    assert original in [c["id"] for c in candidates]
    act(operator, duplicate, action="merge", target_case_id=original)
    # the second reporter now follows the first case
    assert li.get(f"/v1/reports/{dup_report}").json()["case"]["id"] == original
    act(operator, original, action="close_directly", note="网格员已到场清理并劝导，通道已畅通")

    # 3. A question answered on the phone is closed directly (直接结案)
    _, answered = report(stack, wang, category="suggestion-general", location=IN_QIUTAO,
                         description="社区食堂几点开门？")
    act(operator, answered, action="close_directly", note="已电话答复：每天 11:00 开门")

    # 4. A case transferred twice (内部流转), then accepted, resolved and rated
    _, moved = report(stack, wang, category="dispute-property", location=IN_QIUTAO,
                      description="物业擅自占用公共绿地搭建车棚")
    act(operator, moved, action="assign", unit_id=FIRST)
    act(stack.client("handler-qiutao"), moved, action="transfer", unit_id=SECOND,
        note="涉及违章搭建，转城建科")
    act(operator, moved, action="transfer", unit_id=THIRD,
        note="业主与物业的合同纠纷，转司法所调解")
    sifa = stack.client("handler-sifa")
    act(sifa, moved, action="accept")
    act(sifa, moved, action="resolve", result="调解达成协议，车棚拆除，绿地恢复")
    assert wang.post(f"/v1/cases/{moved}/feedback", json={"rating": 5}).status_code == 200
    assert wang.get(f"/v1/cases/{moved}").json()["status"] == "closed"
    assert [e["unit_id"] for e in wang.get(f"/v1/cases/{moved}/timeline").json()["entries"]
            if e["action"] in ("assign", "transfer")] == [FIRST, SECOND, THIRD]

    # 5. A case nobody accepts in time: yellow line at half its 10 s, red line at 10 s.
    # A low-priority policy of its own, so no other case's clock changes; put back after.
    [kept] = [p for p in admin.get("/v1/sla/policies", params={"category": LATE_CATEGORY})
              .json()["items"] if p["priority"] == "low"]
    r = admin.http.put(f"{admin.base}/v1/sla/policies/{LATE_CATEGORY}/low",
                       json={"accept_hours": 10 / 3600, "resolve_hours": 48,
                             "yellow_at": 0.5})
    assert r.status_code == 200, r.text
    try:
        _, late = report(stack, li, category=LATE_CATEGORY, location=IN_QIUTAO,
                         description="邻居在楼道堆放杂物，多次沟通无果")
        act(operator, late, action="set_priority", priority="low")
        act(operator, late, action="assign", unit_id=LATE_UNIT)
        handler = stack.client("handler-heshilao")
        wait_for(lambda: "red_line" in inbox(handler, late), timeout=60,
                 what="the red line in the handler's inbox")
    finally:
        admin.http.put(f"{admin.base}/v1/sla/policies/{LATE_CATEGORY}/low",
                       json={k: kept[k] for k in ("accept_hours", "resolve_hours",
                                                  "yellow_at")})
    # the yellow line came first, each once
    assert inbox(handler, late)[:2] == ["yellow_line", "red_line"]
    act(handler, late, action="accept")  # too late: it stays counted as late

    # 6. A major issue goes to the leadership meeting (班子会) and becomes a project
    _, major = report(stack, zhang, category="suggestion-governance", location=IN_QIUTAO,
                      description="老小区没有电梯，老人上下楼困难")
    act(operator, major, action="escalate_leadership", note="涉及资金与多部门，提交班子会")
    r = operator.post(f"/v1/agenda/{major}/decision", json={
        "decision": "create_project", "title": "秋涛社区老旧小区加装电梯",
        "budget": 800000, "answer": "班子会决定列入年度民生实事项目"})
    assert r.status_code == 200, r.text
    project = r.json()["project"]
    assert project["case_ids"] == [major] and project["budget"] == 800000
    assert zhang.get(f"/v1/cases/{major}").json()["project_id"] == project["id"]

    # Then each case ended where its road leads
    status = {c: operator.get(f"/v1/cases/{c}").json()["status"]
              for c in (refused, duplicate, original, answered, moved, late, major)}
    assert status == {refused: "rejected", duplicate: "merged", original: "closed",
                      answered: "closed", moved: "closed", late: "accepted",
                      major: "resolved"}

    # And the supervision report for the period counts exactly that, unit by unit
    period = {"from": start.isoformat(),
              "to": (stack.scalar("SELECT now()") + timedelta(minutes=1)).isoformat()}
    r = stack.client("discipline-lu").get("/v1/supervision/report", params=period)
    assert r.status_code == 200, r.text
    rows = {row["unit_id"]: row for row in r.json()["items"]
            if row["unit_id"] in (FIRST, SECOND, THIRD, LATE_UNIT)}
    figures = ("received", "accepted_on_time", "resolved", "resolved_on_time",
               "yellow_lines", "red_lines")
    assert {u: tuple(row[f] for f in figures) for u, row in rows.items()} == {
        FIRST: (1, 0, 0, 0, 0, 0),      # handed on before accepting
        SECOND: (1, 0, 0, 0, 0, 0),
        THIRD: (1, 1, 1, 1, 0, 0),      # accepted and resolved in time
        LATE_UNIT: (1, 0, 0, 0, 1, 1),  # one yellow, one red, accepted late
    }
    assert (rows[THIRD]["resolution_rate"], rows[THIRD]["satisfaction_rate"],
            rows[THIRD]["reopen_rate"]) == (1.0, 1.0, 0.0)
    assert rows[FIRST]["resolution_rate"] == 0.0
    # and the trails of all of them are intact
    for case_id in status:
        check = operator.get(f"/v1/cases/{case_id}/trail/verify").json()
        assert check["valid"], check
