"""dispatch: cases. Entrypoints only; each delegates to the use case of its feature:
lifecycle.py (open, act, rate, the partner's word; actions.py is the actions endpoint),
screening.py (duplicates, merge), routing.py (reference data, rules), agenda.py (班子会,
projects), wishes.py (微心愿), supervision.py (督办), audit.py (the trail), case_views.py
(reads) and open311.py. The rules are in case.py (the Case aggregate), domain.py and sla.py.
"""
import logging

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

from minqing_kernel.consumer import consume_event
from minqing_kernel.db import Database
from minqing_kernel.events import event_type
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.rpc import rpc
from minqing_kernel.timer import configured_timer
from minqing_kernel.web import OpsEndpoints
from services.dispatch import (
    actions,
    agenda,
    audit,
    callers,
    case_views,
    erasure,
    lifecycle,
    media,
    models,
    open311,
    routing,
    screening,
    supervision,
    units,
    wishes,
)
from services.dispatch.clocks import SupervisionSettings
from services.dispatch.metrics import SLA_SCAN_FAILURES

log = logging.getLogger(__name__)


class Supervision(DependencyProvider):
    """SLA ladder, satisfaction wait and callback sample, from the service's config."""

    def setup(self) -> None:
        self.settings = SupervisionSettings.from_config(self.container.config)

    def get_dependency(self, worker_ctx) -> SupervisionSettings:
        return self.settings


class DispatchService(OpsEndpoints):
    name = "dispatch"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    timer = EntrypointTimer()
    correlation = CorrelationContext()
    reference = routing.Reference()
    settings = Supervision()

    # The internal twin of report.submitted (intake.internal): it names the reporter, who
    # must be able to follow and rate her case; the public event does not.
    @consume_event("intake", event_type("report.received"), batch_size=50,
                   retired_bindings=(("intake.events", event_type("report.submitted")),))
    def open_case(self, events):
        with self.db.handling("dispatch.open_case", events) as (uow, fresh):
            lifecycle.open_cases(uow, self.reference, fresh)

    # identity owns units and grids: dispatch keeps its copy from identity's events.
    @consume_event("identity", event_type("unit.changed"), batch_size=20)
    def copy_unit(self, events):
        with self.db.handling("dispatch.copy_unit", events) as (uow, fresh):
            units.apply_unit_changes(uow, fresh)
        self.reference.invalidate()

    @consume_event("identity", event_type("grid.changed"), batch_size=20)
    def copy_grid(self, events):
        with self.db.handling("dispatch.copy_grid", events) as (uow, fresh):
            units.apply_grid_changes(uow, fresh)
        self.reference.invalidate()

    # A resident deleted their account: their cases stay under a pseudonym (erasure.py).
    @consume_event("identity", event_type("account.deleted"))
    def forget_reporter(self, events):
        with self.db.handling("dispatch.forget_reporter", events) as (uow, fresh):
            erasure.pseudonymise_reporters(uow, fresh)

    # The partner's word on a case handed to it (外部联动), from integration365.
    @consume_event("integration365", event_type("external.accepted"))
    def external_accepted(self, events):
        self._external("external.accepted", events)

    @consume_event("integration365", event_type("external.progress"))
    def external_progress(self, events):
        self._external("external.progress", events)

    @consume_event("integration365", event_type("external.resolved"))
    def external_resolved(self, events):
        self._external("external.resolved", events)

    @consume_event("integration365", event_type("external.rejected"))
    def external_rejected(self, events):
        self._external("external.rejected", events)

    def _external(self, kind: str, events) -> None:
        with self.db.handling(f"dispatch.{kind.replace('.', '_')}", events) as (uow, fresh):
            lifecycle.on_partner_event(uow, self.reference, self.settings, kind, fresh)

    @rpc
    def list_cases(self, actor: dict, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return case_views.list_cases(uow, self.reference, actor, query)

    @rpc
    def get_case(self, actor: dict, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return case_views.get_case(uow, self.reference, actor, case_id)

    @rpc
    def case_for_report(self, actor: dict, report_id: str) -> dict | None:
        with self.db.unit_of_work() as uow:
            return case_views.case_for_report(uow, self.reference, actor, report_id)

    @rpc
    def wish_media_key(self, actor: dict, case_id: str, name: str) -> str:
        """For the gateway: the key behind a wish's media URL, if `actor` may see it."""
        with self.db.unit_of_work() as uow:
            return media.wish_media_key(uow, actor, case_id, name)

    @rpc
    def callback_to_make(self, actor: dict, callback_id: str) -> dict:
        """For the gateway, before intake shows an operator a caller's number."""
        with self.db.unit_of_work() as uow:
            return callers.callback_to_make(uow, actor, callback_id)

    @rpc
    def case_media_key(self, actor: dict, case_id: str, name: str) -> str:
        """For the gateway: the key behind a case's media URL, if `actor` may see it."""
        with self.db.unit_of_work() as uow:
            return media.case_media_key(uow, self.reference, actor, case_id, name)

    @rpc
    def cases_for_reports(self, actor: dict, report_ids: list[str]) -> dict:
        """For a page of reports: each one's case and its status, in one call."""
        with self.db.unit_of_work() as uow:
            return case_views.cases_for_reports(uow, self.reference, actor, report_ids)

    @rpc
    def reports_visible_to(self, actor: dict, report_ids: list[str]) -> list[str]:
        """For intake: which of these reports' cases `actor` may see (a leader's scope)."""
        with self.db.unit_of_work() as uow:
            return case_views.reports_visible_to(uow, self.reference, actor, report_ids)

    @rpc
    def act(self, actor: dict, case_id: str, action: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return actions.act(uow, self.reference, self.settings, actor, case_id, action)

    @rpc
    def give_feedback(self, actor: dict, case_id: str, feedback: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return lifecycle.give_feedback(uow, self.reference, self.settings, actor,
                                           case_id, feedback)

    @rpc
    def timeline(self, actor: dict, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return audit.timeline(uow, self.reference, actor, case_id)

    @rpc
    def list_units(self) -> list[dict]:
        with self.db.unit_of_work() as uow:
            units = self.reference.fresh(uow.session).units
        return [{"id": u.id, "kind": u.kind, "name_zh": u.name_zh, "name_en": u.name_en}
                for u in units.values()]

    @rpc
    def duplicate_candidates(self, actor: dict, case_id: str, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return screening.duplicate_candidates(uow, self.reference, actor, case_id,
                                                    query)

    @rpc
    def list_rules(self) -> dict:
        with self.db.unit_of_work() as uow:
            return routing.list_rules(uow)

    @rpc
    def put_rule(self, actor: dict, rule: dict) -> dict:
        with self.db.unit_of_work() as uow:
            result = routing.put_rule(uow, self.reference, actor, rule)
        self.reference.invalidate()  # committed: the next suggestion uses the new rules
        return result

    @rpc
    def delete_rule(self, actor: dict, rule_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            result = routing.delete_rule(uow, self.reference, actor, rule_id)
        self.reference.invalidate()
        return result

    @rpc
    def decide(self, actor: dict, case_id: str, decision: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return agenda.decide(uow, self.reference, self.settings, actor, case_id, decision)

    @rpc
    def list_projects(self, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return agenda.list_projects(uow, query)

    @rpc
    def get_project(self, project_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return agenda.get_project(uow, project_id)

    @rpc
    def update_project(self, actor: dict, project_id: str, update: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return agenda.update_project(uow, actor, project_id, update)

    @rpc
    def list_wishes(self, actor: dict, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return wishes.list_wishes(uow, self.reference, actor, query)

    @rpc
    def claim_wish(self, actor: dict, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return wishes.claim_wish(uow, self.reference, self.settings, actor, case_id)

    @rpc
    def fulfil_wish(self, actor: dict, case_id: str, fulfilment: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return wishes.fulfil_wish(uow, self.reference, self.settings, actor, case_id,
                                      fulfilment)

    # --- Open311 (the gateway's /open311/v2/): read-only, no people in the answers ---

    @rpc
    def open311_statuses(self, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return open311.statuses(uow, query)

    @rpc
    def open311_updates(self, query: dict) -> list[dict]:
        with self.db.unit_of_work() as uow:
            return open311.updates(uow, query)

    # --- supervision (督办): supervision.py -------------------------------------------

    @configured_timer("SLA_SCAN_INTERVAL_S", 30)
    def supervise(self):
        """Every instance runs this: warnings are sent once whoever scans (see
        supervision.py), and each step commits on its own so one failing leaves the
        other to run."""
        for step, run in (
                ("warnings", lambda uow: supervision.scan(uow, self.settings)),
                ("satisfaction", lambda uow: supervision.close_unanswered(
                    uow, self.reference, self.settings)),
                ("red_lines", supervision.refresh_open_red_lines)):
            try:
                with self.db.unit_of_work() as uow:
                    run(uow)
            except Exception:
                SLA_SCAN_FAILURES.labels(step).inc()
                log.exception("supervision step %s failed; it runs again next interval",
                              step)

    @rpc
    def list_inbox(self, actor: dict, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.list_inbox(uow, actor, query)

    @rpc
    def mark_inbox_read(self, actor: dict, item_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.mark_read(uow, actor, item_id)

    @rpc
    def request_extension(self, actor: dict, case_id: str, payload: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.request_extension(uow, actor, case_id, payload)

    @rpc
    def decide_extension(self, actor: dict, case_id: str, extension_id: str,
                         payload: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.decide_extension(uow, self.settings, actor, case_id,
                                                extension_id, payload)

    @rpc
    def list_callbacks(self, actor: dict, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.list_callbacks(uow, actor, query)

    @rpc
    def record_callback(self, actor: dict, callback_id: str, payload: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.record_callback(uow, self.reference, self.settings, actor,
                                               callback_id, payload)

    @rpc
    def list_sla_policies(self, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.list_policies(uow, query)

    @rpc
    def set_sla_policy(self, actor: dict, category: str, priority: str,
                       payload: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.set_policy(uow, actor, category, priority, payload)

    @rpc
    def supervision_report(self, actor: dict, query: dict) -> dict:
        """督办报告: the RPC keeps its published name; the use case is the summary."""
        with self.db.unit_of_work() as uow:
            return supervision.supervision_summary(uow, actor, query)

    @rpc
    def verify_case_trail(self, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return audit.verify_case_trail(uow, case_id)
