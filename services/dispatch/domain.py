"""The case (案卷) and its rules: lifecycle, who may act, routing, the audit chain.

Plain Python, no I/O: everything here is tested without a server.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from shapely.geometry import Point, shape
from shapely.prepared import prep

from minqing_kernel.errors import Conflict, Forbidden, Invalid

SCREENING, ASSIGNED, ACCEPTED, RESOLVED = "screening", "assigned", "accepted", "resolved"
CLOSED, REJECTED, REOPENED = "closed", "rejected", "reopened"
STATUSES = (SCREENING, ASSIGNED, ACCEPTED, RESOLVED, CLOSED, REJECTED, REOPENED)

# (status, action) -> new status. Anything not listed is not allowed.
TRANSITIONS = {
    (SCREENING, "assign"): ASSIGNED,          # 派单
    (SCREENING, "reject"): REJECTED,          # 不予受理
    (SCREENING, "close_directly"): CLOSED,    # 直接结案
    (ASSIGNED, "assign"): ASSIGNED,           # re-routed before anyone accepted it
    (ASSIGNED, "accept"): ACCEPTED,           # 接单
    (ACCEPTED, "resolve"): RESOLVED,          # 办结
    (RESOLVED, "rate_satisfied"): CLOSED,     # 结案 after the reporter is satisfied
    (RESOLVED, "rate_unsatisfied"): REOPENED,  # back to the command center
    (REOPENED, "assign"): ASSIGNED,
    (RESOLVED, "close_unanswered"): CLOSED,      # no rating within the wait (supervision)
    (CLOSED, "callback_unsatisfied"): REOPENED,  # 回访: unsatisfied on the phone
}
OPERATOR_ACTIONS = {"assign", "reject", "close_directly"}
HANDLER_ACTIONS = {"accept", "resolve"}
REPORTER_ACTIONS = {"rate_satisfied", "rate_unsatisfied"}
SYSTEM_ACTIONS = {"close_unanswered"}        # taken by dispatch itself, never requested
CALLBACK_ACTIONS = {"callback_unsatisfied"}  # recorded by command-center staff
ACTIONS = OPERATOR_ACTIONS | HANDLER_ACTIONS
OPERATORS = {"operator", "admin"}
SEE_ALL = {"operator", "admin", "leader", "discipline"}
SATISFIED_FROM = 3  # a rating of 3 stars or more out of 5 is satisfied

STATUS_ZH = {SCREENING: "待筛选", ASSIGNED: "已派单", ACCEPTED: "处理中", RESOLVED: "已办结",
             CLOSED: "已结案", REJECTED: "不予受理", REOPENED: "重新办理"}
ACTION_ZH = {"open": "立案", "assign": "派单", "reject": "不予受理", "close_directly": "直接结案",
             "accept": "接单", "resolve": "办结", "rate_satisfied": "满意评价",
             "rate_unsatisfied": "不满意评价", "close_unanswered": "逾期未评价结案",
             "callback_unsatisfied": "回访不满意", "extend_deadline": "延长时限"}


def next_status(status: str, action: str) -> str:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == status)
        raise Conflict(
            f"A case that is {status} cannot be '{action}'ed; allowed now: "
            f"{', '.join(allowed) or 'nothing'}.",
            f"案卷当前状态为「{STATUS_ZH[status]}」，不能执行「{ACTION_ZH.get(action, action)}」；"
            f"当前可执行：{'、'.join(ACTION_ZH[a] for a in allowed) or '无'}。",
            code="action-not-allowed") from None


def event_verb(new_status: str) -> str:
    """The case.* event a transition emits: its new state's name."""
    return "assigned" if new_status == ASSIGNED else new_status


def actor_role(actor: dict, action: str) -> str:
    """The role under which `actor` may take `action` (for the trail), or Forbidden."""
    roles = set(actor["roles"])
    if action in OPERATOR_ACTIONS and roles & OPERATORS:
        return sorted(roles & OPERATORS)[0]
    if action in HANDLER_ACTIONS and "handler" in roles:
        return "handler"
    if action in REPORTER_ACTIONS:
        return "reporter"  # whether they reported this case is checked in authorize()
    if action in SYSTEM_ACTIONS and "system" in roles:
        return "system"
    if action in CALLBACK_ACTIONS and roles & OPERATORS:
        return sorted(roles & OPERATORS)[0]
    raise Forbidden(f"Your roles ({', '.join(sorted(roles))}) cannot '{action}' a case.",
                    f"您的角色无权对案卷执行「{ACTION_ZH.get(action, action)}」。")


def authorize(actor: dict, action: str, unit_id: str | None, reporter_ids: list[str]) -> str:
    role = actor_role(actor, action)
    if role == "handler" and (unit_id is None or actor.get("unit_id") != unit_id):
        raise Forbidden("This case is assigned to another unit.", "该案卷已派给其他单位。",
                        code="not-your-unit")
    if role == "reporter" and actor["id"] not in reporter_ids:
        raise Forbidden("Only the person who reported this can rate it.",
                        "只有爆料人可以评价该案卷。", code="not-your-case")
    return role


def can_view(actor: dict, unit_id: str | None, reporter_ids: list[str]) -> bool:
    roles = set(actor["roles"])
    if roles & SEE_ALL:
        return True
    if "handler" in roles and unit_id is not None and actor.get("unit_id") == unit_id:
        return True
    return actor["id"] in reporter_ids


def visible_reporters(actor: dict, reporter_ids: list[str]) -> list[str]:
    """Who reported a case, as `actor` may see it. Those who read every report (the
    command center, leaders, oversight) see them all; a handler needs the problem, not
    who raised it (a neighbour's noise complaint must not reach the neighbour's
    community with a name on it); a reporter sees herself and no other reporter."""
    if set(actor["roles"]) & SEE_ALL:
        return list(reporter_ids)
    return [r for r in reporter_ids if r == actor["id"]]


def check_action_input(action: str, note: str | None, result: str | None) -> None:
    if action in ("reject", "close_directly") and not (note or "").strip():
        raise Invalid(f"'{action}' needs a note saying why (the reporter reads it).",
                      f"「{ACTION_ZH[action]}」需要填写说明（爆料人会看到）。",
                      errors=[{"field": "note", "message": "required"}], code="note-required")
    if action == "resolve" and not (result or "").strip():
        raise Invalid("'resolve' needs the result: what was done.",
                      "「办结」需要填写办理结果。",
                      errors=[{"field": "result", "message": "required"}], code="result-required")


def rating_action(rating: int) -> str:
    return "rate_satisfied" if rating >= SATISFIED_FROM else "rate_unsatisfied"


@dataclass(frozen=True)
class Rule:
    category: str   # '*' for any
    community: str  # '*' for any
    unit_id: str
    reason_zh: str
    reason_en: str

    def specificity(self) -> int:
        return (self.category != "*") * 2 + (self.community != "*")


@dataclass(frozen=True)
class Suggestion:
    community_id: str | None
    unit_id: str | None
    reason_zh: str
    reason_en: str


class Router:
    """Suggests the unit for a report: category x community, the most specific rule wins
    (exact both > exact category > exact community). Rules are data, edited by admins."""

    def __init__(self, communities: dict[str, dict], rules: list[Rule]):
        self._communities = [(cid, prep(shape(geo))) for cid, geo in communities.items()]
        self._rules = sorted(rules, key=Rule.specificity, reverse=True)

    def community_at(self, lat: float, lon: float) -> str | None:
        point = Point(lon, lat)
        return next((cid for cid, poly in self._communities if poly.covers(point)), None)

    def suggest(self, category: str, lat: float, lon: float) -> Suggestion:
        community = self.community_at(lat, lon)
        for rule in self._rules:
            if rule.category in ("*", category) and rule.community in ("*", community):
                return Suggestion(community, rule.unit_id, rule.reason_zh, rule.reason_en)
        return Suggestion(community, None, "没有匹配的派单规则，请人工派单",
                          "No routing rule matches; the operator chooses the unit")


def deadline(start: datetime, hours: float | None) -> datetime | None:
    return start + timedelta(hours=hours) if hours else None


def chain_hash(prev_hash: str, entry: dict) -> str:
    """Each trail entry hashes the previous one: editing any entry breaks every later hash."""
    canonical = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                           default=str)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


GENESIS = "0" * 64
