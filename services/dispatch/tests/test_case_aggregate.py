"""The Case aggregate without any server: every (status, action) pair, allowed or not, and
what each allowed one returns (its changes, its trail entry, its event)."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from minqing_kernel.errors import Conflict, Forbidden, Invalid
from services.dispatch import domain, sla
from services.dispatch.case import ActionInput, Case
from services.dispatch.domain import ALL_ACTIONS, STATUSES, TRANSITIONS

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
DUE = {sla.ACCEPT: NOW + timedelta(hours=2), sla.RESOLVE: NOW + timedelta(hours=48)}
UNITS = {"unit-a", "unit-b", "ext-pingan365"}
OPERATOR = {"id": "operator-chen", "roles": ["operator"]}
HANDLER = {"id": "handler-a", "roles": ["handler"], "unit_id": "unit-a"}
REPORTER = {"id": "resident-zhang", "roles": ["resident"]}
VOLUNTEER = {"id": "volunteer-li", "roles": ["patroller"]}
SYSTEM = {"id": "partner:ping_an_365", "roles": ["system"]}

ALL_PAIRS = list(itertools.product(STATUSES, sorted(ALL_ACTIONS)))
ALLOWED = [(s, a) for s, a in ALL_PAIRS if (s, a) in TRANSITIONS]
NOT_ALLOWED = [(s, a) for s, a in ALL_PAIRS if (s, a) not in TRANSITIONS]


def actor_for(action: str) -> dict:
    if action in domain.HANDLER_ACTIONS - domain.OPERATOR_ACTIONS:
        return HANDLER
    if action in domain.REPORTER_ACTIONS:
        return REPORTER
    if action in domain.VOLUNTEER_ACTIONS:
        return VOLUNTEER
    if action in domain.SYSTEM_ACTIONS:
        return SYSTEM
    return OPERATOR


def given_for(action: str) -> ActionInput:
    return ActionInput(note="why", result="done" if action in (
        "resolve", "external_resolved", "fulfil_wish", "decide_project", "decide_no_project")
        else None, unit_id="unit-b", rating=5 if action == "rate_satisfied" else 1,
        priority="urgent", merged_into="target-case")


def state(status: str, **overrides) -> dict:
    s = {"id": "case-1", "status": status, "category": "road", "description": "pothole",
         "address": "望江路 1 号", "lat": 30.25, "lon": 120.18, "attachments": [],
         "reporter_ids": [REPORTER["id"]], "report_ids": ["report-1"],
         "community_id": "jinjiang", "unit_id": "unit-a", "suggested_unit_id": "unit-a",
         "priority": "normal", "return_count": 0, "wish_claimed_by": None,
         "partner": None, "accept_due_at": None, "resolve_due_at": None,
         "updated_at": NOW - timedelta(hours=1), "trail_head": domain.GENESIS,
         "trail_length": 0}
    return {**s, **overrides}


def case_for(status: str, action: str) -> Case:
    claimed = VOLUNTEER["id"] if action == "fulfil_wish" else None
    return Case(state(status, wish_claimed_by=claimed), units=UNITS, due=DUE.get)


@pytest.mark.parametrize(("status", "action"), ALLOWED)
def test_given_an_allowed_pair_when_acted_then_the_change_has_its_status_trail_and_event(
        status, action):
    case = case_for(status, action)

    change = case.act(actor_for(action), action, NOW, given_for(action))

    new_status = TRANSITIONS[(status, action)]
    assert (change.previous, change.status, change.action) == (status, new_status, action)
    assert change.changes["status"] == new_status and case.status == new_status
    assert change.changes["updated_at"] == NOW
    entry = change.trail_entry
    assert (entry["seq"], entry["prev_hash"], entry["action"]) == (1, domain.GENESIS, action)
    assert (entry["from_status"], entry["to_status"]) == (status, new_status)
    assert entry["hash"] == change.changes["trail_head"] == case.state["trail_head"]
    verb = domain.event_verb(action, status, new_status)
    if verb is None:
        assert change.events == []
    else:
        [event] = change.events
        assert event.verb == f"case.{verb}" and event.subject == "case-1"
        assert event.data["status"] == new_status
        assert event.data["previous_status"] == status
        assert event.data["action"] == action
        assert event.data["at"] == NOW.isoformat()


@pytest.mark.parametrize(("status", "action"), NOT_ALLOWED)
def test_given_a_pair_not_in_the_table_when_acted_then_conflict_and_nothing_changes(
        status, action):
    case = case_for(status, action)
    before = dict(case.state)

    with pytest.raises(Conflict) as refused:
        case.act(actor_for(action), action, NOW, given_for(action))

    assert refused.value.code == "action-not-allowed"
    assert case.state == before


def test_given_a_resident_when_assigning_then_forbidden_before_the_state_is_looked_at():
    with pytest.raises(Forbidden):
        Case(state(domain.CLOSED), units=UNITS).act(REPORTER, "assign", NOW)


def test_given_a_handler_of_another_unit_when_accepting_then_not_your_unit():
    other = {**HANDLER, "unit_id": "unit-b"}
    with pytest.raises(Forbidden) as refused:
        Case(state(domain.ASSIGNED), units=UNITS).act(other, "accept", NOW)
    assert refused.value.code == "not-your-unit"


def test_given_a_stranger_when_rating_then_not_your_case():
    with pytest.raises(Forbidden) as refused:
        Case(state(domain.RESOLVED)).act({"id": "x", "roles": ["resident"]},
                                         "rate_satisfied", NOW, ActionInput(rating=5))
    assert refused.value.code == "not-your-case"


def test_given_an_unknown_unit_when_assigning_then_invalid_unknown_unit():
    with pytest.raises(Invalid) as refused:
        Case(state(domain.SCREENING), units=UNITS).act(
            OPERATOR, "assign", NOW, ActionInput(unit_id="nowhere"))
    assert refused.value.code == "unknown-unit"


def test_given_no_unit_named_when_assigning_then_the_suggested_unit_gets_it_with_a_clock():
    change = Case(state(domain.SCREENING, unit_id=None), units=UNITS, due=DUE.get).act(
        OPERATOR, "assign", NOW)
    assert change.changes["unit_id"] == "unit-a"
    assert change.changes["accept_due_at"] == DUE[sla.ACCEPT]
    assert change.changes["resolve_due_at"] is None
    assert change.events[0].data["unit_id"] == "unit-a"


def test_given_the_same_unit_when_transferring_then_invalid_same_unit():
    with pytest.raises(Invalid) as refused:
        Case(state(domain.ACCEPTED), units=UNITS).act(
            HANDLER, "transfer", NOW, ActionInput(unit_id="unit-a", note="not ours"))
    assert refused.value.code == "same-unit"


def test_given_an_assigned_case_when_accepted_then_the_resolve_clock_is_set():
    change = Case(state(domain.ASSIGNED), due=DUE.get).act(HANDLER, "accept", NOW)
    assert change.changes["resolve_due_at"] == DUE[sla.RESOLVE]
    assert change.role == "handler"


def test_given_a_second_return_when_returned_then_it_counts_as_repeated():
    change = Case(state(domain.ACCEPTED, return_count=1)).act(
        HANDLER, "return", NOW, ActionInput(note="not ours"))
    assert change.repeated_return
    assert change.changes["unit_id"] is None and change.changes["return_count"] == 2
    assert change.events[0].data["repeated"] is True
    assert change.events[0].data["reason"] == "not ours"


def test_given_a_first_return_when_returned_then_it_is_not_repeated():
    change = Case(state(domain.ASSIGNED)).act(HANDLER, "return", NOW,
                                              ActionInput(note="not ours"))
    assert not change.repeated_return


def test_given_a_claimed_wish_when_another_claims_then_conflict_wish_claimed():
    with pytest.raises(Conflict) as refused:
        Case(state(domain.WISH, wish_claimed_by="someone")).act(VOLUNTEER, "claim_wish", NOW)
    assert refused.value.code == "wish-claimed"


def test_given_a_wish_claimed_by_another_when_fulfilled_then_not_your_wish():
    with pytest.raises(Forbidden) as refused:
        Case(state(domain.WISH, wish_claimed_by="someone")).act(
            VOLUNTEER, "fulfil_wish", NOW, ActionInput(result="done"))
    assert refused.value.code == "not-your-wish"


def test_given_a_rating_when_rated_then_the_event_names_neither_the_reporter_nor_her_words():
    change = Case(state(domain.RESOLVED)).act(
        REPORTER, "rate_unsatisfied", NOW, ActionInput(rating=1, feedback="still broken"))
    data = change.events[0].data
    assert data["actor"] == {"id": None, "role": "reporter"} and data["note"] is None
    assert data["rating"] == 1
    assert change.changes["feedback"] == "still broken"


CALLER = "caller-0123456789abcdef0123456789abcdef"


def test_given_a_phone_case_when_an_operator_records_the_callers_rating_then_it_counts():
    change = Case(state(domain.RESOLVED, channel="phone", reporter_ids=[CALLER])).act(
        OPERATOR, "rate_satisfied", NOW, ActionInput(rating=4, feedback="电话里说满意"))
    assert change.status == domain.CLOSED
    assert change.changes["rating"] == 4
    # the trail says who recorded it, as what; the words stay out of the public event
    entry = change.trail_entry
    assert (entry["actor_id"], entry["actor_role"]) == ("operator-chen", "operator")
    assert change.events[0].data["actor"] == {"id": "operator-chen", "role": "operator"}
    assert change.events[0].data["note"] is None


@pytest.mark.parametrize("channel", ["app", "patrol", "open311", "partner"])
def test_given_a_case_not_from_the_phone_when_an_operator_rates_it_then_not_your_case(
        channel):
    with pytest.raises(Forbidden) as refused:
        Case(state(domain.RESOLVED, channel=channel)).act(
            OPERATOR, "rate_satisfied", NOW, ActionInput(rating=5))
    assert refused.value.code == "not-your-case"


def test_given_a_phone_case_when_a_handler_rates_it_then_refused():
    with pytest.raises(Forbidden):
        Case(state(domain.RESOLVED, channel="phone", reporter_ids=[CALLER])).act(
            HANDLER, "rate_satisfied", NOW, ActionInput(rating=5))


def test_given_an_escalation_when_handed_to_the_partner_then_the_event_has_what_it_needs():
    change = Case(state(domain.SCREENING), due=DUE.get).act(
        OPERATOR, "escalate_external", NOW)
    data = change.events[0].data
    assert change.events[0].verb == "case.escalated_external"
    assert data["partner"] == "ping_an_365" and data["unit_id"] == "ext-pingan365"
    assert data["resolve_due_at"] == DUE[sla.RESOLVE].isoformat()
    assert data["location"] == {"lat": 30.25, "lon": 120.18}
    assert "reporter_ids" not in data


def test_given_two_actions_when_taken_then_the_second_entry_chains_to_the_first():
    case = Case(state(domain.ASSIGNED), due=DUE.get)
    first = case.act(HANDLER, "accept", NOW)
    second = case.act(HANDLER, "resolve", NOW, ActionInput(result="filled"))
    assert second.trail_entry["seq"] == 2
    assert second.trail_entry["prev_hash"] == first.trail_entry["hash"]


def test_given_a_report_when_a_case_is_opened_then_it_is_in_screening_with_its_first_entry():
    report = {"report_id": "report-9", "category": "road", "description": "pothole",
              "location": {"lat": 30.25, "lon": 120.18}, "channel": "app",
              "attachments": [], "reporter_id": REPORTER["id"]}
    suggestion = domain.Suggestion("jinjiang", "unit-a", "理由", "why")

    case, change = Case.open("case-9", report, suggestion, NOW)

    assert case.status == domain.SCREENING and change.changes["report_ids"] == ["report-9"]
    assert change.trail_entry["seq"] == 1 and change.trail_entry["note"] == "report report-9"
    assert change.changes["trail_head"] == change.trail_entry["hash"]
    [event] = change.events
    assert event.verb == "case.opened" and event.data["suggested_unit_id"] == "unit-a"


def test_given_a_callback_when_noted_then_the_trail_grows_and_the_status_stays():
    change = Case(state(domain.CLOSED)).note_on_trail(OPERATOR, "callback_satisfied",
                                                      "回访满意", NOW)
    assert change.status == change.previous == domain.CLOSED
    assert change.events == [] and set(change.changes) == {"updated_at", "trail_head",
                                                           "trail_length"}
    assert change.trail_entry["actor_role"] == "operator"
