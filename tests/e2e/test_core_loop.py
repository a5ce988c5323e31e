"""The core loop, end to end: phone -> command center -> handler -> phone.

gateway, identity, intake and dispatch run as real processes against the real
RabbitMQ, PostgreSQL and S3 server (see tests/fixtures.py).
"""
import pytest
import requests

from tests.fixtures import JPEG, wait_for

pytestmark = pytest.mark.integration
RESULT = JPEG + "办结照片".encode()  # the handler's photo: other bytes than the resident's


def test_a_report_travels_from_the_resident_to_a_handler_and_back(stack):
    resident = stack.client("resident-zhang")
    operator = stack.client("operator-chen")
    handler = stack.client("handler-shibanqiao")

    # Given a resident who photographs the problem and uploads it with a presigned POST
    photo = resident.upload(JPEG)
    bucket = resident.post("/v1/uploads", json={
        "content_type": "image/jpeg", "size": 10}).json()["upload_url"]
    stored = requests.get(f"{bucket}/{photo}")
    assert stored.status_code in (403, 404)  # the bucket is not public

    # When she submits a report with it
    r = resident.report(description="小区门口深夜烧烤摊油烟噪音扰民", attachments=[photo],
                        address="始版桥直街 12 号")
    assert r.status_code == 201, r.text
    report = r.json()
    # (kept under a key of its own that her ticket cannot write: see tests/e2e/test_uploads.py)
    assert report["attachments"][0]["key"].startswith("attachments/")
    assert report["attachments"][0]["content_type"] == "image/jpeg"
    # and she can see her photo again through the URL her report carries (a redirect to a
    # short-lived link of the store: tests/e2e/test_photos.py)
    assert resident.get(report["attachments"][0]["url"]).content == JPEG

    # Then a case appears in the operator's screening queue with a suggested unit
    def in_queue():
        items = operator.get("/v1/cases", params={"status": "screening", "limit": 100}).json()
        return next((c for c in items["items"] if report["id"] in c["report_ids"]), None)
    case = wait_for(in_queue, what="the case in the screening queue")
    assert case["suggested_unit_id"] == "comm-shibanqiao"
    assert case["suggestion_reason"]["zh"]
    assert resident.get(f"/v1/reports/{report['id']}").json()["case"]["status"] == "screening"

    # When the operator assigns it to the suggested unit
    r = operator.post(f"/v1/cases/{case['id']}/actions", json={"action": "assign"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "assigned" and r.json()["unit_id"] == "comm-shibanqiao"
    assert r.json()["accept_due_at"]

    # And the handler of that unit sees the resident's photo, accepts the case and resolves
    # it with a photo of the result
    # (newest first: the unit's list holds the other tests' cases too)
    mine = handler.get("/v1/cases", params={"status": "assigned", "sort": "newest"}).json()
    assert mine["items"][0]["id"] == case["id"]
    seen = handler.get(f"/v1/cases/{case['id']}").json()
    assert handler.get(seen["attachments"][0]["url"]).content == JPEG
    r = handler.post(f"/v1/cases/{case['id']}/actions", json={"action": "accept"})
    assert r.status_code == 200 and r.json()["resolve_due_at"], r.text
    after = handler.upload(RESULT)
    r = handler.post(f"/v1/cases/{case['id']}/actions", json={
        "action": "resolve", "result": "已联系摊主，改为 21 点前收摊并加装油烟净化器",
        "attachments": [after]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved"
    assert [a["key"][:12] for a in r.json()["result_attachments"]] == ["attachments/"]
    assert after not in r.text

    # Then the resident sees every step on the timeline
    timeline = resident.get(f"/v1/cases/{case['id']}/timeline").json()
    steps = [(e["action"], e["to_status"]) for e in timeline["entries"]]
    assert steps == [("open", "screening"), ("assign", "assigned"), ("accept", "accepted"),
                     ("resolve", "resolved")]
    assert timeline["entries"][3]["attachments"][0]["content_type"] == "image/jpeg"
    assert resident.get(timeline["entries"][3]["attachments"][0]["url"]).content == RESULT
    # by names, not codes: the community and the role in Chinese, no staff id
    assert timeline["entries"][2]["actor_shown_as"] == "始版桥社区 · 处置人员"
    assert "handler-shibanqiao" not in str(timeline) and "operator-chen" not in str(timeline)
    # and she may read the units' public names (and nothing else about them)
    units = resident.get("/v1/units").json()["items"]
    assert next(u for u in units if u["id"] == "comm-shibanqiao")["name_zh"] == "始版桥社区"
    assert all(set(u) == {"id", "kind", "name_zh", "name_en"} for u in units)

    # When she rates the outcome, the case closes
    r = resident.post(f"/v1/cases/{case['id']}/feedback", json={"rating": 5, "comment": "满意"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["rating"] == 5
    final = resident.get(f"/v1/cases/{case['id']}/timeline").json()
    assert [e["to_status"] for e in final["entries"]][-1] == "closed"
    assert resident.get(f"/v1/reports/{report['id']}").json()["case"]["status"] == "closed"

    # And all five steps are in the append-only trail
    assert stack.scalar("SELECT count(*) FROM dispatch.case_trail WHERE case_id = :c",
                        c=case["id"]) == 5


def test_a_phone_call_reaches_a_handler_and_the_callers_rating_comes_back(stack):
    operator = stack.client("operator-chen")
    handler = stack.client("handler-shibanqiao")
    caller = "13955501234"

    # Given an elderly resident who phones the command center, and the operator who
    # takes the call and files it for her
    r = operator.report(channel="phone", caller_phone=caller, category="help-elderly",
                        description="独居老人来电：家中水管漏水，无人帮忙")
    assert r.status_code == 201, r.text
    case_id = wait_for(lambda: stack.case_for(r.json()["id"]), what="the case")

    # When it is assigned, accepted and resolved
    for who, action in ((operator, {"action": "assign", "unit_id": "comm-shibanqiao"}),
                        (handler, {"action": "accept"}),
                        (handler, {"action": "resolve", "result": "网格员上门更换水管"})):
        assert who.post(f"/v1/cases/{case_id}/actions", json=action).status_code == 200

    # Then it waits in the callback queue, and the operator may see her number to call
    def queued():
        items = operator.get("/v1/callbacks", params={"limit": 100}).json()["items"]
        return next((c for c in items if c["case_id"] == case_id), None)
    callback = wait_for(queued, what="the callback")
    assert callback["channel"] == "phone"
    r = operator.post(f"/v1/callbacks/{callback['id']}/caller-number")
    assert r.status_code == 200 and r.json()["phones"] == [caller], r.text
    # (the handler never sees it)
    assert caller not in handler.get(f"/v1/cases/{case_id}").text

    # When the operator records what she said on the phone, the case closes on it
    r = operator.post(f"/v1/cases/{case_id}/feedback",
                      json={"rating": 5, "comment": "老人说修好了，很满意"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["rating"] == 5
    last = operator.get(f"/v1/cases/{case_id}/timeline").json()["entries"][-1]
    assert (last["action"], last["actor_role"]) == ("rate_satisfied", "operator")


def test_every_service_is_ready_and_exposes_metrics(stack):
    for name in ("gateway", "intake", "dispatch", "identity"):
        base = stack.st.url(name)
        assert requests.get(f"{base}/health/live").status_code == 200
        ready = requests.get(f"{base}/health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
        assert "minqing_entrypoint_seconds" in requests.get(f"{base}/metrics").text


def test_submitted_reports_are_counted_in_intake_metrics(stack):
    resident = stack.client("resident-li")
    assert resident.report(category="hazard-rubbish",
                           description="楼道口堆放建筑垃圾").status_code == 201
    text = requests.get(f"{stack.st.url('intake')}/metrics").text
    assert 'minqing_reports_submitted_total{category="hazard-rubbish",channel="app"}' in text
