"""intake: reports in. Entrypoints only; the rules are in domain.py, the steps in handlers.py."""
from nameko.dependency_providers import Config

from minqing_kernel.consumer import consume_event
from minqing_kernel.db import Database
from minqing_kernel.events import event_type
from minqing_kernel.keys import SecretKey
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.objectstore import ObjectStore
from minqing_kernel.ratelimit import RateLimit
from minqing_kernel.rpc import RemoteService, rpc
from minqing_kernel.web import OpsEndpoints
from services.intake import callers, domain, erasure, handlers, media, models


def _partner_rejections(message) -> tuple[str, str] | None:
    return handlers.partner_rejections_route((message.properties or {}).get("user_id"))


class IntakeService(OpsEndpoints):
    name = "intake"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    store = ObjectStore()
    caller_key = SecretKey("CALLER_ID_KEY")  # phone callers' ids (domain.caller_id)
    dispatch = RemoteService("dispatch")  # which reports a leader's units handle
    timer = EntrypointTimer()
    correlation = CorrelationContext()
    catalogue = handlers.CatalogueReference()
    # Reports per partner platform over RabbitMQ (see handlers.accept_partner_report).
    partner_limit = RateLimit("PARTNER_REPORT_RATE_PER_MIN", "PARTNER_REPORT_BURST", 60, 30)

    # One at a time: partners send few reports, and a refused one is sent back alone.
    @consume_event("partners", event_type("partner_report.submitted"),
                   exchange=domain.INBOUND_EXCHANGE, dead_letter_to=_partner_rejections)
    def accept_partner_report(self, events):
        for event in events:
            handlers.accept_partner_report(self.db, self.store, self.catalogue,
                                           self.caller_key, event, self.partner_limit)

    # A resident deleted their account: their reports stay under a pseudonym (erasure.py).
    @consume_event("identity", event_type("account.deleted"))
    def forget_reporter(self, events):
        with self.db.handling("intake.forget_reporter", events) as (uow, fresh):
            erasure.pseudonymise_reporter(uow, fresh)

    @rpc
    def create_upload(self, actor: dict, request: dict) -> dict:
        return handlers.create_upload(self.db, self.store, actor, request)

    @rpc
    def submit_report(self, actor: dict, submission: dict,
                      submission_id: str | None = None) -> dict:
        return handlers.submit_report(self.db, self.store, self.catalogue, self.caller_key,
                                      actor, submission, submission_id)

    @rpc
    def get_report(self, actor: dict, report_id: str) -> dict:
        with self.db.unit_of_work() as uow:
            return handlers.get_report(uow, actor, report_id,
                                       self.dispatch.reports_visible_to)

    @rpc
    def list_reports(self, actor: dict, cursor: str | None = None, limit: int | None = None):
        with self.db.unit_of_work() as uow:
            return handlers.list_reports(uow, actor, cursor, limit,
                                         self.dispatch.reports_visible_to)

    @rpc
    def list_categories(self) -> list[dict]:
        categories = self.catalogue.fresh(self.db).categories
        return [handlers.category_view(c) for c in categories.values()]

    @rpc
    def check_attachments(self, owner_id: str, keys: list[str],
                          use: str | None = None) -> list[dict]:
        """For other services' attachments (a handler's result photos): same checks, and
        each upload is used up by `use` (e.g. case:<id>)."""
        return [a.__dict__ for a in handlers.check_attachments(self.db, self.store, owner_id,
                                                               keys, use)]

    @rpc
    def open311_reports(self, query: dict) -> list[dict]:
        """For the gateway's Open311 server: reports by ids or filters, without reporters,
        each with an expiring media_url for its first photo (media.py says why)."""
        with self.db.unit_of_work() as uow:
            reports = handlers.open311_reports(uow, query)
        return media.with_open311_media(self.store, reports, float(self.config.get(
            "OPEN311_MEDIA_URL_TTL_S", media.OPEN311_MEDIA_URL_TTL_S)))

    # --- attachments fetched (minqing_kernel/media.py) -------------------------------------

    def _media_ttl(self) -> float:
        return float(self.config.get("MEDIA_URL_TTL_S", media.MEDIA_URL_TTL_S))

    @rpc
    def report_media(self, actor: dict, report_id: str, name: str) -> dict:
        """A short-lived presigned GET of one of a report's attachments, if `actor` may
        read the report."""
        with self.db.unit_of_work() as uow:
            return media.report_media(uow, self.store, actor, report_id, name,
                                      self.dispatch.reports_visible_to, self._media_ttl())

    @rpc
    def attachment_link(self, key: str) -> dict:
        """A short-lived presigned GET of an attachment whose case dispatch has just let
        the caller see (the gateway asks dispatch first)."""
        with self.db.unit_of_work() as uow:
            return media.attachment_link(uow, self.store, key, self._media_ttl())

    @rpc
    def reveal_caller_number(self, actor: dict, callback: dict) -> dict:
        """A phone caller's number for a pending callback dispatch named; each showing is
        audited (callers.py)."""
        return callers.reveal_caller_number(self.db, actor, callback)
