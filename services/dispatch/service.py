"""dispatch: cases. Entrypoints only; rules in domain.py, steps in handlers.py."""
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
from services.dispatch import handlers, models, supervision
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

    @consume_event("intake", event_type("report.submitted"), batch_size=50)
    def open_case(self, events):
        with self.db.handling("dispatch.open_case", events) as (uow, fresh):
            handlers.open_cases(uow, REFDATA, fresh)

    @rpc
    def list_cases(self, actor: dict, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.list_cases(uow, actor, query)

    @rpc
    def get_case(self, actor: dict, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.get_case(uow, actor, case_id)

    @rpc
    def case_for_report(self, actor: dict, report_id: str) -> dict | None:
        with self.db.unit_of_work() as uow:
            return handlers.case_for_report(uow, actor, report_id)

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
            return handlers.timeline(uow, actor, case_id)

    @rpc
    def verify_trail(self, case_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.verify_trail(uow, case_id)

    @rpc
    def list_units(self) -> list[dict]:
        with self.db.unit_of_work() as uow:
            units = REFDATA.fresh(uow.session).units
        return [{"id": u.id, "kind": u.kind, "name_zh": u.name_zh, "name_en": u.name_en}
                for u in units.values()]

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
