"""有奖爆料: the reward rules, four eyes, the double-entry ledger and the ranking.

Plain Python, no I/O: everything here is tested without a server (tests/test_domain.py,
and tests/test_ledger_properties.py drives these functions with random sequences).

Money is integer fen (1 yuan = 100 fen) everywhere; yuan appear only where a person
reads them. The ledger is double-entry: every transaction is a list of (account,
amount) whose amounts sum to zero, and rows are only ever appended (the database
refuses UPDATE and DELETE on them). An account's balance is the sum of its entries:

    approve a reward     resident:<id> +a   rewards:expense   -a   (we owe the resident)
    batch a payout       resident:<id> -a   payouts:clearing  +a   (set aside for finance)
    refuse a payout      payouts:clearing -a   resident:<id>  +a   (back to the balance)
    pay a payout         payouts:clearing -a   payouts:paid   +a   (finance paid it)
    reverse a payout     payouts:paid     -a   resident:<id>  +a   (the payment failed or
                                                                    was wrong: owed again)

A paid payout is never changed: it is reversed by a new transaction, recorded beside it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from minqing_kernel import messages
from minqing_kernel.errors import Conflict, Forbidden, Invalid

BEIJING = ZoneInfo("Asia/Shanghai")
FEN_PER_YUAN = 100
# The seed's bounds for any reward: 5 to 2,000 yuan (GLOSSARY: 有奖爆料).
MIN_FEN, MAX_FEN = 5 * FEN_PER_YUAN, 2000 * FEN_PER_YUAN
PRIORITIES = ("urgent", "high", "normal", "low")
REWARD_CLASSES = ("security", "hazard", "property")

# Seeded rule ranges (yuan) for a normal-priority case of each class; other priorities
# scale them (PRIORITY_SCALE), clipped to the 5-2,000 bounds. Admins edit them after.
BASE_RANGE_YUAN = {"security": (50, 500), "hazard": (20, 300), "property": (5, 100)}
PRIORITY_SCALE = {"urgent": 4, "high": 2, "normal": 1, "low": 0.5}

PROPOSED, APPROVED, REFUSED = "proposed", "approved", "refused"
REWARD_STATUSES = (PROPOSED, APPROVED, REFUSED)
PENDING, PAID = "pending", "paid"  # payouts: pending -> approved -> paid, or refused
PAYOUT_STATUSES = (PENDING, APPROVED, PAID, REFUSED)

# Who may act on rewards and payouts.
REVIEWERS = frozenset({"operator", "leader", "admin"})  # propose, approve (small), refuse
SECOND_EYES = frozenset({"leader", "admin"})           # approve above the threshold
FINANCE = frozenset({"admin"})                          # batch, pay, reverse, export
SYSTEM = "system"

EXPENSE, CLEARING, PAID_OUT = "rewards:expense", "payouts:clearing", "payouts:paid"


def resident_account(resident_id: str) -> str:
    return f"resident:{resident_id}"


# --- rules ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    reward_class: str
    priority: str
    min_fen: int
    max_fen: int


def seeded_rules(categories: Iterable[dict]) -> list[Rule]:
    """A rule for each reward class the reference categories use, at every priority."""
    classes = sorted({c["rewarded_class"] for c in categories if c.get("rewarded_class")})
    rules = []
    for reward_class in classes:
        low, high = BASE_RANGE_YUAN.get(reward_class, (5, 100))
        for priority in PRIORITIES:
            scale = PRIORITY_SCALE[priority]
            lo = _clip(int(low * scale * FEN_PER_YUAN))
            hi = max(lo, _clip(int(high * scale * FEN_PER_YUAN)))
            rules.append(Rule(reward_class, priority, lo, hi))
    return rules


def _clip(fen: int) -> int:
    return max(MIN_FEN, min(MAX_FEN, fen))


def check_rule(reward_class: str, priority: str, min_fen: int, max_fen: int) -> Rule:
    if reward_class not in REWARD_CLASSES:
        raise Invalid.of("rewards.unknown-reward-class", reward_class=reward_class,
                         classes=", ".join(REWARD_CLASSES), classes_zh="、".join(REWARD_CLASSES),
                         code="unknown-reward-class")
    if priority not in PRIORITIES:
        raise Invalid.of("rewards.unknown-priority", priority=priority,
                         priorities=", ".join(PRIORITIES), priorities_zh="、".join(PRIORITIES),
                         code="unknown-priority")
    if not MIN_FEN <= min_fen <= max_fen <= MAX_FEN:
        raise Invalid.of("rewards.range-invalid",
                         errors=[{"field": "min_fen", "message": "out of range"}],
                         code="reward-range-invalid")
    return Rule(reward_class, priority, min_fen, max_fen)


# --- award ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportSeen:
    """What rewards knows of a report (from the internal report.received)."""
    report_id: str
    reporter_id: str
    submitted_at: datetime


@dataclass(frozen=True)
class Award:
    report_id: str
    resident_id: str
    min_fen: int
    max_fen: int


def award_for(reward_class: str | None, rule: Rule | None, reports: list[ReportSeen],
              handlers: set[str]) -> Award | None | str:
    """What a closed case earns: an Award for its first reporter, or the reason it earns
    nothing. `reports`: every report of the case (a merged duplicate's included); the
    first filed wins, so a duplicate never pays a second reporter. `handlers`: who
    worked the case (accepted, resolved or closed it): nobody is rewarded for a case they
    handled."""
    if not reward_class:
        return "not-rewarded-class"
    if rule is None:
        return "no-rule"
    first = min(reports, key=lambda r: (r.submitted_at, r.report_id))
    if first.reporter_id in handlers:
        return "handled-by-reporter"
    return Award(first.report_id, first.reporter_id, rule.min_fen, rule.max_fen)


# --- four eyes -----------------------------------------------------------------------

def _roles(actor: dict) -> set[str]:
    return set(actor.get("roles") or ())


def _must_be(actor: dict, roles: frozenset, key: str, **params) -> None:
    """A 403 saying the catalogue's message `key` unless the actor has one of `roles`."""
    if not _roles(actor) & roles:
        raise Forbidden.of(key, code="forbidden", **params)


def _must_be_proposed(reward: dict) -> None:
    if reward["status"] != PROPOSED:
        raise Conflict.of("rewards.decided", status=reward["status"],
                          status_zh=messages.name("reward-status", reward["status"]),
                          code="reward-decided")


def check_amount(reward: dict, amount_fen: int) -> None:
    low, high = reward["min_fen"], reward["max_fen"]
    if not low <= amount_fen <= high:
        raise Invalid.of("rewards.amount-outside-rule", low=low, high=high,
                         low_yuan=yuan(low), high_yuan=yuan(high),
                         errors=[{"field": "amount_fen", "message": "outside the rule's range"}],
                         code="amount-outside-rule")


def propose(reward: dict, actor: dict, amount_fen: int) -> dict:
    """A reviewer sets the amount within the rule and becomes its proposer."""
    _must_be(actor, REVIEWERS, "rewards.reviewers-propose")
    _must_be_proposed(reward)
    check_amount(reward, amount_fen)
    return {"amount_fen": amount_fen, "proposed_by": actor["id"]}


def approve(reward: dict, actor: dict, threshold_fen: int, handlers: set[str]) -> dict:
    """Four eyes: above `threshold_fen` a person must have proposed the amount and a
    second person, a leader or an admin, approves it; the proposer never approves their
    own. At or below it one reviewer's approval is enough."""
    _must_be(actor, REVIEWERS, "rewards.reviewers-approve")
    _must_be_proposed(reward)
    if reward["resident_id"] in handlers:
        raise Conflict.of("rewards.reward-to-handler", code="reward-to-handler")
    if actor["id"] == reward["resident_id"]:
        raise Forbidden.of("rewards.own-reward", code="own-reward")
    if reward["amount_fen"] > threshold_fen:
        if reward["proposed_by"] in (None, SYSTEM):
            raise Conflict.of("rewards.needs-proposer", threshold_yuan=yuan(threshold_fen),
                              code="needs-proposer")
        if reward["proposed_by"] == actor["id"]:
            raise Forbidden.of("rewards.four-eyes", code="four-eyes")
        _must_be(actor, SECOND_EYES, "rewards.second-eyes", threshold_yuan=yuan(threshold_fen))
    return {"status": APPROVED, "decided_by": actor["id"]}


def check_not_flagged(flag_reason: str | None) -> None:
    """A flagged reporter's rewards are held for review: not approved while flagged."""
    if flag_reason is not None:
        raise Conflict.of("rewards.reporter-flagged", code="reporter-flagged")


def check_caps(amount_fen: int, earned_today_fen: int, earned_month_fen: int,
               daily_cap_fen: int | None, monthly_cap_fen: int | None) -> None:
    """Abuse: what one resident may be awarded per Beijing-time day and month. A reward
    that would pass a cap stays proposed (it may be approved another day, or refused)."""
    if daily_cap_fen is not None and earned_today_fen + amount_fen > daily_cap_fen:
        raise Conflict.of("rewards.daily-cap", cap_yuan=yuan(daily_cap_fen), code="daily-cap")
    if monthly_cap_fen is not None and earned_month_fen + amount_fen > monthly_cap_fen:
        raise Conflict.of("rewards.monthly-cap", cap_yuan=yuan(monthly_cap_fen),
                          code="monthly-cap")


def refuse(reward: dict, actor: dict, reason: str | None) -> dict:
    _must_be(actor, REVIEWERS, "rewards.reviewers-refuse")
    _must_be_proposed(reward)
    if not reason or not reason.strip():
        raise Invalid.of("rewards.reason-required",
                         errors=[{"field": "reason", "message": "required"}],
                         code="reason-required")
    return {"status": REFUSED, "decided_by": actor["id"], "reason": reason.strip()}


# --- the ledger ----------------------------------------------------------------------

Entry = tuple[str, int]  # (account, amount in fen); a transaction's amounts sum to zero


def _txn(debit: str, credit: str, amount_fen: int) -> list[Entry]:
    if amount_fen <= 0:
        raise ValueError("a ledger transaction moves a positive amount")
    return [(credit, amount_fen), (debit, -amount_fen)]


def approval_entries(resident_id: str, amount_fen: int) -> list[Entry]:
    return _txn(EXPENSE, resident_account(resident_id), amount_fen)


def payout_entries(resident_id: str, amount_fen: int) -> list[Entry]:
    return _txn(resident_account(resident_id), CLEARING, amount_fen)


def payout_refusal_entries(resident_id: str, amount_fen: int) -> list[Entry]:
    return _txn(CLEARING, resident_account(resident_id), amount_fen)


def payment_entries(amount_fen: int) -> list[Entry]:
    return _txn(CLEARING, PAID_OUT, amount_fen)


def reversal_entries(resident_id: str, amount_fen: int) -> list[Entry]:
    return _txn(PAID_OUT, resident_account(resident_id), amount_fen)


# (payout status, action) -> new status; a paid payout has no transition: it is reversed
# beside it (a new transaction), never changed.
PAYOUT_TRANSITIONS = {(PENDING, "approve"): APPROVED, (PENDING, "refuse"): REFUSED,
                      (APPROVED, "refuse"): REFUSED, (APPROVED, "pay"): PAID}
PAYOUT_ACTIONS = ("approve", "refuse", "pay", "reverse")


def payout_step(payout: dict, actor: dict, action: str, reversed_already: bool) -> str:
    """The payout's next status (unchanged for `reverse`), or a problem. Four eyes here
    too: whoever batched a payout does not approve it."""
    if action not in PAYOUT_ACTIONS:
        raise Invalid.of("rewards.unknown-payout-action", action=action,
                         actions=", ".join(PAYOUT_ACTIONS), code="unknown-action")
    if action == "approve":
        _must_be(actor, SECOND_EYES, "rewards.payout-approvers")
        if payout["created_by"] == actor["id"]:
            raise Forbidden.of("rewards.payout-four-eyes", code="four-eyes")
    else:
        _must_be(actor, FINANCE if action != "refuse" else SECOND_EYES,
                 "rewards.payout-finance")
    if action == "reverse":
        if payout["status"] != PAID:
            raise Conflict.of("rewards.payout-not-paid", code="payout-not-paid")
        if reversed_already:
            raise Conflict.of("rewards.payout-reversed", code="payout-reversed")
        return PAID
    new = PAYOUT_TRANSITIONS.get((payout["status"], action))
    if new is None:
        raise Conflict.of("rewards.payout-state", status=payout["status"], action=action,
                          status_zh=messages.name("payout-status", payout["status"]),
                          code="payout-state")
    return new


# --- ranking -------------------------------------------------------------------------

def period_bounds(period: str, at: str | None, now: datetime) -> tuple[datetime, datetime, str]:
    """[start, end) of a Beijing-time month (`2026-12`) or year (`2026`), and its label;
    the current one when `at` is not given."""
    local = now.astimezone(BEIJING)
    try:
        if period == "month":
            year, month = (map(int, at.split("-"))) if at else (local.year, local.month)
            start = datetime(year, month, 1, tzinfo=BEIJING)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=BEIJING)
            return start, end, f"{year:04d}-{month:02d}"
        if period == "year":
            year = int(at) if at else local.year
            return (datetime(year, 1, 1, tzinfo=BEIJING), datetime(year + 1, 1, 1, tzinfo=BEIJING),
                    f"{year:04d}")
    except (ValueError, TypeError):
        pass
    raise Invalid.of("rewards.bad-period", code="bad-period")


def ranked(rows: Iterable[dict]) -> list[dict]:
    """Rank by rewards earned, then valid reports, then reports; ties share a rank."""
    key = lambda r: (-r["rewards_fen"], -r["valid_reports"], -r["reports"])  # noqa: E731
    out, last, rank = [], None, 0
    for i, row in enumerate(sorted(rows, key=lambda r: (*key(r), r["resident_id"])), 1):
        if key(row) != last:
            rank, last = i, key(row)
        out.append({**row, "rank": rank})
    return out


def mask(resident_id: str) -> str:
    """What the public sees of someone without a display name: never the phone."""
    return messages.zh("rewards.mask", suffix=resident_id[-4:])


def yuan(fen: int) -> str:
    return f"{fen / FEN_PER_YUAN:.2f}".rstrip("0").rstrip(".")


def beijing(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")

