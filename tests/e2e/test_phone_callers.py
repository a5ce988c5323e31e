"""Phone callers stay in the loop (issue #12, point 5), against the real stack.

A caller has no app. When their case is resolved it goes to the callback queue at once;
an operator (and only an operator) may be shown their number to call them back, each
showing audited in intake and counted; the rating the caller gives on the phone is
recorded by the operator with POST /v1/cases/{id}/feedback, which closes the case and
answers the callback. Nobody else ever sees the number.
"""
from __future__ import annotations

import uuid

import pytest

from tests.fixtures import wait_for

pytestmark = pytest.mark.integration


def a_number() -> str:
    return f"139{uuid.uuid4().int % 10**8:08d}"


def resolved_case(stack, reporter, **report) -> str:
    """A report, its case assigned to 石板桥, accepted and resolved by its handler."""
    r = reporter.report(description="来电反映：小区门口窨井盖缺失", **report)
    assert r.status_code == 201, r.text
    case_id = wait_for(lambda: stack.case_for(r.json()["id"]), what="the case")
    operator, handler = stack.client("operator-chen"), stack.client("handler-shibanqiao")
    for who, action in ((operator, {"action": "assign", "unit_id": "comm-shibanqiao"}),
                        (handler, {"action": "accept"}),
                        (handler, {"action": "resolve", "result": "已补装井盖"})):
        r = who.post(f"/v1/cases/{case_id}/actions", json=action)
        assert r.status_code == 200, r.text
    return case_id


def callback_of(operator, case_id: str) -> dict:
    def queued():
        items = operator.get("/v1/callbacks", params={"limit": 100}).json()["items"]
        return next((c for c in items if c["case_id"] == case_id), None)
    return wait_for(queued, what="the callback in the queue")


@pytest.fixture
def phone_case(stack):
    """A call taken by an operator, resolved: (case id, the caller's number)."""
    number = a_number()
    operator = stack.client("operator-chen")
    return resolved_case(stack, operator, channel="phone", caller_phone=number), number


def test_a_resolved_phone_case_is_queued_for_the_callers_rating(stack, phone_case):
    case_id, _ = phone_case
    callback = callback_of(stack.client("operator-chen"), case_id)
    assert callback["channel"] == "phone" and callback["case_status"] == "resolved"


def test_an_operator_is_shown_the_callers_number_and_the_showing_is_audited(stack,
                                                                          phone_case):
    # Given a phone case waiting for its callback
    case_id, number = phone_case
    operator = stack.client("operator-chen")
    callback = callback_of(operator, case_id)
    before = stack.metric("intake", "minqing_caller_numbers_revealed_total")

    # When the operator asks for the caller's number to call them
    r = operator.post(f"/v1/callbacks/{callback['id']}/caller-number")

    # Then they get it, and intake recorded who saw it, for which case and callback
    assert r.status_code == 200, r.text
    assert r.json()["phones"] == [number]
    assert r.headers["Cache-Control"] == "no-store"
    assert stack.scalar(
        "SELECT revealed_to FROM intake.caller_number_reveals WHERE case_id = :c "
        "AND callback_id = :b", c=case_id, b=callback["id"]) == operator.user["id"]
    assert stack.metric("intake", "minqing_caller_numbers_revealed_total") == before + 1


@pytest.mark.parametrize("username", ["handler-shibanqiao", "leader-shibanqiao",
                                      "discipline-lu", "resident-zhang"])
def test_nobody_but_an_operator_is_shown_the_number(stack, phone_case, username):
    case_id, number = phone_case
    callback = callback_of(stack.client("operator-chen"), case_id)
    r = stack.client(username).post(f"/v1/callbacks/{callback['id']}/caller-number")
    assert r.status_code == 403, r.text
    assert number not in r.text
    assert stack.scalar("SELECT count(*) FROM intake.caller_number_reveals "
                        "WHERE case_id = :c", c=case_id) == 0


def test_the_operator_records_the_callers_rating_and_the_callback_is_answered(stack,
                                                                            phone_case):
    # Given a phone case waiting for its callback
    case_id, _ = phone_case
    operator = stack.client("operator-chen")
    callback = callback_of(operator, case_id)

    # When the operator records what the caller said on the phone
    r = operator.post(f"/v1/cases/{case_id}/feedback",
                      json={"rating": 4, "comment": "来电人表示井盖已补好，满意"})

    # Then the case closes on that rating, recorded on the trail as the operator's doing
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["rating"] == 4
    last = operator.get(f"/v1/cases/{case_id}/timeline").json()["entries"][-1]
    assert (last["action"], last["actor_id"], last["actor_role"]) == (
        "rate_satisfied", operator.user["id"], "operator")
    # and the handler does not read the caller's words
    seen = stack.client("handler-shibanqiao").get(f"/v1/cases/{case_id}/timeline").json()
    assert seen["entries"][-1]["note"] is None
    # and the callback is answered, so its number is not shown any more
    answered = operator.get("/v1/callbacks", params={"status": "satisfied", "limit": 100})
    assert callback["id"] in {c["id"] for c in answered.json()["items"]}
    r = operator.post(f"/v1/callbacks/{callback['id']}/caller-number")
    assert r.status_code == 409 and r.json()["type"] == "/problems/callback-recorded"


def test_an_operator_cannot_rate_a_case_a_resident_reported_in_the_app(stack):
    case_id = resolved_case(stack, stack.client("resident-zhang"))
    r = stack.client("operator-chen").post(f"/v1/cases/{case_id}/feedback",
                                           json={"rating": 5})
    assert r.status_code == 403 and r.json()["type"] == "/problems/not-your-case"
    assert stack.scalar("SELECT status FROM dispatch.cases WHERE id = :c",
                        c=case_id) == "resolved"


def test_a_callback_about_an_app_report_has_no_callers_number(stack):
    # Given a closed case a resident reported in the app, in the callback queue
    resident, operator = stack.client("resident-zhang"), stack.client("operator-chen")
    case_id = resolved_case(stack, resident)
    assert resident.post(f"/v1/cases/{case_id}/feedback", json={"rating": 5}).ok
    with stack.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO dispatch.callbacks (id, case_id, queued_at, status) VALUES "
            "(gen_random_uuid(), %(c)s, now(), 'pending') ON CONFLICT DO NOTHING",
            {"c": case_id})
    callback = callback_of(operator, case_id)
    assert callback["channel"] == "app"
    # When the operator asks for a caller's number, then there is none to show
    r = operator.post(f"/v1/callbacks/{callback['id']}/caller-number")
    assert r.status_code == 409 and r.json()["type"] == "/problems/no-caller-number"
