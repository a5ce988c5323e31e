"""dispatch: cases. Entrypoints only: the lifecycle's rules are in domain.py and its steps in
handlers.py; SLA rules in sla.py and their steps in supervision.py; Open311 reads in open311.py."""
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
from services.dispatch import handlers, models, open311, supervision
from services.dispatch.metrics import SLA_SCAN_FAILURES

REFDATA = handlers.RefData()
log = logging.getLogger(__name__)


class SupervisionSettings(DependencyProvider):
    """SLA ladder, satisfaction wait and callback sample from the config, set at start."""

    def setup(self) -> None:
        supervision.configure(self.container.config)

    def get_dependency(self, worker_ctx) -> supervision.Settings:
        return supervision.SETTINGS


class DispatchService(OpsEndpoints):
    name = "dispatch"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    timer = EntrypointTimer()
    correlation = CorrelationContext()
    supervision_settings = SupervisionSettings()

    # The internal twin of report.submitted (intake.internal): it names the reporter, who
    # must be able to follow and rate her case; the public event does not.
    @consume_event("intake", event_type("report.received"), batch_size=50,
                   retired_bindings=(("intake.events", event_type("report.submitted")),))
    def open_case(self, events):
        with self.db.handling("dispatch.open_case", events) as (uow, fresh):
            handlers.open_cases(uow, REFDATA, fresh)

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
            handlers.on_external(uow, REFDATA, kind, fresh)

    @rpc
    def list_cases(self, actor: dict, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.list_cases(uow, REFDATA, actor, query)

    @rpc
    def get_case(self, actor: dict, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.get_case(uow, REFDATA, actor, case_id)

    @rpc
    def case_for_report(self, actor: dict, report_id: str) -> dict | None:
        with self.db.unit_of_work() as uow:
            return handlers.case_for_report(uow, REFDATA, actor, report_id)

    @rpc
    def reports_visible_to(self, actor: dict, report_ids: list[str]) -> list[str]:
        """For intake: which of these reports' cases `actor` may see (a leader's scope)."""
        with self.db.unit_of_work() as uow:
            return handlers.reports_visible_to(uow, REFDATA, actor, report_ids)

    @rpc
    def act(self, actor: dict, case_id: str, action: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.act(uow, REFDATA, actor, case_id, action)

    @rpc
    def give_feedback(self, actor: dict, case_id: str, feedback: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.give_feedback(uow, REFDATA, actor, case_id, feedback)

    @rpc
    def timeline(self, actor: dict, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.timeline(uow, REFDATA, actor, case_id)

    @rpc
    def list_units(self) -> list[dict]:
        with self.db.unit_of_work() as uow:
            units = REFDATA.fresh(uow.session).units
        return [{"id": u.id, "kind": u.kind, "name_zh": u.name_zh, "name_en": u.name_en}
                for u in units.values()]

    @rpc
    def duplicate_candidates(self, actor: dict, case_id: str, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.duplicate_candidates(uow, actor, case_id, query)

    @rpc
    def list_rules(self) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.list_rules(uow)

    @rpc
    def put_rule(self, actor: dict, rule: dict) -> dict:
        with self.db.unit_of_work() as uow:
            result = handlers.put_rule(uow, REFDATA, actor, rule)
        REFDATA.invalidate()  # committed: the next suggestion uses the new rules
        return result

    @rpc
    def delete_rule(self, actor: dict, rule_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            result = handlers.delete_rule(uow, REFDATA, actor, rule_id)
        REFDATA.invalidate()
        return result

    @rpc
    def decide(self, actor: dict, case_id: str, decision: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.decide(uow, REFDATA, actor, case_id, decision)

    @rpc
    def list_projects(self, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.list_projects(uow, query)

    @rpc
    def get_project(self, project_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.get_project(uow, project_id)

    @rpc
    def update_project(self, actor: dict, project_id: str, update: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.update_project(uow, actor, project_id, update)

    @rpc
    def list_wishes(self, actor: dict, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.list_wishes(uow, actor, query)

    @rpc
    def claim_wish(self, actor: dict, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.claim_wish(uow, REFDATA, actor, case_id)

    @rpc
    def fulfil_wish(self, actor: dict, case_id: str, fulfilment: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.fulfil_wish(uow, REFDATA, actor, case_id, fulfilment)

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
        for step, run in (("warnings", supervision.scan),
                          ("satisfaction", lambda uow: supervision.close_unanswered(
                              uow, REFDATA)),
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
            return supervision.decide_extension(uow, actor, case_id, extension_id, payload)

    @rpc
    def list_callbacks(self, actor: dict, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.list_callbacks(uow, actor, query)

    @rpc
    def record_callback(self, actor: dict, callback_id: str, payload: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.record_callback(uow, REFDATA, actor, callback_id, payload)

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
        with self.db.unit_of_work() as uow:
            return supervision.report(uow, actor, query)

    @rpc
    def verify_case_trail(self, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return supervision.verify_case_trail(uow, case_id)
