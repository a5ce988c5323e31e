"""The case lifecycle and who may move it: the state machine, checked pair by pair."""
from __future__ import annotations

import itertools

import pytest

from minqing_kernel.errors import Conflict, Forbidden, Invalid
from services.dispatch import domain
from services.dispatch.domain import (
    ACCEPTED,
    ACTIONS,
    ALL_ACTIONS,
    ASSIGNED,
    CLOSED,
    ESCALATED_EXTERNAL,
    ESCALATED_LEADERSHIP,
    MERGED,
    REJECTED,
    REOPENED,
    REPORTER_ACTIONS,
    RESOLVED,
    RETURNED,
    SCREENING,
    STATUS_ZH,
    STATUSES,
    TRANSITIONS,
    WISH,
)

ALL_PAIRS = list(itertools.product(STATUSES, sorted(ALL_ACTIONS)))
ALLOWED = [(s, a, TRANSITIONS[(s, a)]) for s, a in ALL_PAIRS if (s, a) in TRANSITIONS]
NOT_ALLOWED = [(s, a) for s, a in ALL_PAIRS if (s, a) not in TRANSITIONS]

# The command center's queue: a new case, one sent back (退单), one the reporter rejected.
QUEUE = (SCREENING, RETURNED, REOPENED)
EXPECTED_TRANSITIONS = {
    **{(s, "assign"): ASSIGNED for s in QUEUE + (ASSIGNED, ESCALATED_LEADERSHIP, WISH)},
    **{(s, "reject"): REJECTED for s in (SCREENING, RETURNED)},
    **{(s, "close_directly"): CLOSED for s in QUEUE},
    **{(s, "escalate_external"): ESCALATED_EXTERNAL for s in QUEUE},
    **{(s, "escalate_leadership"): ESCALATED_LEADERSHIP for s in QUEUE},
    **{(s, "publish_wish"): WISH for s in QUEUE},
    **{(s, "set_priority"): s for s in QUEUE + (ASSIGNED, ACCEPTED)},
    **{(s, "transfer"): ASSIGNED for s in (ASSIGNED, ACCEPTED)},
    **{(s, "return"): RETURNED for s in (ASSIGNED, ACCEPTED)},
    (SCREENING, "merge"): MERGED,
    **{(s, "absorb_duplicate"): s for s in (SCREENING, ASSIGNED, ACCEPTED, RETURNED,
                                             REOPENED, ESCALATED_EXTERNAL,
                                             ESCALATED_LEADERSHIP, WISH)},
    (ASSIGNED, "accept"): ACCEPTED,
    (ACCEPTED, "resolve"): RESOLVED,
    (RESOLVED, "rate_satisfied"): CLOSED,
    (RESOLVED, "rate_unsatisfied"): REOPENED,
    (ESCALATED_EXTERNAL, "external_accepted"): ESCALATED_EXTERNAL,
    (ESCALATED_EXTERNAL, "external_progress"): ESCALATED_EXTERNAL,
    (ESCALATED_EXTERNAL, "external_resolved"): RESOLVED,
    (ESCALATED_EXTERNAL, "external_rejected"): RETURNED,
    (RESOLVED, "external_accepted"): RESOLVED,   # the partner's word arriving late
    (RESOLVED, "external_progress"): RESOLVED,
    (RETURNED, "external_accepted"): RETURNED,
    (RETURNED, "external_progress"): RETURNED,
    (ESCALATED_LEADERSHIP, "decide_project"): RESOLVED,
    (ESCALATED_LEADERSHIP, "decide_no_project"): RESOLVED,
    (WISH, "claim_wish"): WISH,
    (WISH, "fulfil_wish"): RESOLVED,
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
    assert len(ALLOWED) + len(NOT_ALLOWED) == len(STATUSES) * len(ALL_ACTIONS)
    assert len(ALLOWED) == len(TRANSITIONS)


def test_every_status_and_action_has_a_chinese_name():
    assert set(STATUS_ZH) == set(STATUSES)
    assert ALL_ACTIONS <= set(domain.ACTION_ZH)


@pytest.mark.parametrize("status", [REJECTED, MERGED])
def test_nothing_leaves_a_final_state(status):
    assert not [a for (s, a) in TRANSITIONS if s == status]


def test_only_an_unsatisfied_callback_leaves_a_closed_case():
    assert [a for (s, a) in TRANSITIONS if s == CLOSED] == ["callback_unsatisfied"]


@pytest.mark.parametrize("status", sorted(set(STATUSES) - {CLOSED, REJECTED, MERGED}))
def test_every_open_state_has_a_way_on(status):
    assert any(s == status and new != status for (s, _), new in TRANSITIONS.items())


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


@pytest.mark.parametrize("status", [REJECTED, MERGED])
def test_a_finished_case_says_nothing_can_be_done(status):
    with pytest.raises(Conflict) as raised:
        domain.next_status(REJECTED, "assign")
    assert raised.value.detail_zh.endswith("当前可执行：无。")


@pytest.mark.parametrize(("status", "action", "new_status"),
                         [t for t in ALLOWED if t[0] != t[2] and t[2] != WISH])
def test_a_change_of_state_emits_the_new_status_name(status, action, new_status):
    assert domain.event_verb(action, status, new_status) == new_status


def test_a_closed_case_can_only_be_reopened_by_an_unsatisfied_callback():
    with pytest.raises(Conflict) as raised:
        domain.next_status(CLOSED, "assign")
    assert raised.value.detail_zh.endswith("当前可执行：回访不满意。")


def test_publishing_a_wish_emits_case_wish_published():
    assert domain.event_verb("publish_wish", SCREENING, WISH) == "wish_published"


@pytest.mark.parametrize(("action", "status"), [("assign", ASSIGNED), ("transfer", ASSIGNED)])
def test_a_new_unit_emits_case_assigned_even_from_assigned(action, status):
    assert domain.event_verb(action, status, ASSIGNED) == "assigned"


@pytest.mark.parametrize(("status", "action"),
                         [(s, a) for s, a, n in ALLOWED
                          if s == n and a not in ("assign", "transfer")])
def test_an_entry_that_changes_no_state_goes_on_the_trail_only(status, action):
    assert domain.event_verb(action, status, status) is None


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

@pytest.mark.parametrize("actor", [OPERATOR, ADMIN, DISCIPLINE])
@pytest.mark.parametrize("unit_id", [None, "comm-jinjiang", "dept-anjian"])
def test_operators_admins_and_discipline_see_every_case(actor, unit_id):
    assert domain.can_view(actor, unit_id, ["someone-else"])


LED = frozenset({"comm-qiutao"})


@pytest.mark.parametrize(("unit_id", "community_id"), [
    ("comm-qiutao", "comm-qiutao"),     # handled by the unit they lead
    ("dept-chengguan", "comm-qiutao"),  # happening in the community they lead
    (None, "comm-qiutao"),              # still in screening, in their community
])
def test_a_leader_sees_the_cases_of_the_units_they_lead(unit_id, community_id):
    assert domain.can_view(LEADER, unit_id, ["res-1"], community_id, LED)


@pytest.mark.parametrize(("unit_id", "community_id"), [
    ("comm-jinjiang", "comm-jinjiang"), ("dept-anjian", "comm-jinjiang"), (None, None)])
def test_a_leader_does_not_see_other_units_cases(unit_id, community_id):
    assert not domain.can_view(LEADER, unit_id, ["res-1"], community_id, LED)


@pytest.mark.parametrize("action", sorted(ALL_ACTIONS))
def test_discipline_sees_everything_but_may_take_no_action(action):
    with pytest.raises(Forbidden):
        domain.authorize(DISCIPLINE, action, "comm-jinjiang", ["res-1"])


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

@pytest.mark.parametrize("actor", [OPERATOR, ADMIN, DISCIPLINE])
def test_those_who_read_every_report_see_every_reporter(actor):
    assert domain.visible_reporters(actor, ["res-1", "res-2"]) == ["res-1", "res-2"]


@pytest.mark.parametrize("actor", [HANDLER, LEADER])
def test_the_units_handler_and_leader_see_the_case_but_not_who_reported_it(actor):
    assert domain.visible_reporters(actor, ["res-1"]) == []


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


@pytest.mark.parametrize("action", ["return", "transfer", "escalate_leadership"])
def test_a_return_a_transfer_and_an_escalation_need_a_reason(action):
    with pytest.raises(Invalid) as raised:
        domain.check_action_input(action, " ", None, unit_id="dept-anjian")
    assert raised.value.code == "note-required"


@pytest.mark.parametrize(("action", "field", "code"), [
    ("set_priority", "priority", "priority-required"),
    ("merge", "target_case_id", "target-case-id-required"),
    ("transfer", "unit_id", "unit-id-required"),
])
def test_actions_that_name_something_need_it(action, field, code):
    with pytest.raises(Invalid) as raised:
        domain.check_action_input(action, "理由", None)
    assert raised.value.code == code
    assert raised.value.errors == [{"field": field, "message": "required"}]


def test_an_unknown_partner_is_refused():
    with pytest.raises(Invalid) as raised:
        domain.check_action_input("escalate_external", None, None, partner="nowhere")
    assert raised.value.code == "unknown-partner"


@pytest.mark.parametrize("partner", [None, "ping_an_365"])
def test_escalating_to_the_known_partner_or_the_default_is_fine(partner):
    assert domain.check_action_input("escalate_external", None, None, partner=partner) is None


# --- who takes the other routes ----------------------------------------------------------

PATROLLER = {"id": "pat-1", "roles": ["patroller", "resident"], "unit_id": None}
SYSTEM = {"id": "partner:ping_an_365", "roles": ["system"]}


@pytest.mark.parametrize("action", sorted(domain.VOLUNTEER_ACTIONS))
def test_a_volunteer_claims_and_fulfils_wishes(action):
    assert domain.authorize(PATROLLER, action, None, ["res-1"]) == "volunteer"


@pytest.mark.parametrize("actor", [OPERATOR, HANDLER, RESIDENT])
@pytest.mark.parametrize("action", sorted(domain.VOLUNTEER_ACTIONS))
def test_only_volunteers_claim_and_fulfil_wishes(actor, action):
    with pytest.raises(Forbidden):
        domain.authorize(actor, action, "comm-jinjiang", ["res-1"])


@pytest.mark.parametrize("actor", [OPERATOR, ADMIN, HANDLER, PATROLLER])
@pytest.mark.parametrize("action", sorted(domain.SYSTEM_ACTIONS))
def test_only_dispatch_itself_records_a_partners_word(actor, action):
    with pytest.raises(Forbidden):
        domain.authorize(actor, action, "ext-pingan365", ["res-1"])
    assert domain.authorize(SYSTEM, action, "ext-pingan365", ["res-1"]) == "system"


@pytest.mark.parametrize("actor", [OPERATOR, HANDLER])
def test_an_operator_or_the_units_handler_may_transfer(actor):
    assert domain.authorize(actor, "transfer", "comm-jinjiang", ["res-1"]) in (
        "operator", "handler")


def test_a_handler_may_return_only_their_units_case():
    assert domain.authorize(HANDLER, "return", "comm-jinjiang", ["res-1"]) == "handler"
    with pytest.raises(Forbidden):
        domain.authorize(HANDLER, "return", "comm-qiutao", ["res-1"])


@pytest.mark.parametrize(("current", "new"), sorted(domain.PROJECT_TRANSITIONS))
def test_a_project_moves_forward(current, new):
    assert domain.check_project_move(current, new) is None


@pytest.mark.parametrize(("current", "new"), [
    (c, n) for c in domain.PROJECT_STATUSES for n in domain.PROJECT_STATUSES
    if (c, n) not in domain.PROJECT_TRANSITIONS])
def test_a_project_does_not_move_otherwise(current, new):
    with pytest.raises(Conflict) as raised:
        domain.check_project_move(current, new)
    assert raised.value.code == "project-status-not-allowed"


# --- rating ------------------------------------------------------------------------------

@pytest.mark.parametrize("rating", [3, 4, 5])
def test_three_stars_and_up_is_satisfied(rating):
    assert domain.rating_action(rating) == "rate_satisfied"


@pytest.mark.parametrize("rating", [1, 2])
def test_below_three_stars_is_unsatisfied(rating):
    assert domain.rating_action(rating) == "rate_unsatisfied"


# --- what public case events say of a reporter, and who reads her comment -----------------

def test_a_public_event_names_a_reporter_by_role_only():
    assert domain.public_actor(RESIDENT, "reporter") == {"id": None, "role": "reporter"}


def test_a_public_event_names_staff_by_id():
    assert domain.public_actor(HANDLER, "handler") == {"id": HANDLER["id"], "role": "handler"}


@pytest.mark.parametrize("roles", [["operator"], ["admin"], ["discipline"]])
def test_the_command_center_and_discipline_read_a_rating_comment(roles):
    assert domain.may_read_rating_comment({"id": "x", "roles": roles}, ["res-1"])


def test_the_reporter_reads_her_own_rating_comment():
    assert domain.may_read_rating_comment(RESIDENT, [RESIDENT["id"]])


@pytest.mark.parametrize("roles", [["handler"], ["leader"], ["resident"], ["patroller"]])
def test_the_handler_and_others_do_not_read_a_rating_comment(roles):
    assert not domain.may_read_rating_comment({"id": "x", "roles": roles, "unit_id": "u"},
                                              ["res-1"])
