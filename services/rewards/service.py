"""rewards (有奖爆料): rules, four eyes, the ledger, payouts and the ranking. Entrypoints
only; rules in domain.py, use cases in handlers.py.

Fed by events only: who reported what comes from intake's INTERNAL report.received (the
one way a service learns a reporter, minqing_kernel/events.py "Audiences"), who worked a
case from case.accepted and case.resolved, and a reward is proposed on case.closed.
case.merged needs no consumer: the merge's target carries the duplicate's report ids, so
its case.closed names every reporter and the first one filed is the one rewarded.
"""
from nameko.dependency_providers import Config

from minqing_kernel.consumer import consume_event
from minqing_kernel.db import Database
from minqing_kernel.events import event_type
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.rpc import rpc
from minqing_kernel.web import OpsEndpoints
from services.rewards import handlers, models


def _fen_or_none(value) -> int | None:
    """A cap from config; empty or 0 means none."""
    return int(value) if value not in (None, "", 0, "0") else None


class RewardsService(OpsEndpoints):
    name = "rewards"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    timer = EntrypointTimer()
    correlation = CorrelationContext()

    @property
    def threshold_fen(self) -> int:
        return int(self.config.get("REWARD_APPROVAL_THRESHOLD_FEN", 20000))

    @consume_event("intake", event_type("report.received"), batch_size=50)
    def learn_reporters(self, events):
        with self.db.handling("rewards.learn_reporters", events) as (uow, fresh):
            handlers.learn_reports(uow, fresh)

    @consume_event("dispatch", event_type("case.accepted"), batch_size=50)
    def note_accepted(self, events):
        with self.db.handling("rewards.note_accepted", events) as (uow, fresh):
            handlers.note_handlers(uow, fresh)

    @consume_event("dispatch", event_type("case.resolved"), batch_size=50)
    def note_resolved(self, events):
        with self.db.handling("rewards.note_resolved", events) as (uow, fresh):
            handlers.note_handlers(uow, fresh)

    @consume_event("dispatch", event_type("case.closed"), batch_size=20)
    def propose_rewards(self, events):
        with self.db.handling("rewards.propose_rewards", events) as (uow, fresh):
            handlers.award_closed_cases(uow, fresh)

    @rpc
    def list_rewards(self, actor: dict, query: dict) -> dict:
        return handlers.list_rewards(self.db, actor, query)

    @rpc
    def reward_action(self, actor: dict, reward_id: str, body: dict) -> dict:
        return handlers.reward_action(
            self.db, actor, reward_id, body, self.threshold_fen,
            daily_cap_fen=_fen_or_none(self.config.get("REWARD_DAILY_CAP_FEN")),
            monthly_cap_fen=_fen_or_none(self.config.get("REWARD_MONTHLY_CAP_FEN")))

    @rpc
    def flag_resident(self, actor: dict, resident_id: str, body: dict) -> dict:
        return handlers.flag_resident(self.db, actor, resident_id, body)

    @rpc
    def unflag_resident(self, actor: dict, resident_id: str) -> dict:
        return handlers.unflag_resident(self.db, actor, resident_id)

    @rpc
    def my_balance(self, actor: dict) -> dict:
        return handlers.my_balance(self.db, actor)

    @rpc
    def list_rules(self) -> dict:
        return handlers.list_rules(self.db)

    @rpc
    def set_rule(self, actor: dict, reward_class: str, priority: str, body: dict) -> dict:
        return handlers.set_rule(self.db, actor, reward_class, priority, body)

    @rpc
    def rule_changes(self, query: dict) -> dict:
        return handlers.rule_changes(self.db, query)

    @rpc
    def create_payouts(self, actor: dict) -> dict:
        return handlers.create_payouts(self.db, actor)

    @rpc
    def payout_action(self, actor: dict, payout_id: str, body: dict) -> dict:
        return handlers.payout_action(self.db, actor, payout_id, body)

    @rpc
    def list_payouts(self, actor: dict, query: dict) -> dict:
        return handlers.list_payouts(self.db, actor, query)

    @rpc
    def payout_residents(self, query: dict) -> list:
        return handlers.payout_residents(self.db, query)

    @rpc
    def export_payouts(self, query: dict, names: dict) -> str:
        return handlers.export_payouts(self.db, query, names)

    @rpc
    def leaderboard(self, actor: dict, query: dict) -> dict:
        return handlers.leaderboard(self.db, actor, query)

    @rpc
    def top_reporters_csv(self, year: str, rows: list) -> str:
        return handlers.top_reporters_csv(year, rows)
