"""The case lifecycle's use cases: open a case from a report, act on it (the console's
actions, the reporter's rating, the partner's word). Each loads the case through the
repository, lets the Case aggregate decide, saves the Change and lets supervision's
clocks follow it."""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.errors import Conflict, Forbidden, NotFound, validated
from minqing_kernel.reference import TimedReference
from services.dispatch import callers, clocks, domain, models, schemas
from services.dispatch.case import ActionInput, Case, Change
from services.dispatch.case_views import case_view
from services.dispatch.clocks import SupervisionSettings
from services.dispatch.metrics import CASE_TRANSITIONS, EXTERNAL_EVENTS_IGNORED, REPEATED_RETURNS
from services.dispatch.repository import CaseRepository

log = logging.getLogger(__name__)


def open_cases(uow, reference: TimedReference, events: list) -> list[str]:
    """A new case for each submitted report that has none yet; returns their ids.

    Written as a batch (one statement per table) because this is the hot path: every
    report in the city passes here once.
    """
    if not events:
        return []
    ref = reference.fresh(uow.session)
    planned = {e.data["report_id"]: (e, str(uuid.uuid4())) for e in events}
    claimed = set(uow.session.execute(
        pg.insert(models.case_reports)
        .values([{"report_id": r, "case_id": c} for r, (_, c) in planned.items()])
        .on_conflict_do_nothing().returning(models.case_reports.c.report_id)).scalars())
    now = datetime.now(UTC)
    opened: list[tuple[Change, str | None]] = []
    for report_id, (event, case_id) in planned.items():
        if report_id not in claimed:
            continue  # this report already has its case
        loc = event.data["location"]
        suggestion = ref.router.suggest(event.data["category"], loc["lat"], loc["lon"])
        _, change = Case.open(case_id, event.data, suggestion, now)
        opened.append((change, event.correlation_id))
        log.info("case %s opened for report %s; suggested unit %s", case_id, report_id,
                 suggestion.unit_id, extra={"correlation_id": event.correlation_id,
                                            "case_id": case_id, "report_id": report_id})
    # case_reports was claimed first (it is the gate); its FK is deferred to the commit.
    CaseRepository(uow).add_opened(opened)
    if opened:
        CASE_TRANSITIONS.labels("open", domain.SCREENING).inc(len(opened))
    return [change.case_id for change, _ in opened]


def take_action(uow, reference: TimedReference, settings: SupervisionSettings, actor: dict,
                state: dict, action: str, given: ActionInput | None = None) -> dict:
    """Every change of a case's status goes through here: the aggregate decides, the
    repository saves case, trail and events together, the SLA clocks follow; one metric
    and one log line. Returns the case's new state."""
    now = datetime.now(UTC)
    case = Case(state, units=reference.fresh(uow.session).units,
                due=lambda kind: clocks.deadline(uow.session, state, kind, now))
    change = case.act(actor, action, now, given)
    CaseRepository(uow).save(change)
    clocks.on_case_changed(uow, settings, case.state, change)  # SLA clocks, 回访
    if change.repeated_return:
        REPEATED_RETURNS.inc()
        log.warning("case %s returned %d times (last by %s: %s): the operator decides "
                    "(reassign, transfer, escalate or close)", case.id,
                    change.changes["return_count"], actor["id"], (given or ActionInput()).note,
                    extra={"case_id": case.id})
    CASE_TRANSITIONS.labels(action, change.status).inc()
    log.info("case %s: %s by %s (%s), %s -> %s", case.id, action, actor["id"], change.role,
             change.previous, change.status,
             extra={"case_id": case.id, "unit_id": case.state["unit_id"]})
    return case.state


def require_operator(actor: dict) -> None:
    if not set(actor["roles"]) & domain.OPERATORS:
        raise Forbidden.of("dispatch.command-center-only", code="role-required")


def give_feedback(uow, reference: TimedReference, settings: SupervisionSettings,
                  actor: dict, case_id: str, payload: dict) -> dict:
    """The reporter's rating: satisfied closes the case, unsatisfied reopens it. A phone
    caller's is recorded by an operator (domain.rater_role), on the trail as theirs."""
    request = validated(schemas.FeedbackRequest(), payload, "feedback")
    state = CaseRepository(uow).lock(case_id)
    role = domain.rater_role(actor, state["reporter_ids"], state["channel"])
    state = take_action(uow, reference, settings, actor, state,
                        domain.rating_action(request["rating"]),
                        ActionInput(rating=request["rating"], feedback=request.get("comment")))
    if role == domain.RECORDS_FOR_CALLERS:
        callers.close_rating_call(uow.session, actor, state["id"], request["rating"],
                                  request.get("comment"), state["updated_at"])
    return case_view(actor, state, reference.fresh(uow.session).units)


# --- the partner's word (integration365 events) ------------------------------------------

EXTERNAL_ACTIONS = {"external.accepted": "external_accepted",
                    "external.progress": "external_progress",
                    "external.resolved": "external_resolved",
                    "external.rejected": "external_rejected"}


def _partner_note(action: str, data: dict) -> str | None:
    if action == "external_accepted":
        return data.get("note") or f"remote id {data.get('remote_id')}"
    if action == "external_progress":
        return f"[{data.get('remote_status')}] {data.get('note') or ''}".strip()
    if action == "external_resolved":
        return data.get("note")
    return data.get("reason")


def on_partner_event(uow, reference: TimedReference, settings: SupervisionSettings,
                     kind: str, events: list) -> None:
    """A partner accepted, progressed, resolved or rejected a case handed to it. An event
    that no longer fits (the case was closed meanwhile, or is unknown) is logged, counted
    and dropped: requeueing it would never make it fit."""
    action = EXTERNAL_ACTIONS[kind]
    for event in events:
        data = event.data
        actor = {"id": f"partner:{data['partner']}", "roles": ["system"]}
        try:
            state = CaseRepository(uow).lock(data["case_id"])
            with uow.session.begin_nested():  # a refusal leaves the batch's others intact
                take_action(uow, reference, settings, actor, state, action, ActionInput(
                    note=_partner_note(action, data), result=data.get("result")))
        except (Conflict, NotFound) as exc:
            EXTERNAL_EVENTS_IGNORED.labels(kind).inc()
            log.warning("ignored %s for case %s from %s: %s", kind, data["case_id"],
                        data["partner"], exc.detail_en,
                        extra={"case_id": data["case_id"], "event_id": event.id})

