"""The case (案卷) and its rules: lifecycle, who may act, routing, the audit chain.

Plain Python, no I/O: everything here is tested without a server.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from shapely.geometry import Point, shape
from shapely.prepared import prep

from minqing_kernel import messages
from minqing_kernel.errors import Conflict, Forbidden, Invalid
from minqing_kernel.schemas import is_blank

SCREENING, ASSIGNED, ACCEPTED, RESOLVED = "screening", "assigned", "accepted", "resolved"
CLOSED, REJECTED, REOPENED = "closed", "rejected", "reopened"
MERGED, RETURNED, WISH = "merged", "returned", "wish"
ESCALATED_EXTERNAL, ESCALATED_LEADERSHIP = "escalated_external", "escalated_leadership"
STATUSES = (SCREENING, ASSIGNED, ACCEPTED, RESOLVED, CLOSED, REJECTED, REOPENED, MERGED,
            RETURNED, ESCALATED_EXTERNAL, ESCALATED_LEADERSHIP, WISH)
FINAL = (CLOSED, REJECTED, MERGED)
# Where the command center decides what happens next (its queue): a new case, one a
# handler or partner sent back (退单), one the reporter was not satisfied with.
OPERATOR_QUEUE = (SCREENING, RETURNED, REOPENED)
# A duplicate may be merged into a case that is still being worked on; not into a
# finished one, nor into one that is resolved and waiting for its rating.
MERGEABLE_INTO = (SCREENING, ASSIGNED, ACCEPTED, RETURNED, REOPENED, ESCALATED_EXTERNAL,
                  ESCALATED_LEADERSHIP, WISH)


def _table() -> dict[tuple[str, str], str]:
    t = {
        (ASSIGNED, "assign"): ASSIGNED,            # re-routed before anyone accepted it
        (ASSIGNED, "accept"): ACCEPTED,            # 接单
        (ACCEPTED, "resolve"): RESOLVED,           # 办结
        (RESOLVED, "rate_satisfied"): CLOSED,      # 结案 after the reporter is satisfied
        (RESOLVED, "rate_unsatisfied"): REOPENED,  # back to the command center
        (SCREENING, "merge"): MERGED,              # a duplicate follows its case
        # 班子会 may direct a unit; a wish nobody claims may go to a unit after all
        (ESCALATED_LEADERSHIP, "assign"): ASSIGNED,
        (WISH, "assign"): ASSIGNED,
        # the meeting's decision answers the reporter (who then rates as usual)
        (ESCALATED_LEADERSHIP, "decide_project"): RESOLVED,
        (ESCALATED_LEADERSHIP, "decide_no_project"): RESOLVED,
        # the partner's word (integration365 events); progress only goes on the trail
        (ESCALATED_EXTERNAL, "external_accepted"): ESCALATED_EXTERNAL,
        (ESCALATED_EXTERNAL, "external_progress"): ESCALATED_EXTERNAL,
        (ESCALATED_EXTERNAL, "external_resolved"): RESOLVED,
        (ESCALATED_EXTERNAL, "external_rejected"): RETURNED,
        # The partner's events travel on separate queues, so its acceptance or progress
        # may arrive just after its result: still the partner's word, kept on the trail.
        (RESOLVED, "external_accepted"): RESOLVED,
        (RESOLVED, "external_progress"): RESOLVED,
        (RETURNED, "external_accepted"): RETURNED,
        (RETURNED, "external_progress"): RETURNED,
        (WISH, "claim_wish"): WISH,                # a volunteer takes it up (trail only)
        (WISH, "fulfil_wish"): RESOLVED,
        (RESOLVED, "close_unanswered"): CLOSED,      # no rating within the wait (supervision)
        (CLOSED, "callback_unsatisfied"): REOPENED,  # 回访: unsatisfied on the phone
    }
    for s in OPERATOR_QUEUE:
        t[(s, "assign")] = ASSIGNED                # 派单
        t[(s, "close_directly")] = CLOSED          # 直接结案
        t[(s, "escalate_external")] = ESCALATED_EXTERNAL    # 外部联动
        t[(s, "escalate_leadership")] = ESCALATED_LEADERSHIP  # 重大问题 → 班子会
        t[(s, "publish_wish")] = WISH              # 微心愿
    for s in (SCREENING, RETURNED):
        t[(s, "reject")] = REJECTED                # 不予受理
    for s in (ASSIGNED, ACCEPTED):
        t[(s, "transfer")] = ASSIGNED              # 内部流转: to another unit
        t[(s, "return")] = RETURNED                # 退单: back to the operator
    for s in OPERATOR_QUEUE + (ASSIGNED, ACCEPTED):
        t[(s, "set_priority")] = s
    for s in MERGEABLE_INTO:
        t[(s, "absorb_duplicate")] = s             # the merge's target gains a report
    return t


# (status, action) -> new status. Anything not listed is not allowed.
TRANSITIONS = _table()
OPERATOR_ACTIONS = {"assign", "reject", "close_directly", "set_priority", "merge",
                    "transfer", "escalate_external", "escalate_leadership", "publish_wish"}
HANDLER_ACTIONS = {"accept", "resolve", "return", "transfer"}
REPORTER_ACTIONS = {"rate_satisfied", "rate_unsatisfied"}
# Taken through their own endpoints, not POST /cases/{id}/actions: the meeting's decision
# (/v1/agenda), a volunteer's claim and fulfilment (/v1/wishes); the merge's other half.
MEETING_ACTIONS = {"decide_project", "decide_no_project"}
VOLUNTEER_ACTIONS = {"claim_wish", "fulfil_wish"}
INTERNAL_OPERATOR_ACTIONS = MEETING_ACTIONS | {"absorb_duplicate"}
# Only dispatch itself, on a partner's event, takes these (actor role "system").
SYSTEM_ACTIONS = {"external_accepted", "external_progress", "external_resolved",
                  "external_rejected", "close_unanswered"}  # the last: no rating in time
CALLBACK_ACTIONS = {"callback_unsatisfied"}  # 回访, recorded by command-center staff
ACTIONS = OPERATOR_ACTIONS | HANDLER_ACTIONS  # what POST /v1/cases/{id}/actions accepts
ALL_ACTIONS = ACTIONS | REPORTER_ACTIONS | MEETING_ACTIONS | VOLUNTEER_ACTIONS | \
    SYSTEM_ACTIONS | CALLBACK_ACTIONS | {"absorb_duplicate"}
OPERATORS = {"operator", "admin"}
# Volunteers (红袖章) sign in with the patroller role: they are the ones who walk the
# streets and take up micro-wishes.
VOLUNTEERS = {"patroller"}
# Who sees every case: the command center and the discipline office (纪工委, read-only:
# it has no action). Leaders see the cases of the units they lead (can_view).
SEE_ALL = {"operator", "admin", "discipline"}
# Who may see which member of staff did a step (ids); a resident sees a unit and a role.
STAFF_VIEWERS = SEE_ALL | {"handler", "leader"}
# Who may know who reported: the command center (it calls reporters back) and oversight.
# Not a unit's leader: 社区书记 and grid leaders live among the people a report is about,
# and following a case up needs the problem, not the name (ARCHITECTURE.md).
SEES_REPORTERS = SEE_ALL
PRIORITIES = ("urgent", "high", "normal", "low")
REPEATED_RETURNS = 2  # from the second return on, the operator is asked to decide
PARTNERS = {"ping_an_365": "ext-pingan365"}  # partner -> its unit in the reference data
SATISFIED_FROM = 3  # a rating of 3 stars or more out of 5 is satisfied

# What people read: each status and action by its Chinese name (contracts/messages.yaml).
STATUS_ZH = {s: messages.name("status", s) for s in STATUSES}
ACTION_ZH = {a: messages.name("action", a) for a in ALL_ACTIONS | {"open", "set_priority",
                                                                  "extend_deadline"}}


def next_status(status: str, action: str) -> str:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == status)
        raise Conflict.of("dispatch.action-not-allowed", status=status, action=action,
                          allowed=", ".join(allowed) or "nothing", status_zh=STATUS_ZH[status],
                          action_zh=ACTION_ZH.get(action, action),
                          allowed_zh=messages.names_zh("action", allowed)
                          or messages.zh("list.nothing"), code="action-not-allowed") from None


# Events announce a new state: one type per status (assigned is also what a transfer
# emits: who is responsible now). An entry that changes no state (a priority, a partner's
# progress, a volunteer's claim, a duplicate joining) goes on the trail only.
_VERBS = {WISH: "wish_published"}


def event_verb(action: str, previous: str | None, new_status: str) -> str | None:
    """The case.* event a transition emits, or None for a trail-only entry."""
    if new_status == previous and action not in ("assign", "transfer"):
        return None
    return _VERBS.get(new_status, new_status)


def actor_role(actor: dict, action: str) -> str:
    """The role under which `actor` may take `action` (for the trail), or Forbidden."""
    roles = set(actor["roles"])
    if action in OPERATOR_ACTIONS | INTERNAL_OPERATOR_ACTIONS and roles & OPERATORS:
        return sorted(roles & OPERATORS)[0]
    if action in HANDLER_ACTIONS and "handler" in roles:
        return "handler"
    if action in VOLUNTEER_ACTIONS and roles & VOLUNTEERS:
        return "volunteer"
    if action in SYSTEM_ACTIONS and "system" in roles:
        return "system"
    if action in REPORTER_ACTIONS:
        return "reporter"  # whether they reported this case is checked in authorize()
    if action in CALLBACK_ACTIONS and roles & OPERATORS:
        return sorted(roles & OPERATORS)[0]
    raise Forbidden.of("dispatch.role-cannot-act", roles=", ".join(sorted(roles)),
                       action=action, action_zh=ACTION_ZH.get(action, action))


# A phone caller has no account and no app: the operator who calls them back records the
# rating for them (issue #12, point 5). Only an operator, only on a case that came in on
# the phone; the trail keeps the operator as who acted, under this role.
PHONE_CHANNEL = "phone"
RECORDS_FOR_CALLERS = "operator"


def records_rating_for_caller(actor: dict, channel: str | None) -> bool:
    return channel == PHONE_CHANNEL and RECORDS_FOR_CALLERS in actor["roles"]


def not_your_case() -> Forbidden:
    return Forbidden.of("dispatch.not-your-case", code="not-your-case")


def rater_role(actor: dict, reporter_ids: list[str], channel: str | None) -> str:
    """Who gives a rating: the reporter herself, or an operator for a phone caller."""
    if actor["id"] in reporter_ids:
        return REPORTER
    if records_rating_for_caller(actor, channel):
        return RECORDS_FOR_CALLERS
    raise not_your_case()


def authorize(actor: dict, action: str, unit_id: str | None, reporter_ids: list[str],
              channel: str | None = None) -> str:
    role = actor_role(actor, action)
    if role == "handler" and (unit_id is None or actor.get("unit_id") != unit_id):
        raise Forbidden.of("dispatch.not-your-unit", code="not-your-unit")
    if role == "reporter":
        return rater_role(actor, reporter_ids, channel)
    return role


def can_view(actor: dict, unit_id: str | None, reporter_ids: list[str],
             community_id: str | None = None, led_units: frozenset = frozenset()) -> bool:
    """Operators, admins and discipline see all; a leader the cases handled by, or
    happening in, a unit they lead (`led_units`: units.leader_id, and the community of
    a grid they lead); a handler their unit's; anyone the cases they reported."""
    roles = set(actor["roles"])
    if roles & SEE_ALL:
        return True
    if "leader" in roles and (unit_id in led_units or community_id in led_units):
        return True
    if "handler" in roles and unit_id is not None and actor.get("unit_id") == unit_id:
        return True
    return actor["id"] in reporter_ids


REPORTER = "reporter"


def public_actor(actor: dict, role: str) -> dict:
    """Who acted, as a public event says it: staff and the system by id, a reporter by
    her role alone (partners must not learn who reported, ARCHITECTURE.md)."""
    return {"id": None if role == REPORTER else actor["id"], "role": role}


# Who may read a reporter's rating comment: she herself and those who see every case
# (the command center and discipline, who act on a complaint about a unit). Not the
# handler, whose work it judges, nor the unit's leader: her own words may identify her.
READS_RATING_COMMENTS = SEE_ALL


def may_read_rating_comment(actor: dict, reporter_ids: list[str]) -> bool:
    return bool(set(actor["roles"]) & READS_RATING_COMMENTS) or actor["id"] in reporter_ids


def visible_reporters(actor: dict, reporter_ids: list[str]) -> list[str]:
    """Who reported a case, as `actor` may see it. Those who read every report (the
    command center, oversight) see them all; a handler or a leader needs the problem, not
    who raised it (a neighbour's noise complaint must not reach the neighbour's
    community with a name on it); a reporter sees herself and no other reporter."""
    if set(actor["roles"]) & SEES_REPORTERS:
        return list(reporter_ids)
    return [r for r in reporter_ids if r == actor["id"]]


# Actions whose reason someone must read: the reporter (a refusal, a direct answer), the
# operator (a 退单), the next unit (a transfer), the meeting (why it is a major issue).
NOTE_REQUIRED = {"reject", "close_directly", "return", "transfer", "escalate_leadership"}


def _required(field: str, code: str, **params) -> Invalid:
    return Invalid.of(f"dispatch.{code}", errors=[{"field": field, "message": "required"}],
                      code=code, **params)


def check_action_input(action: str, note: str | None, result: str | None,
                       **fields) -> None:
    """What an action needs besides its name; Invalid (422) before anything changes."""
    if action in NOTE_REQUIRED and is_blank(note):
        raise _required("note", code="note-required", action=action, action_zh=ACTION_ZH[action])
    if action == "resolve" and is_blank(result):
        raise _required("result", code="result-required")
    # (each code spelled out: the contract test finds the codes the code raises)
    if action == "set_priority" and not fields.get("priority"):
        raise _required("priority", code="priority-required")
    if action == "merge" and not fields.get("target_case_id"):
        raise _required("target_case_id", code="target-case-id-required")
    if action == "transfer" and not fields.get("unit_id"):
        raise _required("unit_id", code="unit-id-required")
    partner = fields.get("partner")
    if action == "escalate_external" and partner is not None and partner not in PARTNERS:
        raise Invalid.of("dispatch.unknown-partner", partner=partner,
                         known=", ".join(sorted(PARTNERS)),
                         errors=[{"field": "partner", "message": "unknown partner"}],
                         code="unknown-partner")


def rating_action(rating: int) -> str:
    return "rate_satisfied" if rating >= SATISFIED_FROM else "rate_unsatisfied"


@dataclass(frozen=True)
class Rule:
    category: str   # '*' for any
    community: str  # '*' for any
    unit_id: str
    reason_zh: str
    reason_en: str
    id: int | None = None

    def specificity(self) -> int:
        return (self.category != "*") * 2 + (self.community != "*")


# Why a rule matched, by how specific it is (`routing.specificity-<n>` in the catalogue).
_SPECIFICITY = {n: messages.say(f"routing.specificity-{n}")[1:] for n in range(4)}


@dataclass(frozen=True)
class Suggestion:
    community_id: str | None
    unit_id: str | None
    reason_zh: str
    reason_en: str
    rule: dict | None = None  # which rule matched and why (shown to the operator)


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
        _, where_en, where_zh = (messages.say("routing.in-community", community=community)
                                 if community else messages.say("routing.in-no-community"))
        for rule in self._rules:
            if rule.category in ("*", category) and rule.community in ("*", community):
                why_en, why_zh = _SPECIFICITY[rule.specificity()]
                said = messages.say("routing.rule-matched", category=rule.category,
                                    community=rule.community, unit_id=rule.unit_id,
                                    why_en=why_en, why_zh=why_zh, where_en=where_en,
                                    where_zh=where_zh, reason_en=rule.reason_en,
                                    reason_zh=rule.reason_zh)
                explained = {
                    "id": rule.id, "category": rule.category, "community": rule.community,
                    "unit_id": rule.unit_id, "why_zh": said.zh, "why_en": said.en,
                }
                return Suggestion(community, rule.unit_id, rule.reason_zh, rule.reason_en,
                                  explained)
        no_rule = messages.say("routing.no-rule")
        why = messages.say("routing.no-rule-for-category", category=category,
                           category_zh=category, where_en=where_en, where_zh=where_zh)
        return Suggestion(community, None, no_rule.zh, no_rule.en,
                          {"id": None, "category": None, "community": None, "unit_id": None,
                           "why_zh": why.zh, "why_en": why.en})


def chain_hash(prev_hash: str, entry: dict) -> str:
    """Each trail entry hashes the previous one: editing any entry breaks every later hash."""
    canonical = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                           default=str)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


GENESIS = "0" * 64


# 民生实事项目: a project a leadership meeting decided on, and how its status may move.
PROJECT_STATUSES = ("planned", "in_progress", "completed", "cancelled")
PROJECT_TRANSITIONS = {("planned", "in_progress"), ("planned", "cancelled"),
                       ("in_progress", "completed"), ("in_progress", "cancelled")}
PROJECT_STATUS_ZH = {s: messages.name("project-status", s)
                     for s in ("planned", "in_progress", "completed", "cancelled")}


def check_project_move(current: str, new: str) -> None:
    if (current, new) not in PROJECT_TRANSITIONS:
        allowed = sorted(n for c, n in PROJECT_TRANSITIONS if c == current)
        raise Conflict.of("dispatch.project-status-not-allowed", current=current, new=new,
                          allowed=", ".join(allowed) or "nothing",
                          current_zh=PROJECT_STATUS_ZH[current], new_zh=PROJECT_STATUS_ZH[new],
                          code="project-status-not-allowed")


# Duplicate candidates: same category, still open, opened within DUPLICATE_DAYS of the
# case and within DUPLICATE_RADIUS_M of it (defaults; the operator may widen both).
DUPLICATE_RADIUS_M = 100
DUPLICATE_DAYS = 7
