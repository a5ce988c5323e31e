"""The reward rules, four eyes and the ranking, without a server."""
from datetime import UTC, datetime, timedelta

import pytest

from minqing_kernel.errors import Conflict, Forbidden, Invalid
from services.rewards import domain

T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
OPERATOR = {"id": "operator-chen", "roles": ["operator"]}
OTHER_OPERATOR = {"id": "operator-zhou", "roles": ["operator"]}
LEADER = {"id": "leader-jinjiang", "roles": ["leader"]}
RESIDENT = {"id": "resident-li", "roles": ["resident"]}
THRESHOLD = 20000
RULE = domain.Rule("hazard", "normal", 2000, 30000)


def reward(**over) -> dict:
    r = {"status": "proposed", "amount_fen": 2000, "min_fen": 2000, "max_fen": 30000,
         "proposed_by": "system", "resident_id": "resident-zhang", "case_id": "c1"}
    r.update(over)
    return r


def seen(report: str, who: str, minutes: int) -> domain.ReportSeen:
    return domain.ReportSeen(report, who, T0 + timedelta(minutes=minutes))


# --- rules -------------------------------------------------------------------------------

def test_seeded_rules_cover_every_class_the_categories_use_at_every_priority_within_bounds():
    categories = [{"code": "a", "rewarded_class": "hazard"},
                  {"code": "b", "rewarded_class": "property"}, {"code": "c"}]
    rules = domain.seeded_rules(categories)
    assert {(r.reward_class, r.priority) for r in rules} == {
        (c, p) for c in ("hazard", "property") for p in domain.PRIORITIES}
    assert all(domain.MIN_FEN <= r.min_fen <= r.max_fen <= domain.MAX_FEN for r in rules)


def test_an_urgent_case_earns_more_than_a_low_one_of_the_same_class():
    rules = {r.priority: r for r in domain.seeded_rules([{"rewarded_class": "security"}])}
    assert rules["urgent"].min_fen > rules["normal"].min_fen > rules["low"].min_fen


@pytest.mark.parametrize("low, high", [(499, 1000), (1000, 200001), (3000, 2000)])
def test_a_rule_outside_five_to_two_thousand_yuan_is_refused(low, high):
    with pytest.raises(Invalid) as err:
        domain.check_rule("hazard", "normal", low, high)
    assert err.value.code == "reward-range-invalid"


def test_a_rule_for_an_unknown_class_or_priority_is_refused():
    with pytest.raises(Invalid):
        domain.check_rule("parking", "normal", 500, 1000)
    with pytest.raises(Invalid):
        domain.check_rule("hazard", "soon", 500, 1000)


# --- award -------------------------------------------------------------------------------

def test_a_closed_case_of_a_rewarded_class_earns_its_first_reporter_the_rules_minimum():
    award = domain.award_for("hazard", RULE, [seen("r1", "resident-zhang", 0)], set())
    assert award == domain.Award("r1", "resident-zhang", 2000, 30000)


def test_of_merged_reports_only_the_first_filed_is_rewarded():
    reports = [seen("r2", "resident-li", 5), seen("r1", "resident-zhang", 0)]
    assert domain.award_for("hazard", RULE, reports, set()).resident_id == "resident-zhang"


def test_a_category_without_a_reward_class_earns_nothing():
    assert domain.award_for(None, None, [seen("r1", "x", 0)], set()) == "not-rewarded-class"


def test_nobody_is_rewarded_for_a_case_they_handled():
    assert domain.award_for("hazard", RULE, [seen("r1", "handler-wu", 0)],
                            {"handler-wu"}) == "handled-by-reporter"


# --- four eyes -----------------------------------------------------------------------------

def test_at_or_below_the_threshold_one_reviewer_approves():
    assert domain.approve(reward(), OPERATOR, THRESHOLD, set())["status"] == "approved"


def test_above_the_threshold_the_proposer_cannot_approve_their_own():
    r = reward(amount_fen=25000, proposed_by="leader-jinjiang")
    with pytest.raises(Forbidden) as err:
        domain.approve(r, LEADER, THRESHOLD, set())
    assert err.value.code == "four-eyes"


def test_above_the_threshold_an_operator_cannot_approve_even_someone_elses_proposal():
    with pytest.raises(Forbidden):
        domain.approve(reward(amount_fen=25000, proposed_by="operator-chen"), OTHER_OPERATOR,
                       THRESHOLD, set())


def test_above_the_threshold_a_leader_approves_another_persons_proposal():
    r = reward(amount_fen=25000, proposed_by="operator-chen")
    assert domain.approve(r, LEADER, THRESHOLD, set())["decided_by"] == "leader-jinjiang"


def test_above_the_threshold_the_systems_draft_needs_a_person_to_propose_first():
    with pytest.raises(Conflict) as err:
        domain.approve(reward(amount_fen=25000), LEADER, THRESHOLD, set())
    assert err.value.code == "needs-proposer"


def test_a_reward_to_one_of_the_cases_handlers_is_never_approved():
    with pytest.raises(Conflict):
        domain.approve(reward(resident_id="handler-wu"), OPERATOR, THRESHOLD, {"handler-wu"})


def test_nobody_approves_a_reward_to_themselves():
    with pytest.raises(Forbidden):
        domain.approve(reward(resident_id="operator-chen"), OPERATOR, THRESHOLD, set())


def test_a_resident_cannot_decide_a_reward():
    with pytest.raises(Forbidden):
        domain.approve(reward(), RESIDENT, THRESHOLD, set())


def test_a_decided_reward_is_not_decided_again():
    with pytest.raises(Conflict):
        domain.refuse(reward(status="approved"), OPERATOR, "重复")


def test_a_decided_reward_says_once_in_chinese_that_it_is_decided_and_how():
    # given a reward approved already
    # when someone refuses it
    with pytest.raises(Conflict) as err:
        domain.refuse(reward(status="approved"), OPERATOR, "重复")
    # then the Chinese names its status by the catalogue's name, without a doubled 已
    assert err.value.detail_zh == "该奖励已处理（已批准），不能再处理。"
    assert (err.value.detail_en, err.value.code) == ("This reward is approved already.",
                                                     "reward-decided")


def test_a_refusal_needs_a_reason_the_resident_can_read():
    with pytest.raises(Invalid):
        domain.refuse(reward(), OPERATOR, "  ")
    assert domain.refuse(reward(), OPERATOR, " 重复爆料 ")["reason"] == "重复爆料"


def test_a_proposed_amount_stays_within_the_rule():
    with pytest.raises(Invalid):
        domain.propose(reward(), OPERATOR, 30001)
    assert domain.propose(reward(), OPERATOR, 30000) == {"amount_fen": 30000,
                                                         "proposed_by": "operator-chen"}


# --- payouts -------------------------------------------------------------------------------

PAYOUT = {"status": "pending", "created_by": "admin"}
ADMIN = {"id": "admin", "roles": ["admin", "operator"]}
OTHER_ADMIN = {"id": "admin-2", "roles": ["admin"]}


def test_whoever_batched_a_payout_does_not_approve_it():
    with pytest.raises(Forbidden) as err:
        domain.payout_step(PAYOUT, ADMIN, "approve", False)
    assert err.value.code == "four-eyes"
    assert domain.payout_step(PAYOUT, LEADER, "approve", False) == "approved"


def test_a_payout_is_paid_only_once_approved():
    with pytest.raises(Conflict):
        domain.payout_step(PAYOUT, OTHER_ADMIN, "pay", False)
    assert domain.payout_step({**PAYOUT, "status": "approved"}, OTHER_ADMIN, "pay",
                              False) == "paid"


def test_a_paid_payout_is_never_changed_only_reversed_once():
    paid = {**PAYOUT, "status": "paid"}
    with pytest.raises(Conflict):
        domain.payout_step(paid, LEADER, "refuse", False)
    assert domain.payout_step(paid, OTHER_ADMIN, "reverse", False) == "paid"
    with pytest.raises(Conflict):
        domain.payout_step(paid, OTHER_ADMIN, "reverse", True)


def test_a_payout_in_the_wrong_state_names_its_status_in_chinese():
    # given a paid payout
    # when a leader tries to refuse it
    with pytest.raises(Conflict) as err:
        domain.payout_step({**PAYOUT, "status": "paid"}, LEADER, "refuse", False)
    # then the Chinese names the payout status (已兑付), not the English code
    assert err.value.detail_zh == "已兑付的兑付不能执行该操作。"
    assert err.value.code == "payout-state"


def test_every_ledger_transaction_balances():
    for entries in (domain.approval_entries("r", 500), domain.payout_entries("r", 500),
                    domain.payout_refusal_entries("r", 500), domain.payment_entries(500),
                    domain.reversal_entries("r", 500)):
        assert sum(amount for _, amount in entries) == 0 and len(entries) == 2


# --- ranking -------------------------------------------------------------------------------

def test_the_ranking_orders_by_rewards_then_valid_reports_and_ties_share_a_rank():
    rows = [{"resident_id": "a", "reports": 3, "valid_reports": 1, "rewards_fen": 2000},
            {"resident_id": "b", "reports": 1, "valid_reports": 1, "rewards_fen": 5000},
            {"resident_id": "c", "reports": 3, "valid_reports": 1, "rewards_fen": 2000}]
    assert [(r["resident_id"], r["rank"]) for r in domain.ranked(rows)] == [
        ("b", 1), ("a", 2), ("c", 2)]


def test_a_month_is_a_beijing_calendar_month():
    start, end, label = domain.period_bounds("month", "2026-12", T0)
    assert (label, start.isoformat(), end.isoformat()) == (
        "2026-12", "2026-12-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00")


def test_without_at_the_period_is_the_one_now_in_beijing():
    # 2026-12-31 20:00 UTC is already 2027-01-01 in Beijing
    assert domain.period_bounds("year", None, datetime(2026, 12, 31, 20, tzinfo=UTC))[2] == \
        "2027"


def test_a_mask_never_shows_a_phone_number():
    assert domain.mask("13800000001")[-4:] == "0001" and "138" not in domain.mask("13800000001")


def test_a_mask_calls_someone_without_a_display_name_a_warm_hearted_resident():
    assert domain.mask("13800000001") == "热心居民0001"


# --- caps ----------------------------------------------------------------------------------

def test_an_approval_past_the_daily_cap_is_refused_and_up_to_it_allowed():
    assert domain.check_caps(2000, earned_today_fen=98000, earned_month_fen=98000,
                             daily_cap_fen=100000, monthly_cap_fen=300000) is None
    with pytest.raises(Conflict) as err:
        domain.check_caps(2001, 98000, 98000, 100000, 300000)
    assert err.value.code == "daily-cap"


def test_an_approval_past_the_monthly_cap_is_refused():
    with pytest.raises(Conflict) as err:
        domain.check_caps(5000, 0, 296000, 100000, 300000)
    assert err.value.code == "monthly-cap"


def test_without_caps_any_amount_is_allowed():
    assert domain.check_caps(200000, 10**9, 10**9, None, None) is None


def test_a_flagged_reporters_reward_is_held():
    with pytest.raises(Conflict) as err:
        domain.check_not_flagged("重复爆料")
    assert err.value.code == "reporter-flagged"
    assert domain.check_not_flagged(None) is None
