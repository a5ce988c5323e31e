"""identity: users, their roles and units, and password checks.

The architecture gives the gateway nothing persistent, so the accounts it signs tokens
for live here, behind RPC. Residents, staff and partners are all users; what they may
do is decided by their roles (checked by the gateway) and by ownership (checked by the
service that owns the thing).
"""
from nameko.dependency_providers import Config

from minqing_kernel.db import Database
from minqing_kernel.logs import CorrelationContext
from minqing_kernel.metrics import EntrypointTimer
from minqing_kernel.rpc import rpc
from minqing_kernel.web import OpsEndpoints
from services.identity import handlers, models
from services.identity.hashing import PasswordChecks


class IdentityService(OpsEndpoints):
    name = "identity"
    config = Config()
    db = Database(models.metadata, models.outbox, models.processed_events)
    timer = EntrypointTimer()
    correlation = CorrelationContext()
    password_checks = PasswordChecks()

    @rpc
    def authenticate(self, credentials: dict) -> dict:
        return handlers.authenticate(self.db, self.password_checks, credentials)

    @rpc
    def account_state(self, user_id: str) -> dict | None:
        """What the gateway checks every token against (cached there for seconds)."""
        return handlers.account_state(self.db, user_id)

    # Changes that every token already issued must follow. No HTTP endpoint yet: the
    # accounts issue's admin API will call these as they are.

    @rpc
    def change_roles(self, user_id: str, roles: list[str]) -> dict:
        return handlers.change_roles(self.db, user_id, roles)

    @rpc
    def move_unit(self, user_id: str, unit_id: str | None) -> dict:
        return handlers.move_unit(self.db, user_id, unit_id)

    @rpc
    def deactivate(self, user_id: str) -> dict:
        return handlers.deactivate(self.db, user_id)

    @rpc
    def reactivate(self, user_id: str) -> dict:
        return handlers.reactivate(self.db, user_id)

    @rpc
    def lock_account(self, user_id: str, seconds: int) -> dict:
        return handlers.lock_account(self.db, user_id, seconds)

    @rpc
    def unlock_account(self, user_id: str) -> dict:
        return handlers.unlock_account(self.db, user_id)

    @rpc
    def revoke_sessions(self, user_id: str) -> dict:
        return handlers.revoke_sessions(self.db, user_id)

    @rpc
    def get_user(self, user_id: str) -> dict:
        return handlers.get_user(self.db, user_id)

    @rpc
    def partner_for_api_key(self, api_key: str) -> dict:
        """Open311: the partner actor for an api_key, or Forbidden."""
        return handlers.partner_for_api_key(self.db, api_key)
