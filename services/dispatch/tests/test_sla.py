"""The SLA clock and its warning ladder, with an injected clock: no server, no waiting."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch import sla
from services.dispatch.sla import RED, REMINDER, YELLOW, Assignment, Clock, Policy

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
NOISE = {"dispute-noise": (2, 24), "suggestion-general": (24, 240)}


def ten_hour_clock(**kw) -> Clock:
    return Clock(sla.ACCEPT, T0, T0 + 10 * H, **kw)


# --- deadlines per category x priority ------------------------------------------------------

@pytest.mark.parametrize(("category", "priority", "accept_h", "resolve_h"), [
    ("dispute-noise", "urgent", 0.5, 6), ("dispute-noise", "high", 1, 12),
    ("dispute-noise", "normal", 2, 24), ("dispute-noise", "low", 4, 48),
    ("suggestion-general", "normal", 24, 240), ("suggestion-general", "urgent", 6, 60)])
def test_seeded_deadlines_are_the_category_hours_times_the_priority_factor(
        category, priority, accept_h, resolve_h):
    # given the policies seeded from the categories' hours
    policy = sla.seed_policies(NOISE)[(category, priority)]
    # when a case is assigned at T0 and accepted at T0 + 1h
    # then its deadlines follow from its category and priority
    assert sla.deadline(T0, policy, sla.ACCEPT) == T0 + accept_h * H
    assert sla.deadline(T0 + H, policy, sla.RESOLVE) == T0 + H + resolve_h * H


def test_every_category_gets_every_priority():
    assert set(sla.seed_policies(NOISE)) == {(c, p) for c in NOISE for p in sla.PRIORITIES}


def test_a_case_with_no_policy_runs_no_clock():
    assert sla.deadline(T0, None, sla.ACCEPT) is None
    assert sla.deadline(T0, Policy(0, 24), sla.ACCEPT) is None


# --- the ladder ---------------------------------------------------------------------------

def test_the_yellow_line_falls_at_the_configured_fraction_of_the_allowed_time():
    assert ten_hour_clock().ladder()[0] == sla.Rung(YELLOW, 0, T0 + 7.5 * H)
    assert ten_hour_clock(yellow_at=0.5).ladder()[0].at == T0 + 5 * H


def test_the_red_line_falls_at_the_deadline_and_reminders_step_after_it():
    ladder = ten_hour_clock(reminders=(0.5, 1.0)).ladder()
    assert [(r.level, r.rung, r.at) for r in ladder[1:]] == [
        (RED, 1, T0 + 10 * H), (REMINDER, 2, T0 + 15 * H), (REMINDER, 3, T0 + 20 * H)]


def test_nothing_is_due_before_the_yellow_line():
    assert ten_hour_clock().due(T0 + 7 * H) == []
    assert ten_hour_clock().next_at(T0 + 7 * H) == T0 + 7.5 * H


def test_at_the_yellow_line_the_yellow_warning_is_due_once():
    clock = ten_hour_clock()
    assert [r.level for r in clock.due(T0 + 8 * H)] == [YELLOW]
    # once sent, it is not due again, and the next thing is the red line
    assert clock.due(T0 + 9 * H, sent={0}) == []
    assert clock.next_at(T0 + 9 * H, sent={0}) == T0 + 10 * H


def test_at_the_deadline_the_red_line_is_due():
    assert [r.level for r in ten_hour_clock().due(T0 + 10 * H, sent={0})] == [RED]


def test_a_late_scan_sends_the_red_line_but_not_a_stale_yellow_one():
    # given a scan that first looks after the deadline (the service was down)
    due = ten_hour_clock().due(T0 + 11 * H)
    # then the red line goes out, and the yellow line (now meaningless) does not
    assert [r.level for r in due] == [RED]


def test_a_scan_after_a_reminder_sends_the_red_line_and_the_latest_reminder_only():
    clock = ten_hour_clock(reminders=(0.5, 1.0, 2.0))
    due = clock.due(T0 + 21 * H, sent={0})
    assert [(r.level, r.rung) for r in due] == [(RED, 1), (REMINDER, 3)]
    assert clock.due(T0 + 21 * H, sent={0, 1, 3}) == []
    assert clock.next_at(T0 + 21 * H, sent={0, 1, 3}) == T0 + 30 * H


def test_after_the_last_reminder_the_ladder_is_done():
    clock = ten_hour_clock(reminders=(0.5,))
    assert clock.next_at(T0 + 16 * H, sent={0, 1, 2}) is None


# --- extensions ---------------------------------------------------------------------------

def test_an_extension_moves_the_deadline_and_the_yellow_line_with_it():
    clock = ten_hour_clock().extended(10)
    assert clock.due_at == T0 + 20 * H
    assert clock.ladder()[0].at == T0 + 15 * H  # 75% of the 20 hours now allowed
    assert clock.due(T0 + 12 * H) == []  # the old deadline no longer warns


def test_an_extended_deadline_has_its_own_ladder_even_after_the_old_red_line():
    # given the red line sent for the old deadline; when it is extended by 10 hours
    clock = ten_hour_clock().extended(10)
    # then its warnings are new ones (the caller keys them by the new deadline)
    assert [r.level for r in clock.due(T0 + 16 * H, sent=set())] == [YELLOW]


# --- configuration, sampling, satisfaction ------------------------------------------------

def test_the_reminder_ladder_is_read_from_configuration():
    assert sla.parse_reminders("1, 0.25") == (0.25, 1.0)
    assert sla.parse_reminders("") == sla.DEFAULT_REMINDERS
    with pytest.raises(ValueError):
        sla.parse_reminders("0,1")


def test_the_callback_sample_is_deterministic_and_near_the_rate():
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(2000)]
    picked = [i for i in ids if sla.in_callback_sample(i, 0.2)]
    assert 0.15 < len(picked) / len(ids) < 0.25
    assert picked == [i for i in ids if sla.in_callback_sample(i, 0.2)]
    assert not any(sla.in_callback_sample(i, 0) for i in ids[:50])
    assert all(sla.in_callback_sample(i, 1) for i in ids[:50])


def test_an_unrated_case_is_overdue_once_the_wait_has_passed():
    assert not sla.satisfaction_overdue(T0, 72, T0 + 71 * H)
    assert sla.satisfaction_overdue(T0, 72, T0 + 72 * H)


def test_warning_messages_are_in_chinese_and_english():
    zh, en = sla.warning_message(RED, sla.ACCEPT, T0, "0123456789ab", ("噪音扰民", "Noise"))
    assert zh.startswith("【红线示警】") and "接单" in zh
    assert en.startswith("Red line") and "accept" in en


def test_a_warning_names_the_category_and_says_beijing_time_not_a_code_or_utc():
    # given an accept deadline of 03:22 UTC on a noise case
    due = datetime(2026, 12, 1, 3, 22, tzinfo=UTC)
    # when the red line is worded
    zh, en = sla.warning_message(RED, sla.ACCEPT, due, "f46ff6ae0000", ("噪音扰民", "Noise"))
    # then it names the category and gives 11:22 Beijing time
    assert zh == ("【红线示警】案卷 f46ff6ae（噪音扰民）已超过接单时限"
                  "（2026-12-01 11:22（北京时间）），请立即处理。")
    assert "UTC" not in zh and "dispute" not in zh
    assert "2026-12-01 11:22 Beijing time" in en and "UTC" not in en


# --- the supervision report ---------------------------------------------------------------

def assignment(case: str, **kw) -> Assignment:
    base = dict(unit_id="comm-a", case_id=case, assigned_at=T0, accepted_on_time=True,
                resolved=True, resolved_on_time=True, handling_s=3600.0, rating=5,
                reopened=False)
    return Assignment(**{**base, **kw})


def test_report_figures_per_unit():
    rows = sla.report_figures([
        assignment("1"),
        assignment("2", accepted_on_time=False, resolved_on_time=False, handling_s=3 * 3600.0,
                   rating=1, reopened=True),
        assignment("3", resolved=False, resolved_on_time=False, handling_s=None, rating=None),
        assignment("4", unit_id="comm-b", rating=None),
    ], {("comm-a", YELLOW): 2, ("comm-a", RED): 1}, ["comm-a", "comm-b", "comm-c"])
    a, b, c = rows
    assert a == {"unit_id": "comm-a", "received": 3, "accepted_on_time": 2, "resolved": 2,
                 "resolved_on_time": 1, "yellow_lines": 2, "red_lines": 1,
                 "average_handling_hours": 2.0, "resolution_rate": 0.6667,
                 "satisfaction_rate": 0.5, "reopen_rate": 0.5}
    assert b["received"] == 1 and b["satisfaction_rate"] is None
    assert c["received"] == 0 and c["resolution_rate"] is None


def test_the_report_as_csv_has_a_header_and_a_row_per_unit_named_with_its_period_in_beijing_time():
    # given one unit's figures over a period stored in UTC
    rows = sla.report_figures([assignment("1")], {}, ["comm-a"])
    start, to = datetime(2026, 11, 30, 16, 0, tzinfo=UTC), datetime(2026, 12, 1, 3, 22, tzinfo=UTC)
    # when it is written as CSV for people
    lines = sla.report_csv(rows, start, to, {"comm-a": "石板桥社区"}).splitlines()
    # then each row names the unit and the period in Beijing time, never UTC
    assert lines[0] == ",".join(sla.CSV_FIELDS)
    assert lines[1] == ("comm-a,石板桥社区,2026-12-01 00:00（北京时间）,"
                        "2026-12-01 11:22（北京时间）,1,1,1,1,0,0,1.0,1.0,1.0,0.0")
    assert "UTC" not in "".join(lines)
