"""integration365: the bridge to 平安365. Entrypoints only; rules in domain.py, steps in
handlers.py, the partner's protocol in adapters.py."""
from nameko.dependency_providers import Config

from minqing_kernel.consumer import consume_event
from minqing_kernel.db import Database
from minqing_kernel.events import event_type
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.rpc import rpc
from minqing_kernel.timer import configured_timer
from minqing_kernel.web import OpsEndpoints
from services.integration365 import handlers, models
from services.integration365.adapters import PING_AN_365, PartnerLink


class Integration365Service(OpsEndpoints):
    name = "integration365"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    partner = PartnerLink()
    timer = EntrypointTimer()
    correlation = CorrelationContext()

    @consume_event("dispatch", event_type("case.escalated_external"), batch_size=20)
    def take_on_escalation(self, events):
        with self.db.handling("integration365.take_on_escalation", events) as (uow, fresh):
            handlers.record_handovers(uow, fresh, {PING_AN_365})

    @configured_timer("INTEGRATION365_SEND_INTERVAL_S", 1)
    def send_due_handovers(self):
        handlers.send_due(self.db, self.partner)
        handlers.refresh_gauges(self.db, self.partner)

    @configured_timer("INTEGRATION365_POLL_INTERVAL_S", 2)
    def follow_partner_updates(self):
        handlers.poll_updates(self.db, self.partner)

    @configured_timer("INTEGRATION365_RECONCILE_INTERVAL_S", 60)
    def reconcile_with_partner(self):
        handlers.reconcile(self.db, self.partner)

    @rpc
    def get_handover(self, case_id: str) -> dict | None:
        with self.db.unit_of_work() as uow:
            return handlers.handover_view(uow, case_id)
