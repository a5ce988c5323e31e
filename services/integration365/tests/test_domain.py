"""The hand-over rules, backoff and circuit breaker: plain Python, an injected clock."""
import pytest

from services.integration365 import domain
from services.integration365.domain import (
    Backoff,
    Circuit,
    CircuitBreaker,
    Kind,
    State,
    apply_update,
    event_data,
    kind_of,
    work_order,
)

CASE = "6f1c1c4e-2b7a-4a53-9a4e-3f1d2d0b7c11"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


# --- remote statuses ---

@pytest.mark.parametrize("status,kind", [
    ("ACTION_SCHEDULED", Kind.ACCEPTED), ("in_progress", Kind.PROGRESS),
    ("FIXED", Kind.RESOLVED), ("CLOSED", Kind.RESOLVED),
    ("NOT_COUNCILS_RESPONSIBILITY", Kind.REJECTED), ("DUPLICATE", Kind.REJECTED),
    ("SOMETHING_NEW", Kind.PROGRESS), ("", Kind.PROGRESS)])
def test_a_remote_status_means_one_kind_of_update_and_unknown_words_are_progress(status,
                                                                                kind):
    assert kind_of(status) is kind


# --- the hand-over state machine ---

def test_the_first_acceptance_of_a_sent_hand_over_emits_accepted():
    assert apply_update(State.SENT, Kind.ACCEPTED) == (State.ACCEPTED, [Kind.ACCEPTED])


def test_a_repeated_acceptance_emits_nothing():
    assert apply_update(State.ACCEPTED, Kind.ACCEPTED) == (State.ACCEPTED, [])
    assert apply_update(State.IN_PROGRESS, Kind.ACCEPTED) == (State.IN_PROGRESS, [])


def test_progress_before_any_acceptance_implies_the_acceptance_first():
    assert apply_update(State.SENT, Kind.PROGRESS) == (
        State.IN_PROGRESS, [Kind.ACCEPTED, Kind.PROGRESS])


def test_each_progress_update_emits_progress():
    assert apply_update(State.IN_PROGRESS, Kind.PROGRESS) == (
        State.IN_PROGRESS, [Kind.PROGRESS])


def test_resolution_of_an_accepted_hand_over_emits_resolved():
    assert apply_update(State.IN_PROGRESS, Kind.RESOLVED) == (
        State.RESOLVED, [Kind.RESOLVED])


def test_resolution_straight_after_sending_implies_acceptance():
    assert apply_update(State.SENT, Kind.RESOLVED) == (
        State.RESOLVED, [Kind.ACCEPTED, Kind.RESOLVED])


def test_a_rejection_emits_rejected_without_an_implied_acceptance():
    assert apply_update(State.SENT, Kind.REJECTED) == (State.REJECTED, [Kind.REJECTED])
    assert apply_update(State.ACCEPTED, Kind.REJECTED) == (State.REJECTED, [Kind.REJECTED])


@pytest.mark.parametrize("terminal", [State.RESOLVED, State.REJECTED, State.NEEDS_PERSON])
@pytest.mark.parametrize("kind", list(Kind))
def test_a_finished_hand_over_ignores_every_later_update(terminal, kind):
    assert apply_update(terminal, kind) == (terminal, [])


def test_an_id_conflict_tells_the_command_center_which_id_and_which_case_in_both_languages():
    reason = domain.id_conflict_reason("PA365-000001", "4f1c2e55-0000-4000-8000-000000000001")
    assert "PA365-000001" in reason and "4f1c2e55" in reason
    assert "平安365" in reason and "restarted its numbering" in reason


# --- what crosses the boundary ---

def test_event_data_carries_the_result_or_the_reason_from_the_partners_note():
    resolved = event_data(Kind.RESOLVED, CASE, "ping_an_365", "PA-1", "2026-01-01T00:00:00Z",
                          "路灯已修复", "FIXED")
    rejected = event_data(Kind.REJECTED, CASE, "ping_an_365", "PA-1", "2026-01-01T00:00:00Z",
                          None, "NOT_COUNCILS_RESPONSIBILITY")
    progress = event_data(Kind.PROGRESS, CASE, "ping_an_365", "PA-1",
                          "2026-01-01T00:00:00Z", "处置中", "IN_PROGRESS")
    assert resolved["result"] == "路灯已修复"
    assert rejected["reason"]  # a default reason when the partner gives none
    assert progress["remote_status"] == "IN_PROGRESS"


def test_the_work_order_carries_the_problem_and_place_but_no_reporter():
    escalation = {"case_id": CASE, "category": "hazard-facility", "description": "路灯不亮",
                  "location": {"lat": 30.2, "lon": 120.1}, "address": "望江路 1 号",
                  "attachments": [{"key": "k/1.jpg", "content_type": "image/jpeg",
                                   "size": 10}],
                  "resolve_due_at": None, "report_ids": [CASE], "actor": {"id": "op",
                                                                         "role": "operator"}}
    order = work_order(escalation)
    assert order["attachments"] == ["k/1.jpg"]
    assert (order["lat"], order["lon"]) == (30.2, 120.1)
    assert "report_ids" not in order and "actor" not in order


# --- backoff ---

def test_backoff_doubles_its_ceiling_per_attempt_up_to_the_cap():
    backoff = Backoff(base_s=1, cap_s=10)
    ceilings = [backoff.delay(n, rand=lambda: 1.0) for n in range(1, 7)]
    assert ceilings == [1, 2, 4, 8, 10, 10]


def test_backoff_jitter_spreads_the_wait_over_the_whole_range():
    backoff = Backoff(base_s=1, cap_s=100)
    assert backoff.delay(4, rand=lambda: 0.0) == 0
    assert backoff.delay(4, rand=lambda: 0.5) == 4


def test_backoff_survives_absurd_attempt_counts():
    assert Backoff(base_s=2, cap_s=300).delay(10_000, rand=lambda: 1.0) == 300


# --- circuit breaker ---

def test_the_circuit_opens_after_threshold_consecutive_failures():
    breaker = CircuitBreaker(threshold=3, cooldown_s=10, clock=Clock())
    for _ in range(2):
        breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is Circuit.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_count_of_consecutive_failures():
    breaker = CircuitBreaker(threshold=3, cooldown_s=10, clock=Clock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is Circuit.CLOSED


def test_after_the_cool_down_one_probe_is_let_through():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown_s=10, clock=clock)
    breaker.record_failure()
    clock.t += 10
    assert breaker.state is Circuit.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # only one probe at a time


def test_a_successful_probe_closes_the_circuit():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown_s=10, clock=clock)
    breaker.record_failure()
    clock.t += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is Circuit.CLOSED
    assert breaker.allow() and breaker.allow()


def test_a_failed_probe_opens_the_circuit_for_another_cool_down():
    clock = Clock()
    breaker = CircuitBreaker(threshold=5, cooldown_s=10, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.t += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is Circuit.OPEN
    clock.t += 9
    assert not breaker.allow()
    clock.t += 1
    assert breaker.allow()


def test_a_probe_that_never_reports_is_given_up_after_a_cool_down():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown_s=10, clock=clock)
    breaker.record_failure()
    clock.t += 10
    assert breaker.allow()
    clock.t += 10
    assert breaker.allow()


def test_a_probe_given_back_unused_lets_the_next_caller_probe():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown_s=10, clock=clock)
    breaker.record_failure()
    clock.t += 10
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()
