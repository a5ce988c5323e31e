"""The Case aggregate (案卷): every change to a case, decided in plain Python.

A method per action checks who acts and the transition table (domain.TRANSITIONS), and
returns a `Change`: the columns that change, the trail entry chained to the case's head,
and the case.* event if the state moved. No SQL here and no clock: the caller passes
`now`, and what needs the database (the units that exist, an SLA deadline) comes in as
values or a function. The repository saves a Change; supervision reacts to it.
See services/dispatch/README.md for the table and where to add an action.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from minqing_kernel.errors import Conflict, Forbidden, Invalid
from services.dispatch import domain, sla

SYSTEM = {"id": "system", "roles": ["system"]}
# Who works on a case a resolve step answers: its result and photos go on the case.
RESULT_ACTIONS = ("resolve", "external_resolved", "fulfil_wish", "decide_project",
                  "decide_no_project")


def no_deadline(kind: str) -> datetime | None:
    return None


@dataclass(frozen=True)
class CaseEvent:
    """A case.* event to publish with the change (through the outbox)."""
    verb: str       # "case.assigned", ...
    subject: str    # the case id
    data: dict


@dataclass
class Change:
    """What one action did to a case: saved together (case, trail, outbox) or not at all."""
    case_id: str
    action: str
    role: str
    previous: str | None
    status: str
    at: datetime
    changes: dict            # the case's columns that change (trail head included)
    trail_entry: dict        # the next row of the hash-chained trail
    events: list[CaseEvent] = field(default_factory=list)

    @property
    def repeated_return(self) -> bool:
        """A 退单 from the second on: the operator should decide rather than reassign."""
        return self.changes.get("return_count", 0) >= domain.REPEATED_RETURNS


@dataclass
class ActionInput:
    """What an action may carry besides its name (most carry only some of it)."""
    note: str | None = None
    result: str | None = None
    attachments: list = field(default_factory=list)
    unit_id: str | None = None
    rating: int | None = None
    feedback: str | None = None
    priority: str | None = None
    partner: str | None = None
    merged_into: str | None = None
    project_id: str | None = None
    extra_changes: dict = field(default_factory=dict)


def public_event_data(state: dict, previous: str | None, action: str, actor: dict,
                      role: str, note: str | None = None, **extra) -> dict:
    """The data of a public case.* event. Partners read these: a reporter acting (her
    rating) is named by her role only, and her words (the comment) stay out."""
    data = {
        "case_id": state["id"], "status": state["status"], "previous_status": previous,
        "action": action, "category": state["category"], "report_ids": state["report_ids"],
        "community_id": state["community_id"], "unit_id": state["unit_id"],
        "actor": domain.public_actor(actor, role),
        # A rating's words are the reporter's, whoever typed them in (an operator for a
        # phone caller): they never leave with the event.
        "note": None if role == domain.REPORTER or action in domain.REPORTER_ACTIONS
        else note,
        "at": state["updated_at"].isoformat(),
    }
    data.update(extra)
    return data


class Case:
    """One case's state (a row of dispatch.cases as a dict) and the actions on it.

    `units`: the units a case may be assigned to; `due(kind)`: the SLA deadline of that
    kind starting now, for this case's category and priority (supervision's policy)."""

    def __init__(self, state: dict, units: Collection[str] = (),
                 due: Callable[[str], datetime | None] = no_deadline):
        self.state = state
        self.units = units
        self.due = due

    @property
    def id(self) -> str:
        return self.state["id"]

    @property
    def status(self) -> str:
        return self.state["status"]

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, case_id: str, report: dict, suggestion: domain.Suggestion,
             now: datetime) -> tuple[Case, Change]:
        """A new case in the command center's queue for a submitted report."""
        loc = report["location"]
        state = {
            "id": case_id, "status": domain.SCREENING, "category": report["category"],
            "description": report["description"], "address": report.get("address"),
            "lat": loc["lat"], "lon": loc["lon"], "channel": report["channel"],
            "attachments": report["attachments"], "reporter_ids": [report["reporter_id"]],
            "report_ids": [report["report_id"]], "community_id": suggestion.community_id,
            "suggested_unit_id": suggestion.unit_id,
            "suggestion_reason_zh": suggestion.reason_zh,
            "suggestion_reason_en": suggestion.reason_en,
            "suggestion_rule": suggestion.rule, "unit_id": None,
            "opened_at": now, "updated_at": now, "trail_head": domain.GENESIS,
            "trail_length": 0,
        }
        case = cls(state)
        trail = case._chain(now, SYSTEM, "system", "open", None,
                            f"report {report['report_id']}", [])
        event = CaseEvent("case.opened", case_id, public_event_data(
            state, None, "open", SYSTEM, "system", suggested_unit_id=suggestion.unit_id,
            suggestion_reason={"zh": suggestion.reason_zh, "en": suggestion.reason_en}))
        return case, Change(case_id, "open", "system", None, domain.SCREENING, now,
                            dict(state), trail, [event])

    # --- the actions ---------------------------------------------------------------------

    def act(self, actor: dict, action: str, now: datetime,
            given: ActionInput | None = None) -> Change:
        """Take `action`: role first (may this kind of user do this at all), then the
        case's state, then whether it is theirs (a handler on a case not yet assigned
        hears "not now", not "not yours"), then what the action itself needs."""
        given = given or ActionInput()
        domain.actor_role(actor, action)
        previous = self.status
        new_status = domain.next_status(previous, action)
        role = domain.authorize(actor, action, self.state["unit_id"],
                                self.state["reporter_ids"], self.state.get("channel"))
        changes: dict = {"status": new_status, "updated_at": now, **given.extra_changes}
        step = _STEPS.get(action, _no_more)
        extra = step(self, actor, now, given, changes)
        if given.project_id is not None:
            changes["project_id"] = given.project_id
        self.state.update(changes)
        trail = self._chain(now, actor, role, action, previous,
                            given.note or given.result or given.feedback, given.attachments)
        changes.update(trail_head=self.state["trail_head"],
                       trail_length=self.state["trail_length"])
        change = Change(self.id, action, role, previous, new_status, now, changes, trail)
        verb = domain.event_verb(action, previous, new_status)
        if verb:
            extra = _EVENT_DATA.get(verb, lambda state, extra: extra)(self.state, extra)
            change.events.append(CaseEvent(f"case.{verb}", self.id, public_event_data(
                self.state, previous, action, actor, role, given.note or given.feedback,
                **extra)))
        return change

    def note_on_trail(self, actor: dict, action: str, note: str, now: datetime) -> Change:
        """A trail entry that changes no status (a callback, an extension)."""
        role = sorted(set(actor["roles"]) & domain.OPERATORS or set(actor["roles"]))[0]
        self.state["updated_at"] = now
        trail = self._chain(now, actor, role, action, self.status, note, [])
        changes = {"updated_at": now, "trail_head": self.state["trail_head"],
                   "trail_length": self.state["trail_length"]}
        return Change(self.id, action, role, self.status, self.status, now, changes, trail)

    def _chain(self, at: datetime, actor: dict, role: str, action: str,
               previous: str | None, note: str | None, attachments: list) -> dict:
        """The next trail row, chained to the head; moves the case's head to it."""
        s = self.state
        entry = {"case_id": s["id"], "seq": s["trail_length"] + 1, "at": at.isoformat(),
                 "actor_id": actor["id"], "actor_role": role, "action": action,
                 "from_status": previous, "to_status": s["status"], "unit_id": s["unit_id"],
                 "note": note, "attachments": attachments}
        row = {**entry, "at": at, "prev_hash": s["trail_head"],
               "hash": domain.chain_hash(s["trail_head"], entry)}
        s.update(trail_head=row["hash"], trail_length=row["seq"])
        return row

    # --- what each action changes besides the status (the event's extra data back) ------

    def _route(self, actor: dict, now: datetime, given: ActionInput, changes: dict,
               action: str) -> dict:
        unit_id = given.unit_id or self.state["suggested_unit_id"]
        if unit_id not in self.units:
            raise Invalid.of("dispatch.unknown-unit", unit_id=unit_id,
                             errors=[{"field": "unit_id", "message": "unknown unit"}],
                             code="unknown-unit")
        if action == "transfer" and unit_id == self.state["unit_id"]:
            raise Invalid.of("dispatch.same-unit",
                             errors=[{"field": "unit_id", "message": "same unit"}],
                             code="same-unit")
        # SLA: the accept clock starts on assign and on transfer (the new unit's clock).
        changes.update(unit_id=unit_id, accept_due_at=self.due(sla.ACCEPT),
                       resolve_due_at=None)
        return {}

    def _assign(self, actor, now, given, changes) -> dict:
        return self._route(actor, now, given, changes, "assign")

    def _transfer(self, actor, now, given, changes) -> dict:
        return self._route(actor, now, given, changes, "transfer")

    def _accept(self, actor, now, given, changes) -> dict:
        changes["resolve_due_at"] = self.due(sla.RESOLVE)
        return {}

    def _answer(self, actor, now, given, changes) -> dict:
        changes.update(result=given.result, result_attachments=given.attachments)
        return {"result": given.result, "attachments": given.attachments}

    def _rate(self, actor, now, given, changes) -> dict:
        changes.update(rating=given.rating, feedback=given.feedback)
        return {"rating": given.rating}

    def _set_priority(self, actor, now, given, changes) -> dict:
        changes["priority"] = given.priority
        return {}

    def _merge(self, actor, now, given, changes) -> dict:
        changes["merged_into"] = given.merged_into
        return {"merged_into": given.merged_into}

    def _send_back(self, actor, now, given, changes) -> dict:
        # 退单: back to the command center's queue, the reason kept; from the second
        # return on the operator is asked to decide rather than assign again.
        count = self.state["return_count"] + 1
        changes.update(return_count=count, return_reason=given.note, unit_id=None,
                       accept_due_at=None, resolve_due_at=None)
        return {"reason": given.note, "return_count": count,
                "repeated": count >= domain.REPEATED_RETURNS}

    def _escalate_external(self, actor, now, given, changes) -> dict:
        # The partner is held to our resolve deadline (its clock starts now).
        partner = given.partner or "ping_an_365"
        changes.update(partner=partner, unit_id=domain.PARTNERS[partner],
                       accept_due_at=None, resolve_due_at=self.due(sla.RESOLVE))
        return {}

    def _leave_units(self, actor, now, given, changes) -> dict:
        changes.update(unit_id=None, accept_due_at=None, resolve_due_at=None,
                       wish_claimed_by=None, wish_claimed_at=None)
        return {}

    def _claim_wish(self, actor, now, given, changes) -> dict:
        if self.state["wish_claimed_by"] is not None:
            raise Conflict.of("dispatch.wish-claimed", code="wish-claimed")
        changes.update(wish_claimed_by=actor["id"], wish_claimed_at=now)
        return {}

    def _fulfil_wish(self, actor, now, given, changes) -> dict:
        extra = self._answer(actor, now, given, changes)
        if self.state["wish_claimed_by"] != actor["id"]:
            raise Forbidden.of("dispatch.not-your-wish", code="not-your-wish")
        return extra


def _no_more(case: Case, actor, now, given, changes) -> dict:
    return {}


# action -> what it changes besides the status. An action not listed changes only that.
_STEPS: dict[str, Callable[..., dict]] = {
    "assign": Case._assign, "transfer": Case._transfer, "accept": Case._accept,
    **{a: Case._answer for a in RESULT_ACTIONS if a != "fulfil_wish"},
    "fulfil_wish": Case._fulfil_wish,
    **{a: Case._rate for a in domain.REPORTER_ACTIONS},
    "set_priority": Case._set_priority, "merge": Case._merge,
    "return": Case._send_back, "external_rejected": Case._send_back,
    "escalate_external": Case._escalate_external,
    "escalate_leadership": Case._leave_units, "publish_wish": Case._leave_units,
    "claim_wish": Case._claim_wish,
}


def _handed_over(state: dict, extra: dict) -> dict:
    # what the partner needs to open a work order; never who reported it
    return {"partner": state["partner"], "description": state["description"],
            "location": {"lat": state["lat"], "lon": state["lon"]},
            "address": state["address"], "attachments": state["attachments"],
            "resolve_due_at": state["resolve_due_at"].isoformat()
            if state["resolve_due_at"] else None}


def _wish_published(state: dict, extra: dict) -> dict:
    return {"description": state["description"], "address": state["address"],
            "location": {"lat": state["lat"], "lon": state["lon"]}}


def _closed(state: dict, extra: dict) -> dict:
    # rewards' rules are per reward class x priority (services/rewards)
    return {**extra, "priority": state.get("priority") or "normal"}


# Events whose data is what their readers need, not the step's own extra data.
_EVENT_DATA = {domain.ESCALATED_EXTERNAL: _handed_over, "wish_published": _wish_published,
               domain.CLOSED: _closed}
