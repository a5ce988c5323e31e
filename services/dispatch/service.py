"""dispatch: cases. Entrypoints only; rules in domain.py, steps in handlers.py."""
from nameko.dependency_providers import Config

from minqing_kernel.consumer import consume_event
from minqing_kernel.db import Database
from minqing_kernel.events import event_type
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.rpc import rpc
from minqing_kernel.web import OpsEndpoints
from services.dispatch import handlers, models, open311

REFDATA = handlers.RefData()


class DispatchService(OpsEndpoints):
    name = "dispatch"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    timer = EntrypointTimer()
    correlation = CorrelationContext()

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

    # --- Open311 (the gateway's /open311/v2/): read-only, no people in the answers ---

    @rpc
    def open311_statuses(self, query: dict) -> dict:
        with self.db.unit_of_work() as uow:
            return open311.statuses(uow, query)

    @rpc
    def open311_updates(self, query: dict) -> list[dict]:
        with self.db.unit_of_work() as uow:
            return open311.updates(uow, query)
