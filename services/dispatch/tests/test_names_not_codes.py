"""Residents read a case's steps by names: the unit's public name and the role in Chinese,
never a staff id (issue #12, point 2). No server needed."""
from datetime import UTC, datetime
from types import SimpleNamespace

from services.dispatch.audit import named
from services.dispatch.case_views import case_view

UNITS = {"comm-shibanqiao": SimpleNamespace(name_zh="始版桥社区")}


def entry(role: str, actor_id: str, unit_id: str | None = "comm-shibanqiao") -> dict:
    return {"actor_role": role, "actor_id": actor_id, "unit_id": unit_id}


def test_a_resident_sees_the_unit_and_the_role_of_a_handler_not_who_it_was():
    # given the handler's 接单 on the trail
    shown = entry("handler", "handler-shibanqiao")
    # when a resident reads it
    named(shown, UNITS, staff=False)
    # then she sees the community and the role, in Chinese, and no staff id
    assert shown["actor_shown_as"] == "始版桥社区 · 处置人员"
    assert shown["unit_name"] == "始版桥社区" and shown["actor_role_name"] == "处置人员"
    assert shown["actor_id"] is None


def test_a_resident_sees_the_command_center_by_its_role():
    shown = entry("operator", "operator-chen")
    named(shown, UNITS, staff=False)
    assert shown["actor_shown_as"] == "指挥中心操作员" and shown["actor_id"] is None


def test_a_reporter_keeps_her_own_id_on_her_own_step():
    shown = entry("reporter", "resident-zhang", None)
    named(shown, UNITS, staff=False)
    assert shown["actor_id"] == "resident-zhang" and shown["actor_shown_as"] == "爆料人"


def test_staff_keep_the_id_and_also_get_the_names():
    shown = entry("handler", "handler-shibanqiao")
    named(shown, UNITS, staff=True)
    assert shown["actor_id"] == "handler-shibanqiao"
    assert shown["actor_shown_as"] == "始版桥社区 · 处置人员"


CASE = {"id": "c1", "status": "assigned", "priority": "normal", "category": "dispute-noise",
        "description": "楼上装修", "address": None, "lat": 30.24, "lon": 120.18,
        "channel": "app", "attachments": [], "report_ids": [], "reporter_ids": ["r"],
        "community_id": "comm-shibanqiao", "suggested_unit_id": None,
        "suggestion_reason_zh": "", "suggestion_reason_en": "", "unit_id": "comm-shibanqiao",
        "opened_at": datetime.now(UTC), "updated_at": datetime.now(UTC),
        "accept_due_at": None, "resolve_due_at": None, "result": None,
        "result_attachments": None, "rating": None, "feedback": None,
        "suggestion_rule": None, "merged_into": None, "return_count": 0,
        "return_reason": None, "partner": None, "wish_claimed_by": None, "project_id": None}


def test_a_case_shows_its_category_unit_and_community_by_their_chinese_names():
    # given a noise case handled by 始版桥社区
    case = dict(CASE)
    # when its reporter reads it
    view = case_view({"id": "r", "roles": ["resident"]}, case, UNITS)
    # then she reads names, not codes
    assert (view["category_name"], view["unit_name"], view["community_name"]) == \
        ("噪音扰民", "始版桥社区", "始版桥社区")


def test_a_resident_does_not_see_which_volunteer_took_up_her_wish_staff_do():
    case = dict(CASE, status="wish", wish_claimed_by="patroller-zhao")
    assert case_view({"id": "r", "roles": ["resident"]}, case, UNITS)["wish_claimed_by"] is None
    assert case_view({"id": "operator-chen", "roles": ["operator"]}, case, UNITS)[
        "wish_claimed_by"] == "patroller-zhao"
    assert case_view({"id": "patroller-zhao", "roles": ["patroller", "resident"]}, case,
                     UNITS)[
        "wish_claimed_by"] == "patroller-zhao"
