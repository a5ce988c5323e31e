"""The case lifecycle and who may move it: the state machine, checked pair by pair."""
from __future__ import annotations

import itertools

import pytest

from minqing_kernel.errors import Conflict, Forbidden, Invalid
from services.dispatch import domain
from services.dispatch.domain import (
    ACCEPTED,
    ACTIONS,
    ASSIGNED,
    CALLBACK_ACTIONS,
    CLOSED,
    REJECTED,
    REOPENED,
    REPORTER_ACTIONS,
    RESOLVED,
    SCREENING,
    STATUS_ZH,
    STATUSES,
    SYSTEM_ACTIONS,
    TRANSITIONS,
)

EVERY_ACTION = ACTIONS | REPORTER_ACTIONS | SYSTEM_ACTIONS | CALLBACK_ACTIONS
ALL_PAIRS = list(itertools.product(STATUSES, sorted(EVERY_ACTION)))
ALLOWED = [(s, a, TRANSITIONS[(s, a)]) for s, a in ALL_PAIRS if (s, a) in TRANSITIONS]
NOT_ALLOWED = [(s, a) for s, a in ALL_PAIRS if (s, a) not in TRANSITIONS]

EXPECTED_TRANSITIONS = {
    (SCREENING, "assign"): ASSIGNED,
    (SCREENING, "reject"): REJECTED,
    (SCREENING, "close_directly"): CLOSED,
    (ASSIGNED, "assign"): ASSIGNED,
    (ASSIGNED, "accept"): ACCEPTED,
    (ACCEPTED, "resolve"): RESOLVED,
    (RESOLVED, "rate_satisfied"): CLOSED,
    (RESOLVED, "rate_unsatisfied"): REOPENED,
    (REOPENED, "assign"): ASSIGNED,
    (RESOLVED, "close_unanswered"): CLOSED,
    (CLOSED, "callback_unsatisfied"): REOPENED,
}

OPERATOR = {"id": "op-1", "roles": ["operator"], "unit_id": None}
ADMIN = {"id": "admin-1", "roles": ["admin", "operator"], "unit_id": None}
HANDLER = {"id": "h-1", "roles": ["handler"], "unit_id": "comm-jinjiang"}
UNITLESS_HANDLER = {"id": "h-0", "roles": ["handler"], "unit_id": None}
RESIDENT = {"id": "res-1", "roles": ["resident"], "unit_id": None}
OTHER_RESIDENT = {"id": "res-2", "roles": ["resident"], "unit_id": None}
LEADER = {"id": "lead-1", "roles": ["leader"], "unit_id": "comm-qiutao"}
DISCIPLINE = {"id": "disc-1", "roles": ["discipline"], "unit_id": None}


def test_the_transition_table_is_exactly_the_documented_lifecycle():
    assert TRANSITIONS == EXPECTED_TRANSITIONS


def test_every_pair_is_either_allowed_or_not():
    assert len(ALLOWED) + len(NOT_ALLOWED) == len(STATUSES) * len(EVERY_ACTION)
    assert len(ALLOWED) == len(TRANSITIONS)


@pytest.mark.parametrize(("status", "action", "expected"), ALLOWED)
def test_an_allowed_action_moves_the_case_to_its_new_status(status, action, expected):
    # given a case in `status`; when `action` is taken
    new_status = domain.next_status(status, action)
    # then
    assert new_status == expected


@pytest.mark.parametrize(("status", "action"), NOT_ALLOWED)
def test_any_other_action_is_a_conflict_naming_the_current_status(status, action):
    with pytest.raises(Conflict) as raised:
        domain.next_status(status, action)
    assert raised.value.code == "action-not-allowed"
    assert raised.value.status == 409
    assert f"「{STATUS_ZH[status]}」" in raised.value.detail_zh


def test_a_rejected_case_says_nothing_can_be_done():
    with pytest.raises(Conflict) as raised:
        domain.next_status(REJECTED, "assign")
    assert raised.value.detail_zh.endswith("当前可执行：无。")


def test_a_closed_case_can_only_be_reopened_by_an_unsatisfied_callback():
    with pytest.raises(Conflict) as raised:
        domain.next_status(CLOSED, "assign")
    assert raised.value.detail_zh.endswith("当前可执行：回访不满意。")


@pytest.mark.parametrize("status", STATUSES)
def test_the_event_verb_is_the_new_status_name(status):
    assert domain.event_verb(status) == status


def test_an_assignment_emits_case_assigned():
    assert domain.event_verb(ASSIGNED) == "assigned"


# --- who may act -------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["assign", "reject", "close_directly"])
@pytest.mark.parametrize(("actor", "role"), [(OPERATOR, "operator"), (ADMIN, "admin")])
def test_operators_and_admins_may_take_operator_actions(actor, role, action):
    assert domain.authorize(actor, action, None, ["res-1"]) == role


@pytest.mark.parametrize("action", ["accept", "resolve"])
def test_a_handler_may_accept_and_resolve_cases_of_their_unit(action):
    assert domain.authorize(HANDLER, action, "comm-jinjiang", ["res-1"]) == "handler"


@pytest.mark.parametrize("action", ["accept", "resolve"])
def test_a_handler_may_not_act_on_another_units_case(action):
    with pytest.raises(Forbidden) as raised:
        domain.authorize(HANDLER, action, "comm-qiutao", ["res-1"])
    assert raised.value.code == "not-your-unit"
    assert raised.value.status == 403


def test_a_handler_without_a_unit_may_not_act_on_an_unassigned_case():
    with pytest.raises(Forbidden) as raised:
        domain.authorize(UNITLESS_HANDLER, "accept", None, ["res-1"])
    assert raised.value.code == "not-your-unit"


@pytest.mark.parametrize("action", ["assign", "reject", "close_directly"])
def test_a_handler_may_not_take_operator_actions(action):
    with pytest.raises(Forbidden) as raised:
        domain.authorize(HANDLER, action, "comm-jinjiang", ["res-1"])
    assert raised.value.code == "forbidden"


@pytest.mark.parametrize("action", ["accept", "resolve"])
def test_an_operator_may_not_take_handler_actions(action):
    with pytest.raises(Forbidden):
        domain.authorize(OPERATOR, action, "comm-jinjiang", ["res-1"])


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_resident_may_not_take_staff_actions(action):
    with pytest.raises(Forbidden) as raised:
        domain.authorize(RESIDENT, action, "comm-jinjiang", ["res-1"])
    assert raised.value.status == 403


@pytest.mark.parametrize("action", sorted(REPORTER_ACTIONS))
def test_a_reporter_of_the_case_may_rate_it(action):
    assert domain.authorize(RESIDENT, action, "comm-jinjiang", ["res-9", "res-1"]) == "reporter"


@pytest.mark.parametrize("actor", [OTHER_RESIDENT, OPERATOR, HANDLER])
@pytest.mark.parametrize("action", sorted(REPORTER_ACTIONS))
def test_only_a_reporter_of_the_case_may_rate_it(actor, action):
    with pytest.raises(Forbidden) as raised:
        domain.authorize(actor, action, "comm-jinjiang", ["res-1"])
    assert raised.value.code == "not-your-case"


# --- who may see -------------------------------------------------------------------------

@pytest.mark.parametrize("actor", [OPERATOR, ADMIN, LEADER, DISCIPLINE])
@pytest.mark.parametrize("unit_id", [None, "comm-jinjiang", "dept-anjian"])
def test_operators_admins_leaders_and_discipline_see_every_case(actor, unit_id):
    assert domain.can_view(actor, unit_id, ["someone-else"])


def test_a_handler_sees_their_units_cases():
    assert domain.can_view(HANDLER, "comm-jinjiang", ["res-1"])


@pytest.mark.parametrize("unit_id", [None, "comm-qiutao"])
def test_a_handler_does_not_see_other_or_unassigned_cases(unit_id):
    assert not domain.can_view(HANDLER, unit_id, ["res-1"])


def test_a_unitless_handler_does_not_see_unassigned_cases():
    assert not domain.can_view(UNITLESS_HANDLER, None, ["res-1"])


def test_a_resident_sees_a_case_they_reported():
    assert domain.can_view(RESIDENT, "comm-jinjiang", ["res-2", "res-1"])


def test_a_resident_does_not_see_a_case_they_did_not_report():
    assert not domain.can_view(OTHER_RESIDENT, "comm-jinjiang", ["res-1"])


# --- who may see who reported ------------------------------------------------------------

@pytest.mark.parametrize("actor", [OPERATOR, ADMIN, LEADER, DISCIPLINE])
def test_those_who_read_every_report_see_every_reporter(actor):
    assert domain.visible_reporters(actor, ["res-1", "res-2"]) == ["res-1", "res-2"]


def test_a_handler_of_the_unit_sees_the_case_but_not_who_reported_it():
    assert domain.visible_reporters(HANDLER, ["res-1"]) == []


def test_a_reporter_sees_herself_and_no_other_reporter_of_the_same_case():
    assert domain.visible_reporters(RESIDENT, ["res-2", "res-1"]) == [RESIDENT["id"]]


# --- what an action needs ----------------------------------------------------------------

@pytest.mark.parametrize("action", ["reject", "close_directly"])
@pytest.mark.parametrize("note", [None, "", "   \n\t"])
def test_rejecting_or_closing_directly_needs_a_note(action, note):
    with pytest.raises(Invalid) as raised:
        domain.check_action_input(action, note, None)
    assert raised.value.code == "note-required"
    assert raised.value.status == 422
    assert raised.value.errors == [{"field": "note", "message": "required"}]


@pytest.mark.parametrize("action", ["reject", "close_directly"])
def test_rejecting_or_closing_directly_with_a_note_is_fine(action):
    assert domain.check_action_input(action, "已电话答复", None) is None


@pytest.mark.parametrize("result", [None, "", "  "])
def test_resolving_needs_a_result(result):
    with pytest.raises(Invalid) as raised:
        domain.check_action_input("resolve", "a note is not a result", result)
    assert raised.value.code == "result-required"
    assert raised.value.errors == [{"field": "result", "message": "required"}]


def test_resolving_with_a_result_is_fine():
    assert domain.check_action_input("resolve", None, "已清理占道摊位") is None


@pytest.mark.parametrize("action", ["assign", "accept"])
def test_other_actions_need_neither_note_nor_result(action):
    assert domain.check_action_input(action, None, None) is None


# --- rating ------------------------------------------------------------------------------

@pytest.mark.parametrize("rating", [3, 4, 5])
def test_three_stars_and_up_is_satisfied(rating):
    assert domain.rating_action(rating) == "rate_satisfied"


@pytest.mark.parametrize("rating", [1, 2])
def test_below_three_stars_is_unsatisfied(rating):
    assert domain.rating_action(rating) == "rate_unsatisfied"
