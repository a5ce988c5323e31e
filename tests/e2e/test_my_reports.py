"""My reports show their status (issue #12, point 7): GET /v1/reports carries each
report's case and its current status, so a phone needs no call per report."""
from __future__ import annotations

import pytest

from tests.fixtures import wait_for

pytestmark = pytest.mark.integration


def listed(client, report_id: str) -> dict:
    items = client.get("/v1/reports", params={"limit": 100}).json()["items"]
    return next(i for i in items if i["id"] == report_id)


def test_each_report_in_her_list_carries_its_cases_status(stack):
    # Given two reports of a resident, one of them assigned by the command center
    resident, operator = stack.client("resident-wang"), stack.client("operator-chen")
    first = resident.report(description="小区路灯不亮，晚上很黑").json()
    second = resident.report(description="楼道堆放杂物，存在消防隐患").json()
    cases = {r["id"]: wait_for(lambda r=r: stack.case_for(r["id"]), what="the case")
             for r in (first, second)}
    assert operator.post(f"/v1/cases/{cases[first['id']]}/actions",
                         json={"action": "assign"}).status_code == 200

    # When she lists her reports
    # Then each carries its case, in the status it is in now, in words she can read
    assert listed(resident, first["id"])["case"] == {
        "id": cases[first["id"]], "status": "assigned",
        "status_zh": resident.get(f"/v1/reports/{first['id']}").json()["case"]["status_zh"]}
    assert listed(resident, second["id"])["case"]["status"] == "screening"
    assert listed(resident, second["id"])["case"]["status_zh"]


def test_the_status_in_the_list_follows_the_case(stack):
    resident, operator = stack.client("resident-wang"), stack.client("operator-chen")
    report = resident.report(description="绿化带里有人乱扔垃圾").json()
    case_id = wait_for(lambda: stack.case_for(report["id"]), what="the case")
    assert operator.post(f"/v1/cases/{case_id}/actions", json={
        "action": "reject", "note": "重复反映"}).status_code == 200
    assert listed(resident, report["id"])["case"]["status"] == "rejected"


def test_a_leader_sees_the_status_of_the_reports_her_unit_handles(stack):
    # Given a report whose case is assigned to 石板桥 (the unit leader-shibanqiao leads)
    resident, operator = stack.client("resident-zhang"), stack.client("operator-chen")
    report = resident.report(description="小区门口共享单车乱停放").json()
    case_id = wait_for(lambda: stack.case_for(report["id"]), what="the case")
    assert operator.post(f"/v1/cases/{case_id}/actions", json={
        "action": "assign", "unit_id": "comm-shibanqiao"}).status_code == 200
    # When its leader lists reports, then it is there with its case's status
    leader = stack.client("leader-shibanqiao")
    assert listed(leader, report["id"])["case"] == {
        "id": case_id, "status": "assigned",
        "status_zh": resident.get(f"/v1/reports/{report['id']}").json()["case"]["status_zh"]}
