"""The command center's list (issue #12, point 6): GET /v1/cases filtered by category,
community, unit, priority, overdue and opening time, sorted oldest, newest or most urgent
first, with cursor pages that stay right under each sort.

Each test lists only the cases it opened (opened_from its first case's opening time:
the session's other tests opened theirs before). Deadlines are arranged in the database,
not waited for: no test depends on the wall clock.
"""
from __future__ import annotations

from datetime import datetime

import pytest

from tests.fixtures import wait_for

pytestmark = pytest.mark.integration

IN_QIUTAO = {"lat": 30.2495, "lon": 120.1935}


@pytest.fixture
def operator(stack):
    return stack.client("operator-chen")


def opened(stack, n: int, **report) -> list[dict]:
    """n cases from resident reports, in the order they were opened, as the operator
    sees them."""
    resident, operator = stack.client("resident-zhang"), stack.client("operator-chen")
    cases = []
    for i in range(n):
        r = resident.report(description=f"列表测试第 {i + 1} 条：路面坑洼", **report)
        assert r.status_code == 201, r.text
        case_id = wait_for(lambda r=r: stack.case_for(r.json()["id"]), what="the case")
        cases.append(operator.get(f"/v1/cases/{case_id}").json())
    return cases


def every_page(client, **params) -> list[str]:
    """The ids of every case the list gives, page after page."""
    ids, params = [], {"limit": 2, **params}
    for _ in range(50):
        r = client.get("/v1/cases", params=params)
        assert r.status_code == 200, r.text
        ids += [c["id"] for c in r.json()["items"]]
        if not r.json()["next_cursor"]:
            return ids
        params["cursor"] = r.json()["next_cursor"]
    raise AssertionError("more pages than cases")


def since(cases: list[dict]) -> dict:
    return {"opened_from": cases[0]["opened_at"]}


def act(client, case_id: str, **action) -> dict:
    r = client.post(f"/v1/cases/{case_id}/actions", json=action)
    assert r.status_code == 200, r.text
    return r.json()


def test_newest_first_and_oldest_first_page_through_the_same_cases(stack, operator):
    cases = opened(stack, 5)
    ids = [c["id"] for c in cases]
    assert every_page(operator, sort="newest", **since(cases)) == ids[::-1]
    assert every_page(operator, sort="oldest", **since(cases)) == ids
    assert every_page(operator, **since(cases)) == ids  # oldest is the default


def test_filters_by_category_community_unit_and_priority(stack, operator):
    noise = opened(stack, 2, category="dispute-noise")
    rubbish = opened(stack, 1, category="hazard-rubbish", location=IN_QIUTAO)
    everything = since(noise)
    act(operator, noise[0]["id"], action="assign", unit_id="comm-shibanqiao")
    act(operator, noise[1]["id"], action="set_priority", priority="urgent")

    assert every_page(operator, category="dispute-noise", **everything) == [
        c["id"] for c in noise]
    assert every_page(operator, community=rubbish[0]["community_id"], **everything) == [
        rubbish[0]["id"]]
    assert every_page(operator, unit="comm-shibanqiao", **everything) == [noise[0]["id"]]
    assert every_page(operator, priority="urgent", **everything) == [noise[1]["id"]]
    assert every_page(operator, category="dispute-noise", priority="normal",
                      **everything) == [noise[0]["id"]]


def test_filters_by_the_time_a_case_was_opened(stack, operator):
    cases = opened(stack, 3)
    middle = datetime.fromisoformat(cases[1]["opened_at"])
    assert every_page(operator, opened_from=cases[1]["opened_at"]) == [
        c["id"] for c in cases[1:]]
    assert every_page(operator, opened_from=cases[0]["opened_at"],
                      opened_to=middle.isoformat()) == [cases[0]["id"]]


def set_deadline(stack, case_id: str, hours_from_now: float) -> None:
    """Arrange an assigned case's accept deadline relative to the database's clock."""
    with stack.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE dispatch.cases SET accept_due_at = now() + %(h)s * interval '1 hour' "
            "WHERE id = %(c)s", {"h": hours_from_now, "c": case_id})


def test_overdue_lists_the_cases_past_the_deadline_they_run_against(stack, operator):
    late, on_time, screening = opened(stack, 3)
    for case, hours in ((late, -1), (on_time, 5)):
        act(operator, case["id"], action="assign", unit_id="comm-shibanqiao")
        set_deadline(stack, case["id"], hours)
    assert every_page(operator, overdue="true", **since([late])) == [late["id"]]
    assert every_page(operator, overdue="false", **since([late])) == [
        on_time["id"], screening["id"]]


def test_most_urgent_first_pages_through_passed_then_closest_deadlines_then_the_rest(
        stack, operator):
    # Given cases assigned with deadlines passed long ago, just passed, soon, later, and
    # two that tie; and one still in screening (no deadline running)
    cases = opened(stack, 7)
    hours = [5, -3, 1, 1, -0.5, 24, None]
    for case, h in zip(cases, hours, strict=True):
        if h is not None:
            act(operator, case["id"], action="assign", unit_id="comm-shibanqiao")
            set_deadline(stack, case["id"], h)
    with stack.engine.begin() as conn:  # the two at 1 h: exactly the same deadline
        conn.exec_driver_sql(
            "UPDATE dispatch.cases SET accept_due_at = (SELECT accept_due_at FROM "
            "dispatch.cases WHERE id = %(a)s) WHERE id = %(b)s",
            {"a": cases[2]["id"], "b": cases[3]["id"]})

    # When the operator reads the most urgent first, two at a time
    ids = every_page(operator, sort="urgent", **since(cases))

    # Then every case comes once, in deadline order, ties in opening order, then the rest
    order = [1, 4, 2, 3, 0, 5, 6]
    assert ids == [cases[i]["id"] for i in order]


@pytest.mark.parametrize("params", [
    {"category": "dispute-noise", "colour": "red"},  # an unknown parameter
    {"sort": "random"},
    {"priority": "whenever"},
    {"overdue": "maybe"},
    {"opened_from": "yesterday"},
    {"category": "x" * 41},
])
def test_a_query_the_list_cannot_answer_is_a_422(operator, params):
    r = operator.get("/v1/cases", params=params)
    assert r.status_code == 422, r.text


def test_a_time_range_running_backwards_is_a_bad_period_in_chinese(operator):
    r = operator.get("/v1/cases", params={"opened_from": "2026-12-02T00:00:00+00:00",
                                          "opened_to": "2026-12-01T00:00:00+00:00"})
    assert (r.status_code, r.json()["type"]) == (422, "/problems/bad-period"), r.text
    assert r.json()["detail_zh"] == "立案时间止须晚于立案时间起。"


def test_a_cursor_of_another_sort_gives_a_page_and_a_made_up_one_is_a_400(stack, operator):
    # Both cursor forms are in the document's KeyCursor pattern, so a client holding one of
    # the other order is answered (from that case on), never refused for a value allowed
    cases = opened(stack, 3)
    first = operator.get("/v1/cases", params={"sort": "newest", "limit": 1,
                                              **since(cases)}).json()
    r = operator.get("/v1/cases", params={"sort": "urgent", "cursor": first["next_cursor"],
                                          **since(cases)})
    assert r.status_code == 200, r.text
    urgent = operator.get("/v1/cases", params={"sort": "urgent", "limit": 1,
                                               **since(cases)}).json()
    r = operator.get("/v1/cases", params={"sort": "oldest", "cursor": urgent["next_cursor"],
                                          **since(cases)})
    assert r.status_code == 200, r.text
    for made_up in ("abc", "1.2.3", "k1:2", ""):
        r = operator.get("/v1/cases", params={"sort": "urgent", "cursor": made_up})
        assert r.status_code == 400 and r.json()["type"] == "/problems/bad-cursor", made_up


def test_a_handler_filtering_sees_only_her_units_cases(stack, operator):
    cases = opened(stack, 2)
    act(operator, cases[0]["id"], action="assign", unit_id="comm-shibanqiao")
    act(operator, cases[1]["id"], action="assign", unit_id="comm-jinjiang")
    handler = stack.client("handler-shibanqiao")
    assert every_page(handler, **since(cases)) == [cases[0]["id"]]
    assert every_page(handler, unit="comm-jinjiang", **since(cases)) == []


